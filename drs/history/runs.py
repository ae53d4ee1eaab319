"""The run history: one SQLite file, appended to, never rewritten (but for the rankings, pruned to the newest `keep_rankings`).

Every full-process run (including the ones that find nothing new or find
another run holding the lock) appends one row to `runs`. Cron adds about
52,560 rows a year, so every query here reads only what it needs: the
columns it filters on are indexed, and a row's `details` JSON is parsed only
for the rows returned. `seen_files` remembers which source files were
already judged against which deployment, so that a file the drift check
found harmless is not re-ingested on every cron tick, and which files were
rejected, so that a bad file is only tried again when its content changes.
`arrivals` remembers when the system first saw each source file: the order
ingestion takes the files in (drs/data/sources.py `arrival_plan`).
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, TypeVar

from drs.core.layout import utc_now

T = TypeVar("T")

StrPath = str | os.PathLike[str]


class Outcome(StrEnum):
    """What one run did: the `outcome` of its row."""

    NO_NEW_DATA = "no new data"
    DEPLOYED = "deployed"
    COMPLETED_DEPLOYMENT = "completed deployment"
    NO_DRIFT = "no drift"
    NOT_PROMOTED = "not promoted"
    NEW_FILES_REJECTED = "new files rejected"
    FAILED = "failed"
    SKIPPED_LOCKED = "skipped: locked"
    ROLLED_BACK = "rolled back"


FINISHED_DEPLOYMENT = (Outcome.DEPLOYED, Outcome.COMPLETED_DEPLOYMENT)


class Verdict(StrEnum):
    """What was decided about one source file: the `verdict` of its `seen_files` row."""

    REJECTED = "rejected"
    NO_DRIFT = "no drift"
    DEPLOYED = "deployed"
    NOT_PROMOTED = "not promoted"
    ROLLED_BACK = "rolled back"


@dataclass
class RunReport:
    """What one full-process run did; becomes one row of `runs`."""

    started_at: str = field(default_factory=utc_now)
    clock: float = field(default_factory=time.time)  # the run's `now` for every age it measures (settling files)
    outcome: Outcome = Outcome.FAILED
    message: str = ""
    deployed_version: int | None = None
    details: dict[str, Any] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)

    def timed(self, name: str, work: Callable[[], T]) -> T:
        started = time.perf_counter()
        try:
            return work()
        finally:
            self.timings[name] = round(time.perf_counter() - started, 4)

    def finish(self, outcome: Outcome, message: str, deployed_version: int | None) -> None:
        self.outcome, self.message, self.deployed_version = outcome, message, deployed_version

    def as_run(self) -> dict[str, Any]:
        """The run as `runs` returns it (for a report written before the run is recorded)."""
        return {
            "started_at": self.started_at,
            "outcome": self.outcome,
            "message": self.message,
            "details": {**self.details, "timings": self.timings},
        }


SCHEMA_VERSION = 8
SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    started_at TEXT NOT NULL,
    finished_at TEXT NOT NULL,
    kind TEXT NOT NULL,
    outcome TEXT NOT NULL,
    message TEXT NOT NULL,
    deployed_version INTEGER,
    details TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS seen_files (
    name TEXT NOT NULL,
    sha256 TEXT NOT NULL,
    size INTEGER NOT NULL,
    mtime_ns INTEGER NOT NULL,
    verdict TEXT NOT NULL,
    judged_against INTEGER,
    reason TEXT,
    run_id INTEGER,
    seen_at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS seen_files_name ON seen_files(name);
"""
# Version 1: the drift check's model and F1 in columns of their own, and indexes for every filter.
MIGRATION_1 = """
ALTER TABLE runs ADD COLUMN drift_model_sha256 TEXT;
ALTER TABLE runs ADD COLUMN new_data_f1 REAL;
UPDATE runs SET
    drift_model_sha256 = json_extract(details, '$.drift.model_sha256'),
    new_data_f1 = json_extract(details, '$.drift.new_data_f1')
    WHERE json_valid(details) AND json_type(details, '$.drift') = 'object';
CREATE INDEX IF NOT EXISTS runs_drift ON runs(drift_model_sha256) WHERE new_data_f1 IS NOT NULL;
CREATE INDEX IF NOT EXISTS runs_checked ON runs(id) WHERE new_data_f1 IS NOT NULL;
CREATE INDEX IF NOT EXISTS runs_outcome ON runs(outcome, deployed_version);
"""
# Version 2: the alerts sent (drs/alerts/notify.py), one row per message; what the next run needs to avoid a storm:
# the newest run when it was sent (`after_run`), whether it told of a failure, and which quiet spell a stale alert was about.
MIGRATION_2 = """
CREATE TABLE IF NOT EXISTS alerts (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    at TEXT NOT NULL,
    after_run INTEGER NOT NULL,
    kind TEXT NOT NULL,
    events TEXT NOT NULL,
    severity TEXT NOT NULL,
    title TEXT NOT NULL,
    failure INTEGER NOT NULL,
    stale_since TEXT,
    sent INTEGER NOT NULL,
    failed INTEGER NOT NULL
);
"""
# Version 3: the rankings (drs/reports/rankings.py), one row per ranked list: who ranked it, with which model, of which data;
# `rows` is its clients in rank order, compressed (drs/movement.pack: about 100 kB for 10,000 clients); `digest` tells equal lists apart.
MIGRATION_3 = """
CREATE TABLE IF NOT EXISTS rankings (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    at TEXT NOT NULL,
    kind TEXT NOT NULL,
    run_started_at TEXT,
    model_version TEXT NOT NULL,
    source TEXT NOT NULL,
    clients INTEGER NOT NULL,
    digest TEXT NOT NULL,
    rows BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS rankings_source ON rankings(source, id);
"""
# Version 4: the batches read from the source database (drs/data/dbsource.py), one row per batch: `pending` before its file
# is renamed into the input folder, `landed` after; `high` (JSON) of the newest landed batch is the watermark.
# `source` tells databases apart by a digest of their redacted URL and watermark column (no password is ever stored).
MIGRATION_4 = """
CREATE TABLE IF NOT EXISTS source_batches (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    at TEXT NOT NULL,
    source TEXT NOT NULL,
    name TEXT NOT NULL,
    sha256 TEXT NOT NULL,
    rows INTEGER NOT NULL,
    low TEXT NOT NULL,
    high TEXT NOT NULL,
    state TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS source_batches_source ON source_batches(source, state, id);
"""
# Version 5: the runs that judged new rows against a model, the F1 measured or not (too few exits: drs/drift.unmeasurable),
# newest first by an index, for /metrics and the reports' latest drift check.
MIGRATION_5 = """
CREATE INDEX IF NOT EXISTS runs_judged ON runs(id) WHERE drift_model_sha256 IS NOT NULL OR new_data_f1 IS NOT NULL;
"""
# Version 6: when the system first saw each source file (drs/data/sources.py's arrival order), one row per file of each input
# folder: `seq` orders them (a file whose content changed gets a new one), `first_seen_at` is when its name was first seen,
# `arrived_at` when its current content was; `how` says why it has its place.
MIGRATION_6 = """
CREATE TABLE IF NOT EXISTS arrivals (
    folder TEXT NOT NULL,
    name TEXT NOT NULL,
    seq INTEGER NOT NULL,
    sha256 TEXT NOT NULL,
    size INTEGER NOT NULL,
    mtime_ns INTEGER NOT NULL,
    first_seen_at TEXT NOT NULL,
    arrived_at TEXT NOT NULL,
    how TEXT NOT NULL,
    PRIMARY KEY (folder, name)
);
"""
# Version 7: the audit log (drs/history/audit.py): who did what, when, from where. Append-only: the triggers refuse every
# UPDATE and DELETE, so no code path (and no sqlite3 shell, short of dropping the triggers) rewrites what was recorded.
MIGRATION_7 = """
CREATE TABLE IF NOT EXISTS audit (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    at TEXT NOT NULL,
    actor TEXT NOT NULL,
    action TEXT NOT NULL,
    target TEXT NOT NULL,
    origin TEXT NOT NULL,
    details TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS audit_at ON audit(at);
CREATE TRIGGER IF NOT EXISTS audit_no_update BEFORE UPDATE ON audit BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
CREATE TRIGGER IF NOT EXISTS audit_no_delete BEFORE DELETE ON audit BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
"""
# Version 8: the client managers' calls and the holdout group (drs/history/calls.py): one row per recorded call (who
# recorded it, when, the outcome), one row per client first held out of a queue as a control; `after_file`: the newest
# ingested file then, so that only a label of a later file is the call's outcome.
MIGRATION_8 = """
CREATE TABLE IF NOT EXISTS calls (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    at TEXT NOT NULL,
    corporation TEXT NOT NULL,
    outcome TEXT NOT NULL,
    note TEXT NOT NULL,
    recorded_by TEXT NOT NULL,
    origin TEXT NOT NULL,
    after_file TEXT
);
CREATE INDEX IF NOT EXISTS calls_corporation ON calls(corporation, at);
CREATE INDEX IF NOT EXISTS calls_at ON calls(at);
CREATE TABLE IF NOT EXISTS call_holdouts (
    corporation TEXT PRIMARY KEY,
    at TEXT NOT NULL,
    seed INTEGER NOT NULL,
    fraction REAL NOT NULL,
    after_file TEXT
);
"""
# MIGRATIONS[v] brings a file of user_version v to v + 1; a new file runs SCHEMA, then all of them.
MIGRATIONS = (MIGRATION_1, MIGRATION_2, MIGRATION_3, MIGRATION_4, MIGRATION_5, MIGRATION_6, MIGRATION_7, MIGRATION_8)


