"""The record of one full-process run: its outcome, and the typed results of its steps.

Each step of drs/pipeline/ returns a frozen result (the new data, the data drift, the score-drift check, the gate's
decision, the follow-up's ranking and API calls); the run's `RunReport` keeps them in typed fields, and its `details`
JSON (the `details` column of the run history, drs/history/runs.py) is their serialisation, built once when the run is
recorded. Every result's `to_record()` gives exactly the keys stored before these types existed, and `from_record()`
reads a stored row back, so old history rows read the same. The layer is low (history) so that web, reports and alerts
read runs through these types too; docs/architecture.md has the rest.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from enum import Enum, StrEnum
from typing import Any, ClassVar, Literal, NotRequired, TypedDict, TypeVar, cast

from drs.core.layout import utc_now
from drs.history.modelresults import Estimate, FeatureDriftRow, LabelledSample, Noise

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


def _part(stored: Any) -> dict[str, Any]:
    """A stored part of a run's details when it is an object, else {} (old rows and failed runs lack parts)."""
    return dict(stored) if isinstance(stored, Mapping) else {}


class NewDataRecord(TypedDict):
    files: list[str]
    rows: int
    rows_already_trained_on: int | None
    waiting_files: list[str]


@dataclass(frozen=True)
class NewData:
    """The new rows judged (drs/pipeline/judge.py `new_rows`): `details["new_data"]`."""

    files: list[str]
    rows: int
    rows_already_trained_on: int | None = None
    waiting_files: list[str] = field(default_factory=list)  # files with some labels missing: their rows wait

    def to_record(self) -> NewDataRecord:
        return {
            "files": self.files,
            "rows": self.rows,
            "rows_already_trained_on": self.rows_already_trained_on,
            "waiting_files": self.waiting_files,
        }

    @classmethod
    def from_record(cls, stored: Any) -> NewData:
        part = _part(stored)
        return cls(
            list(part.get("files") or []),
            int(part.get("rows") or 0),
            part.get("rows_already_trained_on"),
            list(part.get("waiting_files") or []),
        )


@dataclass(frozen=True)
class DataDrift:
    """KS and PSI per feature between the deployed model's training data and the new rows: `details["data_drift"]`."""

    measured: bool
    reason: str | None = None  # why not measured
    reference: str | None = None
    features: list[FeatureDriftRow] = field(default_factory=list)  # one row of numbers per feature (drs/model/drift.py)
    summary: str | None = None  # the training data's summary the numbers came from, if one
    drift: bool = False
    drifted_features: list[str] = field(default_factory=list)
    rule: str | None = None

    def to_record(self) -> dict[str, Any]:
        if not self.measured:
            return {"measured": False, "reason": self.reason}
        return {
            "measured": True,
            "reference": self.reference,
            "features": self.features,
            "summary": self.summary,
            "drift": self.drift,
            "drifted_features": self.drifted_features,
            "rule": self.rule,
        }

    @classmethod
    def from_record(cls, stored: Any) -> DataDrift:
        part = _part(stored)
        return cls(
            measured=bool(part.get("measured")),
            reason=part.get("reason"),
            reference=part.get("reference"),
            features=cast("list[FeatureDriftRow]", [f for f in part.get("features") or [] if isinstance(f, dict)]),
            summary=part.get("summary"),
            drift=bool(part.get("drift")),
            drifted_features=[str(f) for f in part.get("drifted_features") or []],
            rule=part.get("rule"),
        )


@dataclass(frozen=True)
class ScoreDriftCheck:
    """The configured score test on the deployed model's F1 on the new rows (drs/pipeline/judge.py `score_drift_check`,
    the numbers from drs/model/drift.py): `details["drift"]`. Fields are in the order of the stored keys; a field that
    is None is not stored (but for `ALWAYS`), `labelled_sample` is stored whenever rows waited for labels."""

    requested_test: str
    test: str
    fallback: str | None
    measured: bool
    reason: str | None = None  # why not measured
    new_data_f1: float | None = None
    deployed_score: float | None = None
    history: list[float] | None = None
    history_points: int | None = None
    mean: float | None = None  # parametric
    std: float | None = None
    q1: float | None = None  # nonparametric
    q3: float | None = None
    iqr: float | None = None
    threshold: float | None = None
    rule: str | None = None
    drift: bool = False
    noise: Noise | None = None  # drs/model/drift.py sampling_noise
    against_estimate: Noise | None = None
    deployed_version: str | None = None
    model_sha256: str | None = None
    new_rows: int = 0
    labelled_rows: int = 0
    exits: int = 0
    waiting_rows: int = 0
    labelled_sample: LabelledSample | None = None  # drs/model/labelsample.py check, when rows waited
    waiting: str | None = None
    estimate: Estimate | None = None  # drs/model/estimate.py, made before any label was looked at

    ALWAYS: ClassVar[frozenset[str]] = frozenset(
        {"requested_test", "test", "fallback", "measured", "new_data_f1", "drift"}
        | {"deployed_version", "model_sha256", "new_rows", "labelled_rows", "exits", "waiting_rows"}
    )

    def to_record(self) -> dict[str, Any]:
        """The stored keys, in their order: None fields left out but for `ALWAYS` (and a waiting batch's sample)."""
        return {
            f.name: getattr(self, f.name)
            for f in fields(self)
            if getattr(self, f.name) is not None or f.name in self.ALWAYS or (f.name == "labelled_sample" and self.waiting_rows)
        }

    @classmethod
    def from_record(cls, stored: Any) -> ScoreDriftCheck:
        part = _part(stored)
        known = {f.name: part[f.name] for f in fields(cls) if f.name in part}
        return cls(
            **{"requested_test": "", "test": "", "fallback": None, "measured": True, **known}
        )  # rows older than unmeasurable checks were measured

    @classmethod
    def from_verdict(cls, verdict: Mapping[str, Any]) -> ScoreDriftCheck:
        """A check from drs/model/drift.py's verdict; a key this type does not know is an error (add the field), never
        dropped from the record."""
        unknown = set(verdict) - cls.keys()
        if unknown:
            raise ValueError(f"the drift verdict has keys the run's record does not know: {', '.join(sorted(unknown))}")
        return cls.from_record(verdict)

    @classmethod
    def keys(cls) -> frozenset[str]:
        """Every key a stored check may have."""
        return frozenset(f.name for f in fields(cls))


