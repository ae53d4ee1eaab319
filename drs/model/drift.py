"""Drift decisions as pure functions: the three score tests, data drift per feature, and their settings.

Score drift asks whether the deployed model's F1 on new data is too low:

- `raw` (the course's rule): new F1 < the deployed `latestscore`.
- `parametric`: new F1 < mean - 2 * std (sample std) of the lineage's F1 history.
- `nonparametric`: new F1 < Q1 - 1.5 * IQR of that history (Tukey's lower fence).

With fewer history points than a test needs (`drift_min_history`), the test falls
back to `raw` and the verdict says so. F1 needs clients that exited: with none in
the new rows it is undefined (scikit-learn's 0 by zero_division is no score), and
with fewer than MIN_EXITS it says nothing; then no score test runs, the verdict
says why (`measured` false) and finds no drift, and data drift decides alone. Data drift compares each feature of the
data the deployed model was trained on with the new data: a two-sample
Kolmogorov-Smirnov test (drift when p < 0.05) and the population stability
index (drift when PSI > 0.2). The tests and their history sizes are chosen
in config.json (drs/core/settings.py: drift_test, drift_min_history).

scipy.stats (about 0.8 s and 66 MB to import) is imported inside the two KS
functions only: ingestion, which runs before them, and the web page, which only
words the verdicts, never load it.
"""

from __future__ import annotations

import statistics
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from drs.history.modelresults import DataDriftVerdict, FeatureDriftRow, Noise, ScoreVerdict

RAW = "raw"
PARAMETRIC = "parametric"
NONPARAMETRIC = "nonparametric"
KS_ALPHA = 0.05
PSI_THRESHOLD = 0.2
PSI_BINS = 10
PSI_FLOOR = 1e-4  # share given to an empty bin, so that the logarithm stays finite


MIN_EXITS = 10  # fewer exited clients in the new rows than this: their F1 is too coarse to judge (docs/drift.md)


def unmeasurable(exits: int, min_exits: int = MIN_EXITS) -> str | None:
    """Why the model's F1 on new rows with `exits` exited clients cannot be judged, or None when it can."""
    if exits <= 0:
        return "the new rows hold no client that exited, so the model's F1 on them cannot be measured; the score test was not run"
    if exits < min_exits:
        return (
            f"the new rows hold only {exits} client(s) that exited, too few for the model's F1 on them to mean anything"
            f" (at least {min_exits} needed); the score test was not run"
        )
    return None


def not_measured(test: str, reason: str) -> ScoreVerdict:
    """The verdict of a score test that could not run: no F1, no threshold, no drift."""
    return {
        "requested_test": test,
        "test": test,
        "fallback": None,
        "measured": False,
        "reason": reason,
        "new_data_f1": None,
        "drift": False,
    }


def score_drift(test: str, new_f1: float, deployed_score: float, history: Sequence[float], min_history: Mapping[str, int]) -> ScoreVerdict:
    """The verdict of `test` (raw, parametric or nonparametric) with the numbers behind it; a short history falls back to `raw`."""
    if test not in (RAW, PARAMETRIC, NONPARAMETRIC):
        raise ValueError(f"unknown drift test {test!r} (expected raw, parametric or nonparametric)")
    points = [float(x) for x in history]
    verdict: ScoreVerdict = {
        "requested_test": test,
        "test": test,
        "fallback": None,
        "measured": True,
        "new_data_f1": round(new_f1, 6),
        "deployed_score": round(deployed_score, 6),
        "history": [round(x, 6) for x in points],
        "history_points": len(points),
        "drift": False,
    }
    needed = min_history.get(test, 0)
    if test != RAW and len(points) < needed:
        verdict["test"] = RAW
        verdict["fallback"] = f"{test} needs at least {needed} F1 values in the lineage's history, it has {len(points)}; used raw"
    if verdict["test"] == PARAMETRIC:
        mean, std = statistics.fmean(points), statistics.stdev(points)
        threshold = mean - 2 * std
        verdict["mean"], verdict["std"], verdict["threshold"] = round(mean, 6), round(std, 6), round(threshold, 6)
        verdict["rule"] = "new F1 < mean - 2*std"
    elif verdict["test"] == NONPARAMETRIC:
        q1, _, q3 = statistics.quantiles(points, n=4, method="inclusive")
        threshold = q1 - 1.5 * (q3 - q1)
        verdict["q1"], verdict["q3"], verdict["iqr"] = round(q1, 6), round(q3, 6), round(q3 - q1, 6)
        verdict["threshold"], verdict["rule"] = round(threshold, 6), "new F1 < Q1 - 1.5*IQR"
    else:
        threshold = deployed_score
        verdict["threshold"], verdict["rule"] = round(threshold, 6), "new F1 < deployed latestscore"
    verdict["drift"] = new_f1 < threshold  # stored last, as before
    return verdict