def statements(script: str) -> Iterator[str]:
    """The SQL statements of `script`, one at a time (a trigger's body has semicolons of its own)."""
    pending = ""
    for piece in script.split(";"):
        pending += piece + ";"
        if sqlite3.complete_statement(pending):
            if pending.strip(" \n;"):
                yield pending
            pending = ""


def connect(path: StrPath) -> sqlite3.Connection:
    """A connection to the history at `path`, created or brought to SCHEMA_VERSION on first use.

    A reader that may not write (the page under another user, a read-only copy) reads an older file as it is."""
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    conn = sqlite3.connect(path, timeout=30)
    conn.row_factory = sqlite3.Row
    if not is_current(conn):
        try:
            with conn:
                conn.execute("BEGIN IMMEDIATE")
                if not is_current(conn):  # another process may have just done it
                    steps = [SCHEMA] if schema_version(conn) == 0 else []
                    for statement in statements(";".join(steps + list(MIGRATIONS[schema_version(conn) :]))):
                        conn.execute(statement)
                    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        except sqlite3.OperationalError:
            if not os.access(path, os.W_OK):
                return conn
            raise
    return conn


def schema_version(conn: sqlite3.Connection) -> int:
    return int(conn.execute("PRAGMA user_version").fetchone()[0])


def is_current(conn: sqlite3.Connection) -> bool:
    return schema_version(conn) >= SCHEMA_VERSION


