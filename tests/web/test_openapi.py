"""openapi.yaml against the server: same endpoints, and every answer matches its documented schema."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from openapi_spec_validator import validate
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from drs.core.settings import Config
from drs.web.app import create_app
from tests.conftest import ROOT

SPEC_URI = "urn:drs-openapi"
RECORD = {"corporation": "abcd", "lastmonth_activity": 3, "lastyear_activity": 400, "number_of_employees": 900}
HTTP_METHODS = {"get", "post", "put", "patch", "delete"}
PATHS_429 = ("/scoring", "/summarystats", "/diagnostics", "/risk", "/metrics", "/prediction")


@pytest.fixture(scope="module")
def spec() -> dict[str, Any]:
    return yaml.safe_load((ROOT / "openapi.yaml").read_text())


def test_the_description_is_valid_openapi(spec: dict[str, Any]) -> None:
    validate(spec)


# The HTML page for people (drs/web/page.py, described in the README) and its sign-in form (drs/web/signin.py),
# not part of the JSON API.
PAGE_ROUTES = {
    ("/signin", "get"),
    ("/signin", "post"),
    ("/signout", "post"),
    ("/", "get"),
    ("/risklist.csv", "get"),
    ("/images/<name>", "get"),
    ("/static/<path:filename>", "get"),
    ("/clients/<path:corporation>", "get"),
    ("/clients/", "get"),  # ?id=<id>: an id the path cannot carry (drs/web/page.py client_url)
    ("/audit", "get"),
}


def test_the_server_has_exactly_the_documented_endpoints(spec: dict[str, Any], deployed_practice: Config) -> None:
    app = create_app(deployed_practice)
    served = {
        (rule.endpoint.split(".")[0], rule.rule, method.lower())
        for rule in app.url_map.iter_rules()
        for method in rule.methods or ()
        if method.lower() in HTTP_METHODS
    }
    documented = {(path, method) for path, item in spec["paths"].items() for method in item if method in HTTP_METHODS}
    page = ("page", "page_assets", "signin", "audit")
    assert {(rule, method) for blueprint, rule, method in served if blueprint not in page} == documented
    assert {(rule, method) for blueprint, rule, method in served if blueprint in page} == PAGE_ROUTES


def _validator(spec: dict[str, Any], pointer: str) -> jsonschema.Draft202012Validator:
    registry = Registry().with_resource(SPEC_URI, Resource(contents=spec, specification=DRAFT202012))
    return jsonschema.Draft202012Validator({"$ref": f"{SPEC_URI}#{pointer}"}, registry=registry)


def _response_schema(spec: dict[str, Any], path: str, method: str, status: int) -> str:
    """JSON pointer of the schema documented for this answer; fails if the status is not documented."""
    responses = spec["paths"][path][method]["responses"]
    key = str(status) if str(status) in responses else "default"
    assert key in responses, f"{method.upper()} {path} answered {status}, which openapi.yaml does not document"
    response = responses[key]
    if "$ref" in response:
        name = response["$ref"].rsplit("/", 1)[1]
        return f"/components/responses/{name}/content/application~1json/schema"
    return f"/paths/{path.replace('/', '~1')}/{method}/responses/{key}/content/application~1json/schema"


def _check(spec: dict[str, Any], method: str, path: str, answer: Any, seen: set[tuple[str, str, str]]) -> None:
    assert answer.mimetype == "application/json", answer.get_data(as_text=True)[:200]
    route = path.split("?")[0]
    pointer = _response_schema(spec, route, method, answer.status_code)
    _validator(spec, pointer).validate(answer.get_json())
    seen.add((route, method, str(answer.status_code)))


def _documented_statuses(spec: dict[str, Any]) -> set[tuple[str, str, str]]:
    return {
        (path, method, status)
        for path, item in spec["paths"].items()
        for method, operation in item.items()
        if method in HTTP_METHODS
        for status in operation["responses"]
        if status != "default"
    }


def test_every_documented_answer_happens_and_matches_its_schema(
    spec: dict[str, Any], config: Config, practice_config: Config, tmp_path: Path
) -> None:
    seen: set[tuple[str, str, str]] = set()
    # nothing deployed or ingested yet: the 503s
    empty = create_app(config).test_client()
    for path in ("/health", "/scoring", "/summarystats", "/diagnostics", "/risk"):
        _check(spec, "get", path, empty.get(path), seen)
    _check(spec, "post", "/prediction", empty.post("/prediction", json={"records": [RECORD]}), seen)
    _check(spec, "get", "/calls", empty.get("/calls"), seen)  # nothing ranked: no queue
    _check(spec, "post", "/calls", empty.post("/calls", json={"corporation": "abcd", "outcome": "reached"}), seen)

    from tests.conftest import stage_pass

    stage_pass(practice_config)
    small = config.config_file.parent / "small.json"
    small.write_text(config.config_file.read_text().replace("{", '{"max_request_bytes": 2000, "max_records": 3,', 1))
    client = create_app(small).test_client()
    for path in ("/health", "/scoring", "/diagnostics"):
        _check(spec, "get", path, client.get(path), seen)
    (config.output_folder / "finaldata.csv").write_text((practice_config.output_folder / "finaldata.csv").read_text())
    _check(spec, "get", "/risk", client.get("/risk"), seen)  # nothing ranked yet: 503
    from drs.reports import reporting

    reporting.run(config)  # /risk reads the ranking reporting writes
    for path in ("/summarystats", "/diagnostics", "/risk?top=3", "/risk?top=0"):
        _check(spec, "get", path, client.get(path), seen)
    queue = client.get("/calls")  # the client managers' day (tests/web/test_calls.py has the rest)
    _check(spec, "get", "/calls", queue, seen)
    first = queue.get_json()["clients"][0]["corporation"]
    for body in (
        {"corporation": first, "outcome": "reached", "note": "ok"},
        {"corporation": first, "outcome": "maybe"},
        {"corporation": "?", "outcome": "reached"},
    ):
        _validator(spec, "/paths/~1calls/post/requestBody/content/application~1json/schema").validate({**body, "outcome": "reached"})
        _check(spec, "post", "/calls", client.post("/calls", json=body), seen)
    exported = client.get("/calls.csv")
    assert exported.status_code == 200 and exported.mimetype == "text/csv" and first in exported.get_data(as_text=True)
    seen.add(("/calls.csv", "get", "200"))
    form = client.post("/calls/form", data={"corporation": first, "outcome": "reached"})  # no CSRF token: an HTML 400
    assert form.status_code == 400 and form.mimetype == "text/html"
    seen.add(("/calls/form", "post", "400"))
    page = client.get("/").get_data(as_text=True)  # open on the loopback: the page's form carries the session's CSRF token
    csrf = page.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]
    unknown = client.post("/calls/form", data={"corporation": "?", "outcome": "reached", "csrf_token": csrf})
    assert unknown.status_code == 404 and unknown.mimetype == "text/html"
    seen.add(("/calls/form", "post", "404"))

    request_schema = "/paths/~1prediction/post/requestBody/content/application~1json/schema"
    good = [
        {"records": [RECORD]},
        {"records": [{k: v for k, v in RECORD.items() if k != "corporation"}]},
        {"filepath": "testdata/testdata.csv"},
    ]
    for body in good:
        _validator(spec, request_schema).validate(body)
    bad = [
        {"records": []},
        {"records": [{**RECORD, "lastmonth_activity": "many"}]},
        {"filepath": "../config.json"},
        {"filepath": "testdata/none.csv"},
        {"records": [RECORD] * 4},
    ]
    for body in bad[:2]:  # the others are well-formed but name a file that is refused or missing, or are too many
        with pytest.raises(jsonschema.ValidationError):
            _validator(spec, request_schema).validate(body)
    explained = {"records": [RECORD], "explain": True}
    _validator(spec, request_schema).validate(explained)
    for body in good[:2] + bad + [explained]:
        _check(spec, "post", "/prediction", client.post("/prediction", json=body), seen)
    assert "top_reason" in client.post("/prediction", json=explained).get_json()["predictions"][0]
    _check(spec, "post", "/prediction", client.post("/prediction", data="x", content_type="text/plain"), seen)
    csv = "corporation,lastmonth_activity,lastyear_activity,number_of_employees\nabcd,3,400,900\n"
    _check(spec, "post", "/prediction", client.post("/prediction", data=csv, content_type="text/csv"), seen)
    _check(spec, "post", "/prediction?explain=1", client.post("/prediction?explain=1", data=csv, content_type="text/csv"), seen)
    _check(spec, "post", "/prediction", client.post("/prediction?filepath=testdata/testdata.csv"), seen)
    _check(spec, "post", "/prediction", client.post("/prediction", data="x" * 3000, content_type="text/csv"), seen)
    metrics = client.get("/metrics")  # the one answer that is not JSON: Prometheus text, as documented
    assert metrics.status_code == 200 and metrics.mimetype == "text/plain"
    assert "text/plain" in spec["paths"]["/metrics"]["get"]["responses"]["200"]["content"]
    assert "drs_model_info{" in metrics.get_data(as_text=True)
    seen.add(("/metrics", "get", "200"))
    for wrong in (client.get("/prediction"), client.post("/health"), client.get("/nowhere"), client.post("/metrics")):
        assert wrong.status_code in (404, 405)
        assert wrong.status_code == 404 or wrong.headers["Allow"]  # RFC 9110
        _validator(spec, "/components/schemas/Error").validate(wrong.get_json())

    # with a user configured: no credential is a 401 (WWW-Authenticate, as documented), a viewer's token on an operator's endpoint a 403
    from drs.web import users

    viewer = {"Authorization": "Bearer " + users.new_token(config.users_file, "viewer", "viewer")}
    for path in ("/scoring", "/summarystats", "/diagnostics", "/risk", "/metrics", "/prediction"):
        method = "post" if path == "/prediction" else "get"
        refused = client.open(path, method=method.upper(), json={"records": [RECORD]} if method == "post" else None)
        assert "WWW-Authenticate" in spec["components"]["responses"]["Unauthorized"]["headers"] and refused.headers["WWW-Authenticate"]
        _check(spec, method, path, refused, seen)
        if path != "/risk":
            answer = client.open(path, method=method.upper(), headers=viewer, json={"records": [RECORD]} if method == "post" else None)
            _check(spec, method, path, answer, seen)
    # wrong passwords from one address: after signin_failures_per_minute of them every credential is a 429 (Retry-After)
    import base64

    wrong = {"Authorization": "Basic " + base64.b64encode(b"nobody:guess").decode()}
    limited_calls = [("/calls", "get"), ("/calls", "post"), ("/calls.csv", "get")]
    for path, method in [(p, "post" if p == "/prediction" else "get") for p in PATHS_429] + limited_calls:
        for _ in range(config.signin_failures_per_minute + 1):
            limited = client.open(path, method=method.upper(), headers=wrong, json={"records": [RECORD]} if method == "post" else None)
        assert limited.status_code == 429 and int(limited.headers["Retry-After"]) >= 1
        _check(spec, method, path, limited, seen)
    for method, path in (("get", "/calls"), ("post", "/calls"), ("get", "/calls.csv")):
        refused = client.open(path, method=method.upper(), json={"corporation": first, "outcome": "reached"} if method == "post" else None)
        assert refused.status_code == 401
        if path == "/calls.csv":
            seen.add((path, method, "401"))
        else:
            _check(spec, method, path, refused, seen)
    signed_out = client.post(
        "/calls/form", data={"corporation": first, "outcome": "reached", "csrf_token": "x"}
    )  # no session: to the sign-in form
    assert signed_out.status_code == 302 and signed_out.headers["Location"].startswith("/signin")
    seen.add(("/calls/form", "post", "302"))
    assert client.get("/health").status_code == 200 and spec["paths"]["/health"]["get"]["security"] == []
    assert set(spec["components"]["securitySchemes"]) == {"bearerAuth", "basicAuth"}

    assert _documented_statuses(spec) <= seen, f"documented but never provoked: {sorted(_documented_statuses(spec) - seen)}"
