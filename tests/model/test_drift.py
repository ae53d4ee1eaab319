"""The drift rules as pure functions: the three score tests, their fallback, KS and PSI, the gate's decision."""

from __future__ import annotations

import math

import numpy as np
import pytest

from drs.model import drift
from drs.pipeline.gate import promotion_decision

MIN_HISTORY = {"parametric": 3, "nonparametric": 5}  # the config's default (drs/core/settings.py)

STEADY = [0.80, 0.82, 0.78, 0.81]  # mean 0.8025, sample std 0.017078


def test_raw_compares_with_the_deployed_score_only() -> None:
    v = drift.score_drift("raw", 0.79, 0.80, STEADY, MIN_HISTORY)
    assert v["drift"] is True and v["test"] == "raw" and v["threshold"] == 0.80 and v["fallback"] is None
    assert drift.score_drift("raw", 0.80, 0.80, [], MIN_HISTORY)["drift"] is False  # equal is not lower


def test_parametric_uses_mean_minus_two_std_of_the_history() -> None:
    mean, std = np.mean(STEADY), np.std(STEADY, ddof=1)
    threshold = mean - 2 * std  # 0.8025 - 2 * sqrt(0.000875 / 3)
    assert threshold == pytest.approx(0.768343, abs=1e-6)
    calm = drift.score_drift("parametric", 0.77, 0.80, STEADY, MIN_HISTORY)
    assert calm["test"] == "parametric" and calm["drift"] is False  # raw would call 0.77 < 0.80 drift
    assert calm["mean"] == pytest.approx(mean, abs=1e-6) and calm["std"] == pytest.approx(std, abs=1e-6)
    assert calm["threshold"] == pytest.approx(threshold, abs=1e-6)
    assert drift.score_drift("parametric", 0.76, 0.80, STEADY, MIN_HISTORY)["drift"] is True
    assert "mean 0.8025 - 2*std 0.0171 = 0.7683 over 4 F1 values -> no drift" in drift.describe_score_drift(calm)


def test_nonparametric_uses_the_lower_tukey_fence() -> None:
    history = [0.70, 0.72, 0.74, 0.76, 0.78, 0.95]  # one high outlier inflates the std but not the quartiles
    q1, q3 = np.percentile(history, [25, 75])  # numpy's linear interpolation, the 'inclusive' method
    fence = q1 - 1.5 * (q3 - q1)
    assert fence == pytest.approx(0.725 - 1.5 * 0.05, abs=1e-9)  # Q1 0.725, Q3 0.775
    above = drift.score_drift("nonparametric", 0.655, 0.80, history, MIN_HISTORY)
    below = drift.score_drift("nonparametric", 0.645, 0.80, history, MIN_HISTORY)
    assert above["test"] == "nonparametric" and above["drift"] is False and below["drift"] is True
    assert (above["q1"], above["q3"], above["threshold"]) == pytest.approx((q1, q3, fence), abs=1e-6)
    # the parametric test on the same history would not flag 0.64: the outlier widened its band (threshold 0.5944)
    assert drift.score_drift("parametric", 0.64, 0.80, history, MIN_HISTORY)["drift"] is False


@pytest.mark.parametrize("test, needed", [("parametric", 3), ("nonparametric", 5)])
def test_short_history_falls_back_to_raw_and_says_so(test: str, needed: int) -> None:
    short = STEADY[: needed - 1]
    v = drift.score_drift(test, 0.79, 0.80, short, MIN_HISTORY)
    assert v["requested_test"] == test and v["test"] == "raw" and v["drift"] is True and v["threshold"] == 0.80
    assert v["fallback"] == f"{test} needs at least {needed} F1 values in the lineage's history, it has {needed - 1}; used raw"
    enough = drift.score_drift(test, 0.79, 0.80, short, {**MIN_HISTORY, test: needed - 1})
    assert enough["test"] == test and enough["fallback"] is None


def test_ks_and_psi_see_no_drift_between_samples_of_one_distribution() -> None:
    rng = np.random.default_rng(1)
    a, b = rng.lognormal(4, 1, 2000), rng.lognormal(4, 1, 2000)
    statistic, p_value = drift.ks_test(a, b)
    assert p_value > drift.KS_ALPHA and statistic < 0.05
    assert drift.psi(a, b) < 0.05
    assert drift.psi(a, a) == 0.0


def test_ks_and_psi_see_a_shift() -> None:
    rng = np.random.default_rng(2)
    a, b = rng.lognormal(4, 1, 2000), rng.lognormal(4.6, 1, 2000)  # 80% more activity
    statistic, p_value = drift.ks_test(a, b)
    assert p_value < 1e-6 and statistic > 0.15
    assert drift.psi(a, b) > drift.PSI_THRESHOLD


