"""Honest probabilities: the reliability table and Brier score scoring records (drs/model/calibration.py), deployed with
the score, on the page (inline SVG) and in the PDF."""

from __future__ import annotations

import json
import pickle
import re
import subprocess
from html import unescape
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from pypdf import PdfReader
from sklearn.metrics import brier_score_loss

from drs.core.settings import Config
from drs.model import calibration
from drs.production import versions as production
from drs.reports import reporting
from drs.web.app import create_app
from tests.conftest import stage_pass

POINT = re.compile(r'<circle cx="([\d.]+)" cy="([\d.]+)" r="4.5"[^>]*><title>([^<]*)</title></circle>')


def direct(model_path: Path, test_csv: Path) -> tuple[list[dict[str, float]], float, np.ndarray, np.ndarray]:
    """The deciles computed here without drs.model.calibration: scikit-learn's predict_proba, sorted, cut in ten equal parts."""
    with open(model_path, "rb") as handle:
        model = pickle.load(handle)
    test = pd.read_csv(test_csv)
    p = model.predict_proba(test[["lastmonth_activity", "lastyear_activity", "number_of_employees"]].to_numpy(dtype=float))[:, 1]
    y = test["exited"].to_numpy()
    table = []
    for part in np.array_split(np.argsort(p, kind="stable"), 10):
        table.append({"rows": len(part), "mean_predicted": p[part].mean(), "observed_rate": y[part].mean(), "exits": int(y[part].sum())})
    return table, float(brier_score_loss(y, p)), y, p


@pytest.fixture
def shipped(config: Config) -> Config:
    """The model trained on the shipped sourced data, scored on the shipped test data and deployed (v0001)."""
    stage_pass(config)
    return config


def test_scoring_records_the_deciles_and_brier_that_a_direct_computation_gives(shipped: Config) -> None:
    recorded = json.loads(shipped.latest_score_json.read_text())["calibration"]
    table, brier, y, p = direct(shipped.model_pkl, shipped.test_data_csv)
    assert [d["decile"] for d in recorded["deciles"]] == list(range(1, 11))
    for got, want in zip(recorded["deciles"], table, strict=True):
        assert (got["rows"], got["exits"]) == (want["rows"], want["exits"]) == (120, want["exits"])
        assert got["mean_predicted"] == pytest.approx(want["mean_predicted"], abs=1e-12)
        assert got["observed_rate"] == pytest.approx(want["observed_rate"], abs=1e-15)
    assert recorded["brier"] == pytest.approx(brier, abs=1e-12)
    assert recorded["brier"] == pytest.approx(0.1322, abs=5e-5)  # the number docs/reports.md quotes
    assert (recorded["rows"], recorded["exits"], recorded["base_rate"]) == (1200, 600, 0.5)  # the balanced test data
    assert recorded["mean_predicted"] == pytest.approx(p.mean(), abs=1e-12)
    deployed = production.current(shipped.prod_deployment_folder)
    assert deployed is not None and deployed.meta["score"]["calibration"] == recorded  # it deploys with the score


def test_the_gap_on_the_balanced_test_data_is_the_base_rate(shipped: Config) -> None:
    """docs/reports.md: the model learned from data where 34% left; moving its log-odds by the difference to the test
    data's 50% brings its mean prediction from 42% to 49%, the mean gap per decile from 0.079 to 0.026 and the Brier
    score from 0.132 to 0.123."""
    table, _, y, p = direct(shipped.model_pkl, shipped.test_data_csv)
    trained = pd.read_csv(shipped.final_data_csv)["exited"].mean()
    assert trained == pytest.approx(0.3445, abs=5e-4)
    shift = np.log(0.5 / 0.5) - np.log(trained / (1 - trained))
    moved = calibration.sigmoid(np.log(np.clip(p, 1e-300, None)) - np.log1p(-np.clip(p, None, 1 - 1e-16)) + shift)
    gap = np.mean([abs(d["mean_predicted"] - d["observed_rate"]) for d in table])
    order = np.argsort(p, kind="stable")
    moved_gap = np.mean([abs(moved[part].mean() - y[part].mean()) for part in np.array_split(order, 10)])
    assert p.mean() == pytest.approx(0.4207, abs=5e-4) and moved.mean() == pytest.approx(0.4893, abs=5e-4)
    assert gap == pytest.approx(0.0793, abs=5e-4) and moved_gap == pytest.approx(0.0262, abs=5e-4)
    assert brier_score_loss(y, p) == pytest.approx(0.1322, abs=5e-5) and brier_score_loss(y, moved) == pytest.approx(0.1226, abs=5e-5)