@contextlib.contextmanager
def opened(path: StrPath) -> Iterator[sqlite3.Connection]:
    conn = connect(path)
    try:
        yield conn
    finally:
        conn.close()


def append_run(
    path: StrPath,
    *,
    started_at: str,
    finished_at: str,
    kind: str,
    outcome: str,
    message: str,
    deployed_version: int | None,
    details: dict[str, Any],
) -> int:
    measured = details.get("drift")
    drift = measured if isinstance(measured, dict) else {}
    with opened(path) as conn, conn:
        cursor = conn.execute(
            "INSERT INTO runs (started_at, finished_at, kind, outcome, message, deployed_version, details,"
            " drift_model_sha256, new_data_f1) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                started_at,
                finished_at,
                kind,
                str(outcome),
                message,
                deployed_version,
                json.dumps(details, default=str),
                drift.get("model_sha256"),
                drift.get("new_data_f1"),
            ),
        )
        return int(cursor.lastrowid or 0)


def record_run(path: StrPath, report: RunReport, kind: str = "fullprocess") -> int:
    return append_run(
        path,
        started_at=report.started_at,
        finished_at=utc_now(),
        kind=kind,
        outcome=report.outcome,
        message=report.message,
        deployed_version=report.deployed_version,
        details={**report.details, "timings": report.timings},
    )