def test_psi_by_hand() -> None:
    """Ten reference values, one per decile bin; all new values fall in the first bin."""
    reference, current = list(range(1, 11)), [1] * 10
    floor = drift.PSI_FLOOR
    expected = (1 - 0.1) * math.log(1 / 0.1) + 9 * (floor - 0.1) * math.log(floor / 0.1)
    assert drift.psi(reference, current) == pytest.approx(expected, rel=1e-9)
    with pytest.raises(ValueError, match="at least one value in each sample"):
        drift.psi([], [1.0])


def test_feature_table_and_the_both_tests_rule() -> None:
    rng = np.random.default_rng(3)
    reference = {"steady": rng.normal(0, 1, 3000), "shifted": rng.normal(0, 1, 3000), "nudged": rng.normal(0, 1, 3000)}
    current = {"steady": rng.normal(0, 1, 3000), "shifted": rng.normal(1, 1, 3000), "nudged": rng.normal(0.1, 1, 3000)}
    rows = drift.feature_drift(reference, current, ["steady", "shifted", "nudged"])
    by_name = {r["feature"]: r for r in rows}
    assert by_name["steady"]["ks_drift"] is False and by_name["steady"]["psi_drift"] is False
    assert by_name["shifted"]["ks_drift"] is True and by_name["shifted"]["psi_drift"] is True
    # a small shift in a large sample: KS flags it, PSI does not, so it is not data drift
    assert by_name["nudged"]["ks_drift"] is True and by_name["nudged"]["psi_drift"] is False
    verdict = drift.data_drift_verdict(rows)
    assert verdict == {"drift": True, "drifted_features": ["shifted"], "rule": "KS p < 0.05 and PSI > 0.2"}
    table = drift.format_feature_table(rows)
    assert table[0].split() == ["feature", "KS", "stat", "KS", "p", "KS", "PSI", "PSI"]
    assert table[2].startswith("shifted") and table[2].split()[-1] == "drift"


def test_promotion_decision() -> None:
    worse = promotion_decision(0.333333, 0.571429)
    assert worse.promote is False and worse.improvement == pytest.approx(-0.238096)
    assert promotion_decision(0.6, 0.6).promote is True  # not worse is enough by default
    assert promotion_decision(0.605, 0.6, min_improvement=0.01).promote is False
    forced = promotion_decision(0.333333, 0.571429, forced=True)
    assert forced.promote is True and forced.forced is True and forced.passes is False
    assert promotion_decision(0.9, 0.6, forced=True).forced is False  # nothing to force


def test_sampling_noise_is_the_bootstrap_of_the_rows_and_is_seeded() -> None:
    counts = [900, 250, 300, 550]  # tn, fp, fn, tp over 2,000 rows: F1 0.6667
    noise = drift.sampling_noise(counts, 0.70)
    assert noise == drift.sampling_noise(counts, 0.70)  # seeded: the same numbers every run
    # the multinomial shortcut gives the interval of resampling the rows themselves (scipy's percentile bootstrap)
    from scipy.stats import bootstrap

    truth = np.repeat([0, 0, 1, 1], counts)
    predicted = np.repeat([0, 1, 0, 1], counts)

    def f1(t: np.ndarray, p: np.ndarray) -> float:
        tp, fp, fn = np.sum(t & p), np.sum(~t & p), np.sum(t & ~p)
        return 2 * tp / (2 * tp + fp + fn)

    rows = bootstrap(
        (truth.astype(bool), predicted.astype(bool)), f1, paired=True, vectorized=False, n_resamples=2000, method="percentile", rng=1
    )
    assert noise["low"] == pytest.approx(rows.confidence_interval.low, abs=0.004)
    assert noise["high"] == pytest.approx(rows.confidence_interval.high, abs=0.004)
    assert noise["low"] < 2 * 550 / (2 * 550 + 250 + 300) < noise["high"]
    # 0.6667 against 0.70: a drop of 0.033 over 2,000 rows is beyond noise when the threshold is exact ...
    assert noise["beyond_noise"] is True and noise["drop"] == pytest.approx(-0.033333, abs=1e-6)
    # ... but not when the threshold is itself an F1 on 300 test rows, resampled too
    both = drift.sampling_noise(counts, 0.70, [100, 40, 35, 125])
    assert both["threshold_rows"] == 300 and both["beyond_noise"] is False and both["drop_high"] > 0
    assert both["low"] == noise["low"] and both["drop_low"] < noise["drop_low"]
    assert drift.sampling_noise(counts, 0.60)["share_at_or_above"] == 1.0
    assert "within sampling noise" in drift.describe_noise(both) and "and 300 test rows" in drift.describe_noise(both)