NOISE_LEVEL = 0.95
NOISE_RESAMPLES = 2000
NOISE_SEED = 0


def _f1_of_draws(draws: Any) -> Any:
    """F1 of each row of [tn, fp, fn, tp] counts (0 where undefined, as metrics.f1_from_counts)."""
    tp, denominator = draws[:, 3], 2 * draws[:, 3] + draws[:, 1] + draws[:, 2]
    return np.divide(2 * tp, denominator, out=np.zeros(len(draws)), where=denominator > 0)


def _resampled_f1(counts: Sequence[int], size: int, rng: Any) -> Any:
    """F1 over `size` rows drawn with replacement from rows with these [tn, fp, fn, tp] counts, once per resample.

    Drawing rows with replacement is drawing the four counts from a multinomial: the same bootstrap as resampling
    the rows themselves, in O(resamples) whatever the number of rows."""
    total = int(np.sum(counts))
    return _f1_of_draws(rng.multinomial(size, np.asarray(counts, dtype="float64") / total, size=NOISE_RESAMPLES))


def sampling_noise(new_counts: Sequence[int], threshold: float, threshold_counts: Sequence[int] | None = None) -> Noise:
    """How far sampling alone moves the drift decision: a seeded percentile bootstrap (NOISE_RESAMPLES draws).

    `low`-`high`: the NOISE_LEVEL interval of the deployed model's F1 over that many new rows (its confusion
    counts `new_counts`, [tn, fp, fn, tp]). When the threshold was itself measured on a sample (raw: F1 on the
    test data, `threshold_counts`), that sample is resampled too, each draw centred on the recorded threshold.
    `drop_low`-`drop_high`: the interval of new F1 - threshold; `beyond_noise` when even its top is below 0.
    `share_at_or_above`: the share of draws in which sampling alone leaves no drop at all."""
    rows = int(np.sum(new_counts))
    if rows == 0:
        raise ValueError("the sampling noise of F1 needs at least one row")
    rng = np.random.default_rng(NOISE_SEED)
    new = _resampled_f1(new_counts, rows, rng)
    varies = threshold_counts is not None and int(np.sum(threshold_counts)) > 0
    if varies and threshold_counts is not None:
        measured = _f1_of_draws(np.asarray([threshold_counts]))[0]
        limit = threshold + _resampled_f1(threshold_counts, int(np.sum(threshold_counts)), rng) - measured
    else:
        limit = np.full(NOISE_RESAMPLES, threshold)
    tail = (1 - NOISE_LEVEL) / 2
    low, high = np.quantile(new, [tail, 1 - tail])
    drop_low, drop_high = np.quantile(new - limit, [tail, 1 - tail])
    new_f1 = float(_f1_of_draws(np.asarray([new_counts]))[0])
    return {
        "level": NOISE_LEVEL,
        "resamples": NOISE_RESAMPLES,
        "seed": NOISE_SEED,
        "rows": rows,
        "low": round(float(low), 6),
        "high": round(float(high), 6),
        "threshold_rows": int(np.sum(threshold_counts)) if varies and threshold_counts is not None else None,
        "drop": round(new_f1 - threshold, 6),
        "drop_low": round(float(drop_low), 6),
        "drop_high": round(float(drop_high), 6),
        "share_at_or_above": round(float(np.mean(new >= limit)), 4),
        "beyond_noise": bool(drop_high < 0),
    }


