"""Whether the exit probability means what it says: a reliability table and the Brier score; pure, numpy only.

The clients of the test data are sorted by the model's predicted probability and
cut into ten groups of (nearly) equal size, the deciles of predicted probability
(the lowest tenth first; ties keep the file's order, so the cut is the same on every
run). For each decile: how many clients, the mean predicted probability, and the
share that actually exited. A model whose probabilities can be read as chances has
the two close in every decile. The Brier score is the mean of (probability - outcome)
squared over all clients: 0 is perfect, 0.25 is what always saying 50% scores.

scoring.py records the result in latestscore.json (`calibration`), so it deploys
with the model; drs/reports/reporting.py draws it (reliability.png) and the page draws it
as an inline SVG. docs/reports.md says how to read it on the balanced test data.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from drs.data.schema import Schema
from drs.history.modelresults import Decile, Reliability
from drs.model.estimator import LinearModel, exit_probabilities, feature_matrix, linear_model_of

BINS = 10
METHOD = "deciles of predicted probability (equal-count groups, sorted by probability)"


def decile_of(probabilities: np.ndarray, bins: int = BINS) -> np.ndarray:
    """The group (0 = lowest) of each probability: its rank in stable sorted order times `bins` // n."""
    n = probabilities.shape[0]
    order = np.argsort(probabilities, kind="stable")
    groups = np.empty(n, dtype=np.int64)
    groups[order] = np.arange(n, dtype=np.int64) * bins // n
    return groups


def reliability(outcomes: Any, probabilities: Any, bins: int = BINS) -> Reliability:
    """The reliability table of 0/1 `outcomes` against predicted `probabilities`, and the Brier score."""
    y = np.asarray(outcomes, dtype="float64")
    p = np.asarray(probabilities, dtype="float64")
    if y.shape != p.shape or y.ndim != 1 or y.size == 0:
        raise ValueError(f"need as many outcomes as probabilities, at least one: {y.shape} vs {p.shape}")
    bins = min(bins, y.size)
    groups = decile_of(p, bins)
    rows = np.bincount(groups, minlength=bins)
    predicted = np.bincount(groups, weights=p, minlength=bins) / rows
    exits = np.bincount(groups, weights=y, minlength=bins)
    table: list[Decile] = [
        {
            "decile": k + 1,
            "rows": int(rows[k]),
            "mean_predicted": float(predicted[k]),
            "observed_rate": float(exits[k] / rows[k]),
            "exits": int(exits[k]),
            "lowest": float(p[groups == k].min()),
            "highest": float(p[groups == k].max()),
        }
        for k in range(bins)
    ]
    return {
        "method": METHOD,
        "rows": int(y.size),
        "exits": int(y.sum()),
        "base_rate": float(y.mean()),
        "mean_predicted": float(p.mean()),
        "brier": float(np.mean((p - y) ** 2)),
        "deciles": table,
    }


def calibration_error(record: Reliability) -> float:
    """The expected calibration error of a `reliability` record: the gap between mean predicted probability and share
    exited in each decile, weighted by its rows (0: every decile on the diagonal)."""
    rows = sum(d["rows"] for d in record["deciles"])
    return float(sum(d["rows"] * abs(d["mean_predicted"] - d["observed_rate"]) for d in record["deciles"]) / rows)


def sigmoid(z: np.ndarray) -> np.ndarray:
    """1 / (1 + e^-z) in numpy alone, without overflow (scipy's expit, to within a unit in the last place)."""
    e = np.exp(-np.abs(z))
    p: np.ndarray = np.where(z >= 0, 1.0 / (1.0 + e), e / (1.0 + e))
    return p


def probabilities_of(model: Any, x: np.ndarray) -> np.ndarray:
    """Exit probabilities for a whole data set: a logistic regression (recorded or unpickled) through its one
    affine map and `sigmoid`, so that scoring from the recorded parts imports no scipy and both ways give the
    same bits; any other model through its own predict_proba (drs.model.estimator)."""
    linear = model if isinstance(model, LinearModel) else linear_model_of(model)
    return sigmoid(linear.decision(x)) if linear is not None else exit_probabilities(model, x)


def of_model(model: Any, frame: Any, schema: Schema) -> Reliability:
    """The reliability of `model` (fitted, or a LinearModel) on a labelled frame (pandas or polars)."""
    return reliability(frame[schema.target].to_numpy(), probabilities_of(model, feature_matrix(frame, schema)))


def plain_reading(record: Reliability) -> str:
    """One sentence on how to read the curve, with the test data's own numbers."""
    base, predicted = record["base_rate"], record["mean_predicted"]
    if predicted < base - 0.02:
        where = "above the diagonal (more clients left than predicted)"
    elif predicted > base + 0.02:
        where = "below the diagonal (fewer clients left than predicted)"
    else:
        where = "close to the diagonal"
    return (
        f"On the dashed diagonal a predicted 80% would mean 8 in 10 such clients left; in the test data {base:.0%} of the clients left"
        f" and the model predicts {predicted:.0%} on average, so its points lie {where}: read the percentage as an order of risk"
        " more than as an exact chance."
    )


def brier_words(record: Reliability) -> str:
    return f"Brier score {record['brier']:.3f} (0 is perfect; saying 50% for every client scores 0.250)"
