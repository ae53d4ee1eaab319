"""The deployed model's quality on new rows before their labels come: confidence-based performance estimation (CBPE).

The method is NannyML's CBPE (docs/drift.md#the-label-free-estimate cites it), in numpy alone: if the model's
exit probability p is calibrated, a client it flags (predicted exit) is a true positive with chance p and a false
positive with chance 1 - p; a client it does not flag is a false negative with chance p. Summed over the new rows,
these give the expected confusion matrix, and from it the expected precision, recall and F1, without one label.
That holds only under two assumptions, said wherever the estimate is shown (ASSUMPTIONS): the link from activity
to exit is unchanged (no concept drift: a covariate shift, clients who look different, is what CBPE handles), and
the probabilities are calibrated for production data.

Calibration is judged where production is: on out-of-fold predictions over the model's own training data (the
ingested batches), never on the balanced test data, where half the clients exited against about a third in
production (`production_calibration`, run by training with the model's own settings; the record deploys with the
model). A model calibrated within sampling noise is used as it is; a miscalibrated one is recalibrated by an
isotonic map fitted on those out-of-fold predictions (judged itself out of fold, by cross-fitting), and the record
says so; one that stays miscalibrated, or whose training data is too small to judge, gets no estimate, and the
reason is recorded instead of a number.

Pure numpy at judge time (the recorded isotonic map, the model's probabilities); scikit-learn only in
`production_calibration`, which fits the folds (drs/model/estimator.py).
"""

from __future__ import annotations

from typing import Any, TypedDict

import numpy as np

from drs.core.configkeys import ModelSettings
from drs.data.schema import Schema
from drs.history.modelresults import Estimate, Isotonic, Judged, Noise, ProductionCalibration
from drs.model.calibration import calibration_error, decile_of, probabilities_of, reliability
from drs.model.estimator import feature_matrix, fit_isotonic, out_of_fold_probabilities, predicted_classes
from drs.model.metrics import f1_from_counts

METHOD = "confidence-based performance estimation (CBPE): the expected confusion matrix from calibrated probabilities"
ASSUMPTIONS = "valid only if the link from activity to exit is unchanged and the probabilities are calibrated for production data"
CALIBRATION_DATA = (
    "out-of-fold predictions (5 folds, stratified, seeded) on the model's training data, drawn like production;"
    " not the balanced test data (half exited)"
)
CALIBRATED, RECALIBRATED, REFUSED = "calibrated", "recalibrated", "refused"
FOLDS = 5
SEED = 0
MAX_ROWS = 20_000  # a seeded sample of larger training data judges calibration as well, at a bounded cost
MIN_EACH = 25  # exited and stayed clients needed, each, to judge calibration over ten deciles
NULL_DRAWS = 1000  # outcomes drawn from the probabilities themselves: the calibration error sampling alone gives
NULL_LEVEL = 0.95
LEVEL = 0.95  # of the estimate's interval
DRAWS = 2000


def calibration_noise(probabilities: np.ndarray, rng: np.random.Generator) -> float:
    """The NULL_LEVEL quantile of the calibration error of outcomes drawn from `probabilities` themselves: a model
    calibrated exactly shows up to this much over these rows from sampling alone."""
    groups = decile_of(probabilities)
    rows = np.bincount(groups)
    predicted = np.bincount(groups, weights=probabilities) / rows
    errors = []
    for start in range(0, NULL_DRAWS, 50):  # in chunks, to bound memory on large training data
        drawn = rng.random((min(50, NULL_DRAWS - start), probabilities.size)) < probabilities
        observed = np.stack([np.bincount(groups, weights=d, minlength=rows.size) for d in drawn]) / rows
        errors.append(np.abs(observed - predicted) @ rows / probabilities.size)
    return float(np.quantile(np.concatenate(errors), NULL_LEVEL))


def recalibrated(probabilities: np.ndarray, record: ProductionCalibration) -> np.ndarray:
    """The probabilities through the record's isotonic map, or unchanged when the model needed none."""
    mapping = record.get("isotonic")
    if not mapping:
        return probabilities
    mapped: np.ndarray = np.interp(probabilities, mapping["x"], mapping["y"])
    return mapped


