"""Why a client is at risk: each feature's contribution to its log-odds of exit, and the top reason in words.

The project's model is a logistic regression, maybe behind a standard scaler
(drs.model.estimator.LinearModel): the log-odds of exit are z(x) = sum_i w_i (x_i - m_i) / s_i + b.
Against a reference client r, the same sum regroups exactly into

    z(x) = z(r) + sum_i c_i,    c_i = w_i (x_i - r_i) / s_i

so each contribution c_i is in the model's own units (log-odds), the scaling
included where the model scales, and the contributions with the reference's
log-odds z(r) add up to the client's log-odds; a client with every feature at
the reference has every contribution 0. The reference is the training data's
mean of each feature, recorded with the model at training (`reference_record`):
with the mean, z(r) is the log-odds of the average client and, the model being
linear, the contributions average to zero over the training data, so a
contribution reads "this much more (or less) risk than the average client
because of this feature". A median would give neither.

A model deployed before the mean was recorded falls back to the mean of that
version's own training data (trainingreference.npz or trainingdata.csv in its
version folder, checksums confirmed); the Reference says which (`source`).

Pure functions apart from `deployed_reference` at the end, which reads files.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypedDict

import numpy as np
import polars as pl

from drs.core.fileio import sha256_file
from drs.core.layout import REFERENCE_FILE, TRAINING_DATA_FILE
from drs.model.estimator import LinearModel
from drs.production.versions import Deployment

TOP_REASON = "top_reason"
CONTRIBUTION_SUFFIX = "_contribution"
STATISTIC = "mean"
RECORDED = "recorded with the model at training"
RAISES = "raises the risk most"
LOWERS = "lowers the risk most"
AT_REFERENCE = "every feature at its typical value"

# The features in the words of a client manager: the one place they are named.
FEATURE_NAMES = {
    "lastmonth_activity": "activity last month",
    "lastyear_activity": "activity last year",
    "number_of_employees": "number of employees",
}


def feature_name(feature: str) -> str:
    """`activity last month` for `lastmonth_activity`; an unknown feature by its column name, underscores as spaces."""
    return FEATURE_NAMES.get(feature, feature.replace("_", " "))


def feature_label(feature: str) -> str:
    """The name as a heading: `Activity last month`."""
    name = feature_name(feature)
    return name[:1].upper() + name[1:]


def contribution_column(feature: str) -> str:
    return f"{feature}{CONTRIBUTION_SUFFIX}"


def explanation_columns(features: Sequence[str]) -> list[str]:
    """`top_reason`, then one `<feature>_contribution` per feature: the columns the risk list gains."""
    return [TOP_REASON, *(contribution_column(f) for f in features)]


class ReferenceDescription(TypedDict):
    """`Reference.describe`: the reference client as the API serves it."""

    statistic: str
    values: dict[str, float]
    log_odds: float | None
    source: str


class ReferenceRecord(TypedDict):
    """`reference_record`: what trainedmodel.json and the deployment's metadata hold (`reference`)."""

    statistic: str
    means: dict[str, float]
    rows: int


@dataclass(frozen=True)
class Reference:
    """The reference client: the training data's mean of each feature, and where it comes from."""

    means: dict[str, float]
    source: str
    rows: int | None = None

    @property
    def features(self) -> tuple[str, ...]:
        return tuple(self.means)

    def vector(self, features: Sequence[str]) -> np.ndarray:
        return np.array([self.means[f] for f in features], dtype="float64")

    def describe(self, model: LinearModel | None, features: Sequence[str]) -> ReferenceDescription:
        """JSON-ready: the statistic, the value of each feature, the reference's log-odds, where it comes from."""
        log_odds = reference_log_odds(model, self.vector(features)) if model is not None else None
        return {"statistic": STATISTIC, "values": {f: self.means[f] for f in features}, "log_odds": log_odds, "source": self.source}


def reference_record(columns: Mapping[str, Sequence[float] | np.ndarray], features: Sequence[str]) -> ReferenceRecord:
    """What training records with the model (trainedmodel.json `reference`): each feature's mean over the training rows."""
    means = {f: float(np.mean(np.asarray(columns[f], dtype="float64"))) for f in features}
    rows = len(columns[features[0]]) if features else 0
    return {"statistic": STATISTIC, "means": means, "rows": rows}


def reference_from_record(record: Any, features: Sequence[str], source: str = RECORDED) -> Reference | None:
    """The Reference a `reference_record` describes, or None when it is not one for these features."""
    if not isinstance(record, dict) or record.get("statistic") != STATISTIC or not isinstance(record.get("means"), dict):
        return None
    means = record["means"]
    try:
        values = {f: float(means[f]) for f in features}
    except (KeyError, TypeError, ValueError):
        return None
    if not all(np.isfinite(list(values.values()))):
        return None
    rows = record.get("rows")
    return Reference(values, source, int(rows) if isinstance(rows, int) else None)


