"""openapi.yaml against what the server really accepts and answers: the rules generated clients found broken (issue 21).

Each rule here is also checked by the slow schemathesis run (tests/web/test_schemathesis.py); these are the quick,
exact checks: a repeated query parameter is a 400 naming it, an over-long URL or header is a JSON answer even
from gunicorn itself, and every CSV body the description allows is accepted (and those it does not are refused).
"""

from __future__ import annotations

import base64
import json
import socket
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import jsonschema
import pytest
import requests
import yaml
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from drs.core.settings import Config, load_config
from drs.reports import reporting
from drs.web import answers, users
from drs.web.app import create_app
from tests.conftest import ROOT, make_project, stage_pass, write_config
from tools.procs import gunicorn_server

SPEC_URI = "urn:drs-openapi"
HEADER = "corporation,lastmonth_activity,lastyear_activity,number_of_employees"
RECORD = {"corporation": "abcd", "lastmonth_activity": 3, "lastyear_activity": 400, "number_of_employees": 900}
CSV_BODY = "/paths/~1prediction/post/requestBody/content/text~1csv/schema"
JSON_BODY = "/paths/~1prediction/post/requestBody/content/application~1json/schema"


@pytest.fixture(scope="module")
def spec() -> dict[str, Any]:
    return yaml.safe_load((ROOT / "openapi.yaml").read_text())


def validator(spec: dict[str, Any], pointer: str) -> jsonschema.Draft202012Validator:
    registry = Registry().with_resource(SPEC_URI, Resource(contents=spec, specification=DRAFT202012))
    return jsonschema.Draft202012Validator({"$ref": f"{SPEC_URI}#{pointer}"}, registry=registry)


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Config:
    """One deployed and ranked practice project for the module (no test here changes its data or outputs)."""
    config = load_config(make_project(tmp_path_factory.mktemp("described") / "project") / "practiceconfig.json")
    stage_pass(config)
    reporting.run(config)  # /risk reads the ranking reporting writes
    return config


@pytest.fixture
def client(served: Config):
    return create_app(served).test_client()


# ---- a query parameter given twice ----------------------------------------------------------------


@pytest.mark.parametrize(
    "method, url, name, times",
    [
        ("GET", "/risk?top=5&top=10", "top", 2),
        ("GET", "/risk?top=20&top=20", "top", 2),  # the same value twice is still ambiguous to a reader of the URL
        ("GET", "/risk?top=&top=&top=", "top", 3),
        ("POST", "/prediction?explain=1&explain=0", "explain", 2),
        ("POST", "/prediction?filepath=testdata/testdata.csv&filepath=testdata/testdata.csv", "filepath", 2),
        ("GET", "/scoring?x=1&x=2", "x", 2),  # any parameter, documented or not
        ("GET", "/metrics?name[]=a&name[]=b", "name[]", 2),
    ],
)
def test_a_repeated_query_parameter_is_a_400_naming_it(client, method: str, url: str, name: str, times: int) -> None:
    body = {"data": f"{HEADER}\nabcd,3,400,900\n", "content_type": "text/csv"} if method == "POST" and "filepath" not in url else {}
    answer = client.open(url, method=method, **body)
    assert answer.status_code == 400, answer.get_data(as_text=True)
    assert answer.get_json() == {
        "status": 400,
        "error": "Bad Request",
        "message": f"the query parameter '{name}' is given {times} times: give it once",
    }


def test_a_single_query_parameter_still_works(client) -> None:
    assert client.get("/risk?top=5").get_json()["top"] == 5
    assert client.get("/risk?top=5&other=1").status_code == 200  # others once each are left alone, as before


def test_the_page_refuses_a_repeated_parameter_as_a_page(client) -> None:
    answer = client.get("/?q=a&q=b")
    assert answer.status_code == 400 and answer.mimetype == "text/html"
    assert "the query parameter &#39;q&#39; is given 2 times: give it once" in answer.get_data(as_text=True)


# ---- CSV bodies: what the description allows is accepted, what it refuses is refused ------------------

