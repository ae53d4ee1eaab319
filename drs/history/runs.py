"""The runs table of the run history: one row per full-process run (including the ones that find nothing new or find
another run holding the lock), appended, never rewritten. Cron adds about 52,560 rows a year, so every query reads only what
it needs: the columns it filters on are indexed, and a row's `details` JSON (free-form: what the run found) is parsed only
for the rows returned. The file and its schema are drs/history/db.py's; the other tables have a store each (see
docs/architecture.md#module-map, and docs/drift.md#reading-the-history for reading it by hand).
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable
from typing import Any, TypedDict

from drs.core.layout import utc_now
from drs.history import db
from drs.history.db import StrPath
from drs.history.record import RunRecord, RunReport


class RunRow(RunRecord):
    """One runs row as the readers get it (`runs`, `latest_run`, `drift_checked_runs`), its `details` JSON parsed."""

    id: int
    finished_at: str
    kind: str
    deployed_version: int | None


class DriftDecision(TypedDict):
    """A run's score-drift decision (`drift_decisions`): when, the files it judged, its stored check, data drift and gate."""

    started_at: str | None
    new_files: list[str]
    check: dict[str, Any]  # details["drift"], the stored check (drs/history/record.py ScoreDriftCheck.from_record reads it)
    data_drift: Any  # details["data_drift"] as stored, None when not recorded
    gate: Any  # details["gate"] as stored, None when not recorded


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
    with db.writing(path) as conn:
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
        details=report.details(),
    )


def _drift_columns(conn: sqlite3.Connection) -> tuple[str, str]:
    """(model checksum, F1) of a run's drift check: the indexed columns, or the JSON itself in an older
    file this process may not bring up to date."""
    if db.schema_version(conn) >= db.DRIFT_COLUMNS:
        return "drift_model_sha256", "new_data_f1"
    from_json = "CASE WHEN json_valid(details) THEN json_extract(details, '$.drift.{}') END"
    return from_json.format("model_sha256"), from_json.format("new_data_f1")


def _rows(path: StrPath, where: str, params: tuple[str, ...], limit: int | None) -> list[RunRow]:
    """Matching runs, oldest first (the newest `limit`), details parsed; `where` may name {sha} and {f1} (_drift_columns)."""
    with db.reading(path) as conn:
        if conn is None:
            return []
        sha, f1 = _drift_columns(conn)
        query = "SELECT id, started_at, finished_at, kind, outcome, message, deployed_version, details FROM runs"
        query += f" {where.format(sha=sha, f1=f1)} ORDER BY id DESC" + (" LIMIT ?" if limit else "")
        found = conn.execute(query, (*params, limit) if limit else params).fetchall()
    return [
        RunRow(
            id=r["id"],
            started_at=r["started_at"],
            finished_at=r["finished_at"],
            kind=r["kind"],
            outcome=r["outcome"],
            message=r["message"],
            deployed_version=r["deployed_version"],
            details=json.loads(r["details"]),
        )
        for r in found[::-1]
    ]


def runs(path: StrPath, limit: int | None = None) -> list[RunRow]:
    """Runs, oldest first (the newest `limit` when given)."""
    return _rows(path, "", (), limit)


def drift_checked_runs(path: StrPath, limit: int | None = None) -> list[RunRow]:
    """The runs that judged new rows against the deployed model, oldest first (the newest `limit`): their
    score test measured its F1 or said why it could not (`details["drift"]["measured"]` false, F1 NULL)."""
    return _rows(path, "WHERE {sha} IS NOT NULL OR {f1} IS NOT NULL", (), limit)  # the terms of runs_judged, in its order


def latest_run(path: StrPath, outcomes: Iterable[str] | None = None) -> RunRow | None:
    """The newest run (with one of `outcomes`, when given), or None."""
    chosen = [str(o) for o in outcomes] if outcomes is not None else []
    where = f"WHERE outcome IN ({', '.join('?' * len(chosen))})" if chosen else ""
    found = _rows(path, where, tuple(chosen), 1)
    return found[0] if found else None


def lineage_f1(path: StrPath, model_sha256: str | None) -> list[float]:
    """Every F1 on new data that full-process runs measured for the model with this checksum, oldest first."""
    if model_sha256 is None:
        return []
    with db.reading(path) as conn:
        if conn is None:
            return []
        sha, f1 = _drift_columns(conn)
        query = f"SELECT {f1} FROM runs WHERE {sha} = ? AND {f1} IS NOT NULL AND kind = 'fullprocess' ORDER BY id"
        return [float(r[0]) for r in conn.execute(query, (model_sha256,))]


def has_run(path: StrPath, outcomes: Iterable[str], deployed_version: int) -> bool:
    """Whether a run with one of `outcomes` recorded `deployed_version` (one indexed query, no parsing)."""
    chosen = [str(o) for o in outcomes]
    with db.reading(path) as conn:
        if conn is None:
            return False
        query = f"SELECT 1 FROM runs WHERE outcome IN ({', '.join('?' * len(chosen))}) AND deployed_version = ? LIMIT 1"
        return conn.execute(query, (*chosen, deployed_version)).fetchone() is not None


def drift_decisions(runs: Iterable[RunRecord]) -> list[DriftDecision]:
    """Of `runs`, those that made a score-drift decision, with their data drift and promotion gate where recorded; pure."""
    found: list[DriftDecision] = []
    for run in runs:
        details = run.get("details") or {}
        check = details.get("drift")
        if isinstance(check, dict):
            found.append(
                DriftDecision(
                    started_at=run.get("started_at"),
                    new_files=details.get("new_files") or [],
                    check=check,
                    data_drift=details.get("data_drift"),
                    gate=details.get("gate"),
                )
            )
    return found


# The runs that got the lock (failed ones included): what the alerts (drs/history/alerts.py) and /metrics count as finished.
FINISHED_RUN = "kind = 'fullprocess' AND outcome != 'skipped: locked'"


class FinishedRun(TypedDict):
    """A runs row without its details: the newest finished run, as /health and /metrics tell it."""

    id: int
    started_at: str
    finished_at: str
    outcome: str
    message: str
    deployed_version: int | None


def last_finished_run(path: StrPath) -> FinishedRun | None:
    """The newest full-process run that got the lock (failed ones included), without its details; None before any."""
    with db.reading(path) as conn:
        return None if conn is None else newest_finished(conn)


def newest_finished(conn: sqlite3.Connection) -> FinishedRun | None:
    """`last_finished_run` on an open connection (drs/history/alerts.py alert_memory reads it with the rest of its memory)."""
    row = conn.execute(
        f"SELECT id, started_at, finished_at, outcome, message, deployed_version FROM runs WHERE {FINISHED_RUN} ORDER BY id DESC LIMIT 1"
    ).fetchone()
    if row is None:
        return None
    return FinishedRun(
        id=row["id"],
        started_at=row["started_at"],
        finished_at=row["finished_at"],
        outcome=row["outcome"],
        message=row["message"],
        deployed_version=row["deployed_version"],
    )


def outcome_counts(path: StrPath) -> dict[str, int]:
    """How many runs ended with each outcome (every kind; read from the outcome index alone)."""
    with db.reading(path) as conn:
        if conn is None:
            return {}
        return {str(r[0]): int(r[1]) for r in conn.execute("SELECT outcome, COUNT(*) FROM runs GROUP BY outcome")}
