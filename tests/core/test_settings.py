"""The settings table: each config key declared once, and the loader, the defaults, the errors and the README all come from it."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from drs.core import settings
from drs.core.errors import ConfigError
from drs.core.settings import REQUIRED, SETTINGS, Derived, load_config
from tests.conftest import ROOT, run_script, write_config

REQUIRED_KEYS = [f.metadata["key"] for f in SETTINGS if f.metadata["default"] is REQUIRED]


def minimal_config(folder: Path, **extra: object) -> Path:
    path = folder / "config.json"
    path.write_text(json.dumps({key: key.removesuffix("_path") for key in REQUIRED_KEYS} | extra))
    return path


def test_every_key_is_loaded_with_its_declared_default(tmp_path: Path) -> None:
    config = load_config(minimal_config(tmp_path))
    for f in SETTINGS:
        default = f.metadata["default"]
        value = getattr(config, f.name)
        if default is REQUIRED:
            assert value == (tmp_path / f.metadata["key"].removesuffix("_path")).resolve()
        elif isinstance(default, Derived):
            assert value == default.compute(vars(config))
        else:
            assert value == f.metadata["check"].convert(default, tmp_path), f.metadata["key"]
    assert config.data_folders == (config.input_folder, config.output_folder, config.test_data_folder)
    assert config.model == {"C": 1.0, "solver": "liblinear", "random_state": 0, "scale": False, "max_iter": 1000, "dtype": "float64"}


@pytest.mark.parametrize("key", [f.metadata["key"] for f in SETTINGS])
def test_a_bad_value_of_any_key_is_one_line_naming_it(tmp_path: Path, key: str) -> None:
    path = minimal_config(tmp_path, **{key: {"bogus": 1}})
    with pytest.raises(ConfigError) as info:
        load_config(path)
    message = str(info.value)
    secret = next(f.metadata["check"].secret for f in SETTINGS if f.metadata["key"] == key)  # notify: URLs hold passwords
    shown = "got (not shown: it may hold secrets)" if secret else 'got {"bogus": 1}'
    assert message.startswith(f"config file {path}: key '{key}' must be ") and message.endswith(shown)
    assert len(message.splitlines()) == 1


def test_an_unknown_key_is_refused_by_name(tmp_path: Path) -> None:
    with pytest.raises(
        ConfigError, match=r"has unknown key\(s\): 'drift_tets' \(did you mean 'drift_test'\?\) \(known: see README, Configuration\)$"
    ):
        load_config(minimal_config(tmp_path, drift_tets="parametric"))
    with pytest.raises(ConfigError, match=r"has unknown key\(s\): 'colour' \(known: see README, Configuration\)$"):
        load_config(minimal_config(tmp_path, colour="blue"))  # nothing close: no guess


MISSPELT = [
    ("input_folder_pth", "input_folder_path"),  # a required key: the spelling is named, not "lacks input_folder_path"
    ("inputfolderpath", "input_folder_path"),
    ("Input_Folder_Path", "input_folder_path"),
    ("settle_second", "settle_seconds"),
    ("drift_tset", "drift_test"),
]


@pytest.mark.parametrize(("wrong", "right"), MISSPELT)
def test_a_misspelt_key_is_named_with_the_key_it_was_meant_to_be(tmp_path: Path, wrong: str, right: str) -> None:
    raw = json.loads(minimal_config(tmp_path).read_text())
    value = raw.pop(right, 0)
    path = tmp_path / "config.json"
    path.write_text(json.dumps({**raw, wrong: value}))
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert (
        str(info.value) == f"config file {path} has unknown key(s): '{wrong}' (did you mean '{right}'?) (known: see README, Configuration)"
    )


def test_a_script_names_the_misspelt_key_on_stderr_with_exit_code_2(tmp_path: Path) -> None:
    path = write_config(tmp_path)
    raw = json.loads(path.read_text())
    raw["input_folder_pth"] = raw.pop("input_folder_path")
    path.write_text(json.dumps(raw))
    done = run_script("ingestion.py", "--config", str(path))
    assert done.returncode == 2
    assert "has unknown key(s): 'input_folder_pth' (did you mean 'input_folder_path'?)" in done.stderr
    assert "Traceback" not in done.stderr and len(done.stderr.strip().splitlines()) == 1


def test_checked_values_are_converted(tmp_path: Path) -> None:
    config = load_config(write_config(tmp_path, drift_min_history={"parametric": 8}, model={"C": 2, "scale": True}, api_url="http://h:1/"))
    assert config.drift_min_history == {"parametric": 8, "nonparametric": 5}
    assert config.model["C"] == 2.0 and config.model["scale"] is True and config.model["solver"] == "liblinear"
    assert config.api_url == "http://h:1"
    with pytest.raises(ConfigError, match=r"key 'drift_test' must be one of raw, parametric, nonparametric, got \"zscore\"$"):
        load_config(write_config(tmp_path, drift_test="zscore"))
    with pytest.raises(ConfigError, match=r"key 'drift_min_history' must be a whole number of at least 2, got \{\"parametric\": 1\}$"):
        load_config(write_config(tmp_path, drift_min_history={"parametric": 1}))


def test_the_readme_table_is_the_declared_one() -> None:
    readme = (ROOT / "README.md").read_text()
    start, end = "<!-- settings-table:start -->\n", "\n<!-- settings-table:end -->"
    assert readme[readme.index(start) + len(start) : readme.index(end)] == settings.markdown_table()
    printed = subprocess.run([sys.executable, "-m", "drs.core.settings", "--markdown"], capture_output=True, text=True, check=True)
    assert printed.stdout == settings.markdown_table() + "\n"
    assert printed.stdout.count("\n| `") == len(SETTINGS)
