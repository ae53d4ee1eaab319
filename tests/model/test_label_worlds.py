"""Worlds we control (issue 23 part 4): where the label-free estimate holds (covariate shift only), and where it is
fooled (concept drift) but a few labels raise the alarm (drs/model/labelsample.py)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from drs.data.schema import Schema
from drs.model import estimate, labelsample
from drs.model.estimator import feature_matrix, fit
from drs.model.metrics import counts_of, f1_from_counts
from tools.generate_data import CHANGED_WORLD, OLDER_WORLD, clients, large_set, unique_ids

SETTINGS = {"C": 1.0, "solver": "liblinear", "random_state": 0, "max_iter": 100}
BATCH = 5000


def realized_f1(model: object, frame: pd.DataFrame) -> float:
    predicted = model.predict(feature_matrix(frame, Schema()))  # type: ignore[attr-defined]
    return f1_from_counts(list(counts_of(frame["exited"].to_numpy(), predicted)))


def shifted(frame: pd.DataFrame, month: float, year: float, employees: float) -> pd.DataFrame:
    """The same clients with their activity and size scaled: the features move, nothing else does."""
    out = frame.copy()
    for column, factor in (("lastmonth_activity", month), ("lastyear_activity", year), ("number_of_employees", employees)):
        out[column] = np.maximum(np.round(out[column] * factor), 1).astype("int64")
    return out


def test_check_needs_exited_clients_in_the_sample_and_says_how_many_labels_it_used() -> None:
    few = labelsample.check([40, 3, 2, 5], 0.7, 0.6)
    assert few["measured"] is False and few["alarm"] is False and few["labels"] == 50 and few["exits"] == 7
    assert (
        few["reason"]
        == "the labelled sample holds only 7 client(s) that exited, too few for the model's F1 on them to mean anything (at least 10 needed)"
    )
    assert labelsample.describe(few).startswith("50 labelled client(s), 7 exited: no verdict (the labelled sample holds only 7")
    held = labelsample.check([150, 30, 20, 100], 0.78, 0.63)  # F1 0.8: neither bar contradicted
    assert held["measured"] and held["f1"] == pytest.approx(0.8) and held["low"] < 0.8 < held["high"] and held["alarm"] is False
    assert labelsample.describe(held).endswith(
        "vs the estimate 0.7800: no contradiction; vs the threshold 0.6300: no contradiction -> no alarm"
    )
    fell = labelsample.check([150, 80, 30, 40], 0.78, 0.63)  # F1 0.42 on 300 labels
    assert fell["alarm"] and fell["below_estimate"] and fell["below_threshold"] and fell["labels"] == 300
    assert "below it beyond sampling noise (concept drift)" in labelsample.describe(fell)
    assert labelsample.describe(fell).endswith("-> ALARM")


def test_covariate_shift_only_the_estimate_tracks_the_realized_f1_within_3_points() -> None:
    """Labels drawn from the deployed model's own probabilities at shifted activity: the link holds, CBPE is right,
    and 300 labels raise no alarm against it."""
    train = large_set(10_000, seed=11)
    model = fit(train, Schema(), SETTINGS)
    calibration = estimate.production_calibration(train, Schema(), SETTINGS)
    assert calibration["status"] == estimate.CALIBRATED
    rng = np.random.default_rng(12)
    base = large_set(BATCH, seed=13)
    gaps = {}
    for shift in [(1.0, 1.0, 1.0), (0.5, 0.8, 1.0), (1.6, 1.3, 1.0), (1.0, 1.0, 2.0), (0.6, 0.6, 0.5)]:
        batch = shifted(base, *shift)
        x = feature_matrix(batch, Schema())
        batch["exited"] = (rng.random(BATCH) < model.predict_proba(x)[:, 1]).astype("int64")
        expected, realized = estimate.of_model(model, x, calibration), realized_f1(model, batch)
        gaps[shift] = (round(expected["f1"], 4), round(realized, 4))
        assert abs(expected["f1"] - realized) <= 0.03, gaps
        counts, _ = labelsample.sample_counts(model, batch, Schema(), 300, rng)
        assert labelsample.check(counts, expected["f1"], threshold=0.0)["below_estimate"] is False, gaps
    assert len({f for f, _ in gaps.values()}) == len(gaps)  # the shifts moved the F1: the estimate followed


def test_concept_drift_fools_the_estimate_and_300_labels_raise_the_alarm() -> None:
    """A model of the older world (as the practice model) meets the changed world: its probabilities still promise
    F1 0.78, the labels give 0.5; a random sample of at most 300 labelled clients says so."""
    rng = np.random.default_rng(21)
    train = clients(rng, unique_ids(rng, 2000), OLDER_WORLD)
    model = fit(train, Schema(), SETTINGS)
    calibration = estimate.production_calibration(train, Schema(), SETTINGS)
    assert calibration["status"] == estimate.CALIBRATED  # calibrated, on the world it learned
    batch = clients(rng, unique_ids(rng, BATCH), CHANGED_WORLD)
    expected = estimate.of_model(model, feature_matrix(batch, Schema()), calibration)
    realized = realized_f1(model, batch)
    assert expected["f1"] - realized > 0.2  # fooled: concept drift is what CBPE assumes away
    assert realized < expected["low"]
    fired = None
    for labels in (50, 100, 200, 300):
        counts, _ = labelsample.sample_counts(model, batch, Schema(), labels, np.random.default_rng(labels))
        verdict = labelsample.check(counts, expected["f1"], threshold=0.6305)
        if verdict["alarm"]:
            fired = verdict
            break
    assert fired is not None and fired["labels"] <= 300 and fired["below_estimate"]
    assert fired["high"] < expected["f1"] and abs(fired["f1"] - realized) < 0.15
