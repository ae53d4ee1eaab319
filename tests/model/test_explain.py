"""Reasons (drs/model/explain.py): exact log-odds contributions against the training mean, the top reason in words,
and where they show: risklist.csv, GET /risk, POST /prediction, the client's own view and the PDF."""

from __future__ import annotations

import json
import re
from html import unescape
from typing import Any

import numpy as np
import pandas as pd
import pytest
from pypdf import PdfReader
from scipy.special import expit, logit

from drs.core.settings import Config
from drs.data.schema import Schema
from drs.model import explain
from drs.model.estimator import LinearModel, build_model, feature_matrix, linear_model_of
from drs.production import versions as production
from drs.reports import reporting, risk
from drs.web.app import create_app
from tests.conftest import stage_pass

FEATURES = ("lastmonth_activity", "lastyear_activity", "number_of_employees")
CONTRIBUTIONS = [f"{f}_contribution" for f in FEATURES]


@pytest.fixture
def shipped(config: Config) -> Config:
    """The shipped data (sourceddata, four quarterly files) ingested, trained, scored and deployed as v0001."""
    stage_pass(config)
    return config


@pytest.fixture
def reported(shipped: Config) -> Config:
    reporting.run(shipped)
    return shipped


def deployed(config: Config) -> tuple[Any, production.Deployment, explain.Reference]:
    deployment = production.current(config.prod_deployment_folder)
    assert deployment is not None
    reference = explain.deployed_reference(deployment, FEATURES)
    assert reference is not None
    return production.load_model(deployment), deployment, reference


def final_data(config: Config) -> pd.DataFrame:
    return pd.read_csv(config.final_data_csv, keep_default_na=False)


# ---- exact from the model -------------------------------------------------------------------------


def test_contributions_plus_the_reference_log_odds_are_each_clients_log_odds(shipped: Config) -> None:
    model, deployment, reference = deployed(shipped)
    assert reference.source == explain.RECORDED
    frame = final_data(shipped)
    schema = Schema.from_config(shipped)
    # the reference is the training data's mean of each feature, recorded with the model and carried into the deployment
    np.testing.assert_allclose(reference.vector(FEATURES), frame[list(FEATURES)].mean().to_numpy(), rtol=1e-12)
    trained = json.loads(shipped.model_meta.read_text())
    assert trained["reference"] == deployment.meta["reference"] and trained["reference"]["rows"] == 10_000

    linear = linear_model_of(model)
    assert linear is not None
    ref = reference.vector(FEATURES)
    x = feature_matrix(frame, schema)
    z = explain.contributions(linear, x, ref).sum(axis=1) + explain.reference_log_odds(linear, ref)
    # every row of the shipped data: the log-odds scikit-learn's predict_proba is the expit of
    assert np.abs(z - model.decision_function(x)).max() < 1e-9
    np.testing.assert_allclose(expit(z), model.predict_proba(x)[:, 1], rtol=1e-12, atol=0)
    # every scored (active) client: the logit of predict_proba itself
    active = feature_matrix(risk.active_clients(frame, schema), schema)
    za = explain.contributions(linear, active, ref).sum(axis=1) + explain.reference_log_odds(linear, ref)
    assert len(active) == 6555
    assert np.abs(za - logit(model.predict_proba(active)[:, 1])).max() < 1e-9
    # over the training data the contributions average to zero: the reference is the average client
    np.testing.assert_allclose(explain.contributions(linear, x, ref).mean(axis=0), 0, atol=1e-9)


def test_a_scaled_model_is_explained_in_its_scaled_units_and_exactly(shipped: Config) -> None:
    frame = final_data(shipped)
    schema = Schema.from_config(shipped)
    x, y = feature_matrix(frame, schema), frame["exited"].to_numpy()
    settings = {"C": 1.0, "solver": "lbfgs", "random_state": 0, "max_iter": 1000, "scale": True}
    model = build_model(settings).fit(x, y)
    linear = linear_model_of(model)
    assert linear is not None and np.any(linear.scale != 1)
    ref = x.mean(axis=0)
    c = explain.contributions(linear, x, ref)
    np.testing.assert_allclose(c, linear.weights * (x - ref) / linear.scale, rtol=1e-12)
    assert np.abs(c.sum(axis=1) + explain.reference_log_odds(linear, ref) - model.decision_function(x)).max() < 1e-9


