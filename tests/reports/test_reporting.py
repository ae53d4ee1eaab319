"""The ranked risk list, the PDF report, GET /risk and the run history they read."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from matplotlib.image import imread
from pypdf import PdfReader

from drs.core.settings import Config
from drs.data import ingest
from drs.data.schema import Schema
from drs.history import runs as history
from drs.history.record import Outcome
from drs.pipeline import run as pipeline
from drs.production import versions as production
from drs.reports import diagnostics, reporting, risk
from drs.reports import pdf as report_pdf
from drs.web.app import create_app
from tests.conftest import HEADER, run_script, tree_state

FEATURES = ["lastmonth_activity", "lastyear_activity", "number_of_employees"]


@pytest.fixture
def production_run(deployed_practice: Config, config: Config) -> Config:
    """`make run`'s state: practice model v0001, then the full process finds drift and deploys v0002."""
    assert pipeline.run(config) == 0
    assert production.current(config.prod_deployment_folder).version == 2
    return config


def pdf_pages(path: Path) -> list[str]:
    return [page.extract_text() for page in PdfReader(path).pages]


def deployed_model(config: Config):
    return production.load_model(production.current(config.prod_deployment_folder))


# ---- the risk list ---------------------------------------------------------------------


def test_risk_list_ranks_every_active_client_by_the_deployed_models_probability(production_run: Config) -> None:
    config = production_run
    ranked = pd.read_csv(config.output_model_folder / "risklist.csv", keep_default_na=False)
    assert list(ranked.columns)[:6] == [
        "rank",
        "corporation",
        "exit_probability",
        *FEATURES,
    ]  # then the reasons (tests/model/test_explain.py)
    assert list(ranked.columns)[-3:] == ["previous_rank", "rank_change", "probability_change"]  # drs/reports/movement.py, last
    final = pd.read_csv(config.final_data_csv, keep_default_na=False)
    assert len(ranked) == int((final.exited == 0).sum()) == 6555  # 10,000 distinct corporations, 34% exited
    assert ranked.corporation.is_unique
    assert ranked["rank"].tolist() == list(range(1, len(ranked) + 1))
    assert ranked.exit_probability.is_monotonic_decreasing
    assert ranked.exit_probability.between(0, 1).all()
    assert not set(ranked.corporation) & set(final.corporation[final.exited == 1])
    assert "null" in set(ranked.corporation)  # a client called "null" is a name, not a missing value
    assert diagnostics.missing_data(config)["corporation"] == 0.0  # and the diagnostics agree

    model = deployed_model(config)
    rows = ranked.iloc[[0, 1, 1000, len(ranked) // 2, len(ranked) - 1]]
    expected = model.predict_proba(rows[FEATURES].to_numpy(dtype="float64"))[:, 1]
    np.testing.assert_allclose(rows.exit_probability.to_numpy(), expected, atol=1e-6)
    source = final.set_index("corporation").loc[rows.corporation, FEATURES].to_numpy()
    assert (source == rows[FEATURES].to_numpy()).all()


def test_most_recent_row_of_a_corporation_wins(deployed_practice: Config) -> None:
    """Later file in ingestion (name) order wins; within a file, the later row; a latest `exited` 1 means gone."""
    practice = deployed_practice
    first = pd.read_csv(practice.input_folder / "dataset1.csv", keep_default_na=False)
    stayer = first[first.exited == 0].iloc[0]
    leaver = first[first.exited == 0].iloc[1]
    (practice.input_folder / "dataset3.csv").write_text(
        HEADER
        + f"{stayer.corporation},1,2,3,0\n"
        + f"{stayer.corporation},5,60,700,0\n"  # the later row in the same file
        + f"{leaver.corporation},4,50,600,1\n"  # left since dataset1
    )
    ingest.ingest(practice)
    reporting.run(practice)
    ranked = pd.read_csv(practice.output_model_folder / "risklist.csv", keep_default_na=False).set_index("corporation")
    assert ranked.loc[stayer.corporation, FEATURES].tolist() == [5, 60, 700]
    assert leaver.corporation not in ranked.index
    assert ranked.index.is_unique


def test_input_csv_without_exited_column(deployed_practice: Config, tmp_path: Path) -> None:
    clients = tmp_path / "current clients.csv"
    clients.write_text(
        "corporation,lastmonth_activity,lastyear_activity,number_of_employees\nquiet,0,10,5000\nbusy,300,4000,20\nquiet,1,20,4000\n"
    )
    done = run_script("reporting.py", "--config", str(deployed_practice.config_file), "--input", str(clients))
    assert done.returncode == 0, done.stderr
    assert "2 active clients of current clients.csv ranked" in done.stderr
    ranked = pd.read_csv(deployed_practice.output_model_folder / "risklist.csv")
    assert ranked.corporation.tolist() == sorted(ranked.corporation, key=lambda c: -ranked.set_index("corporation").exit_probability[c])
    assert ranked.set_index("corporation").loc["quiet", FEATURES].tolist() == [1, 20, 4000]
    text = "\n".join(pdf_pages(deployed_practice.output_model_folder / "report.pdf"))
    assert "scored on current clients.csv, 3 rows" in text


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (
            "corporation,lastmonth_activity,lastyear_activity,number_of_employees\nabcd,1,x,3\n",
            "bad.csv: column 'lastyear_activity' is not a number in line 2 ('x')",
        ),
        ("corporation,lastmonth_activity\nabcd,1\n", "bad.csv: missing column(s): lastyear_activity, number_of_employees"),
        (None, "bad.csv: cannot be read: No such file or directory"),
    ],
)
def test_bad_input_csv_is_a_clear_error_and_changes_nothing(
    deployed_practice: Config, tmp_path: Path, content: str | None, message: str
) -> None:
    reporting.run(deployed_practice)
    before = tree_state(deployed_practice.output_model_folder)
    bad = tmp_path / "bad.csv"
    if content is not None:
        bad.write_text(content)
    done = run_script("reporting.py", "--config", str(deployed_practice.config_file), "--input", str(bad))
    assert done.returncode == 1
    assert message in done.stderr
    assert "Traceback" not in done.stderr
    assert tree_state(deployed_practice.output_model_folder) == before


