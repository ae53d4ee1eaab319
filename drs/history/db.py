"""The run history's database file (runhistory.sqlite): its schema and migrations, written once, and the connections every store
of drs/history opens. A process checks a file's schema once (per path and file: a cached check, then cheap connections), a file
that does not exist yet is an empty answer for every reader (`reading`), and a reader that may not write reads an older file as it
is; the stores (runs, files, alerts, rankings, batches, audit) hold one table each (docs/architecture.md#module-map).
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
from collections.abc import Iterator

StrPath = str | os.PathLike[str]

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
# MIGRATIONS[v] brings a file of user_version v to v + 1; a new file runs SCHEMA, then all of them.
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
MIGRATIONS = (MIGRATION_1, MIGRATION_2, MIGRATION_3, MIGRATION_4, MIGRATION_5, MIGRATION_6, MIGRATION_7, MIGRATION_8)


# The version that brought each table a store reads only when it is there (a reader that may not write keeps an older file).
DRIFT_COLUMNS, ALERTS, RANKINGS, BATCHES, ARRIVALS, AUDIT, CALLS = 1, 2, 3, 4, 6, 7, 8


def statements(script: str) -> Iterator[str]:
    """The SQL statements of `script`, one at a time (a trigger's body has semicolons of its own)."""
    pending = ""
    for piece in script.split(";"):
        pending += piece + ";"
        if sqlite3.complete_statement(pending):
            if pending.strip(" \n;"):
                yield pending
            pending = ""


# Files known current in this process: absolute path -> the file as it was when checked (device, inode, size, ctime). Any
# change of the file (a write, another file at that path, even one given the same inode) checks it again: one PRAGMA.
_current: dict[str, tuple[int, int, int, int]] = {}


def _identity(path: StrPath) -> tuple[int, int, int, int] | None:
    try:
        found = os.stat(path)
    except OSError:
        return None
    return (found.st_dev, found.st_ino, found.st_size, found.st_ctime_ns)


def _raw(path: StrPath) -> sqlite3.Connection:
    conn = sqlite3.connect(path, timeout=30)
    conn.row_factory = sqlite3.Row
    return conn


def connect(path: StrPath) -> sqlite3.Connection:
    """A connection to the history at `path`, created or brought to SCHEMA_VERSION on its first use in this process.

    A reader that may not write (the page under another user, a read-only copy) reads an older file as it is."""
    key = os.path.abspath(path)
    if key in _current and _current[key] == _identity(path):
        return _raw(path)
    os.makedirs(os.path.dirname(key), exist_ok=True)
    conn = _raw(path)
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
    identity = _identity(path)
    if identity is not None:
        _current[key] = identity
    return conn


def schema_version(conn: sqlite3.Connection) -> int:
    return int(conn.execute("PRAGMA user_version").fetchone()[0])


def is_current(conn: sqlite3.Connection) -> bool:
    return schema_version(conn) >= SCHEMA_VERSION


@contextlib.contextmanager
def opened(path: StrPath) -> Iterator[sqlite3.Connection]:
    """A connection (`connect`), closed at the end."""
    conn = connect(path)
    try:
        yield conn
    finally:
        conn.close()


@contextlib.contextmanager
def writing(path: StrPath) -> Iterator[sqlite3.Connection]:
    """A connection in one transaction: committed at the end, rolled back on an error; the file is created when missing."""
    with opened(path) as conn, conn:
        yield conn


@contextlib.contextmanager
def reading(path: StrPath, since: int = 0) -> Iterator[sqlite3.Connection | None]:
    """A connection to read from, or None where the answer is empty: no history file yet (nothing is created), or a file
    older than schema version `since` (the table read came with it) that this reader may not bring up to date."""
    if not os.path.exists(path):
        yield None
        return
    with opened(path) as conn:
        yield conn if since == 0 or schema_version(conn) >= since else None
