"""Helpers shared by the fault tests: running a script with faults injected, and the checks
that say production holds one whole deployment and nothing temporary is left behind."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from drs.core import layout
from drs.core.settings import Config, load_config
from drs.data.readers import read_csv_checked
from drs.data.schema import Schema
from drs.production import versions as production
from tests.conftest import ROOT, make_project, stage_pass, tree_state

FAULTRUN = ROOT / "tests" / "faultrun.py"
RECORD = {"corporation": "abcd", "lastmonth_activity": 3, "lastyear_activity": 400, "number_of_employees": 900}


def redeploy_scenario(root: Path) -> Config:
    """The practice model deployed (v0001) and the changed world's four files waiting: the next run redeploys."""
    make_project(root)
    stage_pass(load_config(root / "practiceconfig.json"))
    return load_config(root / "config.json")


def older_world_file(path: Path, rows: int, seed: int) -> None:
    """New data from the practice model's own world, on which it does not drift."""
    import numpy as np

    from tools.generate_data import OLDER_WORLD, clients, unique_ids

    rng = np.random.default_rng(seed)
    clients(rng, unique_ids(rng, rows), OLDER_WORLD).to_csv(path, index=False)


def fault_command(script: str, config: Config, *args: str) -> list[str]:
    return [sys.executable, str(FAULTRUN), str(ROOT / script), "--config", str(config.config_file), *args]


def fault_env(watch: Path, tmpdir: Path | None = None, **faults: object) -> dict[str, str]:
    """Environment for tests/faultrun.py: DRS_FAULT_<NAME> for each fault, TMPDIR kept apart when given."""
    env = {**os.environ, "DRS_FAULT_WATCH": str(watch)}
    env.update({f"DRS_FAULT_{name.upper()}": str(value) for name, value in faults.items()})
    if tmpdir is not None:
        env["TMPDIR"] = str(tmpdir)
    return env


def run_with_faults(script: str, config: Config, *args: str, timeout: float = 120, **faults: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        fault_command(script, config, *args),
        cwd="/",
        capture_output=True,
        text=True,
        timeout=timeout,
        env=fault_env(config.config_file.parent, **faults),
    )


def sources_state(project: Path) -> dict[str, tuple[str, int]]:
    """sha256 and mtime of every data file the project reads, keyed relative to the project."""
    folders = [project / name for name in ("practicedata", "sourceddata", "testdata")]
    return {str(Path(k).relative_to(project)): v for k, v in tree_state(*folders).items()}


def leftovers(root: Path) -> list[str]:
    """Temporary files, folders and links, and SQLite journals, anywhere under `root`."""
    return sorted(
        str(p.relative_to(root)) for p in Path(root).rglob("*") if p.name.startswith(".tmp-") or p.name.endswith(("-journal", "-wal"))
    )


def assert_one_whole_deployment(config: Config) -> production.Deployment:
    """Production holds one complete deployment: checksums match, the model loads, latestscore.txt
    is that model's F1 on the test data, ingestedfiles.txt is the list it was trained on, and the
    course's top-level names show exactly that version's files."""
    from drs.model.metrics import metrics
    from drs.model.scoring import format_score

    prod = config.prod_deployment_folder
    current = production.current(prod)
    assert current is not None, "nothing is current"
    production.verify(current)
    model = production.load_model(current)
    schema = Schema.from_config(config)
    f1 = metrics(model, read_csv_checked(config.test_data_csv, schema), schema)["f1"]
    assert (current.folder / layout.SCORE_FILE).read_text() == format_score(f1)
    assert current.ingested_files() == current.meta["training_files"]
    for name in (*layout.DEPLOYED_FILES, layout.META_FILE):
        assert (prod / name).read_bytes() == (current.folder / name).read_bytes(), name
    return current


def assert_api_answers(config: Config, label: str) -> None:
    """The API (Flask's test client, a fresh worker) serves the deployed version."""
    from drs.web.app import create_app

    client = create_app(config).test_client()
    health = client.get("/health")
    assert health.status_code == 200 and health.get_json()["model_version"] == label, health.get_json()
    answer = client.post("/prediction", json={"records": [RECORD]})
    assert answer.status_code == 200 and answer.get_json()["model_version"] == label