def test_ranking_is_pure_and_stable() -> None:
    schema = Schema()
    frame = pd.DataFrame(
        {
            "corporation": ["b", "a", "c", "a"],
            "lastmonth_activity": [1, 2, 3, 4],
            "lastyear_activity": [1, 2, 3, 4],
            "number_of_employees": [1, 2, 3, 4],
            "exited": [0, 0, 1, 0],
        }
    )
    active = risk.active_clients(frame, schema)
    assert active["corporation"].to_list() == ["b", "a"] and active["lastmonth_activity"].to_list() == [1, 4]
    ranked = risk.rank_clients(active, [0.7, 0.7], schema)
    assert ranked["corporation"].to_list() == ["a", "b"]  # a tie is broken by name
    assert risk.above(ranked, 0.5) == 2 and risk.above(ranked, 0.7) == 0


@pytest.mark.parametrize("raw", ["0", "-3", "1001", "abc", "2.5", "", " ", "²", "10e2"])
def test_parse_top_refuses_what_is_not_a_bounded_whole_number(raw: str) -> None:
    with pytest.raises(ValueError, match="'top' must be a whole number from 1 to 1000"):
        risk.parse_top(raw)


# ---- GET /risk ---------------------------------------------------------------------------


def test_risk_endpoint_answers_the_risk_list(production_run: Config) -> None:
    config = production_run
    client = create_app(config).test_client()
    ranked = pd.read_csv(config.output_model_folder / "risklist.csv", keep_default_na=False)
    answer = client.get("/risk?top=5")
    assert answer.status_code == 200
    body = answer.get_json()
    assert body["model_version"] == "v0002" and body["top"] == 5
    assert body["active_clients"] == len(ranked) == 6555
    assert body["above_half"] == int((ranked.exit_probability > 0.5).sum())
    assert [c["corporation"] for c in body["clients"]] == ranked.corporation[:5].tolist()
    assert [c["exit_probability"] for c in body["clients"]] == pytest.approx(ranked.exit_probability[:5].tolist(), abs=1e-6)
    assert [c["rank"] for c in body["clients"]] == [1, 2, 3, 4, 5]
    assert len(client.get("/risk").get_json()["clients"]) == 20


