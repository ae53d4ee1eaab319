"""The model: how it is built and fitted, its feature matrix, and its predictions; one place each.

scikit-learn and scipy are imported only inside the functions that need
them: scoring (classes only) from the linear parts recorded in
trainedmodel.json needs neither, which saves about 1.3 s of imports.

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

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypedDict

import numpy as np

from drs.core.configkeys import ModelSettings
from drs.core.errors import StageError
from drs.data.schema import Schema

Scores = tuple[np.ndarray, np.ndarray]


class LinearRecord(TypedDict):
    """`LinearModel.to_record`: the linear parts trainedmodel.json holds (`linear`)."""

    mean: list[float]
    scale: list[float]
    weights: list[float]
    intercept: float
    classes: list[Any]  # the model's classes_, as JSON gives them back


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
        z: np.ndarray = x @ self.weights + self.intercept
        return z

    def classes(self, x: np.ndarray) -> np.ndarray:
        return self._classes(self.decision(x))

    def score(self, x: np.ndarray) -> Scores:
        """(class, probability) from one evaluation of the affine map."""
        from scipy.special import expit

        z = self.decision(x)
        return self._classes(z), expit(z)

    predict = classes  # scikit-learn's name, so drs.model.metrics takes either kind of model

    def _classes(self, z: np.ndarray) -> np.ndarray:
        labels: np.ndarray = self.labels[(z > 0).astype(int)]
        return labels

    def to_record(self) -> LinearRecord:
        """JSON-ready lists; floats are written by repr, so they read back exactly."""
        return {
            "mean": self.mean.tolist(),
            "scale": self.scale.tolist(),
            "weights": self.weights.tolist(),
            "intercept": self.intercept,
            "classes": self.labels.tolist(),
        }

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> LinearModel:
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
    linear = model if isinstance(model, LinearModel) else linear_model_of(model)
    if linear is None:
        return Scorer(lambda x: (model.predict(x), model.predict_proba(x)[:, 1]), fast=False)
    return Scorer(linear.score, fast=True)


def predicted_classes(model: Any, x: np.ndarray) -> np.ndarray:
    """Classes of a fitted model or a LinearModel (class-only: no probabilities computed)."""
    return np.asarray(model.predict(x))


def exit_probabilities(model: Any, x: np.ndarray) -> np.ndarray:
    """The probability of the positive class (exit) for each row of `x`."""
    return scorer_for(model).score(x)[1]


def feature_matrix(frame: Any, schema: Schema, dtype: str = "float64") -> np.ndarray:
    """Features (config order) of a pandas or polars frame; the model is fitted on arrays, not names."""
    return np.asarray(frame[list(schema.features)].to_numpy(), dtype=dtype)


def build_model(settings: ModelSettings) -> Any:
    """The course's model (C=1.0, liblinear, random_state 0) unless the config's `model` says otherwise.

    `scale: true` puts a StandardScaler in front, which solvers such as lbfgs need;
    `dtype: "float32"` fits on float32 features (half the memory traffic); see
    docs/performance.md for when to leave liblinear on millions of rows.
    """
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    model = LogisticRegression(
        C=float(settings["C"]),
        solver=str(settings["solver"]),
        random_state=int(settings["random_state"]),
        max_iter=int(settings["max_iter"]),
    )
    return make_pipeline(StandardScaler(), model) if settings.get("scale") else model


def fit(frame: Any, schema: Schema, settings: ModelSettings) -> Any:
    """Fit a model on a checked frame; pure (no I/O)."""
    x = feature_matrix(frame, schema, str(settings.get("dtype", "float64")))
    y = frame[schema.target].to_numpy()
    if len(np.unique(y)) < 2:
        raise StageError(f"training data has only one class in '{schema.target}'; cannot fit a classifier")
    return build_model(settings).fit(x, y)


def out_of_fold_probabilities(x: np.ndarray, y: np.ndarray, settings: ModelSettings, folds: int, seed: int) -> np.ndarray:
    """The exit probability of each row from a model with these settings fitted on the other folds (stratified, seeded):
    what the model would say of rows it has not seen, drawn like its training data (drs/model/estimate.py judges calibration on it)."""
    from sklearn.model_selection import StratifiedKFold, cross_val_predict

    cv = StratifiedKFold(folds, shuffle=True, random_state=seed)
    return np.asarray(cross_val_predict(build_model(settings), x, y, cv=cv, method="predict_proba")[:, 1])


def fit_isotonic(probabilities: np.ndarray, y: np.ndarray) -> tuple[list[float], list[float]]:
    """An isotonic regression of the outcomes on the probabilities, as the knots (x, y) of the piecewise-linear map it
    predicts with (out of range: the end values); `numpy.interp` over the knots gives scikit-learn's predictions."""
    from sklearn.isotonic import IsotonicRegression

    fitted = IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip").fit(probabilities, y)
    return [float(v) for v in fitted.X_thresholds_], [float(v) for v in fitted.y_thresholds_]