def describe_noise(noise: Noise) -> str:
    """One line: the interval, and whether the drop is beyond what sampling alone gives."""
    both = f" and {noise['threshold_rows']:,} test rows" if noise.get("threshold_rows") else ""
    verdict = "beyond sampling noise" if noise["beyond_noise"] else "within sampling noise"
    return (
        f"{noise['level']:.0%} bootstrap interval of F1 over {noise['rows']:,} rows {noise['low']:.4f}-{noise['high']:.4f};"
        f" F1 minus threshold {noise['drop']:+.4f} ({noise['drop_low']:+.4f} to {noise['drop_high']:+.4f} resampling the new rows{both}):"
        f" {verdict} (no drop in {noise['share_at_or_above']:.0%} of {noise['resamples']} resamples)"
    )


def describe_score_drift(v: Mapping[str, Any]) -> str:
    """One log line: which test, its numbers, its verdict (or why it was not run)."""
    if v.get("measured") is False:
        return f"score not measurable: {v.get('reason') or 'no reason recorded'} -> no score drift decided"
    if v["test"] == PARAMETRIC:
        numbers = f"mean {v['mean']:.4f} - 2*std {v['std']:.4f} = {v['threshold']:.4f} over {v['history_points']} F1 values"
    elif v["test"] == NONPARAMETRIC:
        numbers = f"Q1 {v['q1']:.4f} - 1.5*IQR {v['iqr']:.4f} = {v['threshold']:.4f} over {v['history_points']} F1 values"
    else:
        numbers = f"its latestscore {v['deployed_score']:.4f}"
    return f"F1 on the new data {v['new_data_f1']:.4f} vs {numbers} -> {'drift' if v['drift'] else 'no drift'}"


def ks_test(reference: ArrayLike, current: ArrayLike) -> tuple[float, float]:
    """Two-sample Kolmogorov-Smirnov statistic and p-value (scipy)."""
    from scipy.stats import ks_2samp

    result = ks_2samp(reference, current)
    return float(result.statistic), float(result.pvalue)


def psi_edges(reference: ArrayLike, bins: int = PSI_BINS) -> Any:
    """The reference's inner quantiles (deciles by default), repeated edges (from tied values) merged."""
    ref = np.asarray(reference, dtype="float64")
    if ref.size == 0:
        raise ValueError("PSI needs at least one value in each sample")
    return np.unique(np.quantile(ref, np.linspace(0, 1, bins + 1)[1:-1]))


def bin_counts(edges: Any, values: ArrayLike) -> Any:
    """How many of `values` fall in each PSI bin (edges.size + 1 bins)."""
    return np.bincount(np.searchsorted(edges, np.asarray(values, dtype="float64"), side="right"), minlength=len(edges) + 1)


def psi_from_counts(ref_counts: Any, cur_counts: Any) -> float:
    """PSI = sum((cur - ref) * ln(cur / ref)) over bin shares, each floored at PSI_FLOOR (an empty bin counts as a large but finite change)."""
    ref_total, cur_total = int(np.sum(ref_counts)), int(np.sum(cur_counts))
    if ref_total == 0 or cur_total == 0:
        raise ValueError("PSI needs at least one value in each sample")
    ref_share = np.maximum(np.asarray(ref_counts) / ref_total, PSI_FLOOR)
    cur_share = np.maximum(np.asarray(cur_counts) / cur_total, PSI_FLOOR)
    return float(np.sum((cur_share - ref_share) * np.log(cur_share / ref_share)))