ACCEPTED = {
    "plain": f"{HEADER}\nabcd,3,400,900\n",
    "no newline at the end": f"{HEADER}\nabcd,3,400,900",
    "CRLF lines": f"{HEADER}\r\nabcd,3,400,900\r\nefgh,1,2,3\r\n",
    "byte-order mark": f"\ufeff{HEADER}\nabcd,3,400,900\n",
    "exited column": f"{HEADER},exited\nabcd,3,400,900,1\n",
    "id with inner spaces and symbols": f"{HEADER}\nacme & sons ltd.,3,400,900\n",
    "numeric id": f"{HEADER}\n1234,3,400,900\n",
    "id of 200 characters, the longest max_id_length allows": f"{HEADER}\n{'a' * 200},3,400,900\n",
    "id of one character": f"{HEADER}\nx,3,400,900\n",
    "leading zeros": f"{HEADER}\nabcd,003,0400,0900\n",
    "largest count the pattern allows": f"{HEADER}\nabcd,999999999999999,0,0\n",
    "exited values, ignored": f"{HEADER},exited\nabcd,3,400,900,1*\nefgh,1,2,3,\nijkl,1,2,3,yes\n",
}
ACCEPTED_BEYOND_THE_PATTERN = {  # accepted too (docs/api.md), but the pattern promises only the forms above
    "quoted fields": '"corporation","lastmonth_activity","lastyear_activity","number_of_employees"\n"a,b","3","400","900"\n',
    "spaces around values": "corporation , lastmonth_activity, lastyear_activity ,number_of_employees\n abcd , 3, 400 ,900\n",
    "columns in another order": "number_of_employees,corporation,lastyear_activity,lastmonth_activity\n900,abcd,400,3\n",
    "blank lines": f"\n{HEADER}\n\nabcd,3,400,900\n\n",
}
REFUSED = {
    "empty": ("", "request body: file is empty"),
    "no header": ("00", "request body: the first line holds values, not column names"),
    "header only": (f"{HEADER}\n", "request body: has a header but no data rows"),
    "semicolons": (HEADER.replace(",", ";") + "\nabcd;3;400;900\n", "request body: fields are separated by ';', not commas"),
    "a missing value": (f"{HEADER}\nabcd,3,,900\n", "request body: column 'lastyear_activity' is empty in line 2"),
    "a negative count": (f"{HEADER}\nabcd,-3,400,900\n", "request body: column 'lastmonth_activity' is negative in line 2"),
    "an empty id": (f"{HEADER}\n ,3,400,900\n", "request body: column 'corporation' is empty in line 2"),
    # spaces to Python (str.strip), not to the pattern's \s: the pattern names them
    "an id of a record separator": (f"{HEADER}\n\x1e,3,400,900\n", "request body: column 'corporation' is empty in line 2"),
    # drs/core/ids.py: no control character, at most max_id_length characters (the pattern says both)
    "an id holding a control character": (
        f"{HEADER}\na\x1ab,3,400,900\n",
        "request body: column 'corporation' holds a control character in line 2",
    ),
    "an id holding NUL": (f"{HEADER}\na\x00b,3,400,900\n", "request body: column 'corporation' holds a control character in line 2"),
    "an id holding a bidirectional override": (
        f"{HEADER}\na\u202eb,3,400,900\n",
        "request body: column 'corporation' holds a control character in line 2",
    ),
    "an id of a zero-width space": (
        f"{HEADER}\n\u200b,3,400,900\n",
        "request body: column 'corporation' holds a control character in line 2",
    ),
    "an id holding a zero-width joiner": (
        f"{HEADER}\na\u200db,3,400,900\n",
        "request body: column 'corporation' holds a control character in line 2",
    ),
    "an id starting with a byte-order mark": (
        f"{HEADER}\n\ufeffab,3,400,900\n",
        "request body: column 'corporation' holds a control character in line 2",
    ),
    "an id holding a soft hyphen": (
        f"{HEADER}\na\xadb,3,400,900\n",
        "request body: column 'corporation' holds a control character in line 2",
    ),
    "an id too long": (f"{HEADER}\n{'a' * 201},3,400,900\n", "request body: column 'corporation' is longer than 200 characters"),
    "an id of a next-line character": (f"{HEADER}\na,3,400,900\n\x85,3,400,900\n", "request body: column 'corporation' is empty in line 3"),
}


