"""Drift decisions as pure functions: the three score tests, data drift per feature, and their settings.

Score drift asks whether the deployed model's F1 on new data is too low:

- `raw` (the course's rule): new F1 < the deployed `latestscore`.
- `parametric`: new F1 < mean - 2 * std (sample std) of the lineage's F1 history.
- `nonparametric`: new F1 < Q1 - 1.5 * IQR of that history (Tukey's lower fence).

With fewer history points than a test needs (`MIN_HISTORY`), the test falls
back to `raw` and the verdict says so. Data drift compares each feature of the
data the deployed model was trained on with the new data: a two-sample
Kolmogorov-Smirnov test (drift when p < 0.05) and the population stability
index (drift when PSI > 0.2). numpy and scipy are imported only inside the
functions that need them, so importing this module costs nothing.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

RAW = "raw"
PARAMETRIC = "parametric"
NONPARAMETRIC = "nonparametric"
DRIFT_TESTS = (RAW, PARAMETRIC, NONPARAMETRIC)
MIN_HISTORY = {PARAMETRIC: 3, NONPARAMETRIC: 5}
KS_ALPHA = 0.05
PSI_THRESHOLD = 0.2
PSI_BINS = 10
PSI_FLOOR = 1e-4  # share given to an empty bin, so that the logarithm stays finite


class SettingsError(ValueError):
    """A drift or promotion setting in config.json that cannot be used."""


@dataclass(frozen=True)
class DriftSettings:
    """The config.json keys of the drift tests and the promotion gate, checked."""

    drift_test: str = RAW
    min_history: dict[str, int] = field(default_factory=lambda: dict(MIN_HISTORY))
    data_drift_retrain: bool = False
    promotion_min_improvement: float = 0.0


def settings_from(raw: Mapping[str, Any], source: str = "config") -> DriftSettings:
    """Read `drift_test`, `drift_min_history`, `data_drift_retrain`, `promotion_min_improvement`."""
    test = raw.get("drift_test", RAW)
    if test not in DRIFT_TESTS:
        raise SettingsError(f"{source}: key 'drift_test' must be one of {', '.join(DRIFT_TESTS)}, not {test!r}")
    given = raw.get("drift_min_history", {})
    if not isinstance(given, dict) or any(k not in MIN_HISTORY for k in given):
        raise SettingsError(f"{source}: key 'drift_min_history' must be an object with keys among {', '.join(MIN_HISTORY)}")
    min_history = {**MIN_HISTORY, **given}
    for name, value in min_history.items():
        if isinstance(value, bool) or not isinstance(value, int) or value < 2:
            raise SettingsError(f"{source}: drift_min_history.{name} must be a whole number of at least 2, not {value!r}")
    retrain = raw.get("data_drift_retrain", False)
    if not isinstance(retrain, bool):
        raise SettingsError(f"{source}: key 'data_drift_retrain' must be true or false, not {retrain!r}")
    minimum = raw.get("promotion_min_improvement", 0.0)
    if isinstance(minimum, bool) or not isinstance(minimum, (int, float)) or not math.isfinite(minimum):
        raise SettingsError(f"{source}: key 'promotion_min_improvement' must be a number, not {minimum!r}")
    return DriftSettings(test, min_history, retrain, float(minimum))


def score_drift(
    test: str, new_f1: float, deployed_score: float, history: Sequence[float], min_history: Mapping[str, int] = MIN_HISTORY
) -> dict[str, Any]:
    """The verdict of `test` with the numbers behind it; a short history falls back to `raw`."""
    import statistics

    if test not in DRIFT_TESTS:
        raise SettingsError(f"unknown drift test {test!r} (expected one of {', '.join(DRIFT_TESTS)})")
    points = [float(x) for x in history]
    verdict: dict[str, Any] = {
        "requested_test": test, "test": test, "fallback": None, "new_data_f1": round(new_f1, 6),
        "deployed_score": round(deployed_score, 6), "history": [round(x, 6) for x in points], "history_points": len(points),
    }
    needed = min_history.get(test, 0)
    if test != RAW and len(points) < needed:
        verdict["test"] = RAW
        verdict["fallback"] = f"{test} needs at least {needed} F1 values in the lineage's history, it has {len(points)}; used raw"
    if verdict["test"] == PARAMETRIC:
        mean, std = statistics.fmean(points), statistics.stdev(points)
        verdict.update(mean=round(mean, 6), std=round(std, 6), threshold=round(mean - 2 * std, 6), rule="new F1 < mean - 2*std")
        threshold = mean - 2 * std
    elif verdict["test"] == NONPARAMETRIC:
        q1, _, q3 = statistics.quantiles(points, n=4, method="inclusive")
        threshold = q1 - 1.5 * (q3 - q1)
        verdict.update(q1=round(q1, 6), q3=round(q3, 6), iqr=round(q3 - q1, 6), threshold=round(threshold, 6), rule="new F1 < Q1 - 1.5*IQR")
    else:
        threshold = deployed_score
        verdict.update(threshold=round(threshold, 6), rule="new F1 < deployed latestscore")
    verdict["drift"] = new_f1 < threshold
    return verdict


def describe_score_drift(v: Mapping[str, Any]) -> str:
    """One log line: which test, its numbers, its verdict."""
    if v["test"] == PARAMETRIC:
        numbers = f"mean {v['mean']:.4f} - 2*std {v['std']:.4f} = {v['threshold']:.4f} over {v['history_points']} F1 values"
    elif v["test"] == NONPARAMETRIC:
        numbers = f"Q1 {v['q1']:.4f} - 1.5*IQR {v['iqr']:.4f} = {v['threshold']:.4f} over {v['history_points']} F1 values"
    else:
        numbers = f"its latestscore {v['deployed_score']:.4f}"
    return f"F1 on the new data {v['new_data_f1']:.4f} vs {numbers} -> {'drift' if v['drift'] else 'no drift'}"


def ks_test(reference: Sequence[float], current: Sequence[float]) -> tuple[float, float]:
    """Two-sample Kolmogorov-Smirnov statistic and p-value (scipy)."""
    from scipy.stats import ks_2samp

    result = ks_2samp(reference, current)
    return float(result.statistic), float(result.pvalue)


def psi_edges(reference: Sequence[float], bins: int = PSI_BINS) -> Any:
    """The reference's inner quantiles (deciles by default), repeated edges (from tied values) merged."""
    import numpy as np

    ref = np.asarray(reference, dtype="float64")
    if ref.size == 0:
        raise ValueError("PSI needs at least one value in each sample")
    return np.unique(np.quantile(ref, np.linspace(0, 1, bins + 1)[1:-1]))