def _drift_columns(conn: sqlite3.Connection) -> tuple[str, str]:
    """(model checksum, F1) of a run's drift check: the indexed columns, or the JSON itself in an older
    file this process may not bring up to date."""
    if schema_version(conn) >= 1:
        return "drift_model_sha256", "new_data_f1"
    from_json = "CASE WHEN json_valid(details) THEN json_extract(details, '$.drift.{}') END"
    return from_json.format("model_sha256"), from_json.format("new_data_f1")


def _rows(path: StrPath, where: str, params: tuple[Any, ...], limit: int | None) -> list[dict[str, Any]]:
    """Matching runs, oldest first (the newest `limit`), details parsed; `where` may name {sha} and {f1} (_drift_columns)."""
    if not os.path.exists(path):
        return []
    with opened(path) as conn:
        sha, f1 = _drift_columns(conn)
        query = "SELECT id, started_at, finished_at, kind, outcome, message, deployed_version, details FROM runs"
        query += f" {where.format(sha=sha, f1=f1)} ORDER BY id DESC" + (" LIMIT ?" if limit else "")
        rows = [dict(r) for r in conn.execute(query, (*params, limit) if limit else params)]
    for row in rows:
        row["details"] = json.loads(row["details"])
    return rows[::-1]


def runs(path: StrPath, limit: int | None = None) -> list[dict[str, Any]]:
    """Runs, oldest first (the newest `limit` when given)."""
    return _rows(path, "", (), limit)


def drift_checked_runs(path: StrPath, limit: int | None = None) -> list[dict[str, Any]]:
    """The runs that judged new rows against the deployed model, oldest first (the newest `limit`): their
    score test measured its F1 or said why it could not (`details["drift"]["measured"]` false, F1 NULL)."""
    return _rows(path, "WHERE {sha} IS NOT NULL OR {f1} IS NOT NULL", (), limit)  # the terms of runs_judged, in its order


def latest_run(path: StrPath, outcomes: Iterable[str] | None = None) -> dict[str, Any] | None:
    """The newest run (with one of `outcomes`, when given), or None."""
    chosen = [str(o) for o in outcomes] if outcomes is not None else []
    where = f"WHERE outcome IN ({', '.join('?' * len(chosen))})" if chosen else ""
    found = _rows(path, where, tuple(chosen), 1)
    return found[0] if found else None


def lineage_f1(path: StrPath, model_sha256: str | None) -> list[float]:
    """Every F1 on new data that full-process runs measured for the model with this checksum, oldest first."""
    if model_sha256 is None or not os.path.exists(path):
        return []
    with opened(path) as conn:
        sha, f1 = _drift_columns(conn)
        query = f"SELECT {f1} FROM runs WHERE {sha} = ? AND {f1} IS NOT NULL AND kind = 'fullprocess' ORDER BY id"
        return [float(r[0]) for r in conn.execute(query, (model_sha256,))]


def has_run(path: StrPath, outcomes: Iterable[str], deployed_version: int) -> bool:
    """Whether a run with one of `outcomes` recorded `deployed_version` (one indexed query, no parsing)."""
    if not os.path.exists(path):
        return False
    chosen = [str(o) for o in outcomes]
    with opened(path) as conn:
        query = f"SELECT 1 FROM runs WHERE outcome IN ({', '.join('?' * len(chosen))}) AND deployed_version = ? LIMIT 1"
        return conn.execute(query, (*chosen, deployed_version)).fetchone() is not None