def psi(reference: ArrayLike, current: ArrayLike, bins: int = PSI_BINS) -> float:
    """Population stability index over the reference's quantile bins (see psi_edges, psi_from_counts)."""
    if np.asarray(current).size == 0:
        raise ValueError("PSI needs at least one value in each sample")
    edges = psi_edges(reference, bins)
    return psi_from_counts(bin_counts(edges, reference), bin_counts(edges, current))


def ks_from_counts(values: Any, counts: Any, current: ArrayLike, expand_limit: int) -> tuple[float, float]:
    """The two-sample KS test of a reference given as sorted distinct values and their counts, against `current`.

    Up to `expand_limit` reference values, the reference is expanded and scipy's ks_2samp decides (so the
    numbers are exactly those of ks_test). Above it (and so above scipy's exact-method limit of 10,000), the
    statistic is computed exactly, as ks_2samp does (both empirical CDFs at every point of either sample),
    and the p-value by the asymptotic formula ks_2samp uses for such sizes (scipy.stats.kstwo)."""
    values, counts = np.asarray(values, dtype="float64"), np.asarray(counts, dtype="int64")
    n1, cur = int(counts.sum()), np.sort(np.asarray(current, dtype="float64"))
    if n1 <= expand_limit:
        return ks_test(np.repeat(values, counts), cur)
    from scipy.stats import kstwo

    n2 = cur.size
    if n2 == 0:
        raise ValueError("ks_2samp needs at least one value in each sample")
    points = np.concatenate([values, cur])
    below = np.concatenate([[0], np.cumsum(counts)])
    differences = below[np.searchsorted(values, points, side="right")] / n1 - np.searchsorted(cur, points, side="right") / n2
    statistic = float(max(differences.max(), np.clip(-differences.min(), 0, 1)))
    m, n = sorted([float(n1), float(n2)], reverse=True)
    return statistic, float(np.clip(kstwo.sf(statistic, np.round(m * n / (m + n))), 0, 1))


def drift_row(name: str, reference_rows: int, new_rows: int, ks: tuple[float, float], index: float) -> FeatureDriftRow:
    """One feature's line of the data-drift table."""
    statistic, p_value = ks
    return {
        "feature": name,
        "reference_rows": reference_rows,
        "new_rows": new_rows,
        "ks_statistic": round(statistic, 6),
        "ks_p_value": float(f"{p_value:.6g}"),
        "ks_drift": p_value < KS_ALPHA,
        "psi": round(index, 6),
        "psi_drift": index > PSI_THRESHOLD,
    }


def feature_drift(reference: Any, current: Any, features: Sequence[str]) -> list[FeatureDriftRow]:
    """One row per feature: KS statistic and p-value, PSI, and each verdict."""
    return [
        drift_row(
            name, len(reference[name]), len(current[name]), ks_test(reference[name], current[name]), psi(reference[name], current[name])
        )
        for name in features
    ]


def data_drift_verdict(rows: Sequence[FeatureDriftRow]) -> DataDriftVerdict:
    """A feature has drifted when both tests say so: KS alone flags trivial shifts in large samples, PSI alone is noisy in small ones."""
    drifted = [r["feature"] for r in rows if r["ks_drift"] and r["psi_drift"]]
    return {"drift": bool(drifted), "drifted_features": drifted, "rule": f"KS p < {KS_ALPHA} and PSI > {PSI_THRESHOLD}"}


def format_feature_table(rows: Sequence[FeatureDriftRow]) -> list[str]:
    """The data-drift table as fixed-width lines for the log."""
    lines = [f"{'feature':22} {'KS stat':>8} {'KS p':>10} {'KS':>6} {'PSI':>8} {'PSI':>6}"]
    for r in rows:
        lines.append(
            f"{r['feature']:22} {r['ks_statistic']:8.4f} {r['ks_p_value']:10.3g} {'drift' if r['ks_drift'] else 'ok':>6}"
            f" {r['psi']:8.4f} {'drift' if r['psi_drift'] else 'ok':>6}"
        )
    return lines
