"""The batches read from the source database (drs/data/dbsource.py), one `source_batches` row per batch: `pending` before
its file is renamed into the input folder, `landed` after; `high` of the newest landed batch is the watermark, and the
batch files the system wrote itself need no settling (`self_written`). See docs/database.md#exactly-once.
"""

from __future__ import annotations

import sqlite3
from typing import TypedDict

from drs.core.layout import utc_now
from drs.history import db
from drs.history.db import StrPath

BATCH_PENDING = "pending"
BATCH_LANDED = "landed"


class Batch(TypedDict):
    """One `source_batches` row."""

    id: int
    at: str
    source: str  # a digest of the database's redacted URL and watermark column (no password is ever stored)
    name: str
    sha256: str
    rows: int
    low: str
    high: str  # JSON: the watermark state after this batch (drs/data/dbsource.py `encode_mark`)
    state: str  # BATCH_PENDING or BATCH_LANDED


def _batch(r: sqlite3.Row) -> Batch:
    return Batch(
        id=r["id"],
        at=r["at"],
        source=r["source"],
        name=r["name"],
        sha256=r["sha256"],
        rows=r["rows"],
        low=r["low"],
        high=r["high"],
        state=r["state"],
    )


def add_batch(path: StrPath, *, source: str, name: str, sha256: str, rows: int, low: str, high: str) -> int:
    """Record a database batch about to be renamed into the input folder (state pending); returns its id."""
    with db.writing(path) as conn:
        cursor = conn.execute(
            "INSERT INTO source_batches (at, source, name, sha256, rows, low, high, state) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (utc_now(), source, name, sha256, rows, low, high, BATCH_PENDING),
        )
        return int(cursor.lastrowid or 0)


def settle_batch(path: StrPath, batch_id: int, landed: bool) -> None:
    """A pending batch landed (its file is in the input folder: the watermark moves) or never did (forgotten: fetched again)."""
    with db.writing(path) as conn:
        if landed:
            conn.execute("UPDATE source_batches SET state = ? WHERE id = ?", (BATCH_LANDED, batch_id))
        else:
            conn.execute("DELETE FROM source_batches WHERE id = ? AND state = ?", (batch_id, BATCH_PENDING))


def source_batches(path: StrPath, source: str, state: str, limit: int | None = None) -> list[Batch]:
    """The batches of `source` in `state`, newest first."""
    with db.reading(path, since=db.BATCHES) as conn:
        if conn is None:
            return []
        query = "SELECT * FROM source_batches WHERE source = ? AND state = ? ORDER BY id DESC" + (f" LIMIT {int(limit)}" if limit else "")
        return [_batch(r) for r in conn.execute(query, (source, state))]


def self_written(path: StrPath) -> dict[str, str]:
    """Name -> sha256 of every batch file the system wrote itself (complete when renamed: no settling needed)."""
    with db.reading(path, since=db.BATCHES) as conn:
        if conn is None:
            return {}
        return {r["name"]: r["sha256"] for r in conn.execute("SELECT name, sha256 FROM source_batches ORDER BY id")}
