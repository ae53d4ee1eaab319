"""The client managers' calls and the holdout group, kept in the run history's database (migration 8 of drs/history/runs.py).

`calls`: one row per recorded call (when, the corporation, the outcome from OUTCOMES, a note, who recorded it and from
where); a call takes its client out of the queue for `recall_after_days`. `call_holdouts`: each client the first time it
was held out of a queue as a control (drs/reports/calls.py decides who, by a stable hash). Both survive restarts and
redeployments: the database is in output_folder_path, beside the runs. Standard library only (the web reads it).
See docs/reports.md#the-client-managers-day.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from drs.core.layout import utc_now
from drs.history import db

REACHED, NO_ANSWER, WILL_STAY, PLANS_TO_LEAVE = "reached", "no answer", "will stay", "plans to leave"
OUTCOMES = (REACHED, NO_ANSWER, WILL_STAY, PLANS_TO_LEAVE)
MAX_NOTE = 2000  # characters


@dataclass(frozen=True)
class Call:
    """One recorded call, as stored."""

    id: int
    at: str
    corporation: str
    outcome: str
    note: str
    recorded_by: str
    origin: str
    after_file: str | None = None  # the newest ingested file when the call was made (a later file's label is its outcome)

    def to_record(self) -> dict[str, str | int]:
        return {
            "id": self.id,
            "at": self.at,
            "corporation": self.corporation,
            "outcome": self.outcome,
            "note": self.note,
            "recorded_by": self.recorded_by,
        }


def _call(row: sqlite3.Row) -> Call:
    return Call(
        int(row["id"]), row["at"], row["corporation"], row["outcome"], row["note"], row["recorded_by"], row["origin"], row["after_file"]
    )


def record_call(
    path: Path,
    corporation: str,
    outcome: str,
    note: str,
    recorded_by: str,
    origin: str,
    after_file: str | None = None,
    at: str | None = None,
) -> Call:
    """Append one call (the caller has checked the corporation and the outcome); the stored row."""
    if outcome not in OUTCOMES:
        raise ValueError(f"outcome must be one of {', '.join(OUTCOMES)}")
    when = at or utc_now()
    with db.writing(path) as conn:
        cursor = conn.execute(
            "INSERT INTO calls (at, corporation, outcome, note, recorded_by, origin, after_file) VALUES (?, ?, ?, ?, ?, ?, ?)",
            (when, corporation, outcome, note[:MAX_NOTE], recorded_by, origin, after_file),
        )
        return Call(int(cursor.lastrowid or 0), when, corporation, outcome, note[:MAX_NOTE], recorded_by, origin, after_file)


def calls(path: Path, limit: int | None = None) -> list[Call]:
    """Every call, newest first (at most `limit`)."""
    with db.reading(path, since=db.CALLS) as conn:
        if conn is None:
            return []
        sql = "SELECT * FROM calls ORDER BY id DESC" + (" LIMIT ?" if limit is not None else "")
        return [_call(r) for r in conn.execute(sql, [limit] if limit is not None else [])]


def client_calls(path: Path, corporation: str) -> list[Call]:
    """One client's calls, newest first."""
    with db.reading(path, since=db.CALLS) as conn:
        if conn is None:
            return []
        return [_call(r) for r in conn.execute("SELECT * FROM calls WHERE corporation = ? ORDER BY id DESC", (corporation,))]


def since(days: float, now: datetime | None = None) -> str:
    """The time stamp `days` before now, in the records' format (compared as text: same format, same order)."""
    moment = (now or datetime.now(UTC)) - timedelta(days=days)
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S+00:00")


def contacted_since(path: Path, at: str) -> set[str]:
    """The corporations with a call at or after `at`: out of the queue."""
    with db.reading(path, since=db.CALLS) as conn:
        if conn is None:
            return set()
        return {r[0] for r in conn.execute("SELECT DISTINCT corporation FROM calls WHERE at >= ?", (at,))}


def record_holdouts(path: Path, corporations: Iterable[str], seed: int, fraction: float, after_file: str | None = None) -> None:
    """Each client held out of a queue, the first time only (a client stays in the control group once in it)."""
    rows = [(c, utc_now(), seed, fraction, after_file) for c in corporations]
    if not rows:
        return
    with db.writing(path) as conn:
        sql = "INSERT OR IGNORE INTO call_holdouts (corporation, at, seed, fraction, after_file) VALUES (?, ?, ?, ?, ?)"
        conn.executemany(sql, rows)


def holdouts(path: Path) -> dict[str, str | None]:
    """Every client ever held out -> the newest ingested file when it first was (its outcome is a later file's label)."""
    with db.reading(path, since=db.CALLS) as conn:
        if conn is None:
            return {}
        return {r[0]: r[1] for r in conn.execute("SELECT corporation, after_file FROM call_holdouts")}


def first_calls(path: Path) -> dict[str, str | None]:
    """Every client called -> the newest ingested file at its first call."""
    with db.reading(path, since=db.CALLS) as conn:
        if conn is None:
            return {}
        sql = "SELECT corporation, after_file FROM calls WHERE id IN (SELECT min(id) FROM calls GROUP BY corporation)"
        return {r[0]: r[1] for r in conn.execute(sql)}


def said_leaving(path: Path) -> list[Call]:
    """The calls where the client said it plans to leave (an early label: docs/reports.md#calls-as-early-labels), newest first."""
    return [c for c in calls(path) if c.outcome == PLANS_TO_LEAVE]