def test_a_client_at_the_reference_has_every_contribution_zero(shipped: Config) -> None:
    model, _, reference = deployed(shipped)
    linear = linear_model_of(model)
    assert linear is not None
    ref = reference.vector(FEATURES)
    explained = explain.explain(linear, ref[None, :], reference, FEATURES)
    assert explained.contributions.tolist() == [[0.0, 0.0, 0.0]]
    assert explained.reasons == [explain.AT_REFERENCE]
    assert float(linear.decision(ref[None, :])[0]) == explain.reference_log_odds(linear, ref)


def test_the_top_reason_names_the_largest_risk_raising_contribution(shipped: Config) -> None:
    model, _, reference = deployed(shipped)
    ranked = risk.risk_list(model, final_data(shipped), Schema.from_config(shipped), reference)
    names = [explain.feature_name(f) for f in FEATURES]
    lowered = 0
    for row in ranked.iter_rows(named=True):
        c = np.array([row[name] for name in CONTRIBUTIONS])
        raising = c.max() > 0
        i = int(c.argmax()) if raising else int(c.argmin())
        lowered += not raising
        value = row[FEATURES[i]]
        typical = explain.plain(reference.means[FEATURES[i]])
        verdict = "raises the risk most" if raising else "lowers the risk most"
        assert row["top_reason"] == f"{names[i]} {value:,} (typical {typical}): {verdict}", row
    assert lowered > 0  # the safest clients: nothing raises their risk, and the reason says what lowers it most
    top = ranked.row(0, named=True)
    assert top["top_reason"] == f"number of employees {top['number_of_employees']} (typical 97): raises the risk most"


def test_top_reason_words() -> None:
    reference = [85.0, 458.4671, 96.6059]
    assert explain.top_reason([12, 400, 90], [1.2, -0.1, -0.3], reference, FEATURES) == (
        "activity last month 12 (typical 85): raises the risk most"
    )
    assert explain.top_reason([90, 1200, 50], [-0.2, -0.5, -1.0], reference, FEATURES) == (
        "number of employees 50 (typical 97): lowers the risk most"
    )
    assert explain.top_reason([1, 2, 3], [0.0, 0.0, 0.0], reference, FEATURES) == explain.AT_REFERENCE
    assert [explain.plain(v) for v in (12, 85.4, 1250.0, 3.44, 0.25, 2.0)] == ["12", "85", "1,250", "3.4", "0.25", "2"]
    assert explain.feature_label("lastmonth_activity") == "Activity last month" and explain.feature_name("x_y") == "x y"


def test_a_version_deployed_before_the_mean_was_recorded_uses_its_training_data(shipped: Config) -> None:
    deployment = production.current(shipped.prod_deployment_folder)
    assert deployment is not None
    meta_file = deployment.folder / "deployment.json"
    meta = json.loads(meta_file.read_text())
    recorded = meta.pop("reference")
    meta_file.write_text(json.dumps(meta))
    older = production.current(shipped.prod_deployment_folder)
    assert older is not None
    from_summary = explain.deployed_reference(older, FEATURES)
    assert (
        from_summary is not None and "trainingreference.npz" in from_summary.source and "v0001 was deployed before" in from_summary.source
    )
    np.testing.assert_allclose(from_summary.vector(FEATURES), [recorded["means"][f] for f in FEATURES], rtol=1e-12)
    (older.folder / "trainingreference.npz").write_bytes(b"damaged")  # its checksum no longer matches: not used
    from_csv = explain.deployed_reference(older, FEATURES)
    assert from_csv is not None and "trainingdata.csv" in from_csv.source
    np.testing.assert_allclose(from_csv.vector(FEATURES), [recorded["means"][f] for f in FEATURES], rtol=1e-12)


