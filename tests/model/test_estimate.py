"""The label-free estimate (drs/model/estimate.py, CBPE): calibration judged out of fold on production-like data, a
miscalibrated model recalibrated or refused and said so, and the estimate recorded with the drift decision,
before the labels, then shown beside the realized F1 on the page, in the PDF and on /metrics."""

from __future__ import annotations

import json
import re

import numpy as np
import pandas as pd
import pytest
from pypdf import PdfReader

from drs.core.settings import Config
from drs.data.schema import Schema
from drs.history import runs as history
from drs.model import estimate
from drs.model.estimator import feature_matrix, fit
from drs.model.metrics import f1_from_counts
from drs.pipeline import judge
from drs.pipeline import run as pipeline
from drs.production import versions as production
from drs.reports import monitoring, reporting
from drs.web.app import create_app
from tests.web.test_metrics import scrape, value
from tools.generate_data import large_set

SETTINGS = {"C": 1.0, "solver": "liblinear", "random_state": 0, "max_iter": 100}


def test_the_expected_confusion_matrix_is_the_sum_of_the_chances() -> None:
    p = np.array([0.9, 0.6, 0.3, 0.2, 0.7])
    flagged = np.array([True, True, False, False, True])
    tn, fp, fn, tp = estimate.expected_counts(p, flagged)
    assert (tp, fp) == pytest.approx((0.9 + 0.6 + 0.7, 0.1 + 0.4 + 0.3))
    assert (fn, tn) == pytest.approx((0.3 + 0.2, 0.7 + 0.8))
    record = estimate.estimate(p, flagged, {"status": estimate.CALIBRATED, "data": "d", "out_of_fold": {"error": 0, "noise_limit": 0}})
    assert record["estimated"] is True
    assert record["f1"] == pytest.approx(2 * 2.2 / (2 * 2.2 + 0.8 + 0.5), abs=1e-6)
    assert record["precision"] == pytest.approx(2.2 / 3, abs=1e-6) and record["recall"] == pytest.approx(2.2 / 2.7, abs=1e-6)
    assert record["assumptions"] == estimate.ASSUMPTIONS


def test_the_estimate_matches_labels_drawn_from_its_own_probabilities() -> None:
    """If the probabilities are true, the realized F1 of many batches centres on the estimate, inside its interval."""
    train = large_set(3000, seed=5)
    model = fit(train, Schema(), SETTINGS)
    calibration = estimate.production_calibration(train, Schema(), SETTINGS)
    x = feature_matrix(large_set(5000, seed=6), Schema())
    record = estimate.of_model(model, x, {**calibration, "isotonic": None, "status": estimate.CALIBRATED})
    p, flagged = model.predict_proba(x)[:, 1], model.predict(x) == 1
    rng = np.random.default_rng(1)
    realized = []
    for _ in range(200):
        y = rng.random(p.size) < p
        realized.append(
            f1_from_counts([int(np.sum(~y & ~flagged)), int(np.sum(~y & flagged)), int(np.sum(y & ~flagged)), int(np.sum(y & flagged))])
        )
    assert np.mean(realized) == pytest.approx(record["f1"], abs=0.002)
    inside = np.mean([(record["low"] <= f <= record["high"]) for f in realized])
    assert 0.9 <= inside <= 0.99  # a 95% interval


def test_calibration_is_judged_out_of_fold_on_the_training_data_not_the_balanced_test_data(deployed_practice: Config) -> None:
    trained = json.loads(deployed_practice.model_meta.read_text())["production_calibration"]
    deployed = production.current(deployed_practice.prod_deployment_folder)
    assert deployed is not None and deployed.meta["production_calibration"] == trained  # it deploys with the model
    assert (trained["rows"], trained["exits"]) == (520, 310)  # the practice data (deduplicated), 60% exited; not the 1,200 test rows
    assert trained["out_of_fold"]["reliability"]["base_rate"] == pytest.approx(310 / 520)
    assert "out-of-fold" in trained["data"] and "not the balanced test data" in trained["data"]
    assert trained["status"] == estimate.CALIBRATED and trained["isotonic"] is None
    assert trained["out_of_fold"]["error"] <= trained["out_of_fold"]["noise_limit"]


def test_a_miscalibrated_model_is_recalibrated_and_the_record_says_so() -> None:
    """Heavy regularization squeezes the probabilities (error 0.13 against the 0.02 of sampling alone): the isotonic map
    fitted out of fold brings the estimate to the realized F1, where the raw probabilities miss it."""
    settings = {**SETTINGS, "C": 1e-3}
    train, batch = large_set(3000, seed=5), large_set(5000, seed=6)
    calibration = estimate.production_calibration(train, Schema(), settings)
    assert calibration["status"] == estimate.RECALIBRATED
    assert calibration["out_of_fold"]["error"] > 0.1 > calibration["out_of_fold"]["noise_limit"]
    assert calibration["after_isotonic"]["within_noise"] and calibration["after_isotonic"]["error"] < 0.02
    model = fit(train, Schema(), settings)
    x = feature_matrix(batch, Schema())
    realized = f1_from_counts(list(np.bincount(2 * batch["exited"].to_numpy() + model.predict(x), minlength=4)))
    recalibrated = estimate.of_model(model, x, calibration)
    raw = estimate.of_model(model, x, {**calibration, "isotonic": None})
    assert abs(recalibrated["f1"] - realized) < 0.01 < abs(raw["f1"] - realized)
    assert "miscalibrated on out-of-fold predictions" in recalibrated["calibration_words"]
    assert "recalibrated by an isotonic map" in recalibrated["calibration_words"]


