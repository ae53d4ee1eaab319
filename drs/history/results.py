"""The typed results of the full process's steps (drs/pipeline/): the new data, the data drift, the score-drift check,
the gate's decision and the follow-up. Each is frozen; `to_record()` gives exactly the keys the run history has always
stored and `from_record()` reads a stored row back. Apart from drs/history/record.py (the run and its plain records) so that
the cron tick with nothing new, which only records its run, does not build these classes (bench/README.md); a run with
results, the reports, the page and the alert rules import them here.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any, ClassVar, NotRequired, TypedDict, cast

from drs.history.modelresults import Estimate, FeatureDriftRow, LabelledSample, Noise


class NewDataRecord(TypedDict):
    files: list[str]
    rows: int
    rows_already_trained_on: int | None
    waiting_files: list[str]


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


class ApiCallFailure(TypedDict):
    """One API call that got no 2xx JSON answer (drs/web/apicalls.py Failure), as the run's record keeps it."""

    endpoint: str
    status: int | None  # None: no answer
    cause: str


class FollowUpRecord(TypedDict):
    ranking: dict[str, Any] | None
    apicalls: NotRequired[str]
    apicalls_failures: NotRequired[list[ApiCallFailure]]


def _part(stored: Any) -> dict[str, Any]:
    """A stored part of a run's details when it is an object, else {} (old rows and failed runs lack parts)."""
    return dict(stored) if isinstance(stored, Mapping) else {}


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
