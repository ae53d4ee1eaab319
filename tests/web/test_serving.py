"""Serving: the fast scorer, path refusals, body caps, error shapes, and gunicorn under a redeploy."""

from __future__ import annotations

import json
import os
import pickle
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import requests

from drs.core import layout
from drs.core.settings import Config
from drs.data.schema import Schema
from drs.model.estimator import feature_matrix, fit, scorer_for
from drs.production import versions as production
from drs.web import api
from drs.web import requests as web_requests
from drs.web.app import create_app
from tests.conftest import ROOT, write_config
from tools.procs import gunicorn_server

RECORD = {"corporation": "abcd", "lastmonth_activity": 3, "lastyear_activity": 400, "number_of_employees": 900}


@pytest.fixture
def client(deployed_practice: Config):
    return create_app(deployed_practice).test_client()


# ---- the fast scorer ------------------------------------------------------------------------


@pytest.mark.parametrize("settings", [{}, {"scale": True, "solver": "lbfgs"}, {"C": 0.01}])
def test_fast_scorer_equals_predict_proba(deployed_practice: Config, settings: dict[str, Any]) -> None:
    schema = Schema.from_config(deployed_practice)
    frame = pd.read_csv(deployed_practice.final_data_csv)
    model = fit(frame, schema, {**deployed_practice.model, **settings})
    test = pd.read_csv(deployed_practice.test_data_csv)
    x = test[list(schema.features)].to_numpy(dtype="float64")
    scorer = scorer_for(model)
    classes, probabilities = scorer.score(x)
    assert scorer.fast
    assert classes.tolist() == model.predict(x).tolist()
    np.testing.assert_allclose(probabilities, model.predict_proba(x)[:, 1], rtol=1e-12, atol=1e-15)
    assert 0 < classes.sum() < len(classes)  # both classes occur, so the comparison means something


@pytest.mark.parametrize("with_mean, with_std", [(False, True), (True, False)])
def test_fast_scorer_follows_a_partial_scaler(deployed_practice: Config, with_mean: bool, with_std: bool) -> None:
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    frame = pd.read_csv(deployed_practice.final_data_csv)
    schema = Schema.from_config(deployed_practice)
    x, y = feature_matrix(frame, schema), frame[schema.target].to_numpy()
    model = make_pipeline(StandardScaler(with_mean=with_mean, with_std=with_std), LogisticRegression(solver="lbfgs")).fit(x, y)
    classes, probabilities = scorer_for(model).score(x)
    assert classes.tolist() == model.predict(x).tolist()
    np.testing.assert_allclose(probabilities, model.predict_proba(x)[:, 1], rtol=1e-12, atol=1e-15)


def test_other_models_use_scikit_learn_itself(deployed_practice: Config) -> None:
    from sklearn.tree import DecisionTreeClassifier

    frame = pd.read_csv(deployed_practice.final_data_csv)
    schema = Schema.from_config(deployed_practice)
    x, y = feature_matrix(frame, schema), frame[schema.target].to_numpy()
    tree = DecisionTreeClassifier(max_depth=3, random_state=0).fit(x, y)
    scorer = scorer_for(tree)
    classes, probabilities = scorer.score(x[:50])
    assert not scorer.fast
    assert classes.tolist() == tree.predict(x[:50]).tolist()
    assert probabilities.tolist() == tree.predict_proba(x[:50])[:, 1].tolist()


def test_api_answers_equal_the_deployed_models_predict_proba(client, deployed_practice: Config) -> None:
    test = pd.read_csv(deployed_practice.test_data_csv)
    records = test.drop(columns="exited").head(200).to_dict("records")
    body = client.post("/prediction", json={"records": records}).get_json()
    model = production.load_model(production.current(deployed_practice.prod_deployment_folder))
    expected = model.predict_proba(test[list(deployed_practice.features)].head(200).to_numpy(dtype="float64"))[:, 1]
    assert [p["exit_probability"] for p in body["predictions"]] == [round(float(p), 6) for p in expected]


