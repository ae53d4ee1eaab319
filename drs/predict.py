"""Predictions from a fitted model without scikit-learn's per-call overhead.

scikit-learn's `predict_proba` and `predict` validate their input on every
call (about 0.3 ms each), which is most of the time a one-record API request
takes. For the project's models, a binary LogisticRegression, alone or behind
a StandardScaler, both are one affine map: z = x·w + b, probability expit(z),
class `classes_[z > 0]`, exactly what scikit-learn computes. `scorer_for`
returns that fast path when the model is of that kind, and scikit-learn's own
methods otherwise; a test checks the two agree.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import numpy as np
from scipy.special import expit

Scores = tuple[np.ndarray, np.ndarray]


@dataclass(frozen=True)
class Scorer:
    """`score(x)` gives (class, probability of the positive class) per row of x."""

    score: Callable[[np.ndarray], Scores]
    fast: bool


def _linear_parts(model: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray, float] | None:
    """(mean, scale, weights, intercept) if the model is a binary logistic regression, maybe scaled."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler

    scaler = None
    if isinstance(model, Pipeline):
        steps = [step for _, step in model.steps if step not in (None, "passthrough")]
        if len(steps) == 2 and type(steps[0]) is StandardScaler:
            scaler, model = steps
        elif len(steps) == 1:
            model = steps[0]
        else:
            return None
    if type(model) is not LogisticRegression or len(getattr(model, "classes_", ())) != 2:
        return None
    weights = np.asarray(model.coef_, dtype="float64").ravel()
    n = weights.shape[0]
    mean = np.zeros(n)
    scale = np.ones(n)
    if scaler is not None:
        if scaler.mean_ is not None:
            mean = np.asarray(scaler.mean_, dtype="float64")
        if scaler.scale_ is not None:
            scale = np.asarray(scaler.scale_, dtype="float64")
    return mean, scale, weights, float(model.intercept_[0])


def scorer_for(model: Any) -> Scorer:
    """The fastest exact way to score `model`."""
    parts = _linear_parts(model)
    if parts is None:
        return Scorer(lambda x: (model.predict(x), model.predict_proba(x)[:, 1]), fast=False)
    mean, scale, weights, intercept = parts
    classes = np.asarray(model.classes_)
    scaled = bool(np.any(mean != 0) or np.any(scale != 1))

    def score(x: np.ndarray) -> Scores:
        if scaled:
            x = (x - mean) / scale
        z = x @ weights + intercept
        return classes[(z > 0).astype(int)], expit(z)

    return Scorer(score, fast=True)
