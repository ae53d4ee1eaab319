"""The rankings kept in the run history (drs/reports/rankings.py): one `rankings` row per ranked list, who ranked it, with
which model, of which data, its clients in rank order (compressed: drs/reports/movement.py `pack`), pruned to the newest
`keep_rankings`; read to tell what changed since the previous list. See docs/reports.md.
"""

from __future__ import annotations

import sqlite3
from typing import TypedDict

from drs.history import db
from drs.history.db import StrPath


class Ranking(TypedDict):
    """One kept ranking without its rows."""

    id: int
    at: str
    kind: str
    run_started_at: str | None
    model_version: str
    source: str
    clients: int
    digest: str  # tells equal lists apart


class RankingWithRows(Ranking):
    """One kept ranking with its clients in rank order (drs/reports/movement.py `unpack`)."""

    rows: bytes


RANKING_FIELDS = "id, at, kind, run_started_at, model_version, source, clients, digest"


def _ranking(r: sqlite3.Row) -> Ranking:
    return Ranking(
        id=r["id"],
        at=r["at"],
        kind=r["kind"],
        run_started_at=r["run_started_at"],
        model_version=r["model_version"],
        source=r["source"],
        clients=r["clients"],
        digest=r["digest"],
    )


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
    with db.writing(path) as conn:
        cursor = conn.execute(
            "INSERT INTO rankings (at, kind, run_started_at, model_version, source, clients, digest, rows) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (at, kind, run_started_at, model_version, source, clients, digest, rows),
        )
        conn.execute("DELETE FROM rankings WHERE id NOT IN (SELECT id FROM rankings ORDER BY id DESC LIMIT ?)", (keep,))
        return int(cursor.lastrowid or 0)


def rankings(path: StrPath) -> list[Ranking]:
    """Every kept ranking without its rows, oldest first (none in a file older than version 3)."""
    with db.reading(path, since=db.RANKINGS) as conn:
        if conn is None:
            return []
        return [_ranking(r) for r in conn.execute(f"SELECT {RANKING_FIELDS} FROM rankings ORDER BY id")]


def previous_ranking(path: StrPath, source: str, digest: str, before: int | None = None) -> RankingWithRows | None:
    """The newest kept ranking of `source` (older than id `before`, when given) whose list differs from the one with
    `digest`, rows included; None when there is none. One indexed query, one row read."""
    with db.reading(path, since=db.RANKINGS) as conn:
        if conn is None:
            return None
        row = conn.execute(
            f"SELECT {RANKING_FIELDS}, rows FROM rankings WHERE source = ? AND digest != ? AND id < ? ORDER BY id DESC LIMIT 1",
            (source, digest, before if before is not None else 2**62),
        ).fetchone()
    return RankingWithRows(**_ranking(row), rows=row["rows"]) if row else None


def newest_ranking(path: StrPath, source: str) -> Ranking | None:
    """The newest kept ranking of `source`, without its rows; None when there is none."""
    with db.reading(path, since=db.RANKINGS) as conn:
        if conn is None:
            return None
        row = conn.execute(f"SELECT {RANKING_FIELDS} FROM rankings WHERE source = ? ORDER BY id DESC LIMIT 1", (source,)).fetchone()
    return _ranking(row) if row else None
