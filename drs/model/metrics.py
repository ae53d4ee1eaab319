"""How good a model is on labelled data: the confusion counts and what follows from them; pure."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, TypedDict

import numpy as np

from drs.data.readers import labelled
from drs.data.schema import Schema
from drs.model.estimator import feature_matrix, predicted_classes


def counts_of(y_true: Any, y_pred: Any) -> np.ndarray:
    """[tn, fp, fn, tp] of 0/1 labels and predictions."""
    return np.bincount(2 * np.asarray(y_true, dtype=np.int64) + np.asarray(y_pred, dtype=np.int64), minlength=4)[:4]


def f1_from_counts(counts: Sequence[int]) -> float:
    """F1 of the positive class, 0 when undefined (scikit-learn's zero_division=0)."""
    _, fp, fn, tp = counts
    denominator = 2 * tp + fp + fn
    return 2 * tp / denominator if denominator else 0.0


class Metrics(TypedDict):
    """`metrics`: what latestscore.json and the drift check start from."""

    f1: float
    precision: float
    recall: float
    accuracy: float
    rows: int
    confusion_matrix: list[list[int]]


def metrics(model: Any, frame: Any, schema: Schema) -> Metrics:
    """F1, precision, recall and accuracy of `model` on a labelled frame (pandas or polars).

    All four come from one confusion count (scikit-learn's formulas, zero_division=0):
    one pass instead of five validated passes, which matters on millions of rows. A row whose label is not known yet
    (an empty exited) is not counted (schema.labelled)."""
    frame = labelled(frame, schema)
    predicted = predicted_classes(model, feature_matrix(frame, schema))
    tn, fp, fn, tp = (int(c) for c in counts_of(frame[schema.target].to_numpy(), predicted))
    rows = tn + fp + fn + tp
    return {
        "f1": f1_from_counts([tn, fp, fn, tp]),
        "precision": tp / (tp + fp) if tp + fp else 0.0,
        "recall": tp / (tp + fn) if tp + fn else 0.0,
        "accuracy": (tp + tn) / rows if rows else 0.0,
        "rows": rows,
        "confusion_matrix": [[tn, fp], [fn, tp]],
    }