def test_a_record_that_is_not_a_reference_is_refused() -> None:
    assert explain.reference_from_record(None, FEATURES) is None
    assert explain.reference_from_record({"statistic": "median", "means": {}}, FEATURES) is None
    assert explain.reference_from_record({"statistic": "mean", "means": {"lastmonth_activity": 1.0}}, FEATURES) is None
    good = explain.reference_record({f: [1.0, 2.0, 6.0] for f in FEATURES}, FEATURES)
    assert good == {"statistic": "mean", "means": dict.fromkeys(FEATURES, 3.0), "rows": 3}
    linear = LinearModel(np.zeros(3), np.ones(3), np.array([1.0, -2.0, 0.5]), 0.25, np.array([0, 1]))
    reference = explain.reference_from_record(good, FEATURES)
    assert reference is not None and reference.describe(linear, FEATURES)["log_odds"] == pytest.approx(3 - 6 + 1.5 + 0.25)


# ---- where the reasons show ----------------------------------------------------------------------------


def test_the_risk_list_keeps_its_columns_first_and_gains_the_reasons(reported: Config) -> None:
    model, _, reference = deployed(reported)
    ranked = pd.read_csv(reported.output_model_folder / "risklist.csv", keep_default_na=False)
    assert list(ranked.columns) == [
        *["rank", "corporation", "exit_probability", *FEATURES, "top_reason", *CONTRIBUTIONS],
        *["previous_rank", "rank_change", "probability_change"],  # the movement, last (tests/reports/test_movement.py)
    ]
    linear = linear_model_of(model)
    assert linear is not None
    ref = reference.vector(FEATURES)
    x = ranked[list(FEATURES)].to_numpy(dtype="float64")
    np.testing.assert_allclose(ranked[CONTRIBUTIONS].to_numpy(), explain.contributions(linear, x, ref), atol=5e-7)
    z = ranked[CONTRIBUTIONS].sum(axis=1).to_numpy() + explain.reference_log_odds(linear, ref)
    np.testing.assert_allclose(expit(z), ranked.exit_probability, atol=2e-6)  # both rounded to 6 decimals in the file
    assert ranked.top_reason[0] == "number of employees 175 (typical 97): raises the risk most"
    text = "\n".join(page.extract_text() for page in PdfReader(reported.output_model_folder / "report.pdf").pages)
    flat = re.sub(r"\s+", " ", text)
    assert "top reason" in flat
    for reason in ranked.top_reason[:20]:
        assert reason in flat, reason


def test_risk_answers_the_reasons_and_their_reference(reported: Config) -> None:
    client = create_app(reported).test_client()
    body = client.get("/risk?top=3").get_json()
    ranked = pd.read_csv(reported.output_model_folder / "risklist.csv", keep_default_na=False)
    for answer, (_, row) in zip(body["clients"], ranked.head(3).iterrows(), strict=True):
        assert answer["top_reason"] == row.top_reason
        assert [answer[c] for c in CONTRIBUTIONS] == pytest.approx(row[CONTRIBUTIONS].tolist(), abs=1e-9)
    reference = body["reference"]
    assert reference["statistic"] == "mean" and reference["source"] == explain.RECORDED
    assert reference["values"] == pytest.approx(final_data(reported)[list(FEATURES)].mean().to_dict(), rel=1e-12)
    total = reference["log_odds"] + sum(body["clients"][0][c] for c in CONTRIBUTIONS)
    assert expit(total) == pytest.approx(body["clients"][0]["exit_probability"], abs=2e-6)


def test_prediction_explains_when_asked(shipped: Config) -> None:
    client = create_app(shipped).test_client()
    record = {"corporation": "abcd", "lastmonth_activity": 12, "lastyear_activity": 400, "number_of_employees": 90}
    plain = client.post("/prediction", json={"records": [record]}).get_json()
    assert "top_reason" not in plain["predictions"][0] and "reference" not in plain
    asked = client.post("/prediction", json={"records": [record], "explain": True})
    assert asked.status_code == 200
    body = asked.get_json()
    (prediction,) = body["predictions"]
    assert prediction["top_reason"] == "activity last month 12 (typical 49): raises the risk most"
    z = body["reference"]["log_odds"] + sum(prediction[c] for c in CONTRIBUTIONS)
    assert expit(z) == pytest.approx(prediction["exit_probability"], abs=2e-6)
    csv = "corporation,lastmonth_activity,lastyear_activity,number_of_employees\nabcd,12,400,90\n"
    by_csv = client.post("/prediction?explain=1", data=csv, content_type="text/csv").get_json()
    assert by_csv["predictions"] == body["predictions"] and by_csv["reference"] == body["reference"]
    not_asked = client.post("/prediction?explain=0", data=csv, content_type="text/csv").get_json()
    assert "top_reason" not in not_asked["predictions"][0]
    bad = client.post("/prediction", json={"records": [record], "explain": "yes"})
    assert bad.status_code == 400 and bad.get_json()["message"] == "'explain' in the body must be true or false, got 'yes'"
    bad = client.post("/prediction?explain=maybe", data=csv, content_type="text/csv")
    assert bad.status_code == 400 and bad.get_json()["message"] == "'explain' in the query must be 1 or 0, got 'maybe'"