# ---- inputs ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "record, message",
    [
        ({**RECORD, "number_of_employees": 10**400}, "record 1: 'number_of_employees' must be a finite number of at least 0"),
        ({**RECORD, "lastyear_activity": True}, "record 1: 'lastyear_activity' must be a number, got True"),
        ({**RECORD, "lastyear_activity": None}, "record 1: 'lastyear_activity' must be a number, got None"),
        ({**RECORD, "lastmonth_activity": -0.5}, "record 1: 'lastmonth_activity' must be a finite number of at least 0, got -0.5"),
        ({**RECORD, "corporation": ["x"]}, "record 1: 'corporation' must be a string"),
        ({**RECORD, "revenue": 3}, "record 1: unknown field(s) revenue"),
    ],
)
def test_bad_records_name_the_row_and_column(client, record: dict[str, Any], message: str) -> None:
    answer = client.post("/prediction", json={"records": [RECORD, RECORD, record]})
    body = answer.get_json()
    assert answer.status_code == 400, body
    assert body["message"].startswith(message.replace("record 1", "record 3"))


def test_a_negative_value_deep_in_a_request_is_found(client) -> None:
    records = [RECORD] * 57 + [{**RECORD, "number_of_employees": -3}] + [RECORD] * 10
    body = client.post("/prediction", json={"records": records}).get_json()
    assert body["message"] == "record 58: 'number_of_employees' must be a finite number of at least 0, got -3"


def test_numbers_as_strings_and_the_label_column_are_accepted(client) -> None:
    plain = client.post("/prediction", json={"records": [RECORD]}).get_json()
    loose = {**{k: str(v) for k, v in RECORD.items()}, "exited": 1}
    answer = client.post("/prediction", json={"records": [loose]})
    assert answer.status_code == 200
    assert answer.get_json()["predictions"] == plain["predictions"]


def test_bad_csv_body_names_the_row_and_column(client) -> None:
    csv = "corporation,lastmonth_activity,lastyear_activity,number_of_employees\na,1,2,3\nb,1,x,3\n"
    answer = client.post("/prediction", data=csv, content_type="text/csv")
    assert answer.status_code == 400
    assert answer.get_json()["message"] == "request body: column 'lastyear_activity' is not a number in line 3 ('x')"
    empty = client.post("/prediction", data="", content_type="text/csv")
    assert empty.status_code == 400 and empty.get_json()["message"] == "request body: file is empty"


