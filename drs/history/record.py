"""The record of one full-process run: its outcome, `RunReport` (what the run did, in typed fields) and the plain
records (TypedDicts) of its parts.

Each step of drs/pipeline/ returns a frozen result (drs/history/results.py: the new data, the data drift, the score-drift
check, the gate's decision, the follow-up); the run's `RunReport` keeps them in typed fields, and its `details` JSON (the
`details` column of the run history, drs/history/runs.py) is their serialisation, built once when the run is recorded.
The results' classes live apart so that the tick with nothing new, which only records its run, never builds them. The
layer is low (history) so that web, reports and alerts read runs through these types too; docs/architecture.md has the rest.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import Enum, StrEnum
from typing import TYPE_CHECKING, Any, Literal, TypedDict, TypeVar

from drs.core.layout import utc_now

if TYPE_CHECKING:  # the step results' classes are only named here; a run that has results builds them (drs/history/results.py)
    from drs.history.results import DataDrift, FollowUp, GateDecision, NewData, ScoreDriftCheck

T = TypeVar("T")


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


class Resent(TypedDict):
    """A file sent again: a copy of another (`how` "copy", `of` the other), or touched with the same content ("touched")."""

    name: str
    of: str
    how: str


class Repeat(TypedDict):
    """A file some of whose rows (`rows`; `whole`: all of them) repeat rows another file (`of`) brought first."""

    name: str
    of: str
    rows: int
    whole: bool


class Change(TypedDict):
    """An accepted file whose content changed since the last ingestion: both checksums and row counts."""

    name: str
    old_sha256: str | None
    new_sha256: str | None
    old_rows: int | None
    new_rows: int
    status: str
    labels_filled: int | None  # its only change is labels filled in: how many (drs/data/intake.py labels_filled_in)


class FetchRecord(TypedDict):
    """A fetch as the run's record (`details["database"]`) holds it: these keys, as runs have always stored them."""

    batch: str | None
    rows: int
    watermark: str
    already_landed: int
    null_watermark: str | None


class RunRecord(TypedDict):
    """A run as its readers (the report, the alerts) read it: a runs row (drs/history/runs.py RunRow) or the run in
    progress (`RunReport.as_run`); `details` is the stored free-form JSON, read through the parts above."""

    started_at: str
    outcome: str
    message: str
    details: dict[str, Any]


class DeliveryRecord(TypedDict):
    """An alert's delivery (drs/alerts/notify.py Delivery.as_details): `details["notifications"]` of the run it told about."""

    events: list[str]
    severity: str
    title: str
    targets: int
    sent: int
    failed: list[str]


class _Unset(Enum):
    UNSET = "unset"


UNSET: Literal[_Unset.UNSET] = _Unset.UNSET  # a field the run has not reached (its key is not stored)


@dataclass
class RunReport:
    """What one full-process run did; becomes one row of `runs` (`details()` is its `details` JSON)."""

    started_at: str = field(default_factory=utc_now)
    clock: float = field(default_factory=time.time)  # the run's `now` for every age it measures (settling files)
    outcome: Outcome = Outcome.FAILED
    message: str = ""
    deployed_version: int | None = None
    timings: dict[str, float] = field(default_factory=dict)
    force_deploy: bool | None = None
    database: FetchRecord | None = None  # drs/data/dbsource.py's summary of the rows fetched
    waiting: list[str] = field(default_factory=list)  # source files not settled yet
    gone_files: list[str] = field(default_factory=list)
    resent: list[Resent] = field(default_factory=list)
    new_files: list[str] | None = None
    ingestion: dict[str, Any] | None = None  # the files ingested (drs/data/ingest.py FileRecord as a record) and counts
    changed_files: list[Change] = field(default_factory=list)
    repeats: list[Repeat] = field(default_factory=list)
    rejected: list[str] | None = None
    trigger: str | None | Literal[_Unset.UNSET] = UNSET  # why to retrain; None: judged, no reason
    new_data: NewData | None = None
    data_drift: DataDrift | None = None
    drift: ScoreDriftCheck | None = None
    new_model_test_f1: float | None = None
    gate: GateDecision | None = None
    followup: FollowUp | None = None
    notifications: DeliveryRecord | None = None  # drs/alerts/notify.py's delivery record

    def timed(self, name: str, work: Callable[[], T]) -> T:
        started = time.perf_counter()
        try:
            return work()
        finally:
            self.timings[name] = round(time.perf_counter() - started, 4)

    def finish(self, outcome: Outcome, message: str, deployed_version: int | None) -> None:
        self.outcome, self.message, self.deployed_version = outcome, message, deployed_version

    def details(self) -> dict[str, Any]:
        """The run's `details` JSON: what its steps returned, with the keys the history has always stored."""
        stored: dict[str, Any] = {}
        if self.force_deploy is not None:
            stored["force_deploy"] = self.force_deploy
        if self.database is not None:
            stored["database"] = self.database
        for key, names in (("waiting", self.waiting), ("gone_files", self.gone_files)):
            if names:
                stored[key] = names
        if self.resent:
            stored["resent"] = self.resent
        if self.new_files is not None:
            stored["new_files"] = self.new_files
        if self.ingestion is not None:
            stored["ingestion"] = self.ingestion
        if self.changed_files:
            stored["changed_files"] = self.changed_files
        if self.repeats:
            stored["repeats"] = self.repeats
        if self.rejected is not None:
            stored["rejected"] = self.rejected
        if self.trigger is not UNSET:
            stored["trigger"] = self.trigger
        for key, part in (("new_data", self.new_data), ("data_drift", self.data_drift), ("drift", self.drift)):
            if part is not None:
                stored[key] = part.to_record()
        if self.new_model_test_f1 is not None:
            stored["new_model_test_f1"] = self.new_model_test_f1
        if self.gate is not None:
            stored["gate"] = self.gate.to_record()
        if self.followup is not None:
            stored.update(self.followup.to_record())
        if self.notifications is not None:
            stored["notifications"] = self.notifications
        return {**stored, "timings": self.timings}

    def as_run(self) -> RunRecord:
        """The run as `runs` returns it (for a report written before the run is recorded)."""
        return {"started_at": self.started_at, "outcome": self.outcome, "message": self.message, "details": self.details()}
