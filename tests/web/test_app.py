"""The API through Flask's test client, and over HTTP against gunicorn."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pandas as pd
import pytest
import requests

from drs.core.settings import Config
from drs.reports import diagnostics
from drs.web import apicalls
from drs.web.app import create_app
from tests.conftest import run_script, stage_pass
from tools.procs import gunicorn_server

RECORD = {"corporation": "abcd", "lastmonth_activity": 3, "lastyear_activity": 400, "number_of_employees": 900}


@pytest.fixture
def client(deployed_practice: Config):
    return create_app(deployed_practice).test_client()


def test_prediction_from_a_data_file_in_input_order(client, deployed_practice: Config) -> None:
    answer = client.post("/prediction", json={"filepath": "testdata/testdata.csv"})
    assert answer.status_code == 200
    body = answer.get_json()
    test = pd.read_csv(deployed_practice.test_data_csv)
    assert body["model_version"] == "v0001" and body["count"] == len(test)
    assert [p["corporation"] for p in body["predictions"]] == test.corporation.tolist()
    assert [p["prediction"] for p in body["predictions"]] == diagnostics.model_predictions(test, deployed_practice)
    assert all(0 <= p["exit_probability"] <= 1 for p in body["predictions"])


def test_prediction_from_records_and_csv_body(client) -> None:
    other = {**RECORD, "corporation": "wxyz", "lastmonth_activity": 900}
    body = client.post("/prediction", json={"records": [RECORD, other]}).get_json()
    assert [p["corporation"] for p in body["predictions"]] == ["abcd", "wxyz"]
    csv = "corporation,lastmonth_activity,lastyear_activity,number_of_employees\nabcd,3,400,900\nwxyz,900,400,900\n"
    answer = client.post("/prediction", data=csv, content_type="text/csv")
    assert answer.status_code == 200
    assert answer.get_json()["predictions"] == body["predictions"]


@pytest.mark.parametrize(
    "payload, status, message",
    [
        ({"filepath": "../config.json"}, 403, "must name a file inside the data folders"),
        ({"filepath": "/etc/passwd"}, 403, "must name a file inside the data folders"),
        ({"filepath": "testdata/../../secret.csv"}, 403, "must name a file inside the data folders"),
        ({"filepath": "testdata/none.csv"}, 404, "no such data file"),
        ({"filepath": 3}, 400, "'filepath' must be a non-empty string"),
        ({"records": []}, 400, "'records' is empty"),
        ({"records": [{**RECORD, "lastmonth_activity": "many"}]}, 400, "record 1: 'lastmonth_activity' must be a number"),
        (
            {"records": [{"corporation": "x", "lastmonth_activity": 1, "lastyear_activity": 2}]},
            400,
            "record 1: missing field(s) number_of_employees",
        ),
        ({"records": [RECORD], "filepath": "x"}, 400, "exactly one of the fields"),
        ({"records": [{**RECORD, "lastmonth_activity": -1}]}, 400, "at least 0"),
    ],
)
def test_bad_prediction_requests_get_a_4xx_with_a_message(client, payload: dict, status: int, message: str) -> None:
    answer = client.post("/prediction", json=payload)
    assert answer.status_code == status
    body = answer.get_json()
    assert body["status"] == status and message in body["message"]


def test_symlink_out_of_the_data_folder_is_refused(client, deployed_practice: Config, tmp_path: Path) -> None:
    secret = tmp_path / "secret.csv"
    secret.write_text("corporation,lastmonth_activity,lastyear_activity,number_of_employees\nsecret,1,2,3\n")
    os.symlink(secret, deployed_practice.test_data_folder / "link.csv")
    answer = client.post("/prediction", json={"filepath": "testdata/link.csv"})
    assert answer.status_code == 403
    assert "secret" not in answer.get_data(as_text=True)


def test_not_json_and_wrong_content_type(client) -> None:
    answer = client.post("/prediction", data="{oops", content_type="application/json")
    assert answer.status_code == 400 and answer.get_json()["message"] == "the body is not a JSON object"
    answer = client.post("/prediction", data="x", content_type="text/plain")
    assert answer.status_code == 415
    assert client.get("/nowhere").get_json()["status"] == 404


def test_scoring_summarystats_diagnostics_health(client, deployed_practice: Config) -> None:
    before = sorted(p.name for p in deployed_practice.output_model_folder.iterdir())
    scoring_answer = client.get("/scoring").get_json()
    assert scoring_answer["f1"] == pytest.approx(float(deployed_practice.latest_score_txt.read_text()), abs=1e-6)
    assert scoring_answer["model_version"] == "v0001"
    assert sorted(p.name for p in deployed_practice.output_model_folder.iterdir()) == before
    stats = client.get("/summarystats").get_json()
    final = pd.read_csv(deployed_practice.final_data_csv)
    assert stats["rows"] == 520
    assert stats["statistics"]["lastmonth_activity"]["mean"] == pytest.approx(final.lastmonth_activity.mean())
    diag = client.get("/diagnostics").get_json()
    assert diag["missing_data_percent"]["exited"] == 0.0
    health = client.get("/health")
    assert health.status_code == 200 and health.get_json()["model_version"] == "v0001"


def test_health_is_503_with_nothing_deployed(config: Config) -> None:
    answer = create_app(config).test_client().get("/health")
    assert answer.status_code == 503
    assert "no model is deployed" in answer.get_json()["message"]


def test_new_deployment_is_picked_up_without_restart(client, deployed_practice: Config, config: Config) -> None:
    assert client.post("/prediction", json={"records": [RECORD]}).get_json()["model_version"] == "v0001"
    stage_pass(config)
    assert client.post("/prediction", json={"records": [RECORD]}).get_json()["model_version"] == "v0002"


def test_gunicorn_serves_and_apicalls_records_the_answers(deployed_practice: Config, config: Config) -> None:
    with gunicorn_server(config.config_file) as url:
        answer = requests.post(url + "/prediction", json={"records": [RECORD]}, timeout=10)
        assert answer.status_code == 200 and answer.json()["model_version"] == "v0001"
        refused = requests.post(url + "/prediction", json={"filepath": "/etc/passwd"}, timeout=10)
        assert refused.status_code == 403 and refused.headers["Content-Type"] == "application/json"
        done = run_script("apicalls.py", "--config", str(config.config_file), "--url", url)
        assert done.returncode == 0, done.stderr
    text = (config.output_model_folder / "apireturns.txt").read_text()
    for section in ("== prediction ==", "== scoring ==", "== summarystats ==", "== diagnostics ==", "== health =="):
        assert section in text
    assert "first 10 of 1200 predictions" in text
    record = json.loads((config.output_model_folder / "apireturns.json").read_text())
    assert [a["status"] for a in record["answers"]] == [200, 200, 200, 200, 200] and record["failed"] == []
    assert all(a["content_type"] == "application/json" and a["elapsed_seconds"] > 0 for a in record["answers"])
    assert record["answers"][0]["response"]["count"] == 1200


def test_apicalls_without_an_api_is_a_clear_error(deployed_practice: Config) -> None:
    done = run_script("apicalls.py", "--config", str(deployed_practice.config_file), "--url", "http://127.0.0.1:9")
    assert done.returncode == 1
    assert "the API is not reachable at http://127.0.0.1:9" in done.stderr
    assert "Traceback" not in done.stderr


def test_apicalls_records_an_endpoint_that_does_not_answer_in_time(deployed_practice: Config) -> None:
    import socket

    with socket.socket() as silent:  # accepts connections (the kernel does) but never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen(16)
        url = f"http://127.0.0.1:{silent.getsockname()[1]}"
        answer = apicalls.call_one(url, "health", "GET", "/health", None, timeout=0.3)
    assert answer["status"] is None and answer["error"] == "no answer within 0.3 s"
    assert apicalls.failed_calls([answer]) == ["health"]
    assert "status: no answer (no answer within 0.3 s)" in apicalls.format_readable(url, [answer], "now")