@pytest.fixture
def opened(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every data file the API opens."""
    calls: list[str] = []
    real = web_requests.read_csv_checked

    def spy(path: Path, *args: Any, **kwargs: Any) -> Any:
        calls.append(str(path))
        return real(path, *args, **kwargs)

    monkeypatch.setattr(web_requests, "read_csv_checked", spy)
    return calls


@pytest.mark.parametrize(
    "filepath",
    ["../config.json", "testdata/../../outside.csv", "/etc/passwd", "%2E%2E/config.json", "practicemodels/../config.json"],
)
def test_paths_outside_the_data_folders_are_refused_unopened(client, opened: list[str], filepath: str) -> None:
    answer = client.post("/prediction", json={"filepath": filepath})
    assert answer.status_code == 403, answer.get_json()
    assert "must name a file inside the data folders" in answer.get_json()["message"]
    assert opened == []


def test_url_encoded_query_path_is_decoded_once_then_refused(client, opened: list[str]) -> None:
    literal = client.post("/prediction", json={"filepath": "testdata/..%2F..%2Foutside.csv"})
    assert literal.status_code == 404 and opened == []  # a JSON string is a name, not decoded again
    answer = client.post("/prediction?filepath=testdata%2F..%2F..%2Fconfig.json")
    assert answer.status_code == 403 and opened == []
    answer = client.post("/prediction?filepath=%2Fetc%2Fpasswd")
    assert answer.status_code == 403 and opened == []
    answer = client.post("/prediction?filepath=testdata%2Ftestdata.csv")
    assert answer.status_code == 200 and answer.get_json()["count"] == 1200


def test_symlinks_are_followed_before_the_check(client, deployed_practice: Config, opened: list[str], tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.csv").write_text("corporation,lastmonth_activity,lastyear_activity,number_of_employees\nsecret,1,2,3\n")
    os.symlink(outside, deployed_practice.test_data_folder / "linkdir")
    answer = client.post("/prediction", json={"filepath": "testdata/linkdir/secret.csv"})
    assert answer.status_code == 403 and opened == []
    os.symlink(deployed_practice.test_data_csv, deployed_practice.input_folder / "inside.csv")
    answer = client.post("/prediction", json={"filepath": str(deployed_practice.input_folder / "inside.csv")})
    assert answer.status_code == 200 and answer.get_json()["count"] == 1200
    assert opened == [str(deployed_practice.test_data_csv)]


def test_body_and_record_caps(deployed_practice: Config) -> None:
    small = write_config(deployed_practice.config_file.parent, "small.json", max_request_bytes=1000, max_records=5)
    client = create_app(small).test_client()
    big = client.post("/prediction", json={"records": [RECORD] * 30})
    assert big.status_code == 413
    assert big.get_json() == {
        "status": 413,
        "error": "Request Entity Too Large",
        "message": "the request body is larger than the limit of 1000 bytes (setting max_request_bytes)",
    }
    many = client.post("/prediction", json={"records": [{"lastmonth_activity": 1, "lastyear_activity": 1, "number_of_employees": 1}] * 6})
    assert many.status_code == 413 and many.get_json()["message"] == "too many records: 6 (at most 5 per request; setting max_records)"
    from_file = client.post("/prediction", json={"filepath": "testdata/testdata.csv"})
    assert from_file.status_code == 413 and "the data file is" in from_file.get_json()["message"]


def test_every_error_has_the_same_shape(client, monkeypatch: pytest.MonkeyPatch) -> None:
    wrong_method = client.get("/prediction")
    assert wrong_method.status_code == 405
    assert wrong_method.get_json() == {
        "status": 405,
        "error": "Method Not Allowed",
        "message": "GET is not allowed on /prediction (use POST)",
    }
    assert client.get("/nowhere").get_json()["message"] == "no endpoint /nowhere; see openapi.yaml for the endpoints"

    def broken(*args: Any) -> Any:
        raise RuntimeError("secret detail")

    monkeypatch.setattr(api, "prediction_answer", broken)
    answer = client.post("/prediction", json={"records": [RECORD]})
    assert answer.status_code == 500
    assert answer.get_json() == {"status": 500, "error": "Internal Server Error", "message": "internal error; see the server log"}


def test_a_damaged_deployment_is_503_on_health_and_predictions(deployed_practice: Config) -> None:
    client = create_app(deployed_practice).test_client()
    assert client.get("/health").status_code == 200
    model = production.current(deployed_practice.prod_deployment_folder).model_path
    # a new version whose pickle was changed after deployment
    production.publish(
        deployed_practice.prod_deployment_folder,
        {name: deployed_practice.prod_deployment_folder / name for name in layout.DEPLOYED_FILES},
        {"reason": "test"},
    )
    damaged = production.current(deployed_practice.prod_deployment_folder).model_path
    damaged.write_bytes(model.read_bytes() + b"x")
    health = client.get("/health")
    assert health.status_code == 503
    assert "v0002: trainedmodel.pkl does not match the checksum" in health.get_json()["message"]
    assert client.post("/prediction", json={"records": [RECORD]}).status_code == 503
    production.activate(deployed_practice.prod_deployment_folder, 1)  # rollback heals it at once
    assert client.get("/health").get_json()["model_version"] == "v0001"


# ---- gunicorn -------------------------------------------------------------------------------


def test_gunicorn_writes_nothing_outside_the_project(deployed_practice: Config, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    with gunicorn_server(deployed_practice.config_file) as url:
        assert requests.get(url + "/health", timeout=10).json()["model_version"] == "v0001"
    assert list(home.iterdir()) == []


def test_chunked_body_over_the_cap_is_413_not_cut(deployed_practice: Config) -> None:
    small = write_config(deployed_practice.config_file.parent, "small.json", max_request_bytes=50_000)
    header = b"corporation,lastmonth_activity,lastyear_activity,number_of_employees\n"

    def chunks(rows: int):
        yield header
        for i in range(rows):
            yield b"c%d,1,2,3\n" % i

    with gunicorn_server(small) as url:
        ok = requests.post(url + "/prediction", data=chunks(100), headers={"Content-Type": "text/csv"}, timeout=10)
        assert ok.status_code == 200 and ok.json()["count"] == 100
        cut = requests.post(url + "/prediction", data=chunks(10_000), headers={"Content-Type": "text/csv"}, timeout=10)
        assert cut.status_code == 413, cut.text
        assert cut.json()["message"] == "the request body is larger than the limit of 50000 bytes (setting max_request_bytes)"
        plain = requests.post(url + "/prediction", data=b"".join(chunks(10_000)), headers={"Content-Type": "text/csv"}, timeout=10)
        assert plain.status_code == 413


class Load:
    """Client threads posting one request body until stopped (bounded in count and time)."""

    def __init__(self, url: str, body: dict[str, Any], threads: int = 4, max_requests: int = 20_000):
        self.url, self.body, self.max_requests = url, body, max_requests
        self.answers: list[tuple[float, float, int, Any]] = []  # (sent, answered, status, JSON or error)
        self.stop = threading.Event()
        self.threads = [threading.Thread(target=self._run, daemon=True) for _ in range(threads)]

    def _run(self) -> None:
        session = requests.Session()
        deadline = time.monotonic() + 120
        while not self.stop.is_set() and len(self.answers) < self.max_requests and time.monotonic() < deadline:
            sent = time.monotonic()
            try:
                response = session.post(self.url + "/prediction", json=self.body, timeout=10)
                self.answers.append((sent, time.monotonic(), response.status_code, response.json()))
            except (requests.RequestException, ValueError) as exc:
                self.answers.append((sent, time.monotonic(), 0, repr(exc)))

    def __enter__(self) -> Load:
        for t in self.threads:
            t.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        for t in self.threads:
            t.join(timeout=30)

    def wait_for(self, count: int) -> None:
        deadline = time.monotonic() + 30
        while len(self.answers) < count and time.monotonic() < deadline:
            time.sleep(0.01)


def expected_probabilities(prod: Path, records: list[dict[str, Any]], features: tuple[str, ...]) -> dict[str, list[float]]:
    """Each deployed version's exit probabilities for the records, straight from its pickle."""
    x = np.asarray([[r[f] for f in features] for r in records], dtype="float64")
    expected = {}
    for d in production.list_versions(prod):
        with open(d.model_path, "rb") as handle:
            model = pickle.load(handle)
        expected[d.label] = [round(float(p), 6) for p in model.predict_proba(x)[:, 1]]
    return expected


@pytest.mark.slow
def test_redeploys_under_load_fail_no_request(deployed_practice: Config, config: Config) -> None:
    """fullprocess.py redeploys, then a rollback, while 4 clients call: no failure, every answer one whole version."""
    test = pd.read_csv(config.test_data_csv)
    records = test.drop(columns="exited").sample(20, random_state=1).to_dict("records")
    prod = config.prod_deployment_folder
    with gunicorn_server(config.config_file) as url, Load(url, {"records": records}) as load:
        load.wait_for(200)
        done = subprocess.run(
            [sys.executable, str(ROOT / "fullprocess.py"), "--config", str(config.config_file), "--api-url", url],
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert done.returncode == 0, done.stderr
        redeployed = time.monotonic()
        assert production.current(prod).label == "v0002"
        load.wait_for(len(load.answers) + 200)
        rolling_back = time.monotonic()
        production.activate(prod, 1)
        rolled_back = time.monotonic()
        load.wait_for(len(load.answers) + 200)
    expected = expected_probabilities(prod, records, config.features)
    assert expected["v0001"] != expected["v0002"]
    failed = [a for a in load.answers if a[2] != 200]
    assert failed == [], failed[:3]
    versions = []
    for sent, answered, _, body in load.answers:
        version = body["model_version"]
        assert [p["exit_probability"] for p in body["predictions"]] == expected[version], f"{version}: mixed answer"
        if redeployed < sent and answered < rolling_back:
            assert version == "v0002", "a request sent after the redeploy was answered by the old model"
        if sent > rolled_back:
            assert version == "v0001", "a request sent after the rollback was answered by the newer model"
        versions.append(version)
    assert {"v0001", "v0002"} <= set(versions)
    assert len(load.answers) >= 600
    api_record = json.loads((config.output_model_folder / "apireturns.json").read_text())
    assert [a["status"] for a in api_record["answers"]] == [200] * len(api_record["answers"])


def test_a_data_file_is_read_again_only_when_it_changes(client, deployed_practice: Config, opened: list[str]) -> None:
    path = deployed_practice.input_folder / "few.csv"
    path.write_text("corporation,lastmonth_activity,lastyear_activity,number_of_employees\na,1,2,3\n")
    for _ in range(3):
        assert client.post("/prediction", json={"filepath": "practicedata/few.csv"}).get_json()["count"] == 1
    assert len(opened) == 1
    with open(path, "a") as handle:
        handle.write("b,4,5,6\n")
    answer = client.post("/prediction", json={"filepath": "practicedata/few.csv"}).get_json()
    assert answer["count"] == 2 and [p["corporation"] for p in answer["predictions"]] == ["a", "b"]
    assert len(opened) == 2


def test_a_client_named_null_is_not_missing_data(client, deployed_practice: Config) -> None:
    final = deployed_practice.final_data_csv
    lines = final.read_text().splitlines()
    lines[1] = "null," + lines[1].split(",", 1)[1]
    final.write_text("\n".join(lines) + "\n")
    body = client.get("/diagnostics").get_json()
    assert body["missing_data_percent"]["corporation"] == 0.0
    lines[2] = "," + lines[2].split(",", 1)[1]  # a really empty name is missing
    final.write_text("\n".join(lines) + "\n")
    assert client.get("/diagnostics").get_json()["missing_data_percent"]["corporation"] == round(100 / (len(lines) - 1), 4)


# ---- CSV of another width than its header: refused with the line, never shifted (issue 20) ----

BODY_HEADER = "corporation,lastmonth_activity,lastyear_activity,number_of_employees\n"
TOO_MANY = '(a value too many: a comma inside a name needs "quotes")'
BAD_WIDTHS = {
    "one more, first row": ("acme,10,200,30,1\nb,1,2,3\n", f"line 2 has 5 fields but the header has 4 {TOO_MANY}"),
    "one more, later row": ("a,1,2,3\nb,1,2,3\nacme,10,200,30,1\n", f"line 4 has 5 fields but the header has 4 {TOO_MANY}"),
    "several more": (
        "Acme, Smith, and Jones,1,2,3\n",
        'line 2 has 6 fields but the header has 4 (2 values too many: a comma inside a name needs "quotes")',
    ),
    "one fewer": (
        "a,1,2,3\nb,1,2\n",
        "line 3 has 3 fields but the header has 4 (a value missing: a line cut short, or a file still being copied?)",
    ),
    "trailing comma on every row": (
        "a,1,2,3,\nb,1,2,3,\n",
        "line 2 has 5 fields but the header has 4 (it ends with an extra comma: delete the empty cell(s) after the last column);"
        " 1 more line like it",
    ),
    "a row of only commas": ("a,1,2,3\n,,,,,\n", "line 3 has 6 fields but the header has 4 (a row of only commas: delete it)"),
    "after a blank line": ("a,1,2,3\n\nacme,10,200,30,1\n", f"line 4 has 5 fields but the header has 4 {TOO_MANY}"),
}


@pytest.mark.parametrize("case", sorted(BAD_WIDTHS))
def test_a_csv_body_row_of_another_width_is_a_400_naming_its_line(client, case: str) -> None:
    rows, message = BAD_WIDTHS[case]
    answer = client.post("/prediction", data=BODY_HEADER + rows, content_type="text/csv")
    assert answer.status_code == 400
    assert answer.get_json()["message"] == f"request body: {message}"


@pytest.mark.parametrize("case", sorted(BAD_WIDTHS))
def test_a_data_file_row_of_another_width_is_a_400_naming_the_file_and_line(client, deployed_practice: Config, case: str) -> None:
    rows, message = BAD_WIDTHS[case]
    (deployed_practice.test_data_folder / "shifted.csv").write_text(BODY_HEADER + rows)
    answer = client.post("/prediction", json={"filepath": "testdata/shifted.csv"})
    assert answer.status_code == 400
    assert answer.get_json()["message"] == f"testdata/shifted.csv: {message}"


def test_a_quoted_comma_stays_one_field_and_blank_lines_are_skipped(client) -> None:
    answer = client.post("/prediction", data=BODY_HEADER + '"Acme, Inc.",10,200,30\n\nb,1,2,3\n', content_type="text/csv")
    assert answer.status_code == 200
    assert [p["corporation"] for p in answer.get_json()["predictions"]] == ["Acme, Inc.", "b"]
    plain = client.post(
        "/prediction",
        json={"records": [{"corporation": "x", "lastmonth_activity": 10, "lastyear_activity": 200, "number_of_employees": 30}]},
    )
    assert answer.get_json()["predictions"][0]["exit_probability"] == plain.get_json()["predictions"][0]["exit_probability"]


def test_test_data_with_a_row_too_wide_is_a_503_for_scoring_naming_its_line(client, deployed_practice: Config) -> None:
    test_csv = deployed_practice.test_data_csv
    lines = test_csv.read_text().splitlines()
    test_csv.write_text("\n".join([*lines[:3], lines[3] + ",1", *lines[4:]]) + "\n")
    answer = client.get("/scoring")
    assert answer.status_code == 503
    assert (
        answer.get_json()["message"]
        == f"the test data cannot be used: {test_csv.name}: line 4 has 6 fields but the header has 5 {TOO_MANY}"
    )


@pytest.mark.parametrize(
    ("header", "message"),
    [
        (
            "corporation,lastmonth_activity,last_year_activity,number_of_employees",
            "'last_year_activity' (did you mean 'lastyear_activity'?)",
        ),
        ("corporation,lastmonth_activity,lastyear_activity,number_of_employees,exitted", "'exitted' (did you mean 'exited'?)"),
    ],
)
def test_a_misspelt_column_of_a_csv_body_is_named_with_the_column_it_was_meant_to_be(client, header: str, message: str) -> None:
    answer = client.post(
        "/prediction", data=header + "\na,1,2,3" + (",0" if header.endswith("exitted") else "") + "\n", content_type="text/csv"
    )
    assert answer.status_code == 400
    expected = "(expected corporation,lastmonth_activity,lastyear_activity,number_of_employees,exited)"
    assert answer.get_json()["message"] == f"request body: unknown column name(s) in the header: {message} {expected}"