class GateRecord(TypedDict):
    promote: bool
    reason: str
    candidate_f1: NotRequired[float]
    deployed_f1: NotRequired[float | None]
    improvement: NotRequired[float | None]
    min_improvement: NotRequired[float | None]
    passes: NotRequired[bool]
    forced: NotRequired[bool]
    deployed_version: NotRequired[str | None]
    evaluation_data: NotRequired[str | None]
    evaluation_rows: NotRequired[int | None]
    evaluation_rows_in_training_data: NotRequired[dict[str, int | None]]
    kept_candidate: NotRequired[str]


@dataclass(frozen=True)
class GateDecision:
    """The promotion gate's decision (drs/pipeline/gate.py): `details["gate"]`, and the `gate` of a kept candidate's
    meta. A first deployment has nothing to compare with: only `promote` and `reason` (`candidate_f1` None)."""

    promote: bool
    reason: str
    candidate_f1: float | None = None
    deployed_f1: float | None = None
    improvement: float | None = None
    min_improvement: float | None = None
    passes: bool = True
    forced: bool = False  # promoted only because --force-deploy said so
    deployed_version: str | None = None
    evaluation_data: str | None = None
    evaluation_rows: int | None = None
    evaluation_rows_in_training_data: dict[str, int | None] = field(default_factory=dict)
    kept_candidate: str | None = None  # where a refused candidate was kept

    def to_record(self) -> GateRecord:
        if self.candidate_f1 is None:
            return {"promote": self.promote, "reason": self.reason}
        stored: GateRecord = {
            "candidate_f1": self.candidate_f1,
            "deployed_f1": self.deployed_f1,
            "improvement": self.improvement,
            "min_improvement": self.min_improvement,
            "passes": self.passes,
            "forced": self.forced,
            "promote": self.promote,
            "reason": self.reason,
            "deployed_version": self.deployed_version,
            "evaluation_data": self.evaluation_data,
            "evaluation_rows": self.evaluation_rows,
            "evaluation_rows_in_training_data": self.evaluation_rows_in_training_data,
        }
        if self.kept_candidate is not None:
            stored["kept_candidate"] = self.kept_candidate
        return stored

    @classmethod
    def from_record(cls, stored: Any) -> GateDecision:
        part = _part(stored)
        known = {f.name: part[f.name] for f in fields(cls) if f.name in part}
        return cls(**{"promote": False, "reason": "", **known})


# Parts of the record made by the data steps (drs/data/sources.py, combine.py, dbsource.py), declared here with the record
# so that every reader of a run (alerts, reports, web) knows their shape without importing the data layer.


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


class ApiCallFailure(TypedDict):
    """One API call that got no 2xx JSON answer (drs/web/apicalls.py Failure), as the run's record keeps it."""

    endpoint: str
    status: int | None  # None: no answer
    cause: str


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


class FollowUpRecord(TypedDict):
    ranking: dict[str, Any] | None
    apicalls: NotRequired[str]
    apicalls_failures: NotRequired[list[ApiCallFailure]]


@dataclass(frozen=True)
class FollowUp:
    """Step 7's results (drs/pipeline/followup.py): `details["ranking"]` and, after a deployment, the API calls'
    summary and failures (`apicalls`, `apicalls_failures`)."""

    ranking: dict[str, Any] | None  # drs/reports/reporting.py's ranking record, {"current": True} or {"error": ...}
    apicalls: str | None = None
    apicalls_failures: list[ApiCallFailure] = field(default_factory=list)

    def to_record(self) -> FollowUpRecord:
        stored: FollowUpRecord = {"ranking": self.ranking}
        if self.apicalls is not None:
            stored["apicalls"] = self.apicalls
        if self.apicalls_failures:
            stored["apicalls_failures"] = self.apicalls_failures
        return stored


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