# refused too, though the pattern cannot say it: ECMA-262 regular expressions (without the u flag, as OpenAPI's are read)
# cannot name characters beyond U+FFFF, and the description's words name them instead
REFUSED_BEYOND_THE_PATTERN = {
    "an id holding a tag character": (
        f"{HEADER}\nab\U000e0041,3,400,900\n",
        "request body: column 'corporation' holds a control character in line 2",
    ),
}


@pytest.mark.parametrize("name", sorted(REFUSED_BEYOND_THE_PATTERN))
def test_a_csv_body_refused_beyond_the_pattern_is_named_in_the_description(client, spec: dict[str, Any], name: str) -> None:
    body, message = REFUSED_BEYOND_THE_PATTERN[name]
    assert "U+E0000" in spec["paths"]["/prediction"]["post"]["requestBody"]["content"]["text/csv"]["schema"]["description"]
    answer = client.post("/prediction", data=body.encode(), content_type="text/csv")
    assert answer.status_code == 400 and answer.get_json()["message"].startswith(message), answer.get_json()


@pytest.mark.parametrize("name", sorted(ACCEPTED))
def test_every_csv_form_the_description_allows_is_accepted(client, spec: dict[str, Any], name: str) -> None:
    body = ACCEPTED[name]
    validator(spec, CSV_BODY).validate(body)
    answer = client.post("/prediction", data=body.encode(), content_type="text/csv")
    assert answer.status_code == 200, answer.get_json()
    rows = [line for line in body.lstrip("\ufeff").splitlines()[1:] if line]
    assert answer.get_json()["count"] == len(rows)
    assert answer.get_json()["predictions"][0]["corporation"] == rows[0].split(",")[0]


@pytest.mark.parametrize("name", sorted(ACCEPTED_BEYOND_THE_PATTERN))
def test_more_csv_forms_are_accepted_than_the_pattern_promises(client, name: str) -> None:
    answer = client.post("/prediction", data=ACCEPTED_BEYOND_THE_PATTERN[name].encode(), content_type="text/csv")
    assert answer.status_code == 200, answer.get_json()
    assert answer.get_json()["count"] == 1


@pytest.mark.parametrize("name", sorted(REFUSED))
def test_a_csv_body_the_server_refuses_is_outside_the_description(client, spec: dict[str, Any], name: str) -> None:
    body, message = REFUSED[name]
    assert not validator(spec, CSV_BODY).is_valid(body)
    answer = client.post("/prediction", data=body.encode(), content_type="text/csv")
    assert answer.status_code == 400 and answer.get_json()["message"].startswith(message), answer.get_json()


# ---- JSON bodies --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "filepath, status, message",
    [
        ("", 400, "'filepath' must be a non-empty string"),
        ("   ", 400, "'filepath' must be a non-empty string"),
        ("testdata/a\x00b.csv", 400, "'filepath' contains a NUL character"),
        ("testdata/testdata", 400, "'filepath' must name a .csv file; 'testdata/testdata' does not"),
        ("testdata/.csv", 400, "'filepath' must name a .csv file; 'testdata/.csv' does not"),
    ],
)
def test_a_filepath_refused_with_400_is_outside_the_description(
    client, spec: dict[str, Any], filepath: str, status: int, message: str
) -> None:
    assert not validator(spec, JSON_BODY).is_valid({"filepath": filepath})
    answer = client.post("/prediction", json={"filepath": filepath})
    assert answer.status_code == status and answer.get_json()["message"] == message


@pytest.mark.parametrize("filepath, status", [("testdata/testdata.csv", 200), ("TESTDATA/TESTDATA.CSV", 403), ("testdata/none.CSV", 404)])
def test_a_described_filepath_is_scored_or_refused_as_forbidden_or_missing(
    client, spec: dict[str, Any], filepath: str, status: int
) -> None:
    validator(spec, JSON_BODY).validate({"filepath": filepath})
    assert client.post("/prediction", json={"filepath": filepath}).status_code == status