def contributions(model: LinearModel, x: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """c[j, i] = w_i (x[j, i] - reference_i) / s_i: log-odds, one row per client, one column per feature."""
    c: np.ndarray = (np.asarray(x, dtype="float64") - reference) / model.scale * model.weights
    return c


def reference_log_odds(model: LinearModel, reference: np.ndarray) -> float:
    """z(reference): the model's log-odds of exit for the reference client."""
    return float(model.decision(np.asarray(reference, dtype="float64")[None, :])[0])


def plain(value: float) -> str:
    """A number as a person says it: whole numbers whole, others to a sensible precision ('12', '85', '1,250', '3.4', '0.25')."""
    value = float(value)
    if value.is_integer() or abs(value) >= 10:
        return f"{value:,.0f}"
    if abs(value) >= 1:
        return f"{value:.1f}"
    return f"{value:.2g}"


Numbers = Sequence[float] | np.ndarray


def reason_words(feature: str, value: float, typical: float, raising: bool) -> str:
    """`activity last month 12 (typical 85): raises the risk most`: a top reason in words."""
    return f"{feature_name(feature)} {plain(value)} (typical {plain(typical)}): {RAISES if raising else LOWERS}"


def top_reason(values: Numbers, contribution: Numbers, reference: Numbers, features: Sequence[str]) -> str:
    """The feature that raises the risk most (largest positive contribution), in words with its value and the typical one;
    when none raises it, the one that lowers it most; `every feature at its typical value` when all are 0."""
    return top_reasons(np.asarray([values], dtype="float64"), np.asarray([contribution], dtype="float64"), reference, features)[0]


def top_reasons(x: np.ndarray, c: np.ndarray, reference: Numbers, features: Sequence[str]) -> list[str]:
    """`top_reason` of every row (values `x`, contributions `c`), at array speed: each distinct (feature, direction,
    value) is put in words once, so a million clients cost what their few thousand distinct values cost."""
    x, c = np.asarray(x, dtype="float64"), np.asarray(c, dtype="float64")
    out = np.full(len(c), AT_REFERENCE, dtype=object)
    if c.size == 0:
        return out.tolist()
    said = (c != 0).any(axis=1)
    raising = (c > 0).any(axis=1)
    which = np.where(raising, c.argmax(axis=1), c.argmin(axis=1))
    values = x[np.arange(len(x)), which]
    for i, feature in enumerate(features):
        for up in (True, False):
            rows = np.flatnonzero(said & (which == i) & (raising == up))
            if rows.size:
                distinct, inverse = np.unique(values[rows], return_inverse=True)
                words = np.array([reason_words(feature, v, reference[i], up) for v in distinct.tolist()], dtype=object)
                out[rows] = words[inverse]
    return out.tolist()


@dataclass(frozen=True)
class Explained:
    """Per client: the top reason and each feature's contribution (rows as in `x`)."""

    reasons: list[str]
    contributions: np.ndarray


def explain(model: LinearModel, x: np.ndarray, reference: Reference, features: Sequence[str]) -> Explained:
    """Contributions and top reasons for every row of `x` (features in `features` order)."""
    ref = reference.vector(features)
    c = contributions(model, x, ref)
    return Explained(top_reasons(x, c, ref, features), c)


def as_fields(explained: Explained | None, row: int, features: Sequence[str], decimals: int) -> dict[str, str | float | None]:
    """One client's explanation as JSON-ready fields (`top_reason`, `<feature>_contribution`); None when there is none."""
    if explained is None:
        return dict.fromkeys(explanation_columns(features))
    values = explained.contributions[row]
    return {
        TOP_REASON: explained.reasons[row],
        **{contribution_column(f): round(float(v), decimals) for f, v in zip(features, values, strict=True)},
    }


# ---- the edge: a deployed version's reference ---------------------------------------------------


def deployed_reference(deployment: Deployment, features: Sequence[str]) -> Reference | None:
    """The reference recorded with a deployed version; for a version deployed before it was recorded, the mean of that
    version's training data (its trainingreference.npz when exact, else its trainingdata.csv; checksums confirmed);
    None when neither is there."""
    recorded = reference_from_record(deployment.meta.get("reference"), features)
    if recorded is not None:
        return recorded
    checksums = deployment.meta.get("sha256") or {}
    older = f"{deployment.label} was deployed before the mean was recorded with the model"
    summary = deployment.reference_path
    if summary is not None and summary.is_file() and sha256_file(summary) == checksums.get(REFERENCE_FILE):
        with np.load(summary, allow_pickle=False) as stored:
            meta = json.loads(str(stored["meta"][()]))
            exact = all((meta.get("ks_reference") or {}).get(f) == "exact" and f"{f}.values" in stored.files for f in features)
            if exact:
                means = {}
                for f in features:
                    values, counts = stored[f"{f}.values"].astype("float64"), stored[f"{f}.counts"].astype("float64")
                    means[f] = float(np.dot(values, counts) / counts.sum())
                source = f"the mean of {deployment.label}'s training data ({REFERENCE_FILE}): {older}"
                return Reference(means, source, int(meta.get("rows") or 0) or None)
    data = deployment.training_data_path
    if data is not None and data.is_file() and sha256_file(data) == checksums.get(TRAINING_DATA_FILE):
        frame = pl.read_csv(data, columns=list(features), schema_overrides=dict.fromkeys(features, pl.Float64))
        record = reference_record({f: frame[f].to_numpy() for f in features}, features)
        return reference_from_record(record, features, f"the mean of {deployment.label}'s training data ({TRAINING_DATA_FILE}): {older}")
    return None
