"""Promise 4, nothing lost: no stage, on any path, changes, moves or deletes a source file.

Each script runs under tests/faultrun.py, whose audit hook logs every change the process makes
(files opened for writing, renames, removals, links, folders); not one may fall in a data folder,
and every source file keeps its content and modification time. The paths: the practice pass, a
first deployment, drift and redeployment, diagnostics and reporting, no new data, a rejected file,
new data without drift, a rollback, a failing run, the API calls with no API, and a killed run.
"""

from __future__ import annotations

import signal
from pathlib import Path

from drs.core.settings import load_config
from drs.history import runs as history
from tests.conftest import HEADER, make_project, tree_state
from tests.faults import older_world_file, run_with_faults

DATA = ("practicedata", "sourceddata", "testdata")


def test_no_stage_changes_a_source_file_on_any_path(tmp_path: Path) -> None:
    project = make_project(tmp_path / "project")
    practice, production = load_config(project / "practiceconfig.json"), load_config(project / "config.json")
    log = tmp_path / "changes.log"
    steps = [
        ("ingestion.py", practice, (), 0),
        ("training.py", practice, (), 0),
        ("scoring.py", practice, (), 0),
        ("deployment.py", practice, (), 0),
        ("diagnostics.py", practice, (), 0),
        ("reporting.py", practice, (), 0),
        ("add no drift", practice, (), None),
        ("fullprocess.py", practice, (), 0),  # new data without drift
        ("fullprocess.py", production, (), 0),  # drift: retrain, redeploy, diagnostics, reporting, API calls
        ("fullprocess.py", production, (), 0),  # no new data
        ("add rejected", production, (), None),
        ("fullprocess.py", production, (), 0),  # the new file is rejected
        ("deployment.py", production, ("--rollback",), 0),
        ("apicalls.py", production, (), 1),  # no API running
        ("remove test data", production, (), None),
        ("add new file", production, (), None),
        ("fullprocess.py", production, (), 1),  # fails: no test data to score with
        ("restore test data", production, (), None),
        ("fullprocess.py", production, (), -signal.SIGKILL),  # killed mid-run
    ]
    saved_test = production.test_data_csv.read_bytes()
    actions = {
        "add no drift": lambda: older_world_file(practice.input_folder / "dataset3.csv", 400, seed=7),
        "add rejected": lambda: (production.input_folder / "clients_q5.csv").write_text(HEADER + "x,1,2,3,7\n"),
        "remove test data": production.test_data_csv.unlink,
        # busy two-person clients that left: every model here predicts they stay (F1 0), so the run retrains
        "add new file": lambda: (production.input_folder / "clients_q6.csv").write_text(
            HEADER + "".join(f"y{i},{900 + i},{20000 + i},2,1\n" for i in range(30))
        ),
        "restore test data": lambda: production.test_data_csv.write_bytes(saved_test),
    }
    for step, config, args, expected in steps:
        if step in actions:
            actions[step]()
            continue
        sources = tree_state(*(project / name for name in DATA))
        faults = {"log": log} | ({"kill_at": 3} if expected == -signal.SIGKILL else {})
        done = run_with_faults(step, config, *args, **faults)
        assert done.returncode == expected, f"{step} {args}: {done.stderr[-2000:]}"
        assert tree_state(*(project / name for name in DATA)) == sources, step
    changes = log.read_text().splitlines()
    assert len(changes) > 100  # the log saw the runs' writes
    in_data = [line for line in changes if any(f"/project/{name}/" in line for name in DATA)]
    assert in_data == []
    assert [r["outcome"] for r in history.runs(production.history_db)] == [
        "deployed",  # deployment.py by hand records its row, as a rollback does
        "no drift",
        "deployed",
        "no new data",
        "new files rejected",
        "rolled back",
        "failed",
    ]
