"""config.json: paths resolve against the config's folder; bad configs give one clear line."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

import pytest

from drs.core.errors import ConfigError
from drs.core.settings import load_config
from tests.conftest import ROOT, run_script, write_config


def test_relative_paths_resolve_against_the_config_folder(project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir("/")
    config = load_config(project / "config.json")
    assert config.input_folder == (project / "sourceddata").resolve()
    assert config.prod_deployment_folder == (project / "production_deployment").resolve()
    assert config.test_data_csv == (project / "testdata" / "testdata.csv").resolve()
    assert config.features == ("lastmonth_activity", "lastyear_activity", "number_of_employees")


def test_shipped_configs_use_the_course_keys_and_values() -> None:
    root = Path(__file__).resolve().parents[2]
    production = load_config(root / "config.json")
    practice = load_config(root / "practiceconfig.json")
    assert production.input_folder.name == "sourceddata" and production.output_model_folder.name == "models"
    assert practice.input_folder.name == "practicedata" and practice.output_model_folder.name == "practicemodels"
    assert production.output_folder.name == practice.output_folder.name == "ingesteddata"
    assert production.prod_deployment_folder.name == "production_deployment"


@pytest.mark.parametrize(
    "content, expected",
    [
        (None, "config file not found"),
        ("{not json", "is not valid JSON: Expecting property name enclosed in double quotes at line 1 column 2"),
        ('{"input_folder_path": "x"}', "lacks key(s): output_folder_path, test_data_path, output_model_path, prod_deployment_path"),
        ("[1, 2]", "must hold a JSON object"),
    ],
)
def test_bad_config_is_one_clear_line(tmp_path: Path, content: str | None, expected: str) -> None:
    path = tmp_path / "config.json"
    if content is not None:
        path.write_text(content)
    with pytest.raises(ConfigError, match=None) as info:
        load_config(path)
    assert expected in str(info.value)
    for script in ("ingestion.py", "fullprocess.py", "deployment.py"):
        done = run_script(script, "--config", str(path))
        assert done.returncode == 2
        assert done.stderr.strip().startswith("error: ") and expected in done.stderr
        assert "Traceback" not in done.stderr
        assert len(done.stderr.strip().splitlines()) == 1


SCRIPTS = ("ingestion", "training", "scoring", "deployment", "diagnostics", "reporting", "apicalls", "fullprocess", "app")


def test_scripts_import_without_doing_work(tmp_path: Path) -> None:
    """Importing every script writes nothing (the work starts in main())."""
    code = f"import runpy; [runpy.run_path(f'{ROOT}/{{name}}.py', run_name=name) for name in {SCRIPTS!r}]"
    subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, check=True)
    assert list(tmp_path.iterdir()) == []


def test_no_top_level_script_imports_another() -> None:
    for script in SCRIPTS:
        tree = ast.parse((ROOT / f"{script}.py").read_text())
        imported = {alias.name.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
        imported |= {node.module.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.module}
        assert not imported & {*SCRIPTS, "webpage"}, f"{script}.py imports {sorted(imported & set(SCRIPTS))}"
        assert len((ROOT / f"{script}.py").read_text().splitlines()) <= 60, f"{script}.py is not a thin command line"


def test_fullprocess_runs_from_another_directory(project: Path) -> None:
    done = run_script("fullprocess.py", "--config", str(project / "config.json"), cwd="/")
    assert done.returncode == 0, done.stderr
    assert (project / "production_deployment" / "trainedmodel.pkl").is_file()
    assert "nothing deployed yet" in done.stderr


def test_config_key_of_wrong_type_is_reported(tmp_path: Path) -> None:
    path = write_config(tmp_path, features="lastmonth_activity")
    with pytest.raises(
        ConfigError, match=r"config\.json: key 'features' must be a non-empty list of column names, got \"lastmonth_activity\"$"
    ):
        load_config(path)


@pytest.mark.parametrize("value", [42, "mirror.example/simple", "ftp://mirror/simple", "file:///srv/simple", ""])
def test_package_index_url_must_be_http(tmp_path: Path, value: object) -> None:
    with pytest.raises(ConfigError, match=r": key 'package_index_url' must be an http\(s\) URL") as info:
        load_config(write_config(tmp_path, package_index_url=value))
    assert len(str(info.value).splitlines()) == 1


def test_package_index_is_the_config_key_else_the_one_pip_uses(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No index is named in the project: unset, it is pip's (PIP_INDEX_URL, pip's configuration files, pip's default)."""
    from pip._internal.models.index import PyPI

    from drs.reports.packages import index_url

    monkeypatch.delenv("PIP_INDEX_URL", raising=False)
    pip_conf = tmp_path / "pip.conf"
    pip_conf.write_text("[global]\nindex-url = https://mirror.example/root/pypi/+simple/\n")
    monkeypatch.setenv("PIP_CONFIG_FILE", str(pip_conf))
    config = load_config(write_config(tmp_path))
    assert config.package_index_url is None
    assert index_url(config).url == "https://mirror.example/root/pypi/+simple"
    monkeypatch.setenv("PIP_INDEX_URL", "https://other.example/simple")  # the variable wins over the file, as in pip
    assert index_url(config).url == "https://other.example/simple"
    given = load_config(write_config(tmp_path, package_index_url="http://127.0.0.1:3141/simple"))
    assert (given.package_index_url, index_url(given).url) == ("http://127.0.0.1:3141/simple",) * 2
    monkeypatch.setenv("PIP_INDEX_URL", "/srv/wheelhouse")  # a folder pip reads; HTTP cannot: not asked, no stage fails
    assert index_url(config) == (None, "not asked (pip's index is not an http(s) URL; set package_index_url)")
    monkeypatch.delenv("PIP_INDEX_URL")
    monkeypatch.setenv("PIP_CONFIG_FILE", os.devnull)  # pip reads no file: its own default
    assert index_url(config).url == PyPI.simple_url.rstrip("/")
