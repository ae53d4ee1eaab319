"""The run history: old files are brought to the current schema once, and each query reads only what it needs."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from drs.history import db as rundb
from drs.history import runs as history
from drs.history.record import Outcome
from drs.production import versions as production

OLD_SCHEMA = """
CREATE TABLE runs (id INTEGER PRIMARY KEY AUTOINCREMENT, started_at TEXT NOT NULL, finished_at TEXT NOT NULL, kind TEXT NOT NULL,
    outcome TEXT NOT NULL, message TEXT NOT NULL, deployed_version INTEGER, details TEXT NOT NULL);
CREATE TABLE seen_files (name TEXT NOT NULL, sha256 TEXT NOT NULL, size INTEGER NOT NULL, mtime_ns INTEGER NOT NULL,
    verdict TEXT NOT NULL, judged_against INTEGER, reason TEXT, run_id INTEGER, seen_at TEXT NOT NULL);
"""


def old_history(path: Path) -> None:
    """A history as the code before the indexed columns wrote it: three ticks, two of them with a drift check."""
    with sqlite3.connect(path) as conn:
        conn.executescript(OLD_SCHEMA)
        for i, drift in enumerate([None, {"model_sha256": "abc", "new_data_f1": 0.71}, {"model_sha256": "def", "new_data_f1": 0.65}]):
            details = {"new_files": [], **({"drift": drift} if drift else {})}
            conn.execute(
                "INSERT INTO runs (started_at, finished_at, kind, outcome, message, deployed_version, details) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (
                    f"2026-01-0{i + 1}T00:00:00+00:00",
                    "x",
                    "fullprocess",
                    "no drift" if drift else "no new data",
                    "m",
                    1,
                    json.dumps(details),
                ),
            )


def test_an_old_history_gets_the_indexed_columns_once(tmp_path: Path) -> None:
    db = tmp_path / "runhistory.sqlite"
    old_history(db)
    assert history.lineage_f1(db, "abc") == [0.71]
    assert [r["details"]["drift"]["new_data_f1"] for r in history.drift_checked_runs(db)] == [0.71, 0.65]
    history.append_run(
        db,
        started_at="s",
        finished_at="f",
        kind="fullprocess",
        outcome=Outcome.NO_DRIFT,
        message="m",
        deployed_version=1,
        details={"drift": {"model_sha256": "abc", "new_data_f1": 0.7}},
    )
    assert history.lineage_f1(db, "abc") == [0.71, 0.7]
    with sqlite3.connect(db) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == rundb.SCHEMA_VERSION
        columns = [row[1] for row in conn.execute("PRAGMA table_info(runs)")]
    assert columns.count("new_data_f1") == 1 and columns.count("drift_model_sha256") == 1
    assert [r["outcome"] for r in history.runs(db)] == ["no new data", "no drift", "no drift", "no drift"]


def test_queries_use_the_indexes_not_a_scan(tmp_path: Path) -> None:
    db = tmp_path / "runhistory.sqlite"
    history.append_run(
        db, started_at="s", finished_at="f", kind="fullprocess", outcome=Outcome.DEPLOYED, message="m", deployed_version=1, details={}
    )
    with rundb.opened(db) as conn:
        plans = {
            "lineage": "SELECT new_data_f1 FROM runs WHERE drift_model_sha256 = 'x' AND new_data_f1 IS NOT NULL AND kind = 'fullprocess' ORDER BY id",
            "drift checks": "SELECT * FROM runs WHERE drift_model_sha256 IS NOT NULL OR new_data_f1 IS NOT NULL ORDER BY id DESC",
            "finished deployment": "SELECT 1 FROM runs WHERE outcome IN ('deployed') AND deployed_version = 1 LIMIT 1",
        }
        for what, query in plans.items():
            plan = " ".join(str(row[-1]) for row in conn.execute("EXPLAIN QUERY PLAN " + query))
            assert "USING INDEX" in plan or "USING COVERING INDEX" in plan, f"{what}: {plan}"


def test_the_latest_run_of_an_outcome(tmp_path: Path) -> None:
    db = tmp_path / "runhistory.sqlite"
    assert history.latest_run(db) is None
    for outcome, version in ((Outcome.DEPLOYED, 1), (Outcome.NO_NEW_DATA, 1), (Outcome.DEPLOYED, 2), (Outcome.NO_NEW_DATA, 2)):
        history.append_run(
            db, started_at="s", finished_at="f", kind="fullprocess", outcome=outcome, message="m", deployed_version=version, details={}
        )
    assert history.latest_run(db, [Outcome.DEPLOYED])["deployed_version"] == 2
    assert history.latest_run(db)["outcome"] == "no new data"


def test_kept_candidates_are_pruned_to_the_newest(tmp_path: Path) -> None:
    root = tmp_path / "production" / "candidates"
    names = [f"2026120{i}T000000Z-0000000{i}" for i in range(1, 6)]
    for name in names:
        (root / name).mkdir(parents=True)
    (root / ".tmp-half").mkdir()
    assert production.prune_candidates(tmp_path / "production", 2) == names[:3]
    assert sorted(p.name for p in root.iterdir()) == [".tmp-half", *names[3:]]


def test_a_reader_that_may_not_write_reads_an_old_history_as_it_is(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The page under another user, or a read-only copy: SQLite opened read-only (file modes do not stop root)."""
    db = tmp_path / "runhistory.sqlite"
    old_history(db)
    connect = sqlite3.connect
    monkeypatch.setattr(rundb.sqlite3, "connect", lambda path, **kw: connect(f"file:{path}?mode=ro", uri=True, **kw))
    monkeypatch.setattr(rundb.os, "access", lambda path, mode: False)
    assert [r["outcome"] for r in history.runs(db)] == ["no new data", "no drift", "no drift"]
    assert history.lineage_f1(db, "def") == [0.65]
    assert [r["details"]["drift"]["model_sha256"] for r in history.drift_checked_runs(db, limit=1)] == ["def"]
    monkeypatch.undo()
    with sqlite3.connect(db) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == 0


