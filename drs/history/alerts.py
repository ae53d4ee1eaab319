"""The alerts sent (drs/alerts/notify.py), one `alerts` row per message, and the memory the next alert decision reads from
the runs and alerts before it (`alert_memory`: the failure streak, the last finished run, the alerts already delivered),
so that a failing or stale pipeline tells once, not on every tick. See docs/alerts.md.
"""

from __future__ import annotations

import json
from typing import TypedDict

from drs.history import db
from drs.history.db import StrPath
from drs.history.runs import FINISHED_RUN, FinishedRun, newest_finished


class AlertMemory(TypedDict):
    """What the last runs and alerts were: the fields of drs/alerts/rules.py `AlertState`."""

    newest_run: int
    last_finished: FinishedRun | None  # a runs row without its details
    failures_in_a_row: int
    failing_since: str | None
    last_success_run: int
    failure_alert_at: str | None
    stale_alert_since: str | None


class AlertRow(TypedDict):
    """One `alerts` row, its events parsed."""

    id: int
    at: str
    after_run: int
    kind: str
    events: list[str]
    severity: str
    title: str
    failure: int
    stale_since: str | None
    sent: int
    failed: int


def alert_memory(path: StrPath) -> AlertMemory:
    """What the last runs and alerts were, for the next alert decision (drs/alerts.AlertState takes these keys).

    The failure streak is read newest first up to the last run that did not fail: a short scan even after days of failures."""
    memory = AlertMemory(
        newest_run=0,
        last_finished=None,
        failures_in_a_row=0,
        failing_since=None,
        last_success_run=0,
        failure_alert_at=None,
        stale_alert_since=None,
    )
    with db.reading(path) as conn:
        if conn is None:
            return memory
        memory["newest_run"] = int(conn.execute("SELECT COALESCE(MAX(id), 0) FROM runs").fetchone()[0])
        memory["last_finished"] = newest_finished(conn)
        found = conn.execute(f"SELECT id FROM runs WHERE {FINISHED_RUN} AND outcome != 'failed' ORDER BY id DESC LIMIT 1").fetchone()
        good = memory["last_success_run"] = int(found[0]) if found else 0
        streak = conn.execute(
            f"SELECT COUNT(*), MIN(started_at) FROM runs WHERE {FINISHED_RUN} AND outcome = 'failed' AND id > ?", (good,)
        ).fetchone()
        memory["failures_in_a_row"], memory["failing_since"] = int(streak[0]), streak[1]
        if db.schema_version(conn) >= db.ALERTS:
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
    with db.writing(path) as conn:
        conn.execute(
            "INSERT INTO alerts (at, after_run, kind, events, severity, title, failure, stale_since, sent, failed)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (at, after_run, kind, json.dumps(events), severity, title, int(failure), stale_since, sent, failed),
        )


def alerts(path: StrPath) -> list[AlertRow]:
    """Every alert sent, oldest first (for tests and inspection; the table holds one row per message)."""
    with db.reading(path, since=db.ALERTS) as conn:
        if conn is None:
            return []
        return [
            AlertRow(
                id=r["id"],
                at=r["at"],
                after_run=r["after_run"],
                kind=r["kind"],
                events=json.loads(r["events"]),
                severity=r["severity"],
                title=r["title"],
                failure=r["failure"],
                stale_since=r["stale_since"],
                sent=r["sent"],
                failed=r["failed"],
            )
            for r in conn.execute("SELECT * FROM alerts ORDER BY id")
        ]
