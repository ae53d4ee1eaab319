"""The pipeline's state as figures for monitoring (`GET /metrics`): the deployed model, the last run, the last drift check.

Read, never written: production's `current` version (its deployment.json and
latestscore.txt) and the run history, through indexed queries that return one
row each (and a count per outcome read from the outcome index alone). No
pandas, no model: the web app turns these figures into Prometheus metrics
(drs/web/telemetry.py) at scrape time.

The metrics and their meaning: docs/metrics.md; where this sits: docs/architecture.md.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from drs.core.formatting import threshold_of
from drs.history import runs as history
from drs.history.db import StrPath
from drs.history.record import Outcome, RunRecord
from drs.production import versions as production


@dataclass(frozen=True)
class DeployedModel:
    version: str
    f1: float  # its latestscore.txt: F1 on the test data when it was deployed
    deployed_at: float | None  # Unix seconds


@dataclass(frozen=True)
class LastRun:
    finished_at: float  # Unix seconds
    outcome: str
    succeeded: bool  # anything but a failed run


@dataclass(frozen=True)
class DriftCheck:
    """The newest score-drift decision of the history, with the data drift measured in the same run."""

    started_at: float | None  # of its run: before any deployment that run made
    test: str
    f1: float | None  # the deployed model's F1 on the new rows; None when too few of them exited to measure it
    threshold: float | None  # drift when the F1 is below it; None when not measured
    drift: bool
    data_drift: bool | None  # None when data drift was not measured in that run
    psi: dict[str, float] = field(default_factory=dict)  # per feature; empty when not measured
    estimated_f1: float | None = None  # the label-free estimate (drs/model/estimate.py) made before the labels; None when refused


def unix_seconds(stamp: Any) -> float | None:
    """Seconds since the epoch of an ISO 8601 time stamp (naive ones are UTC); None for anything else."""
    try:
        moment = datetime.fromisoformat(str(stamp))
    except (TypeError, ValueError):
        return None
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp()


def deployed_model(prod: Path) -> DeployedModel | None:
    """What production's `current` names, or None when nothing is deployed; DeploymentError when it cannot be read."""
    deployment = production.current(prod)
    if deployment is None:
        return None
    return DeployedModel(deployment.label, deployment.score(), unix_seconds(deployment.meta.get("deployed_at")))


def last_run(db: StrPath) -> LastRun | None:
    """The newest full-process run that did its work (history.last_finished_run)."""
    run = history.last_finished_run(db)
    if run is None:
        return None
    finished = unix_seconds(run.get("finished_at"))
    if finished is None:
        return None
    return LastRun(finished, str(run["outcome"]), run["outcome"] != Outcome.FAILED)


def drift_check_of(run: RunRecord) -> DriftCheck | None:
    """The score-drift decision and the data drift of one history row, as the run recorded them; pure."""
    details = run.get("details") or {}
    check = details.get("drift")
    if not isinstance(check, dict):
        return None
    data = details.get("data_drift")
    measured = isinstance(data, dict) and bool(data.get("measured"))
    features = data.get("features") if measured and isinstance(data, dict) else None
    measured_f1 = check.get("new_data_f1") is not None and check.get("measured") is not False
    threshold = threshold_of(check) if measured_f1 else None
    expected = check.get("estimate")
    estimated = isinstance(expected, dict) and bool(expected.get("estimated")) and expected.get("f1") is not None
    return DriftCheck(
        started_at=unix_seconds(run.get("started_at")),
        test=str(check.get("test", "")),
        f1=float(check["new_data_f1"]) if measured_f1 else None,
        threshold=float(threshold) if threshold is not None else None,
        drift=bool(check.get("drift")),
        data_drift=bool(data.get("drift")) if measured and isinstance(data, dict) else None,
        psi={str(row["feature"]): float(row["psi"]) for row in features or [] if isinstance(row, dict) and "psi" in row},
        estimated_f1=float(expected["f1"]) if estimated and isinstance(expected, dict) else None,
    )


def last_drift_check(db: StrPath) -> DriftCheck | None:
    """The newest drift check of the history, its F1 measured or not (one row, read through the index of judged runs)."""
    found = history.drift_checked_runs(db, limit=1)
    return drift_check_of(found[0]) if found else None