def test_the_page_shows_each_rows_top_reason_and_links_the_clients_view(reported: Config) -> None:
    client = create_app(reported).test_client()
    html = unescape(client.get("/").get_data(as_text=True))
    ranked = pd.read_csv(reported.output_model_folder / "risklist.csv", keep_default_na=False)
    for _, row in ranked.head(25).iterrows():
        assert f'<a href="/clients/{row.corporation}">{row.corporation}</a>' in html
        assert f'<td class="reason">{row.top_reason}</td>' in html


def test_a_clients_view_shows_its_reasons_its_rows_over_time_and_each_version(reported: Config) -> None:
    stage_pass(reported)  # a second deployment of the same data: v0002
    reporting.run(reported)
    client = create_app(reported).test_client()
    ranked = pd.read_csv(reported.output_model_folder / "risklist.csv", keep_default_na=False)
    top = ranked.iloc[0]
    answer = client.get(f"/clients/{top.corporation}")
    assert answer.status_code == 200 and answer.mimetype == "text/html"
    html = unescape(answer.get_data(as_text=True))
    assert "<script>" not in html.split("</head>")[1]  # the chart is SVG drawn on the server, no inline script
    chart = re.search(r'<svg class="contrib-chart".*?</svg>', html, re.S)
    assert chart is not None
    bars = re.findall(r'<rect [^>]*class="bar-(raises|lowers|zero)"', chart.group(0))
    expected = ["raises" if c > 0 else "lowers" if c < 0 else "zero" for c in top[CONTRIBUTIONS]]
    assert bars == expected
    for c in top[CONTRIBUTIONS]:
        assert f">{c:+.2f}</text>" in chart.group(0)
    assert f"<strong>Top reason:</strong> {top.top_reason}" in html
    # its rows across the ingested files, in ingestion order
    files = sorted(p.name for p in reported.input_folder.glob("*.csv"))
    rows = [
        (name, line)
        for name in files
        for line in (reported.input_folder / name).read_text().splitlines()
        if line.startswith(top.corporation + ",")
    ]
    assert rows, "the top client has rows in the shipped files"
    shown = re.findall(r'<tr><td class="nowrap">(clients_q\d\.csv)</td>', html)
    assert shown == [name for name, _ in rows]
    # its probability under each deployed version, newest first, v0002 current
    versions = re.findall(r"<td>(v\d{4})(?: <span class=\"tag\">current</span>)?</td>", html)
    assert versions == ["v0002", "v0001"]
    assert html.count(f'<span class="pct num">{top.exit_probability * 100:.1f}%</span>') == 2


def test_an_unknown_client_is_a_404_page(reported: Config) -> None:
    answer = create_app(reported).test_client().get("/clients/no-such-corporation")
    assert answer.status_code == 404 and answer.mimetype == "text/html"
    assert "no client 'no-such-corporation' in the risk list or the ingested files" in unescape(answer.get_data(as_text=True))


def test_a_client_that_left_has_a_view_without_reasons(reported: Config) -> None:
    frame = final_data(reported)
    latest = frame.drop_duplicates("corporation", keep="last")
    gone = latest[latest.exited == 1].corporation.iloc[0]
    answer = create_app(reported).test_client().get(f"/clients/{gone}")
    assert answer.status_code == 200
    html = unescape(answer.get_data(as_text=True))
    assert "Not on the risk list: its latest row says it has left" in html and "contrib-chart" not in html
    assert "v0001" in html  # still scored by each version