def test_a_null_corporation_is_described_and_answered_as_no_id(client, spec: dict[str, Any]) -> None:
    body = {"records": [{**RECORD, "corporation": None, "exited": None}]}
    validator(spec, JSON_BODY).validate(body)
    answer = client.post("/prediction", json=body)
    assert answer.status_code == 200 and answer.get_json()["predictions"][0]["corporation"] is None


def test_the_record_limit_is_the_configs_so_the_schema_does_not_fix_one(spec: dict[str, Any], served: Config) -> None:
    many = {"records": [RECORD] * 4}
    validator(spec, JSON_BODY).validate({"records": [RECORD] * 10_001})  # 10,000 is only the default of max_records
    small = create_app(
        write_config(
            served.config_file.parent, "small.json", input_folder_path="practicedata", output_model_path="practicemodels", max_records=3
        )
    ).test_client()
    answer = small.post("/prediction", json=many)
    assert answer.status_code == 413 and answer.get_json()["message"] == "too many records: 4 (at most 3 per request; setting max_records)"
    assert "413" in spec["paths"]["/prediction"]["post"]["responses"]


def test_a_body_is_required_and_none_is_a_415(client, spec: dict[str, Any]) -> None:
    assert spec["paths"]["/prediction"]["post"]["requestBody"]["required"] is True
    answer = client.post("/prediction")
    assert answer.status_code == 415 and answer.get_json()["error"] == "Unsupported Media Type"
    assert client.post("/prediction?filepath=testdata/testdata.csv").status_code == 200  # the course's form, described in prose


# ---- too many failed passwords -------------------------------------------------------------------


def test_failed_passwords_are_limited_by_the_setting_and_429_is_described(spec: dict[str, Any], project: Path) -> None:
    config = load_config(write_config(project, signin_failures_per_minute=2))
    users.add_user(config.users_file, "olga", "operator", "correct horse battery")
    client = create_app(config).test_client()
    wrong = {"Authorization": "Basic " + base64.b64encode(b"olga:guess").decode()}
    assert [client.get("/scoring", headers=wrong).status_code for _ in range(3)] == [401, 401, 429]
    for path, item in spec["paths"].items():
        for method, operation in item.items():
            if operation.get("security") != []:
                assert "429" in operation["responses"], f"{method.upper()} {path} does not describe the 429"


# ---- gunicorn's own answers ----------------------------------------------------------------------


def test_over_long_urls_and_headers_are_json_answers_from_gunicorn(served: Config) -> None:
    with gunicorn_server(served.config_file, workers=1) as url:
        just = requests.get(url + "/risk?top=" + "1" * 4000, timeout=10)  # within the limit: the app answers
        assert just.status_code == 400 and just.json()["message"].startswith("'top' must be a whole number from 1 to 1000")
        long = requests.get(url + "/risk?top=" + "1" * 5000, timeout=10)
        assert long.status_code == 414 and long.headers["Content-Type"] == "application/json"
        assert long.json() == {
            "status": 414,
            "error": answers.reason(414),  # Python's phrase, as in every error of the app ("URI Too Long" from 3.13 on)
            "message": "the URL is too long: the request line (method, path, query and HTTP version) may be at most 4094 bytes;"
            " send fewer or shorter query parameters, or the data in a POST body",
        }
        assert long.headers["X-Content-Type-Options"] == "nosniff" and long.headers["Cache-Control"] == "no-store"
        header = requests.get(url + "/health", headers={"X-Long": "a" * 9000}, timeout=10)
        assert header.status_code == 431 and header.headers["Content-Type"] == "application/json"
        assert header.json()["error"] == answers.reason(431) == "Request Header Fields Too Large"
        assert header.json()["message"].startswith("the request headers are too large")
        with socket.create_connection(
            (urlsplit(url).hostname, urlsplit(url).port), timeout=10
        ) as raw:  # a request line gunicorn cannot parse
            raw.sendall(b"GARBAGE\r\n\r\n")
            head, _, body = raw.makefile("rb").read().partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 400 ") and b"Content-Type: application/json" in head.split(b"\r\n")
        assert json.loads(body) == {
            "status": 400,
            "error": "Bad Request",
            "message": "Invalid Request Line 'Invalid HTTP request line: 'GARBAGE''",
        }
        assert requests.get(url + "/health", timeout=10).status_code == 200  # the worker goes on serving
