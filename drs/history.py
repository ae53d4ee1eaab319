"""The run history: one SQLite file, appended to, never rewritten.

Every full-process run (including the ones that find nothing new or find
another run holding the lock) appends one row to `runs`. `seen_files`
remembers which source files were already judged against which deployment,
so that a file the drift check found harmless is not re-ingested on every
cron tick, and which files were rejected, so that a bad file is only tried
again when its content (sha256) changes.
"""
from __future__ import annotations

import json
import sqlite3
from contextlib import closing
from pathlib import Path
from typing import Any, Iterable

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


def connect(path: Path) -> sqlite3.Connection:
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(path, timeout=30)
    conn.row_factory = sqlite3.Row
    conn.executescript(SCHEMA)
    return conn


def append_run(
    path: Path,
    *,
    started_at: str,
    finished_at: str,
    kind: str,
    outcome: str,
    message: str,
    deployed_version: int | None,
    details: dict[str, Any],
) -> int:
    with closing(connect(path)) as conn, conn:
        cursor = conn.execute(
            "INSERT INTO runs (started_at, finished_at, kind, outcome, message, deployed_version, details)"
            " VALUES (?, ?, ?, ?, ?, ?, ?)",
            (started_at, finished_at, kind, outcome, message, deployed_version, json.dumps(details, default=str)),
        )
        return int(cursor.lastrowid)


def runs(path: Path, limit: int | None = None) -> list[dict[str, Any]]:
    """Runs, oldest first (the newest `limit` when given)."""
    if not Path(path).exists():
        return []
    with closing(connect(path)) as conn:
        query = "SELECT * FROM runs ORDER BY id DESC" + (f" LIMIT {int(limit)}" if limit else "")
        rows = [dict(r) for r in conn.execute(query)]
    for row in rows:
        row["details"] = json.loads(row["details"])
    return list(reversed(rows))


def has_run(path: Path, outcomes: Iterable[str], deployed_version: int) -> bool:
    """Whether a run with one of `outcomes` recorded `deployed_version` (one indexed-size query, no parsing)."""
    if not Path(path).exists():
        return False
    outcomes = list(outcomes)
    with closing(connect(path)) as conn:
        query = f"SELECT 1 FROM runs WHERE deployed_version = ? AND outcome IN ({', '.join('?' * len(outcomes))}) LIMIT 1"
        return conn.execute(query, (deployed_version, *outcomes)).fetchone() is not None


def record_seen(path: Path, entries: Iterable[dict[str, Any]]) -> None:
    with closing(connect(path)) as conn, conn:
        conn.executemany(
            "INSERT INTO seen_files (name, sha256, size, mtime_ns, verdict, judged_against, reason, run_id, seen_at)"
            " VALUES (:name, :sha256, :size, :mtime_ns, :verdict, :judged_against, :reason, :run_id, :seen_at)",
            list(entries),
        )


def seen_files(path: Path) -> list[dict[str, Any]]:
    if not Path(path).exists():
        return []
    with closing(connect(path)) as conn:
        return [dict(r) for r in conn.execute("SELECT * FROM seen_files ORDER BY rowid")]
