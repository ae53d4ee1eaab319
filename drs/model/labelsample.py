"""The concept-drift alarm from a few labels: a labelled sample of a batch against the estimate and the threshold.

When only some labels of a batch are known (a random sample of clients whose outcome was checked early, or the
labels that have matured), their F1 is a noisy reading of the deployed model's F1 on the batch. The label-free
estimate (drs/model/estimate.py) cannot see concept drift, a change in the link from activity to exit; the sample can.
The alarm goes off when the sample contradicts, beyond sampling noise, either

- the estimate: the model does worse than its own probabilities promise, so the link has changed (concept drift),
  whatever the probabilities say; or
- the threshold of the score test the full process would apply once all labels are in (the raw test's is the
  deployed latestscore): the drift decision to come is already known.

"Beyond sampling noise" is drs/model/drift.py's seeded bootstrap, the one the score test reports: the top of the 95%
interval of sample F1 minus the bar is below 0 (resampling the test data too for the raw threshold, which was
measured on it). Each side is one-sided at 2.5%, so a model that holds raises a false alarm at most 5% of the time;
docs/drift.md has the measured power (tools/label_power.py). Pure: numpy through drs/model/drift.py.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, cast

import numpy as np

from drs.data.readers import labelled
from drs.data.schema import Schema
from drs.history.modelresults import LabelledSample
from drs.model import drift
from drs.model.estimator import feature_matrix, predicted_classes
from drs.model.metrics import counts_of, f1_from_counts


def check(
    counts: Sequence[int], estimated_f1: float | None, threshold: float, threshold_counts: Sequence[int] | None = None
) -> LabelledSample:
    """The verdict of a labelled sample with these [tn, fp, fn, tp] counts of the deployed model."""
    tn, fp, fn, tp = (int(c) for c in counts)
    labels, exits = tn + fp + fn + tp, fn + tp
    reason = drift.unmeasurable(fn + tp)
    if reason is not None:
        reason = reason.replace("the new rows hold", "the labelled sample holds").replace("; the score test was not run", "")
        return {
            "labels": labels,
            "exits": exits,
            "estimated_f1": estimated_f1,
            "threshold": threshold,
            "measured": False,
            "reason": reason,
            "f1": None,
            "alarm": False,
        }
    against_threshold = drift.sampling_noise([tn, fp, fn, tp], threshold, threshold_counts)
    against_estimate = drift.sampling_noise([tn, fp, fn, tp], estimated_f1) if estimated_f1 is not None else None
    below_estimate = bool(against_estimate and against_estimate["beyond_noise"])
    return {
        "labels": labels,
        "exits": exits,
        "estimated_f1": estimated_f1,
        "threshold": threshold,
        "measured": True,
        "f1": round(f1_from_counts([tn, fp, fn, tp]), 6),
        "low": against_threshold["low"],
        "high": against_threshold["high"],
        "level": against_threshold["level"],
        "below_estimate": below_estimate,
        "below_threshold": against_threshold["beyond_noise"],
        "alarm": below_estimate or against_threshold["beyond_noise"],
        "against_estimate": against_estimate,
        "against_threshold": against_threshold,
    }


def sample_counts(model: Any, frame: Any, schema: Schema, size: int, rng: np.random.Generator) -> tuple[list[int], np.ndarray]:
    """The deployed model's [tn, fp, fn, tp] on a random sample of `size` rows of a labelled frame (all rows when it
    has fewer), and which rows were drawn (positions among its labelled rows: a row with no label yet is never drawn)."""
    frame = labelled(frame, schema)
    rows = len(frame)
    chosen = np.sort(rng.choice(rows, min(size, rows), replace=False))
    sample = frame.iloc[chosen] if hasattr(frame, "iloc") else frame[chosen]
    predicted = predicted_classes(model, feature_matrix(sample, schema))
    return [int(c) for c in counts_of(sample[schema.target].to_numpy(), predicted)], chosen


def describe(record: LabelledSample) -> str:
    """The sample's verdict in one line, with the number of labels it used."""
    labels = f"{record['labels']:,} labelled client(s), {record['exits']:,} exited"
    if not record.get("measured"):
        return f"{labels}: no verdict ({record.get('reason')})"
    reading = f"{labels}: F1 {record['f1']:.4f} ({record['level']:.0%} {record['low']:.4f}-{record['high']:.4f})"
    parts = []
    if record.get("estimated_f1") is not None:
        found = "below it beyond sampling noise (concept drift)" if record["below_estimate"] else "no contradiction"
        parts.append(f"vs the estimate {record['estimated_f1']:.4f}: {found}")
    found = "below it beyond sampling noise" if record["below_threshold"] else "no contradiction"
    parts.append(f"vs the threshold {record['threshold']:.4f}: {found}")
    return f"{reading}; {'; '.join(parts)} -> {'ALARM' if record['alarm'] else 'no alarm'}"


def recorded_words(check: Mapping[str, Any]) -> str | None:
    """A drift check's labelled-sample verdict as the page and the PDF show it (a partly labelled batch, drs/pipeline/judge.py),
    with how many of the new rows were labelled; None when the check has none."""
    sample = check.get("labelled_sample")
    if not isinstance(sample, Mapping):
        return None
    try:
        of = f"{sample['labels']:,} of {sample.get('of', check.get('new_rows', 0)):,} new rows labelled so far: "
        return of + describe(cast("LabelledSample", sample)) + (f" (caveat: {sample['caveat']})" if sample.get("caveat") else "")
    except (KeyError, TypeError, ValueError):
        return None
