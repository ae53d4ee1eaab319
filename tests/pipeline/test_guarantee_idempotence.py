"""Promise 3, idempotence: a run with no new data changes no file in the output and production
folders (sha256 and modification time); the run history, an append-only log, gains one row."""

from __future__ import annotations

import os

from drs.core.settings import Config
from drs.history import runs as history
from drs.pipeline import run as pipeline
from tests.conftest import HEADER, run_script, tree_state
from tests.faults import older_world_file


def outputs_state(config: Config) -> dict[str, tuple[str, int]]:
    folders = (config.output_folder, config.output_model_folder, config.prod_deployment_folder)
    return {k: v for k, v in tree_state(*folders).items() if not k.endswith("runhistory.sqlite")}


def assert_no_new_data_changes_nothing(config: Config, runs: int = 1) -> None:
    before, rows_before = outputs_state(config), history.runs(config.history_db)
    for _ in range(runs):
        done = run_script("fullprocess.py", "--config", str(config.config_file))
        assert done.returncode == 0, done.stderr
        assert "no new data in" in done.stderr
    assert outputs_state(config) == before
    rows = history.runs(config.history_db)
    assert rows[: len(rows_before)] == rows_before  # nothing rewritten
    assert [r["outcome"] for r in rows[len(rows_before) :]] == ["no new data"] * runs


def test_after_a_redeploy_nothing_changes(deployed_practice: Config, config: Config) -> None:
    assert pipeline.run(config) == 0
    assert_no_new_data_changes_nothing(config, runs=3)


def test_touched_but_unchanged_sources_are_not_new_data(deployed_practice: Config, config: Config) -> None:
    assert pipeline.run(config) == 0
    for path in config.input_folder.iterdir():
        os.utime(path, ns=(path.stat().st_atime_ns, path.stat().st_mtime_ns + 10**9))
    assert_no_new_data_changes_nothing(config)


def test_after_a_rejected_file_or_no_drift_nothing_changes(deployed_practice: Config) -> None:
    practice = deployed_practice
    (practice.input_folder / "dataset3.csv").write_text(HEADER + "x,1,2,3,7\n")
    assert pipeline.run(practice) == 0
    assert history.runs(practice.history_db)[-1]["outcome"] == "new files rejected"
    assert_no_new_data_changes_nothing(practice)
    older_world_file(practice.input_folder / "dataset4.csv", 400, seed=7)  # the practice model's own world: no drift
    assert pipeline.run(practice) == 0
    assert history.runs(practice.history_db)[-1]["outcome"] == "no drift"
    assert_no_new_data_changes_nothing(practice)
