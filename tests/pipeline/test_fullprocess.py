"""The full process end to end: first deployment, drift, no new data, no drift, the lock, cron."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from drs.core.fileio import run_lock
from drs.core.settings import Config
from drs.history import runs as history
from drs.pipeline import run as pipeline
from drs.production import versions as production
from tests.conftest import ROOT, run_script, tree_state
from tools.generate_data import OLDER_WORLD, clients, unique_ids


def outputs(config: Config) -> list[Path]:
    return [config.output_folder, config.output_model_folder, config.prod_deployment_folder]


def without_history(state: dict[str, tuple[str, int]]) -> dict[str, tuple[str, int]]:
    return {k: v for k, v in state.items() if not k.endswith("runhistory.sqlite")}


def test_first_run_deploys_a_first_model(config: Config) -> None:
    assert pipeline.run(config) == 0
    current = production.current(config.prod_deployment_folder)
    assert current.version == 1
    assert current.ingested_files() == ["clients_q1.csv", "clients_q2.csv", "clients_q3.csv", "clients_q4.csv"]
    assert (config.output_model_folder / "confusionmatrix.png").is_file()
    assert (config.output_model_folder / "diagnostics.json").is_file()
    run = history.runs(config.history_db)[-1]
    assert run["outcome"] == "deployed" and run["deployed_version"] == 1
    assert run["details"]["apicalls"] == "failed: the API is not reachable at http://127.0.0.1:9 (connection refused)"
    assert run["message"].endswith("; API calls failed: the API is not reachable at http://127.0.0.1:9 (connection refused)")


def test_drifted_data_redeploys_then_nothing_new_changes_nothing(
    deployed_practice: Config, config: Config, caplog: pytest.LogCaptureFixture
) -> None:
    assert pipeline.run(config) == 0
    assert "drift check (raw): v0001 F1 on the new data 0.4844 vs its latestscore 0.6305 -> drift" in caplog.text
    current = production.current(config.prod_deployment_folder)
    assert current.version == 2 and current.score() == pytest.approx(0.790875, abs=1e-6)
    run = history.runs(config.history_db)[-1]
    assert run["details"]["drift"]["drift"] is True and run["outcome"] == "deployed"

    before = tree_state(*outputs(config))
    caplog.clear()
    assert pipeline.run(config) == 0
    assert "no new data in sourceddata; v0002 stays deployed" in caplog.text
    assert without_history(tree_state(*outputs(config))) == without_history(before)
    runs = history.runs(config.history_db)
    assert [r["outcome"] for r in runs] == ["deployed", "no new data"]


def older_world_file(path: Path, rows: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    clients(rng, unique_ids(rng, rows), OLDER_WORLD).to_csv(path, index=False)


def test_new_data_without_drift_does_not_redeploy_and_is_not_reprocessed(
    deployed_practice: Config, caplog: pytest.LogCaptureFixture
) -> None:
    """More data from the practice model's own world: its F1 there is above its test score."""
    practice = deployed_practice
    older_world_file(practice.input_folder / "dataset3.csv", 400, seed=7)
    prod_before = tree_state(practice.prod_deployment_folder)
    assert pipeline.run(practice) == 0
    assert "-> no drift" in caplog.text
    assert tree_state(practice.prod_deployment_folder) == prod_before
    run = history.runs(practice.history_db)[-1]
    assert run["outcome"] == "no drift"
    assert run["details"]["drift"]["new_data_f1"] >= run["details"]["drift"]["deployed_score"]
    assert (practice.prod_deployment_folder / "ingestedfiles.txt").read_text() == "dataset1.csv\ndataset2.csv\n"

    caplog.clear()
    assert pipeline.run(practice) == 0
    assert "no new data" in caplog.text
    assert history.runs(practice.history_db)[-1]["outcome"] == "no new data"


def test_rejected_new_file_is_not_retried_until_it_changes(deployed_practice: Config, caplog: pytest.LogCaptureFixture) -> None:
    practice = deployed_practice
    bad = practice.input_folder / "dataset3.csv"
    bad.write_text("corporation,exited\nabcd,1\n")
    assert pipeline.run(practice) == 0
    assert "rejected dataset3.csv: missing column(s)" in caplog.text
    assert history.runs(practice.history_db)[-1]["outcome"] == "new files rejected"
    assert pipeline.run(practice) == 0
    assert history.runs(practice.history_db)[-1]["outcome"] == "no new data"
    older_world_file(bad, 300, seed=11)  # fixed: new content
    assert pipeline.run(practice) == 0
    assert history.runs(practice.history_db)[-1]["outcome"] in {"no drift", "deployed"}


def test_second_run_while_one_holds_the_lock_exits_zero(config: Config) -> None:
    with run_lock(config.lock_file):
        done = run_script("fullprocess.py", "--config", str(config.config_file))
    assert done.returncode == 0
    assert f"another run is in progress: {Path(sys.argv[0]).name} (pid {os.getpid()}, started at 20" in done.stderr
    assert production.current(config.prod_deployment_folder) is None
    assert history.runs(config.history_db)[-1]["outcome"] == "skipped: locked"


def test_failure_exits_non_zero_with_a_clear_message(deployed_practice: Config, config: Config) -> None:
    config.test_data_csv.unlink()
    done = run_script("fullprocess.py", "--config", str(config.config_file))
    assert done.returncode == 1
    assert "testdata.csv: cannot be read" in done.stderr or "testdata.csv" in done.stderr.splitlines()[-1]
    assert "Traceback" not in done.stderr
    assert production.current(config.prod_deployment_folder).version == 1
    assert history.runs(config.history_db)[-1]["outcome"] == "failed"


def cron_command() -> str:
    lines = [line for line in (ROOT / "cronjob.txt").read_text().splitlines() if line.strip() and not line.startswith("#")]
    assert len(lines) == 1
    fields = lines[0].split(None, 5)
    assert fields[:5] == ["*/10", "*", "*", "*", "*"]
    return fields[5]


def test_cron_line_runs_from_root_with_a_minimal_environment(project: Path) -> None:
    """The crontab line, with the project path filled in, run as cron runs it: from /, env -i."""
    for name in ROOT.glob("*.py"):
        shutil.copy(name, project / name.name)
    shutil.copytree(ROOT / "drs", project / "drs", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "requirements.txt", project / "requirements.txt")
    os.symlink(sys.prefix, project / ".venv")
    command = cron_command().replace("/path/to/project", str(project))
    done = subprocess.run(["env", "-i", "PATH=/usr/bin:/bin", "sh", "-c", command], cwd="/", capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    log = (project / "logs" / "fullprocess.log").read_text()
    assert "nothing deployed yet: training and deploying a first model" in log
    assert "deployed v0001" in log
    assert production.current(project / "production_deployment").version == 1
    done = subprocess.run(["env", "-i", "PATH=/usr/bin:/bin", "sh", "-c", command], cwd="/", capture_output=True, text=True, timeout=300)
    assert done.returncode == 0
    assert "no new data in sourceddata; v0001 stays deployed" in (project / "logs" / "fullprocess.log").read_text()