def cross_fitted(probabilities: np.ndarray, outcomes: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Each row's probability through an isotonic map fitted on the other folds' rows: judging the map on the rows it was
    fitted on would flatter it (isotonic regression fits them closely)."""
    fold = rng.permutation(probabilities.size) % FOLDS
    mapped = np.empty_like(probabilities)
    for k in range(FOLDS):
        x, y = fit_isotonic(probabilities[fold != k], outcomes[fold != k])
        mapped[fold == k] = np.interp(probabilities[fold == k], x, y)
    return mapped


def _judged(outcomes: np.ndarray, probabilities: np.ndarray, rng: np.random.Generator) -> Judged:
    table = reliability(outcomes, probabilities)
    error, limit = calibration_error(table), calibration_noise(probabilities, rng)
    return {"error": round(error, 6), "noise_limit": round(limit, 6), "within_noise": error <= limit, "reliability": table}


class _Parts(TypedDict, total=False):
    """The judgements a calibration record holds, as far as they went."""

    out_of_fold: Judged
    after_isotonic: Judged


def production_calibration(frame: Any, schema: Schema, settings: ModelSettings) -> ProductionCalibration:
    """Whether a model with these `settings` is calibrated on data like `frame` (its training data), judged out of fold;
    the isotonic map when it needs one, or why no estimate can be trusted. The record training writes and deploys."""
    rng = np.random.default_rng(SEED)
    if len(frame) > MAX_ROWS:  # sampled before any matrix is built: ten million training rows cost no copy
        keep = np.sort(rng.choice(len(frame), MAX_ROWS, replace=False))
        frame = frame.iloc[keep] if hasattr(frame, "iloc") else frame[keep]
    x, y = feature_matrix(frame, schema), np.asarray(frame[schema.target].to_numpy(), dtype=np.int64)

    def record(status: str, reason: str | None, judged: _Parts, isotonic: Isotonic | None = None) -> ProductionCalibration:
        """The stored record, keys in their stored order."""
        return {
            "data": CALIBRATION_DATA,
            "rows": int(y.size),
            "exits": int(y.sum()),
            "isotonic": isotonic,
            **judged,
            "status": status,
            "reason": reason,
        }

    fewest = min(int(y.sum()), int(y.size - y.sum()))
    if fewest < MIN_EACH:
        reason = f"the training data holds {fewest} client(s) of its rarer class, too few to judge calibration (at least {MIN_EACH} needed)"
        return record(REFUSED, reason, {})
    oof = out_of_fold_probabilities(x, y, settings, FOLDS, SEED)
    out_of_fold = _judged(y, oof, rng)
    if out_of_fold["within_noise"]:
        return record(CALIBRATED, None, {"out_of_fold": out_of_fold})
    after = _judged(y, cross_fitted(oof, y, rng), rng)
    if after["within_noise"]:
        knots = fit_isotonic(oof, y)
        return record(RECALIBRATED, None, {"out_of_fold": out_of_fold, "after_isotonic": after}, {"x": knots[0], "y": knots[1]})
    reason = (
        f"the probabilities stay miscalibrated even after isotonic recalibration (calibration error {after['error']:.3f}"
        f" out of fold, sampling alone gives up to {after['noise_limit']:.3f})"
    )
    return record(REFUSED, reason, {"out_of_fold": out_of_fold, "after_isotonic": after})


def calibration_words(record: ProductionCalibration) -> str:
    """How the probabilities were judged, in one phrase."""
    if record.get("status") == CALIBRATED:
        judged = record["out_of_fold"]
        return f"calibrated on {record['data']} (error {judged['error']:.3f} within the {judged['noise_limit']:.3f} sampling alone gives)"
    if record.get("status") == RECALIBRATED:
        judged = record["out_of_fold"]
        return (
            f"miscalibrated on {record['data']} (error {judged['error']:.3f} > {judged['noise_limit']:.3f}),"
            f" so recalibrated by an isotonic map fitted there (error after, out of fold, {record['after_isotonic']['error']:.3f})"
        )
    return f"not trusted: {record.get('reason') or 'no calibration recorded'}"


def expected_counts(probabilities: np.ndarray, flagged: np.ndarray) -> np.ndarray:
    """[tn, fp, fn, tp] expected when each client exits with its (calibrated) probability, given whom the model flags."""
    p, flagged = np.asarray(probabilities, dtype="float64"), np.asarray(flagged, dtype=bool)
    tp, fn = float(p[flagged].sum()), float(p[~flagged].sum())
    return np.array([(~flagged).sum() - fn, flagged.sum() - tp, fn, tp])


def _interval(p: np.ndarray, flagged: np.ndarray) -> tuple[float, float]:
    """The LEVEL interval of the F1 the labels will give, if the probabilities hold: the true positives among the
    flagged and the false negatives among the others are sums of independent chances (normal approximation)."""
    rng = np.random.default_rng(SEED)
    draws = []
    for group in (p[flagged], p[~flagged]):
        mean, sd = group.sum(), np.sqrt(np.sum(group * (1 - group)))
        draws.append(np.clip(rng.normal(mean, sd, DRAWS), 0, group.size))
    tp, fn = draws
    fp = flagged.sum() - tp
    f1 = np.divide(2 * tp, 2 * tp + fp + fn, out=np.zeros(DRAWS), where=2 * tp + fp + fn > 0)
    tail = (1 - LEVEL) / 2
    low, high = np.quantile(f1, [tail, 1 - tail])
    return float(low), float(high)


def estimate(probabilities: np.ndarray, flagged: np.ndarray, calibration: ProductionCalibration | None) -> Estimate:
    """The expected F1, precision and recall of a model on new rows from its probabilities and whom it flags; no labels."""
    rows = int(np.size(probabilities))
    if not calibration or calibration.get("status") not in (CALIBRATED, RECALIBRATED):
        reason = (
            calibration.get("reason") if calibration else None
        ) or "no calibration of the probabilities on production-like data is recorded"
        status = calibration.get("status") if calibration else None
        return {"method": METHOD, "assumptions": ASSUMPTIONS, "rows": rows, "estimated": False, "reason": reason, "calibration": status}
    if rows == 0:
        return {
            "method": METHOD,
            "assumptions": ASSUMPTIONS,
            "rows": rows,
            "estimated": False,
            "reason": "no new rows",
            "calibration": calibration["status"],
        }
    p, flagged = recalibrated(np.asarray(probabilities, dtype="float64"), calibration), np.asarray(flagged, dtype=bool)
    tn, fp, fn, tp = expected_counts(p, flagged)
    low, high = _interval(p, flagged)
    return {
        "method": METHOD,
        "assumptions": ASSUMPTIONS,
        "rows": rows,
        "estimated": True,
        "f1": round(f1_from_counts([tn, fp, fn, tp]), 6),
        "precision": round(tp / (tp + fp), 6) if tp + fp else 0.0,
        "recall": round(tp / (tp + fn), 6) if tp + fn else 0.0,
        "low": round(low, 6),
        "high": round(high, 6),
        "level": LEVEL,
        "expected_confusion_matrix": [[round(tn, 3), round(fp, 3)], [round(fn, 3), round(tp, 3)]],
        "calibration": calibration["status"],
        "calibration_words": calibration_words(calibration),
    }


def of_model(model: Any, x: np.ndarray, calibration: ProductionCalibration | None) -> Estimate:
    """The estimate for `model` (fitted, or a LinearModel) on the feature matrix `x`: it never sees a label."""
    flagged = np.asarray(predicted_classes(model, x)) == 1
    return estimate(probabilities_of(model, x), flagged, calibration)


def contradiction_words(against: Noise) -> str:
    """Whether the labels contradict the estimate (drs/model/drift.py's sampling_noise of the realized F1 against it)."""
    if against["beyond_noise"]:
        return (
            f"realized minus expected F1 {against['drop']:+.4f} ({against['drop_low']:+.4f} to {against['drop_high']:+.4f}):"
            " below the estimate beyond sampling noise, so the link from activity to exit has changed (concept drift), which the estimate cannot see"
        )
    return f"realized minus expected F1 {against['drop']:+.4f} ({against['drop_low']:+.4f} to {against['drop_high']:+.4f}): the labels do not contradict the estimate"


def describe(record: Estimate, realized: float | None = None, against: Noise | None = None) -> str:
    """The estimate in one line (log, page, PDF), with the realized F1 beside it once the labels exist (and, `against`,
    whether they contradict it)."""
    if not record.get("estimated"):
        return f"no label-free estimate: {record.get('reason') or 'not recorded'}"
    line = (
        f"expected F1 {record['f1']:.4f} ({record['level']:.0%} {record['low']:.4f}-{record['high']:.4f}; precision"
        f" {record['precision']:.4f}, recall {record['recall']:.4f}) from the probabilities over {record['rows']:,} rows, before any label"
    )
    if realized is not None:
        line += f"; realized F1 {realized:.4f} ({realized - record['f1']:+.4f}"
        line += f", {'beyond' if against['beyond_noise'] else 'within'} sampling noise)" if against else ")"
    return f"{line}; {record['assumptions']}"