def test_the_page_shows_the_curve_and_the_brier_score_and_computes_them_for_an_older_version(shipped: Config) -> None:
    recorded = production.current(shipped.prod_deployment_folder).meta["score"]["calibration"]  # type: ignore[union-attr]
    client = create_app(shipped).test_client()
    html = unescape(client.get("/").get_data(as_text=True))
    assert '<svg class="reliability"' in html and "Brier score 0.132 (0 is perfect; saying 50% for every client scores 0.250)" in html
    assert calibration.plain_reading(recorded) in html
    assert "in the test data 50% of the clients left and the model predicts 42% on average, so its points lie above the diagonal" in html
    points = POINT.findall(html)
    assert len(points) == 10
    for (cx, cy, tip), d in zip(points, recorded["deciles"], strict=True):
        assert float(cx) == pytest.approx(52 + 274 * d["mean_predicted"], abs=0.06)  # the plot area is x 52..326, y 254..34
        assert float(cy) == pytest.approx(254 - 220 * d["observed_rate"], abs=0.06)
        assert f"{d['observed_rate']:.1%} left ({d['exits']:,})" in tip
    assert "was deployed before scoring recorded this curve" not in html

    deployed = production.current(shipped.prod_deployment_folder)
    assert deployed is not None
    meta_path = deployed.folder / "deployment.json"
    meta = json.loads(meta_path.read_text())
    del meta["score"]["calibration"]  # as versions deployed before scoring recorded it
    meta_path.write_text(json.dumps(meta))
    older = unescape(create_app(shipped).test_client().get("/").get_data(as_text=True))
    assert "v0001 was deployed before scoring recorded this curve: computed now from its model on testdata.csv." in older
    assert [p[:2] for p in POINT.findall(older)] == [p[:2] for p in points]  # the same curve
    assert "Brier score 0.132" in older


def test_the_pdf_has_the_curve_and_the_brier_score(shipped: Config, tmp_path: Path) -> None:
    result = reporting.run(shipped)
    table, brier, _, _ = direct(shipped.model_pkl, shipped.test_data_csv)
    assert result["brier"] == pytest.approx(brier, abs=1e-12)
    first = PdfReader(shipped.output_model_folder / "report.pdf").pages[0].extract_text()
    assert "Brier score 0.132 (0 is perfect; saying 50% for every client scores 0.250)" in " ".join(first.split())
    assert re.search(r"Brier score\s+0\.132", first)  # the metrics table's row
    png = shipped.output_model_folder / "reliability.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    if Path("/usr/bin/pdftoppm").exists():  # look at the page: /tmp/shots-words/report-1.png
        out = Path("/tmp/shots-words")
        out.mkdir(exist_ok=True)
        subprocess.run(
            ["pdftoppm", "-png", "-r", "80", "-f", "1", "-l", "1", str(shipped.output_model_folder / "report.pdf"), str(out / "report")],
            check=True,
        )


def test_reliability_of_a_small_case_by_hand() -> None:
    y = [0, 0, 1, 0, 1, 1, 1, 0, 1, 1]
    p = [0.1, 0.2, 0.2, 0.3, 0.6, 0.7, 0.8, 0.8, 0.9, 0.95]
    got = calibration.reliability(y, p, bins=5)
    assert [(d["rows"], d["exits"]) for d in got["deciles"]] == [(2, 0), (2, 1), (2, 2), (2, 1), (2, 2)]
    assert [d["mean_predicted"] for d in got["deciles"]] == pytest.approx([0.15, 0.25, 0.65, 0.8, 0.925])
    assert got["brier"] == pytest.approx(brier_score_loss(y, p))
    assert calibration.sigmoid(np.array([-800.0, 0.0, 800.0])).tolist() == [0.0, 0.5, 1.0]  # no overflow
    with pytest.raises(ValueError):
        calibration.reliability([], [])