@pytest.mark.parametrize("top", ["0", "abc", "1001", "-1", "3.5", ""])
def test_risk_endpoint_bad_top_is_400(deployed_practice: Config, top: str) -> None:
    answer = create_app(deployed_practice).test_client().get(f"/risk?top={top}")
    assert answer.status_code == 400
    assert answer.get_json()["message"] == f"'top' must be a whole number from 1 to 1000, got {top!r}"


def test_risk_endpoint_before_any_ranking_is_503_and_without_its_data_is_stale(deployed_practice: Config) -> None:
    """/risk ranks nothing: before a list is ranked it is 503; a list whose data is gone is answered as stale."""
    client = create_app(deployed_practice).test_client()
    answer = client.get("/risk")
    assert answer.status_code == 503
    assert answer.get_json()["message"] == "no risklist.csv yet: the pipeline (or reporting.py) ranks the clients after each deployment"
    reporting.run(deployed_practice)
    deployed_practice.final_data_csv.unlink()
    body = client.get("/risk").get_json()
    assert body["stale"] is True and body["model_version"] == body["deployed_version"] == "v0001"
    assert body["problems"] == ["finaldata.csv is gone (the list was ranked from it); run ingestion.py"]


# ---- the PDF report ------------------------------------------------------------------------


def test_report_pdf_says_what_is_deployed_and_who_is_at_risk(production_run: Config) -> None:
    config = production_run
    models = config.output_model_folder
    pages = pdf_pages(models / "report.pdf")
    assert len(pages) == len(report_pdf.SECTIONS) == 6
    for number, (page, title) in enumerate(zip(pages, report_pdf.SECTIONS, strict=True), start=1):
        assert title in page and f"page {number} of 6" in page

    deployed = production.current(config.prod_deployment_folder)
    model_page = pages[0]
    assert "v0002 (deployed" in model_page
    assert f"F1\n {deployed.score():.4f}" in model_page and "0.7909" in model_page
    assert "clients_q1.csv, clients_q2.csv, clients_q3.csv, clients_q4.csv" in model_page
    assert "testdata.csv: 1,200 labelled clients (600 exited)" in model_page
    flat = re.sub(r"\s+", " ", model_page)
    assert "drift: v0001: F1 on the new data 0.4844 vs its latestscore 0.6305 (10,000 new rows)" in flat
    assert "improvement +0.1604 >= minimum 0.0000 -> promoted" in flat
    assert "lastmonth_activity 0.101 7.2e-05 drift 0.076 ok" in flat  # data drift: KS yes, PSI no

    ranked = pd.read_csv(models / "risklist.csv", keep_default_na=False)
    risk_page = pages[1]
    above = int((ranked.exit_probability > 0.5).sum())
    assert f"{above} of {len(ranked):,} active clients have an exit probability above 0.5" in re.sub(r"\s+", " ", risk_page)
    assert f"1\n{ranked.corporation[0]}\n {ranked.exit_probability[0]:.3f}" in risk_page
    assert ranked.corporation[19] in risk_page and ranked.corporation[20] not in risk_page.split()

    data_page = re.sub(r"\s+", " ", pages[report_pdf.SECTIONS.index("Data")])
    assert "10,120 read from 4 accepted file(s); 120 exact duplicates dropped; 10,000 written" in data_page
    assert "lastmonth_activity 48.68 27.00 73.93 0.00 %" in data_page
    operations = pages[report_pdf.SECTIONS.index("Operations")]
    assert "reportlab" in operations and "5.1.0" in operations and "training" in operations
    trends = re.sub(r"\s+", " ", pages[report_pdf.SECTIONS.index("Trends")])
    assert "v0001" in trends and "v0002" in trends and "drift (raw): F1 0.4844 < 0.6305" in trends

    for page in PdfReader(models / "report.pdf").pages:
        assert text_right_edges(page) <= float(page.mediabox.width) - report_pdf.MARGIN + 0.5
    for name in ("confusionmatrix.png", "trends.png", "riskdistribution.png"):
        picture = imread(models / name)
        assert picture.shape[1] > 600 and picture.std() > 0.05, name


