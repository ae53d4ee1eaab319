"""New rows in which no client (or too few) exited: F1 is undefined there, so the score test says it could not
run, decides no drift and retrains nothing, while the data-drift tests still run and can flag drift on their own.
Every view of the run (history row, log, alert, page words, /metrics, PDF) says "not measurable", never F1 0."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest
from pypdf import PdfReader

from drs.alerts import rules as alerts
from drs.core.settings import Config
from drs.history import runs as history
from drs.model import drift
from drs.pipeline import run as pipeline
from drs.production import versions as production
from drs.reports import monitoring, reporting
from drs.web import words as plainwords
from drs.web.app import create_app
from tests.alerts.test_alerts import JsonReceiver, receiver, with_targets  # noqa: F401 (the receiver fixture)
from tests.conftest import HEADER, tree_state
from tests.web.test_metrics import scrape, value
from tools.generate_data import OLDER_WORLD, clients, unique_ids

NOT_MEASURED = "the new rows hold no client that exited, so the model's F1 on them cannot be measured; the score test was not run"


def no_exit_file(path: Path, rows: int = 300, seed: int = 5, activity: float = 1.0) -> None:
    """`rows` clients who did not exit, drawn from the practice model's own world (the shipped practice data's);
    `activity` scales their activity (4: plain data drift)."""
    rng = np.random.default_rng(seed)
    frame = clients(rng, unique_ids(rng, 4 * rows), OLDER_WORLD)
    frame = frame[frame["exited"] == 0].head(rows).copy()
    assert len(frame) == rows
    for column in ("lastmonth_activity", "lastyear_activity"):
        frame[column] = (frame[column] * activity).round().astype("int64")
    frame.to_csv(path, index=False)


def test_score_tests_need_exited_clients() -> None:
    assert drift.unmeasurable(0) == NOT_MEASURED
    assert "only 9 client(s) that exited, too few" in (drift.unmeasurable(9) or "")
    assert drift.unmeasurable(drift.MIN_EXITS) is None
    verdict = drift.not_measured("parametric", NOT_MEASURED)
    assert verdict["drift"] is False and verdict["new_data_f1"] is None and verdict["measured"] is False
    assert drift.describe_score_drift(verdict) == f"score not measurable: {NOT_MEASURED} -> no score drift decided"


def test_a_batch_with_no_exits_is_not_drift_and_says_so_everywhere(
    deployed_practice: Config,
    receiver: JsonReceiver,  # noqa: F811
    caplog: pytest.LogCaptureFixture,
) -> None:
    config = with_targets(deployed_practice, receiver.url())
    no_exit_file(config.input_folder / "dataset3.csv")
    prod_before = tree_state(config.prod_deployment_folder)
    assert pipeline.run(config) == 0

    run = history.runs(config.history_db)[-1]
    details, check = run["details"], run["details"]["drift"]
    assert run["outcome"] == "no drift"
    assert run["message"] == f"no drift: v0001 stays deployed (score not measurable: {NOT_MEASURED})"
    assert check["measured"] is False and check["drift"] is False and check["new_data_f1"] is None
    assert check["exits"] == 0 and check["new_rows"] == 300 and check["reason"] == NOT_MEASURED
    assert f"drift check (raw): v0001 score not measurable: {NOT_MEASURED}" in caplog.text
    assert "F1 on the new data" not in caplog.text and "sampling noise" not in caplog.text
    # no retraining, production untouched, nothing entered the lineage's F1 history
    assert details["trigger"] is None and "new_model_test_f1" not in details and "training" not in details["timings"]
    assert tree_state(config.prod_deployment_folder) == prod_before
    assert history.lineage_f1(config.history_db, check["model_sha256"]) == []
    # the data-drift tests still ran
    data = details["data_drift"]
    assert data["measured"] is True and [f["feature"] for f in data["features"]] == list(config.features)
    assert all(isinstance(f["psi"], float) and isinstance(f["ks_p_value"], float) for f in data["features"])
    # no alert about drift
    assert not [p for p in receiver.posts if "drift" in (p["title"] + p["message"]).lower()]
    assert alerts.drift_event(alerts.RunParts.of(details), run["outcome"], "v0001") == []

    # what each view says
    now = datetime.now(UTC)
    assert plainwords.check_card(run) == ("Not measurable", "notice")
    assert "too few of its clients had left to check how well the model predicts leaving" in plainwords.words_for(run).sentence
    assert plainwords.drift_words(check).startswith("score not measurable: the new rows hold no client that exited")
    assert "Not measurable" in [c["word"] for c in plainwords.status_cards([run], now).values() if c]
    checked = monitoring.last_drift_check(config.history_db)
    assert checked is not None and checked.f1 is None and checked.threshold is None and checked.drift is False
    samples = scrape(create_app(config).test_client())
    assert value(samples, "drs_drift_check_f1") is None and value(samples, "drs_drift_check_threshold") is None
    assert value(samples, "drs_drift_check_measured") == 0 and value(samples, "drs_drift_check_drift") == 0
    assert value(samples, "drs_data_drift_detected") == float(data["drift"])
    html = create_app(config).test_client().get("/").get_data(as_text=True)
    assert "not measurable</strong>" in html
    reporting.run(config)
    text = re.sub(r"\s+", " ", " ".join(p.extract_text() for p in PdfReader(config.output_model_folder / "report.pdf").pages))
    assert "not measurable: v0001: score not measurable: the new rows hold no client that exited" in text
    assert "F1 on the new data" not in text

    assert pipeline.run(config) == 0  # the file was judged: the next tick is an empty one
    assert history.runs(config.history_db)[-1]["outcome"] == "no new data"


def test_a_data_drifted_batch_with_no_exits_still_shows_data_drift(deployed_practice: Config, caplog: pytest.LogCaptureFixture) -> None:
    config = deployed_practice
    no_exit_file(config.input_folder / "dataset3.csv", activity=4.0)
    assert pipeline.run(config) == 0
    run = history.runs(config.history_db)[-1]
    data, check = run["details"]["data_drift"], run["details"]["drift"]
    assert data["drift"] is True and "lastyear_activity" in data["drifted_features"]
    assert check["measured"] is False and check["drift"] is False
    assert run["outcome"] == "no drift"  # data drift alone does not retrain (data_drift_retrain is off), as before
    assert "data drift alone does not retrain" in caplog.text
    banners = plainwords.banners(None, [run], datetime.now(UTC), 10_000, 10_000)
    assert "Client data has changed" in [b["title"] for b in banners]


def test_data_drift_retrains_a_no_exit_batch_when_asked_and_the_alert_says_the_score_was_not_measured(
    deployed_practice: Config,
    receiver: JsonReceiver,  # noqa: F811
) -> None:
    config = with_targets(deployed_practice, receiver.url(), data_drift_retrain=True)
    no_exit_file(config.input_folder / "dataset3.csv", activity=4.0)
    assert pipeline.run(config) == 0
    run = history.runs(config.history_db)[-1]
    assert run["details"]["trigger"].startswith("data drift in ") and run["outcome"] in {"deployed", "not promoted"}
    told = [p["message"] for p in receiver.posts if "Drift found" in p["title"] + p["message"]]
    assert told and f"Score not measurable: {NOT_MEASURED}." in told[0] and "new rows 0.0000" not in told[0]
    assert production.current(config.prod_deployment_folder) is not None


@pytest.mark.parametrize(
    "rows", ["abcd,12,300,40,1\n", "abcd,12,300,40,1\n" * 20, "".join(f"c{i:03d},{i},300,40,{int(i < 4)}\n" for i in range(60))]
)
def test_too_few_exits_is_not_measured_either(deployed_practice: Config, rows: str) -> None:
    """One exited row (also sent twenty times: duplicates go), or 4 exits among 60 rows: F1 would be 0, 1/2 or 2/3 by chance alone."""
    (deployed_practice.input_folder / "dataset3.csv").write_text(HEADER + rows)
    assert pipeline.run(deployed_practice) == 0
    run = history.runs(deployed_practice.history_db)[-1]
    check = run["details"]["drift"]
    exits = 4 if len(rows.splitlines()) == 60 else 1
    assert run["outcome"] == "no drift" and check["measured"] is False and check["exits"] == exits
    assert f"the new rows hold only {exits} client(s) that exited, too few" in run["message"]


def test_rows_that_all_exited_have_an_f1_and_a_sampling_noise() -> None:
    """Only positives: F1 is defined (no false positives can occur), and the bootstrap stays within 0..1."""
    assert drift.unmeasurable(20) is None
    noise = drift.sampling_noise([0, 0, 5, 15], 0.63)
    assert noise["rows"] == 20 and 0 <= noise["low"] < noise["high"] <= 1
    assert noise["drop"] == pytest.approx(30 / 35 - 0.63, abs=1e-6)
