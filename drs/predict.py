"""Predictions from a fitted model without scikit-learn's per-call overhead, or without scikit-learn.

scikit-learn's `predict_proba` and `predict` validate their input on every
call (about 0.3 ms each), which is most of the time a one-record API request
takes. For the project's models, a binary LogisticRegression, alone or behind
a StandardScaler, both are one affine map: z = x·w + b, probability expit(z),
class `classes_[z > 0]`, exactly what scikit-learn computes. `LinearModel`
holds that map as plain numpy arrays; `linear_model_of` takes it from a fitted
model, `LinearModel.from_record` from the copy training writes into
trainedmodel.json, so scoring can skip unpickling (importing scikit-learn
costs about 1.2 s). `scorer_for` returns the fast path when the model is of
that kind, and scikit-learn's own methods otherwise; tests check they agree.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

Scores = tuple[np.ndarray, np.ndarray]


@dataclass(frozen=True)
class Scorer:
    """`score(x)` gives (class, probability of the positive class) per row of x."""

    score: Callable[[np.ndarray], Scores]
    fast: bool


@dataclass(frozen=True, eq=False)
class LinearModel:
    """A binary logistic regression, maybe behind a standard scaler, as numpy arrays only.

    `labels` are the model's `classes_` (negative, positive)."""

    mean: np.ndarray
    scale: np.ndarray
    weights: np.ndarray
    intercept: float
    labels: np.ndarray
    _scaled: bool = field(init=False, repr=False)

    def __post_init__(self) -> None:
        # decided once, not per call: the API scores one record at a time
        object.__setattr__(self, "_scaled", bool(np.any(self.mean != 0) or np.any(self.scale != 1)))

    def decision(self, x: np.ndarray) -> np.ndarray:
        """z = ((x - mean) / scale)·w + b, the scaling skipped when it is the identity."""
        if self._scaled:
            x = (x - self.mean) / self.scale
        return x @ self.weights + self.intercept

    def classes(self, x: np.ndarray) -> np.ndarray:
        return self._classes(self.decision(x))

    def score(self, x: np.ndarray) -> Scores:
        """(class, probability) from one evaluation of the affine map (scipy imported here: class-only scoring needs none)."""
        from scipy.special import expit

        z = self.decision(x)
        return self._classes(z), expit(z)

    predict = classes  # scikit-learn's name, so scoring.metrics takes either kind of model

    def _classes(self, z: np.ndarray) -> np.ndarray:
        return self.labels[(z > 0).astype(int)]

    def to_record(self) -> dict[str, Any]:
        """JSON-ready lists; floats are written by repr, so they read back exactly."""
        return {
            "mean": self.mean.tolist(),
            "scale": self.scale.tolist(),
            "weights": self.weights.tolist(),
            "intercept": self.intercept,
            "classes": self.labels.tolist(),
        }

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> "LinearModel":
        """The model `to_record` described; ValueError if the record is not one."""
        try:
            mean, scale, weights = (np.asarray(record[k], dtype="float64") for k in ("mean", "scale", "weights"))
            labels = np.asarray(record["classes"])
            intercept = float(record["intercept"])
        except (KeyError, TypeError) as exc:
            raise ValueError(f"not a linear model record: {exc!r}") from None
        if weights.ndim != 1 or mean.shape != weights.shape or scale.shape != weights.shape or labels.shape != (2,):
            raise ValueError("not a linear model record: shapes do not match")
        return cls(mean, scale, weights, intercept, labels)


def linear_model_of(model: Any) -> LinearModel | None:
    """The model as a LinearModel if it is a binary logistic regression, maybe scaled; None otherwise."""
    parts = _linear_parts(model)
    if parts is None:
        return None
    return LinearModel(*parts, labels=np.asarray(model.classes_))


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
    if scaler is not None:  # mean_ is set even with with_mean=False, but only what transform() uses counts
        if scaler.with_mean and scaler.mean_ is not None:
            mean = np.asarray(scaler.mean_, dtype="float64")
        if scaler.with_std and scaler.scale_ is not None:
            scale = np.asarray(scaler.scale_, dtype="float64")
    return mean, scale, weights, float(model.intercept_[0])


def scorer_for(model: Any) -> Scorer:
    """The fastest exact way to score `model`."""
    linear = linear_model_of(model)
    if linear is None:
        return Scorer(lambda x: (model.predict(x), model.predict_proba(x)[:, 1]), fast=False)
    return Scorer(linear.score, fast=True)