def record_seen(path: StrPath, entries: Iterable[dict[str, Any]]) -> None:
    with opened(path) as conn, conn:
        conn.executemany(
            "INSERT INTO seen_files (name, sha256, size, mtime_ns, verdict, judged_against, reason, run_id, seen_at)"
            " VALUES (:name, :sha256, :size, :mtime_ns, :verdict, :judged_against, :reason, :run_id, :seen_at)",
            [{**e, "verdict": str(e["verdict"])} for e in entries],
        )


def seen_files(path: StrPath) -> list[dict[str, Any]]:
    if not os.path.exists(path):
        return []
    with opened(path) as conn:
        return [dict(r) for r in conn.execute("SELECT * FROM seen_files ORDER BY rowid")]


def judged_files(
    entries: Iterable[dict[str, Any]], deployed_version: int | None, retry_not_promoted: bool = False
) -> tuple[set[tuple[str, int, int]], set[tuple[str, str]]]:
    """The source files that need no new verdict: (name, size, mtime_ns) and (name, sha256) of each.

    A rejection holds until the content changes; any other verdict holds while the version it was judged
    against stays deployed (`retry_not_promoted`, for --force-deploy, drops the gate's refusals)."""
    keys: set[tuple[str, int, int]] = set()
    hashes: set[tuple[str, str]] = set()
    for entry in entries:
        still_valid = entry["verdict"] == Verdict.REJECTED or (
            deployed_version is not None
            and entry["judged_against"] == deployed_version
            and not (retry_not_promoted and entry["verdict"] == Verdict.NOT_PROMOTED)
        )
        if still_valid:
            keys.add((entry["name"], entry["size"], entry["mtime_ns"]))
            hashes.add((entry["name"], entry["sha256"]))
    return keys, hashes


