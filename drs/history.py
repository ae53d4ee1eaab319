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
import os
import sqlite3

from drs import layout

TYPE_CHECKING = False
if TYPE_CHECKING:  # plain os paths and no typing at run time: the cron job's empty check uses this module
    from typing import Any, Iterable

    StrPath = str | os.PathLike[str]

VERDICT_REJECTED = "rejected"
VERDICT_NO_DRIFT = "no drift"
VERDICT_DEPLOYED = "deployed"
VERDICT_NOT_PROMOTED = "not promoted"

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


def connect(path: StrPath) -> sqlite3.Connection:
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    conn = sqlite3.connect(path, timeout=30)
    conn.row_factory = sqlite3.Row
    conn.executescript(SCHEMA)
    return conn


class _Opened:
    """`with _Opened(path) as conn:` a connection that is always closed (contextlib.closing, whose import
    the cron job's empty check would pay for)."""

    def __init__(self, path: StrPath) -> None:
        self.conn = connect(path)

    def __enter__(self) -> sqlite3.Connection:
        return self.conn

    def __exit__(self, *exc: object) -> None:
        self.conn.close()


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
    with _Opened(path) as conn, conn:
        cursor = conn.execute(
            "INSERT INTO runs (started_at, finished_at, kind, outcome, message, deployed_version, details)"
            " VALUES (?, ?, ?, ?, ?, ?, ?)",
            (started_at, finished_at, kind, outcome, message, deployed_version, json.dumps(details, default=str)),
        )
        return int(cursor.lastrowid)


def runs(path: StrPath, limit: int | None = None) -> list[dict[str, Any]]:
    """Runs, oldest first (the newest `limit` when given)."""
    if not os.path.exists(path):
        return []
    with _Opened(path) as conn:
        query = "SELECT * FROM runs ORDER BY id DESC" + (f" LIMIT {int(limit)}" if limit else "")
        rows = [dict(r) for r in conn.execute(query)]
    for row in rows:
        row["details"] = json.loads(row["details"])
    return list(reversed(rows))


def has_run(path: StrPath, outcomes: Iterable[str], deployed_version: int) -> bool:
    """Whether a run with one of `outcomes` recorded `deployed_version` (one indexed-size query, no parsing)."""
    if not os.path.exists(path):
        return False
    outcomes = list(outcomes)
    with _Opened(path) as conn:
        query = f"SELECT 1 FROM runs WHERE deployed_version = ? AND outcome IN ({', '.join('?' * len(outcomes))}) LIMIT 1"
        return conn.execute(query, (deployed_version, *outcomes)).fetchone() is not None


def record_seen(path: StrPath, entries: Iterable[dict[str, Any]]) -> None:
    with _Opened(path) as conn, conn:
        conn.executemany(
            "INSERT INTO seen_files (name, sha256, size, mtime_ns, verdict, judged_against, reason, run_id, seen_at)"
            " VALUES (:name, :sha256, :size, :mtime_ns, :verdict, :judged_against, :reason, :run_id, :seen_at)",
            list(entries),
        )


def seen_files(path: StrPath) -> list[dict[str, Any]]:
    if not os.path.exists(path):
        return []
    with _Opened(path) as conn:
        return [dict(r) for r in conn.execute("SELECT * FROM seen_files ORDER BY rowid")]


def judged_files(entries: Iterable[dict[str, Any]], deployed_version: int | None, retry_not_promoted: bool = False) -> tuple[set[tuple[str, int, int]], set[tuple[str, str]]]:
    """The source files that need no new verdict: (name, size, mtime_ns) and (name, sha256) of each.

    A rejection holds until the content changes; any other verdict holds while the version it was judged
    against stays deployed (`retry_not_promoted`, for --force-deploy, drops the gate's refusals)."""
    keys: set[tuple[str, int, int]] = set()
    hashes: set[tuple[str, str]] = set()
    for entry in entries:
        still_valid = entry["verdict"] == VERDICT_REJECTED or (
            deployed_version is not None and entry["judged_against"] == deployed_version
            and not (retry_not_promoted and entry["verdict"] == VERDICT_NOT_PROMOTED)
        )
        if still_valid:
            keys.add((entry["name"], entry["size"], entry["mtime_ns"]))
            hashes.add((entry["name"], entry["sha256"]))
    return keys, hashes


def needs_verdict(path: str, folder: str, keys: set[tuple[str, int, int]], hashes: set[tuple[str, str]]) -> bool:
    """Whether the source entry at `path` still needs a verdict, given `judged_files`' sets; hashes only touched files.

    An entry refused unread (a link out of the folder, a directory, a pipe) was judged if it was refused before:
    there is nothing to compare, so it is not retried. A file that vanishes meanwhile needs one (ingestion names it)."""
    name = os.path.basename(path)
    if layout.source_refusal(path, folder) is not None:
        return (name, "") not in hashes
    try:
        stat = os.stat(path)
        if (name, stat.st_size, stat.st_mtime_ns) in keys:
            return False
        return (name, layout.sha256_file(path)) not in hashes  # touched but unchanged: judged
    except OSError:
        return True