def bin_counts(edges: Any, values: Sequence[float]) -> Any:
    """How many of `values` fall in each PSI bin (edges.size + 1 bins)."""
    import numpy as np

    return np.bincount(np.searchsorted(edges, np.asarray(values, dtype="float64"), side="right"), minlength=len(edges) + 1)


def psi_from_counts(ref_counts: Any, cur_counts: Any) -> float:
    """PSI = sum((cur - ref) * ln(cur / ref)) over bin shares, each floored at PSI_FLOOR (an empty bin counts as a large but finite change)."""
    import numpy as np

    ref_total, cur_total = int(np.sum(ref_counts)), int(np.sum(cur_counts))
    if ref_total == 0 or cur_total == 0:
        raise ValueError("PSI needs at least one value in each sample")
    ref_share = np.maximum(np.asarray(ref_counts) / ref_total, PSI_FLOOR)
    cur_share = np.maximum(np.asarray(cur_counts) / cur_total, PSI_FLOOR)
    return float(np.sum((cur_share - ref_share) * np.log(cur_share / ref_share)))


def psi(reference: Sequence[float], current: Sequence[float], bins: int = PSI_BINS) -> float:
    """Population stability index over the reference's quantile bins (see psi_edges, psi_from_counts)."""
    import numpy as np

    if np.asarray(current).size == 0:
        raise ValueError("PSI needs at least one value in each sample")
    edges = psi_edges(reference, bins)
    return psi_from_counts(bin_counts(edges, reference), bin_counts(edges, current))


def ks_from_counts(values: Any, counts: Any, current: Sequence[float], expand_limit: int) -> tuple[float, float]:
    """The two-sample KS test of a reference given as sorted distinct values and their counts, against `current`.

    Up to `expand_limit` reference values, the reference is expanded and scipy's ks_2samp decides (so the
    numbers are exactly those of ks_test). Above it (and so above scipy's exact-method limit of 10,000), the
    statistic is computed exactly, as ks_2samp does (both empirical CDFs at every point of either sample),
    and the p-value by the asymptotic formula ks_2samp uses for such sizes (scipy.stats.kstwo)."""
    import numpy as np

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


def drift_row(name: str, reference_rows: int, new_rows: int, ks: tuple[float, float], index: float) -> dict[str, Any]:
    """One feature's line of the data-drift table."""
    statistic, p_value = ks
    return {
        "feature": name, "reference_rows": reference_rows, "new_rows": new_rows,
        "ks_statistic": round(statistic, 6), "ks_p_value": float(f"{p_value:.6g}"), "ks_drift": p_value < KS_ALPHA,
        "psi": round(index, 6), "psi_drift": index > PSI_THRESHOLD,
    }


def feature_drift(
    reference: Mapping[str, Sequence[float]], current: Mapping[str, Sequence[float]], features: Sequence[str]
) -> list[dict[str, Any]]:
    """One row per feature: KS statistic and p-value, PSI, and each verdict."""
    return [
        drift_row(name, len(reference[name]), len(current[name]), ks_test(reference[name], current[name]), psi(reference[name], current[name]))
        for name in features
    ]


def data_drift_verdict(rows: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """A feature has drifted when both tests say so: KS alone flags trivial shifts in large samples, PSI alone is noisy in small ones."""
    drifted = [r["feature"] for r in rows if r["ks_drift"] and r["psi_drift"]]
    return {"drift": bool(drifted), "drifted_features": drifted, "rule": f"KS p < {KS_ALPHA} and PSI > {PSI_THRESHOLD}"}


def format_feature_table(rows: Sequence[Mapping[str, Any]]) -> list[str]:
    """The data-drift table as fixed-width lines for the log."""
    lines = [f"{'feature':22} {'KS stat':>8} {'KS p':>10} {'KS':>6} {'PSI':>8} {'PSI':>6}"]
    for r in rows:
        lines.append(
            f"{r['feature']:22} {r['ks_statistic']:8.4f} {r['ks_p_value']:10.3g} {'drift' if r['ks_drift'] else 'ok':>6}"
            f" {r['psi']:8.4f} {'drift' if r['psi_drift'] else 'ok':>6}"
        )
    return lines


def promotion_decision(candidate_f1: float, deployed_f1: float, min_improvement: float = 0.0, forced: bool = False) -> dict[str, Any]:
    """The gate: promote when candidate - deployed >= min_improvement (both F1 on the same evaluation data); `forced` overrides."""
    improvement = candidate_f1 - deployed_f1
    passes = improvement >= min_improvement - 1e-12  # equal models tie exactly; float noise must not reject them
    return {
        "candidate_f1": round(candidate_f1, 6), "deployed_f1": round(deployed_f1, 6), "improvement": round(improvement, 6),
        "min_improvement": min_improvement, "passes": passes, "forced": forced and not passes, "promote": passes or forced,
    }