def drift_decisions(runs: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """Of `runs`, those that made a score-drift decision, with their data drift and promotion gate where recorded; pure."""
    found = []
    for run in runs:
        details = run.get("details") or {}
        check = details.get("drift")
        if isinstance(check, dict):
            found.append(
                {
                    "started_at": run.get("started_at"),
                    "new_files": details.get("new_files") or [],
                    "check": check,
                    "data_drift": details.get("data_drift"),
                    "gate": details.get("gate"),
                }
            )
    return found


# ---- what the alerts need (drs/alerts/notify.py): a few indexed or newest-first queries --------------

FINISHED_RUN = "kind = 'fullprocess' AND outcome != 'skipped: locked'"


def last_finished_run(path: StrPath) -> dict[str, Any] | None:
    """The newest full-process run that got the lock (failed ones included), without its details; None before any."""
    if not os.path.exists(path):
        return None
    with opened(path) as conn:
        row = conn.execute(
            f"SELECT id, started_at, finished_at, outcome, message, deployed_version FROM runs WHERE {FINISHED_RUN} ORDER BY id DESC LIMIT 1"
        ).fetchone()
    return dict(row) if row else None


def alert_memory(path: StrPath) -> dict[str, Any]:
    """What the last runs and alerts were, for the next alert decision (drs/alerts.AlertState takes these keys).

    The failure streak is read newest first up to the last run that did not fail: a short scan even after days of failures."""
    memory: dict[str, Any] = {
        "newest_run": 0,
        "last_finished": None,
        "failures_in_a_row": 0,
        "failing_since": None,
        "last_success_run": 0,
        "failure_alert_at": None,
        "stale_alert_since": None,
    }
    if not os.path.exists(path):
        return memory
    with opened(path) as conn:
        memory["newest_run"] = int(conn.execute("SELECT COALESCE(MAX(id), 0) FROM runs").fetchone()[0])
        last = conn.execute(
            f"SELECT id, started_at, finished_at, outcome, message FROM runs WHERE {FINISHED_RUN} ORDER BY id DESC LIMIT 1"
        ).fetchone()
        memory["last_finished"] = dict(last) if last else None
        found = conn.execute(f"SELECT id FROM runs WHERE {FINISHED_RUN} AND outcome != 'failed' ORDER BY id DESC LIMIT 1").fetchone()
        good = memory["last_success_run"] = int(found[0]) if found else 0
        streak = conn.execute(
            f"SELECT COUNT(*), MIN(started_at) FROM runs WHERE {FINISHED_RUN} AND outcome = 'failed' AND id > ?", (good,)
        ).fetchone()
        memory["failures_in_a_row"], memory["failing_since"] = int(streak[0]), streak[1]
        if schema_version(conn) >= 2:
            alert = conn.execute(
                "SELECT at FROM alerts WHERE failure = 1 AND sent > 0 AND after_run >= ? ORDER BY id DESC LIMIT 1", (good,)
            ).fetchone()
            memory["failure_alert_at"] = alert[0] if alert else None
            stale = conn.execute(
                "SELECT stale_since FROM alerts WHERE stale_since IS NOT NULL AND sent > 0 ORDER BY id DESC LIMIT 1"
            ).fetchone()
            memory["stale_alert_since"] = stale[0] if stale else None
    return memory


def record_alert(
    path: StrPath,
    *,
    at: str,
    after_run: int,
    kind: str,
    events: list[str],
    severity: str,
    title: str,
    failure: bool,
    stale_since: str | None,
    sent: int,
    failed: int,
) -> None:
    with opened(path) as conn, conn:
        conn.execute(
            "INSERT INTO alerts (at, after_run, kind, events, severity, title, failure, stale_since, sent, failed)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (at, after_run, kind, json.dumps(events), severity, title, int(failure), stale_since, sent, failed),
        )


def alerts(path: StrPath) -> list[dict[str, Any]]:
    """Every alert sent, oldest first (for tests and inspection; the table holds one row per message)."""
    if not os.path.exists(path):
        return []
    with opened(path) as conn:
        if schema_version(conn) < 2:
            return []
        rows = [dict(r) for r in conn.execute("SELECT * FROM alerts ORDER BY id")]
    for row in rows:
        row["events"] = json.loads(row["events"])
    return rows


def outcome_counts(path: StrPath) -> dict[str, int]:
    """How many runs ended with each outcome (every kind; read from the outcome index alone)."""
    if not os.path.exists(path):
        return {}
    with opened(path) as conn:
        return {str(r[0]): int(r[1]) for r in conn.execute("SELECT outcome, COUNT(*) FROM runs GROUP BY outcome")}


# ---- the rankings (drs/reports/rankings.py): the newest `keep` ranked lists, each one row -----------------

RANKING_FIELDS = "id, at, kind, run_started_at, model_version, source, clients, digest"


def record_ranking(
    path: StrPath,
    *,
    at: str,
    kind: str,
    run_started_at: str | None,
    model_version: str,
    source: str,
    clients: int,
    digest: str,
    rows: bytes,
    keep: int,
) -> int:
    """Append one ranking and delete all but the newest `keep` (of every source), in one transaction; its id."""
    with opened(path) as conn, conn:
        cursor = conn.execute(
            "INSERT INTO rankings (at, kind, run_started_at, model_version, source, clients, digest, rows) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (at, kind, run_started_at, model_version, source, clients, digest, rows),
        )
        conn.execute("DELETE FROM rankings WHERE id NOT IN (SELECT id FROM rankings ORDER BY id DESC LIMIT ?)", (keep,))
        return int(cursor.lastrowid or 0)


def rankings(path: StrPath) -> list[dict[str, Any]]:
    """Every kept ranking without its rows, oldest first (none in a file older than version 3)."""
    if not os.path.exists(path):
        return []
    with opened(path) as conn:
        if schema_version(conn) < 3:
            return []
        return [dict(r) for r in conn.execute(f"SELECT {RANKING_FIELDS} FROM rankings ORDER BY id")]


def previous_ranking(path: StrPath, source: str, digest: str, before: int | None = None) -> dict[str, Any] | None:
    """The newest kept ranking of `source` (older than id `before`, when given) whose list differs from the one with
    `digest`, rows included; None when there is none. One indexed query, one row read."""
    if not os.path.exists(path):
        return None
    with opened(path) as conn:
        if schema_version(conn) < 3:
            return None
        row = conn.execute(
            f"SELECT {RANKING_FIELDS}, rows FROM rankings WHERE source = ? AND digest != ? AND id < ? ORDER BY id DESC LIMIT 1",
            (source, digest, before if before is not None else 2**62),
        ).fetchone()
    return dict(row) if row else None


def newest_ranking(path: StrPath, source: str) -> dict[str, Any] | None:
    """The newest kept ranking of `source`, without its rows; None when there is none."""
    if not os.path.exists(path):
        return None
    with opened(path) as conn:
        if schema_version(conn) < 3:
            return None
        row = conn.execute(f"SELECT {RANKING_FIELDS} FROM rankings WHERE source = ? ORDER BY id DESC LIMIT 1", (source,)).fetchone()
    return dict(row) if row else None


BATCH_PENDING = "pending"
BATCH_LANDED = "landed"


def add_batch(path: StrPath, *, source: str, name: str, sha256: str, rows: int, low: str, high: str) -> int:
    """Record a database batch about to be renamed into the input folder (state pending); returns its id."""
    with opened(path) as conn, conn:
        cursor = conn.execute(
            "INSERT INTO source_batches (at, source, name, sha256, rows, low, high, state) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (utc_now(), source, name, sha256, rows, low, high, BATCH_PENDING),
        )
        return int(cursor.lastrowid or 0)


def settle_batch(path: StrPath, batch_id: int, landed: bool) -> None:
    """A pending batch landed (its file is in the input folder: the watermark moves) or never did (forgotten: fetched again)."""
    with opened(path) as conn, conn:
        if landed:
            conn.execute("UPDATE source_batches SET state = ? WHERE id = ?", (BATCH_LANDED, batch_id))
        else:
            conn.execute("DELETE FROM source_batches WHERE id = ? AND state = ?", (batch_id, BATCH_PENDING))


def source_batches(path: StrPath, source: str, state: str, limit: int | None = None) -> list[dict[str, Any]]:
    """The batches of `source` in `state`, newest first."""
    if not os.path.exists(path):
        return []
    with opened(path) as conn:
        query = "SELECT * FROM source_batches WHERE source = ? AND state = ? ORDER BY id DESC" + (f" LIMIT {int(limit)}" if limit else "")
        return [dict(r) for r in conn.execute(query, (source, state))]


def self_written(path: StrPath) -> dict[str, str]:
    """Name -> sha256 of every batch file the system wrote itself (complete when renamed: no settling needed)."""
    if not os.path.exists(path):
        return {}
    with opened(path) as conn:
        return {r["name"]: r["sha256"] for r in conn.execute("SELECT name, sha256 FROM source_batches ORDER BY id")}


ARRIVAL_COLUMNS = ("name", "seq", "sha256", "size", "mtime_ns", "first_seen_at", "arrived_at", "how")


def arrivals(path: StrPath, folder: str) -> list[dict[str, Any]]:
    """The recorded arrivals of the files of input folder `folder`, in arrival order (none before anything was recorded)."""
    if not os.path.exists(path):
        return []
    with opened(path) as conn:
        if not is_current(conn):  # a history this reader may not bring up to date has none
            return []
        query = f"SELECT {', '.join(ARRIVAL_COLUMNS)} FROM arrivals WHERE folder = ? ORDER BY seq"
        return [dict(r) for r in conn.execute(query, (folder,))]


def record_arrivals(path: StrPath, folder: str, rows: Iterable[dict[str, Any]]) -> None:
    """Write these arrivals of `folder`'s files (each replaces the row of its name); nothing is opened when there are none."""
    entries = [{**{k: r[k] for k in ARRIVAL_COLUMNS}, "folder": folder} for r in rows]
    if not entries:
        return
    with opened(path) as conn, conn:
        conn.executemany(
            f"INSERT OR REPLACE INTO arrivals (folder, {', '.join(ARRIVAL_COLUMNS)})"
            f" VALUES (:folder, {', '.join(':' + k for k in ARRIVAL_COLUMNS)})",
            entries,
        )