def test_a_row_with_unreadable_details_does_not_block_the_upgrade(tmp_path: Path) -> None:
    db = tmp_path / "runhistory.sqlite"
    old_history(db)
    with sqlite3.connect(db) as conn:
        conn.execute(
            "INSERT INTO runs (started_at, finished_at, kind, outcome, message, deployed_version, details) VALUES ('s', 'f', 'fullprocess', 'no drift', 'm', 1, ?)",
            (json.dumps({"drift": {"model_sha256": "abc", "new_data_f1": 0.5}, "data_drift": {"psi": float("nan")}}),),
        )
    assert history.lineage_f1(db, "abc") == [0.71]  # the NaN row's details are not JSON SQLite reads; it is left out, not fatal
    assert len(history.runs(db)) == 4


def test_a_history_replaced_at_the_same_path_is_brought_up_to_date_again(tmp_path: Path) -> None:
    """The schema check is remembered per file, not per path: an older file put in its place (removed and written again,
    a restored copy; the new file may even get the same inode) is migrated by the next connection of this process."""
    db = tmp_path / "runhistory.sqlite"
    history.append_run(
        db, started_at="s", finished_at="f", kind="fullprocess", outcome=Outcome.NO_NEW_DATA, message="m", deployed_version=1, details={}
    )
    assert len(history.runs(db)) == 1
    db.unlink()
    old_history(db)
    history.append_run(
        db, started_at="s", finished_at="f", kind="fullprocess", outcome=Outcome.NO_DRIFT, message="m", deployed_version=1, details={}
    )
    assert [r["outcome"] for r in history.runs(db)] == ["no new data", "no drift", "no drift", "no drift"]