def test_too_little_training_data_gets_no_estimate_and_says_why() -> None:
    tiny = large_set(60, seed=3)
    calibration = estimate.production_calibration(tiny, Schema(), SETTINGS)
    assert calibration["status"] == estimate.REFUSED
    assert re.search(
        r"holds \d+ client\(s\) of its rarer class, too few to judge calibration \(at least 25 needed\)", calibration["reason"]
    )
    model = fit(tiny, Schema(), SETTINGS)
    record = estimate.of_model(model, feature_matrix(large_set(500, seed=4), Schema()), calibration)
    assert record["estimated"] is False and "f1" not in record and record["reason"] == calibration["reason"]
    assert estimate.describe(record) == f"no label-free estimate: {calibration['reason']}"
    run = {"started_at": "2026-01-01T00:00:00+00:00", "details": {"drift": {"test": "raw", "drift": False, "estimate": record}}}
    checked = monitoring.drift_check_of(run)
    assert checked is not None and checked.estimated_f1 is None  # /metrics leaves the gauge out


def test_the_drift_decision_records_the_estimate_made_before_the_labels_and_every_view_shows_it(
    deployed_practice: Config, config: Config, caplog: pytest.LogCaptureFixture
) -> None:
    """The practice model on the sourced data: CBPE expects F1 0.78, the labels give 0.48 (concept drift, which CBPE assumes away)."""
    assert pipeline.run(config) == 0
    run = history.runs(config.history_db)[-1]
    check = run["details"]["drift"]
    expected = check["estimate"]
    assert expected["estimated"] is True and expected["rows"] == 10_000 and expected["calibration"] == estimate.CALIBRATED
    assert expected["f1"] == pytest.approx(0.7840, abs=5e-4) and check["new_data_f1"] == pytest.approx(0.4844, abs=5e-4)
    assert expected["low"] < expected["f1"] < expected["high"] < 0.80
    assert 0 < expected["precision"] < 1 and 0 < expected["recall"] < 1
    assert expected["assumptions"] == estimate.ASSUMPTIONS
    # made from the features alone: the same numbers with every label of the new rows flipped
    deployed = production.get(config.prod_deployment_folder, 1)
    rows = pd.concat([pd.read_csv(p) for p in sorted(config.input_folder.glob("*.csv"))]).drop_duplicates()
    flipped = rows.assign(exited=1 - rows["exited"])
    assert judge.estimate_check(config, deployed, flipped.reset_index(drop=True)) == expected
    log = caplog.text
    assert log.index("label-free estimate (CBPE) for v0001: expected F1 0.7840") < log.index(
        "drift check (raw): v0001 F1 on the new data 0.4844"
    )
    assert "valid only if the link from activity to exit is unchanged and the probabilities are calibrated for production data" in log
    # once the labels are in: they contradict the estimate beyond sampling noise, which is concept drift
    against = check["against_estimate"]
    assert against["beyond_noise"] is True and against["drop"] == pytest.approx(check["new_data_f1"] - expected["f1"], abs=1e-6)
    assert "labels vs the estimate: realized minus expected F1 -0.299" in log and "(concept drift), which the estimate cannot see" in log

    samples = scrape(create_app(config).test_client())
    assert value(samples, "drs_drift_check_estimated_f1") == expected["f1"]
    assert value(samples, "drs_drift_check_f1") == check["new_data_f1"]
    html = create_app(config).test_client().get("/").get_data(as_text=True)
    realized = f"realized F1 {check['new_data_f1']:.4f} ({check['new_data_f1'] - expected['f1']:+.4f}, beyond sampling noise)"
    assert "<dt>Estimated F1</dt><dd>expected F1 0.7840 (95% " in html and realized in html
    reporting.run(config)
    text = re.sub(r"\s+", " ", " ".join(p.extract_text() for p in PdfReader(config.output_model_folder / "report.pdf").pages))
    assert "Estimated F1 (before the labels) expected F1 0.7840" in text and realized in text
    assert "estimate /" not in text  # its own row, not flattened among the other numbers


def test_a_version_deployed_without_a_calibration_record_is_judged_on_its_training_data(
    deployed_practice: Config, config: Config, caplog: pytest.LogCaptureFixture
) -> None:
    deployed = production.current(config.prod_deployment_folder)
    assert deployed is not None
    recorded = deployed.meta.pop("production_calibration")
    (deployed.folder / "deployment.json").write_text(json.dumps(deployed.meta))
    again = production.current(config.prod_deployment_folder)
    assert again is not None and "production_calibration" not in again.meta
    assert judge.production_calibration(config, again) == recorded
    assert "v0001 was deployed without a record of its calibration; judging it now on its trainingdata.csv" in caplog.text


def test_labels_that_agree_with_the_estimate_are_said_to_be_within_noise() -> None:
    from drs.model import drift

    record = estimate.estimate(
        np.full(400, 0.7),
        np.ones(400, dtype=bool),
        {"status": estimate.CALIBRATED, "data": "d", "out_of_fold": {"error": 0, "noise_limit": 0}},
    )
    against = drift.sampling_noise([0, 125, 0, 275], record["f1"])  # 275 of the 400 flagged exited: F1 0.815, the estimate 0.8235
    assert against["beyond_noise"] is False
    assert estimate.contradiction_words(against).endswith("the labels do not contradict the estimate")
    assert f"realized F1 0.8148 ({0.8148 - record['f1']:+.4f}, within sampling noise)" in estimate.describe(record, 0.8148, against)