def test_report_lists_drift_numbers_it_does_not_know(deployed_practice: Config, tmp_path: Path) -> None:
    """Fields added to the run history later (other drift tests, data drift, a gate) still reach the reader."""
    check = {
        "test": "parametric",
        "deployed_version": "v0001",
        "new_data_f1": 0.61,
        "threshold": 0.6231,
        "drift": True,
        "calibration": {"brier": 0.00012, "bins": 10},  # a field this layout does not know
    }
    data_drift = {
        "measured": True,
        "reference": "v0001/trainingdata.csv",
        "rule": "KS p < 0.05 and PSI > 0.2",
        "drifted_features": ["lastmonth_activity"],
        "features": [
            {"feature": "lastmonth_activity", "ks_statistic": 0.3, "ks_p_value": 1e-9, "ks_drift": True, "psi": 0.45, "psi_drift": True}
        ],
    }
    run = {
        "started_at": "2026-01-02T03:04:05+00:00",
        "outcome": "deployed",
        "message": "m",
        "details": {"drift": check, "new_files": ["x.csv"], "data_drift": data_drift, "gate": {"reason": "gate says yes"}},
    }
    long_name = "a-client-with-a-very-long-name-" * 5  # wider than the page unless it wraps
    clients = tmp_path / "clients.csv"
    clients.write_text(HEADER + f"{long_name},0,1,9000,0\nb,3,40,50,0\n")
    result = reporting.run(deployed_practice, input_csv=clients, current_run=run)
    assert result["pages"] == len(report_pdf.SECTIONS)
    reader = PdfReader(deployed_practice.output_model_folder / "report.pdf")
    assert len(reader.pages) == len(report_pdf.SECTIONS)
    text = re.sub(r"\s+", " ", reader.pages[0].extract_text())
    assert "test 'parametric'" in text
    assert "drift: v0001: F1 on the new data 0.6100 vs threshold 0.6231" in text
    assert "calibration / brier 1.2e-04" in text and "calibration / bins 10" in text
    assert "drifted: lastmonth_activity." in text and "lastmonth_activity 0.300 1.0e-09 drift 0.450 drift" in text
    assert "Promotion gate gate says yes" in text
    assert text_right_edges(reader.pages[1]) <= float(reader.pages[1].mediabox.width) - report_pdf.MARGIN + 0.5


def text_right_edges(page) -> float:
    """Where the rightmost line of text on a page ends (in points), measured with its own font."""
    from reportlab.pdfbase.pdfmetrics import stringWidth

    ends: list[float] = []

    def visit(text: str, cm: list[float], tm: list[float], font: dict | None, size: float) -> None:
        name = str((font or {}).get("/BaseFont", "/Helvetica-Bold")).lstrip("/")
        for line in text.splitlines():
            if line.strip():
                ends.append(tm[4] * cm[0] + cm[4] + stringWidth(line.strip(), name, size * tm[0] * cm[0]))

    page.extract_text(visitor_text=visit)
    return max(ends)


def test_report_needs_a_deployed_model(config: Config) -> None:
    done = run_script("reporting.py", "--config", str(config.config_file))
    assert done.returncode == 1
    assert "no model is deployed" in done.stderr and "Traceback" not in done.stderr


# ---- the run history -----------------------------------------------------------------------


