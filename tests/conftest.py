"""Fixtures: every test works on a temporary copy of the project's data, never on the committed folders."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from werkzeug.serving import make_server

from drs.core.layout import LOCK_FILE
from drs.core.settings import Config, load_config
from drs.data.ingest import ingest
from drs.model.scoring import score
from drs.model.training import train
from drs.pipeline.deploy import deploy
from drs.web.app import create_app

ROOT = Path(__file__).resolve().parent.parent

# ../shared/udacity-starter beside the checkout; DRS_UDACITY_STARTER points elsewhere (a worktree one level deeper).
SHARED_STARTER = Path(os.environ.get("DRS_UDACITY_STARTER") or ROOT.parent / "shared" / "udacity-starter")
HEADER = "corporation,lastmonth_activity,lastyear_activity,number_of_employees,exited\n"
DATA_FOLDERS = ("practicedata", "sourceddata", "testdata")
OUTPUT_FOLDERS = ("ingesteddata", "practicemodels", "models", "production_deployment")


def write_config(folder: Path, name: str = "config.json", **overrides: object) -> Path:
    settings = {
        "input_folder_path": "sourceddata",
        "output_folder_path": "ingesteddata",
        "test_data_path": "testdata",
        "output_model_path": "models",
        "prod_deployment_path": "production_deployment",
        "packages_timeout_seconds": 0,
        "settle_seconds": 0,  # the copied data is seconds old; tests of settling set their own
        "api_url": "http://127.0.0.1:9",
    }
    settings.update(overrides)
    path = folder / name
    path.write_text(json.dumps(settings, indent=2))
    return path


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A project folder with copies of the shipped data, empty outputs and both configs."""
    return make_project(tmp_path / "project")


def make_project(root: Path) -> Path:
    for name in DATA_FOLDERS:
        shutil.copytree(ROOT / name, root / name)
        # The shipped files arrived together, a day ago: whatever order and time a clone wrote them in, files a test
        # writes later (even "300 s old") arrived after them, by the fallback rule of drs.data.sources.arrival_plan too.
        together = time.time_ns() - 86_400 * 1_000_000_000
        for path in (root / name).iterdir():
            os.utime(path, ns=(together, together))
    for name in OUTPUT_FOLDERS:
        (root / name).mkdir(parents=True)
    write_config(root)
    write_config(root, "practiceconfig.json", input_folder_path="practicedata", output_model_path="practicemodels")
    return root


@pytest.fixture
def config(project: Path) -> Config:
    return load_config(project / "config.json")


@pytest.fixture
def practice_config(project: Path) -> Config:
    return load_config(project / "practiceconfig.json")


def stage_pass(config: Config) -> None:
    """Ingest, train, score and deploy through the library (for the practice config: the course's practice pass)."""
    ingest(config)
    train(config)
    score(config)
    deploy(config)


@pytest.fixture
def deployed_practice(practice_config: Config) -> Config:
    stage_pass(practice_config)
    return practice_config


def tree_state(*folders: Path) -> dict[str, tuple[str, int]]:
    """sha256 and mtime of every file (symlinks by target) under the folders, but the run lock's file:
    whoever takes the lock writes its name there (drs/fileio.run_lock), so it is no output."""
    state = {}
    for folder in folders:
        for path in sorted(folder.rglob("*")):
            key = str(path)
            if path.name == LOCK_FILE:
                continue
            if path.is_symlink():
                state[key] = (os.readlink(path), 0)
            elif path.is_file():
                state[key] = (hashlib.sha256(path.read_bytes()).hexdigest(), path.stat().st_mtime_ns)
    return state


def run_script(
    script: str, *args: str, cwd: Path | str = "/", env: dict[str, str] | None = None, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(ROOT / script), *args], cwd=cwd, capture_output=True, text=True, timeout=timeout, env=env)


@contextlib.contextmanager
def app_server(config_path: Path) -> Iterator[str]:
    """create_app() for `config_path` served over real HTTP by Werkzeug in a thread of this process (cheaper than gunicorn)."""
    server = make_server("127.0.0.1", 0, create_app(config_path), threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()