def test_history_grows_by_one_per_run_and_keeps_old_entries(production_run: Config) -> None:
    config = production_run
    before = history.runs(config.history_db)
    assert [r["outcome"] for r in before] == ["deployed"]
    for _ in range(2):
        earlier = history.runs(config.history_db)
        assert pipeline.run(config) == 0
        now = history.runs(config.history_db)
        assert len(now) == len(earlier) + 1
        assert now[: len(earlier)] == earlier
        assert now[-1]["outcome"] == "no new data"
    reporting.run(config)
    assert len(history.runs(config.history_db)) == 3  # reporting only reads the runs (it adds a ranking, drs/reports/rankings.py)
    trends_page = re.sub(r"\s+", " ", pdf_pages(config.output_model_folder / "report.pdf")[report_pdf.SECTIONS.index("Trends")])
    assert "v0001" in trends_page and "v0002" in trends_page
    first_page = re.sub(r"\s+", " ", pdf_pages(config.output_model_folder / "report.pdf")[0])
    assert "no new data" in first_page  # the last run
    assert "0.4844" in first_page  # and the last drift decision, two runs earlier


def test_report_reads_only_what_it_shows_of_the_run_history(deployed_practice: Config, monkeypatch: pytest.MonkeyPatch) -> None:
    """Its cost must not grow with the history's age: no read of every run, yet the last run, every drift
    decision and the latest deployment's stage timings are still shown."""
    db = deployed_practice.history_db

    def add(at: str, outcome: Outcome, message: str, details: dict) -> None:
        history.append_run(
            db, started_at=at, finished_at=at, kind="fullprocess", outcome=outcome, message=message, deployed_version=1, details=details
        )

    check = {"test": "raw", "deployed_version": "v0001", "new_data_f1": 0.4, "deployed_score": 0.6, "drift": True}
    add("2026-01-01T00:00:00+00:00", Outcome.DEPLOYED, "older deployment", {"drift": check, "timings": {"training": 11.5}})
    add("2026-01-02T00:00:00+00:00", Outcome.DEPLOYED, "newer deployment", {"timings": {"training": 22.5}})
    for minute in range(30):
        add(f"2026-01-03T00:{minute:02d}:00+00:00", Outcome.NO_NEW_DATA, "nothing new", {})

    def whole_history(*args: object, **kwargs: object) -> None:
        raise AssertionError("reporting read the whole run history")

    monkeypatch.setattr(history, "runs", whole_history)
    reporting.run(deployed_practice)
    pages = [re.sub(r"\s+", " ", page) for page in pdf_pages(deployed_practice.output_model_folder / "report.pdf")]
    assert "2026-01-03 00:29:00 UTC: no new data" in pages[0] and "nothing new" in pages[0]
    assert "drift: v0001: F1 on the new data 0.4000 vs its latestscore 0.6000" in pages[0]
    operations = pages[report_pdf.SECTIONS.index("Operations")]
    assert "the full-process run of 2026-01-02 00:00:00 UTC (newer deployment)" in operations
    assert "training 22.5 s" in operations and "11.5 s" not in operations


def test_diagnostics_after_a_deployment_reuse_the_runs_training_time(production_run: Config) -> None:
    """The full process trained once: diagnostics.json's training and scoring seconds are the run's own (issue 21:
    training again only to time it was a quarter of a redeploying run at a million clients)."""
    run = history.runs(production_run.history_db)[-1]
    recorded = json.loads(production_run.model_output("diagnostics.json").read_text())
    timings = run["details"]["timings"]
    assert recorded["execution_time_seconds"]["training"] == timings["training"]
    assert recorded["execution_time_seconds"]["scoring"] == timings["scoring"]
    assert recorded["execution_time_measured"].startswith("training and scoring as the run that deployed measured them")
    alone = diagnostics.run(production_run)  # diagnostics.py by hand: every stage timed again
    assert alone["execution_time_measured"] == "each stage timed again in a scratch folder"
