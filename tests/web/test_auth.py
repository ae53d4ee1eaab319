"""Only staff get in (drs/web/users.py, drs/web/auth.py, drs/web/signin.py, drs/web/serving.py, drs/web/headers.py).

The table below is every endpoint x {no credential, wrong credential, viewer, operator} with the status the
app answers; a test checks that its keys are exactly the app's routes, so no endpoint is forgotten.
"""

from __future__ import annotations

import base64
import json
import logging
import os
import re
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask.testing import FlaskClient

from drs.core.errors import ConfigError
from drs.core.settings import Config, load_config
from drs.reports import diagnostics, reporting
from drs.web import auth, headers, users
from drs.web.app import create_app
from tests.conftest import ROOT, make_project, stage_pass, write_config
from tools.procs import free_port, stop

PASSWORD = "correct horse battery"
CREDENTIALS = ("none", "wrong", "viewer", "operator")
RECORD = {"corporation": "abcd", "lastmonth_activity": 3, "lastyear_activity": 400, "number_of_employees": 900}

# endpoint -> (method, URL, {credential: status}); the page sends a person with no credential to the sign-in form (302)
TABLE: dict[str, tuple[str, str, tuple[int, int, int, int]]] = {
    "api.health": ("GET", "/health", (200, 200, 200, 200)),
    "api.risk_endpoint": ("GET", "/risk?top=3", (401, 401, 200, 200)),
    "api.prediction": ("POST", "/prediction", (401, 401, 403, 200)),
    "api.scoring_endpoint": ("GET", "/scoring", (401, 401, 403, 200)),
    "api.summarystats": ("GET", "/summarystats", (401, 401, 403, 200)),
    "api.diagnostics_endpoint": ("GET", "/diagnostics", (401, 401, 403, 200)),
    "telemetry.metrics_endpoint": ("GET", "/metrics", (401, 401, 403, 200)),
    "page.index": ("GET", "/", (302, 401, 200, 200)),
    "page.client": ("GET", "/clients/{top}", (302, 401, 200, 200)),
    "page.risk_list_csv": ("GET", "/risklist.csv", (302, 401, 200, 200)),
    "page.image": ("GET", "/images/trends.png", (302, 401, 200, 200)),
    "audit.audit_page": ("GET", "/audit", (302, 401, 403, 200)),
    "page_assets.static": ("GET", "/static/page.css", (200, 200, 200, 200)),
    "signin.form": ("GET", "/signin", (200, 200, 200, 200)),
    "signin.sign_in": ("POST", "/signin", (400, 400, 400, 400)),  # no CSRF token: refused whoever asks
    "signin.sign_out": ("POST", "/signout", (400, 400, 400, 400)),
    "calls.queue_endpoint": ("GET", "/calls", (401, 401, 200, 200)),
    "calls.record_endpoint": ("POST", "/calls", (401, 401, 400, 400)),  # no body: a 400 for whoever may record
    "calls.export_csv": ("GET", "/calls.csv", (401, 401, 200, 200)),
    "calls.record_form": (
        "POST",
        "/calls/form",
        (400, 400, 400, 400),
    ),  # no form fields: refused before any credential (tests/web/test_calls.py signs in)
}


class Served:
    def __init__(self, config: Config, tokens: dict[str, str], top: str):
        self.config = config
        self.tokens = tokens
        self.top = top
        self.app = create_app(config)

    def client(self) -> FlaskClient:
        return self.app.test_client()

    def headers(self, credential: str) -> dict[str, str]:
        if credential == "none":
            return {}
        if credential == "wrong":
            return {"Authorization": "Bearer drs_not-a-token"}
        return {"Authorization": f"Bearer {self.tokens[credential]}"}


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Served:
    """The practice model deployed and reported, a viewer and an operator user, and a token for each."""
    project = make_project(tmp_path_factory.mktemp("auth") / "project")
    config = load_config(project / "practiceconfig.json")
    stage_pass(config)
    diagnostics.run(config)
    reporting.run(config)
    users.add_user(config.users_file, "vera", "viewer", PASSWORD)
    users.add_user(config.users_file, "otto", "operator", PASSWORD)
    tokens = {role: users.new_token(config.users_file, f"{role}-token", role) for role in users.ROLES}
    top = (config.output_model_folder / "risklist.csv").read_text().splitlines()[1].split(",")[1]
    return Served(config, tokens, top)


def call(client: FlaskClient, method: str, url: str, **kwargs: Any) -> Any:
    if method == "POST" and url == "/prediction":
        kwargs["json"] = {"records": [RECORD]}
    return client.open(url, method=method, **kwargs)


def test_the_table_names_every_route_of_the_app(served: Served) -> None:
    routes = {rule.endpoint for rule in served.app.url_map.iter_rules()}
    assert routes == set(TABLE) == set(auth.ACCESS)


@pytest.mark.parametrize("endpoint", list(TABLE))
@pytest.mark.parametrize("credential", CREDENTIALS)
def test_every_endpoint_answers_each_credential_as_the_table_says(served: Served, endpoint: str, credential: str) -> None:
    method, url, statuses = TABLE[endpoint]
    expected = statuses[CREDENTIALS.index(credential)]
    answer = call(served.client(), method, url.format(top=served.top), headers=served.headers(credential))
    assert answer.status_code == expected, answer.get_data(as_text=True)[:300]
    if expected == 401:
        assert answer.headers["WWW-Authenticate"] == auth.CHALLENGE
    if expected in (401, 403):
        body = answer.get_json()
        assert body["status"] == expected and body["error"] in ("Unauthorized", "Forbidden") and body["message"]
    if expected == 403:
        assert body["message"] == f"{credential}-token has the role viewer; this needs operator"
    if expected == 302:
        assert answer.headers["Location"].startswith("/signin?next=")


def test_http_basic_with_a_password_works_for_curl_and_a_wrong_one_is_a_401(served: Served) -> None:
    client = served.client()

    def basic(name: str, password: str) -> dict[str, str]:
        return {"Authorization": "Basic " + base64.b64encode(f"{name}:{password}".encode()).decode()}

    assert client.get("/scoring", headers=basic("otto", PASSWORD)).status_code == 200
    assert client.get("/scoring", headers=basic("vera", PASSWORD)).status_code == 403
    wrong = client.get("/risk", headers=basic("vera", "not it"), environ_base={"REMOTE_ADDR": "192.0.2.9"})
    assert wrong.status_code == 401 and wrong.headers["WWW-Authenticate"] == auth.CHALLENGE
    assert wrong.get_json()["message"] == "wrong name or password"
    assert client.get("/risk", headers={"Authorization": "Basic !!"}).status_code == 401


def test_a_token_in_the_query_string_is_refused(served: Served) -> None:
    answer = served.client().get(f"/risk?access_token={served.tokens['operator']}")
    assert answer.status_code == 400
    assert answer.get_json()["message"] == "a credential in the URL is refused: send it in the Authorization header"


def test_an_unknown_path_asks_for_a_credential_and_a_known_one_a_405_names_what_is_allowed(served: Served) -> None:
    client = served.client()
    assert client.get("/nowhere").status_code == 401  # fail closed: nothing is said to a stranger
    operator = served.headers("operator")
    assert client.get("/nowhere", headers=operator).status_code == 404
    for method, url, allow in (("POST", "/health", "GET, HEAD, OPTIONS"), ("GET", "/prediction", "OPTIONS, POST")):
        answer = client.open(url, method=method, headers=operator)
        assert answer.status_code == 405 and answer.headers["Allow"] == allow, answer.headers


def sign_in(client: FlaskClient, name: str, password: str, **kwargs: Any) -> Any:
    form = client.get("/signin?next=/risklist.csv", **kwargs).get_data(as_text=True)
    token = re.search(r'name="csrf_token" value="([^"]+)"', form)
    assert token is not None and 'name="next" value="/risklist.csv"' in form
    data = {"csrf_token": token.group(1), "name": name, "password": password, "next": "/risklist.csv"}
    return client.post("/signin", data=data, **kwargs)


def test_signing_in_sets_a_safe_session_cookie_and_signing_out_ends_it(served: Served) -> None:
    client = served.client()
    answer = sign_in(client, "vera", PASSWORD)
    assert answer.status_code == 302 and answer.headers["Location"] == "/risklist.csv"
    cookie = answer.headers["Set-Cookie"]
    assert cookie.startswith("drs_session=") and "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Secure" not in cookie
    assert "Expires=" in cookie  # a permanent session: session_hours
    page = client.get("/")
    assert page.status_code == 200 and served.top in page.get_data(as_text=True) and "Sign out" in page.get_data(as_text=True)
    assert client.post("/prediction", json={"records": [RECORD]}).status_code == 401  # a cookie is for reading only
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.get_data(as_text=True))
    assert token is not None
    assert client.post("/signout", data={"csrf_token": token.group(1)}).status_code == 302
    assert client.get("/").status_code == 302

    over_tls = served.app.test_client()
    secure = sign_in(over_tls, "vera", PASSWORD, base_url="https://localhost")
    assert secure.status_code == 302 and "Secure" in secure.headers["Set-Cookie"]


def test_a_session_expires_after_session_hours(served: Served) -> None:
    client = served.client()
    assert sign_in(client, "otto", PASSWORD).status_code == 302
    assert client.get("/").status_code == 200
    with client.session_transaction() as session:
        session["since"] = time.time() - served.config.session_hours * 3600 - 1
    assert client.get("/").status_code == 302


def test_the_sign_in_form_needs_its_csrf_token(served: Served) -> None:
    client = served.client()
    client.get("/signin")
    for data in ({"name": "vera", "password": PASSWORD}, {"name": "vera", "password": PASSWORD, "csrf_token": "forged"}):
        answer = client.post("/signin", data=data)
        assert answer.status_code == 400 and "did not come from this site" in answer.get_data(as_text=True)
    assert client.get("/").status_code == 302  # not signed in


def test_failed_sign_ins_are_limited_per_address_and_logged_without_the_password(served: Served, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING)
    client = served.client()
    address = {"environ_base": {"REMOTE_ADDR": "198.51.100.7"}}
    for attempt in range(served.config.signin_failures_per_minute):
        answer = sign_in(client, "vera", f"guess-{attempt}", **address)
        assert answer.status_code == 401 and "Wrong name or password." in answer.get_data(as_text=True)
    limited = sign_in(client, "vera", PASSWORD, **address)  # even the right password: limited for a minute
    assert limited.status_code == 429 and "Too many failed sign-ins" in limited.get_data(as_text=True)
    other = served.client()
    assert sign_in(other, "vera", PASSWORD, environ_base={"REMOTE_ADDR": "198.51.100.8"}).status_code == 302
    logged = caplog.text
    assert logged.count("failed sign-in for 'vera' from 198.51.100.7") == served.config.signin_failures_per_minute
    assert "sign-in refused for 'vera' from 198.51.100.7: too many failures" in logged
    assert "guess-" not in logged and PASSWORD not in logged


def test_the_limiter_forgets_failures_after_its_window() -> None:
    now = [0.0]
    limiter = auth.FailureLimiter(limit=2, window=60, clock=lambda: now[0])
    limiter.failed("a")
    limiter.failed("a")
    assert limiter.blocked("a") == 60 and limiter.blocked("b") == 0
    now[0] = 59.5
    assert limiter.blocked("a") == 0.5
    now[0] = 60.0
    assert limiter.blocked("a") == 0


def test_the_users_file_is_created_0600_and_one_others_may_read_is_refused(project: Path) -> None:
    config = load_config(write_config(project))
    users.add_user(config.users_file, "vera", "viewer", PASSWORD)
    assert config.users_file == project / "instance" / "users.json"
    assert stat.S_IMODE(config.users_file.stat().st_mode) == 0o600
    stored = config.users_file.read_text()
    assert PASSWORD not in stored and '"password": "scrypt:' in stored
    token = users.new_token(config.users_file, "bench", "operator")
    assert token not in config.users_file.read_text() and users.read_users(config.users_file).check_token(token) == ("bench", "operator")
    app = create_app(config)
    key = config.users_file.parent / "secret_key"
    assert stat.S_IMODE(key.stat().st_mode) == 0o600 and app.secret_key == key.read_bytes() and len(key.read_bytes()) == 32
    assert create_app(config).secret_key == app.secret_key  # kept across starts

    os.chmod(config.users_file, 0o644)
    message = f"users file {config.users_file} may be read by others (mode 0644): run `chmod 600 {config.users_file}` and start again"
    with pytest.raises(ConfigError, match=f"^{re.escape(message)}$"):
        create_app(config)
    listed = subprocess.run(
        [sys.executable, "-m", "drs.web.users", "--config", str(config.config_file), "list"], capture_output=True, text=True, timeout=60
    )
    assert listed.returncode == 2 and listed.stderr == f"error: {message}\n"


def test_the_users_command_adds_lists_and_removes(project: Path) -> None:
    config_file = write_config(project)

    def run(*args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
        command = [sys.executable, "-m", "drs.web.users", "--config", str(config_file), *args]
        return subprocess.run(command, input=stdin, capture_output=True, text=True, timeout=60)

    users_file = project / "instance" / "users.json"
    added = run("add", "vera", "--role", "viewer", stdin=PASSWORD + "\n")
    assert added.returncode == 0 and added.stdout == f"user vera (viewer) saved in {users_file}\n"
    short = run("add", "bob", "--role", "viewer", stdin="short\n")
    assert short.returncode == 1 and short.stderr == "error: the password must have at least 8 characters\n"
    made = run("token", "apicalls", "--role", "operator")
    token = made.stdout.strip()
    assert made.returncode == 0 and token.startswith("drs_") and len(token) > 40 and "shown only now" in made.stderr
    listing = run("list").stdout
    assert re.search(r"^user\s+vera\s+viewer\s+created ", listing, re.M) and re.search(r"^token\s+apicalls\s+operator", listing, re.M)
    assert token not in listing and "scrypt" not in listing
    assert run("remove", "vera").stdout == f"removed vera from {users_file}\n"
    assert run("remove", "vera").returncode == 1
    assert users.read_users(users_file).users == {}


def test_with_no_user_the_app_is_open_on_the_loopback_only(config: Config) -> None:
    client = create_app(config).test_client()
    assert client.get("/risk").status_code == 503  # open, as before (nothing deployed yet)
    assert client.get("/risk", environ_base={"REMOTE_ADDR": "10.1.2.3"}).status_code == 401


@pytest.fixture
def bind_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("DRS_BIND", "0.0.0.0:8000")
    yield


@pytest.mark.usefixtures("bind_env")
def test_create_app_refuses_to_start_open_on_the_network_and_warns_when_auth_is_off(
    project: Path, caplog: pytest.LogCaptureFixture
) -> None:
    config = load_config(write_config(project))
    with pytest.raises(ConfigError, match=r"^refusing to serve on 0\.0\.0\.0:8000 with no user configured: add one with"):
        create_app(config)
    off = load_config(write_config(project, "off.json", auth="off"))
    caplog.set_level(logging.WARNING)
    client = create_app(off).test_client()
    assert 'authentication is off ("auth": "off" in off.json)' in caplog.text
    assert client.get("/risk", environ_base={"REMOTE_ADDR": "10.1.2.3"}).status_code == 503  # open on purpose
    users.add_user(config.users_file, "otto", "operator", PASSWORD)
    assert create_app(config).test_client().get("/risk").status_code == 401  # a user: starts, and asks for credentials


@pytest.mark.slow
def test_gunicorn_refuses_to_serve_open_on_a_non_loopback_address(project: Path) -> None:
    config_file = write_config(project)
    gunicorn = Path(sys.executable).parent / "gunicorn"
    port = free_port()
    env = {**os.environ, "DRS_CONFIG": str(config_file), "BIND": f"0.0.0.0:{port}", "WORKERS": "1"}
    proc = subprocess.Popen(
        [str(gunicorn), "--config", str(ROOT / "gunicorn.conf.py"), "app:create_app()"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            stop(proc)
    users_file = project / "instance" / "users.json"
    line = (
        f"refusing to serve on 0.0.0.0:{port} with no user configured: add one with `python -m drs.users add NAME --role operator`"
        f' (users file {users_file}), or set "auth": "off" in config.json to serve open on purpose'
    )
    assert proc.returncode == 1
    assert [x for x in err.splitlines() if "refusing" in x] == [line] and err.rstrip().endswith(line)
    assert "Booting worker" not in err


def test_every_answer_carries_the_security_headers(served: Served) -> None:
    client = served.client()
    answers = [
        call(client, method, url.format(top=served.top), headers=served.headers(credential))
        for method, url, _ in TABLE.values()
        for credential in CREDENTIALS
    ]
    answers += [client.get("/nowhere"), client.post("/health", headers=served.headers("operator")), client.get("/risk?token=x")]
    assert {a.status_code for a in answers} >= {200, 302, 400, 401, 403, 405}
    for answer in answers:
        for name, value in headers.HEADERS.items():
            assert answer.headers[name] == value, (answer.request.path, name)
        csp = answer.headers["Content-Security-Policy"]
        assert "script-src 'self'" in csp and "unsafe-inline" not in csp.split("style-src-attr")[0]
        assert "frame-ancestors 'none'" in csp
        if answer.request.path.startswith("/static/"):
            assert answer.headers.get("Cache-Control") != "no-store"
        else:
            assert answer.headers["Cache-Control"] == "no-store", answer.request.path


def test_the_templates_have_no_inline_script() -> None:
    for template in (ROOT / "drs" / "web" / "templates").glob("*.html"):
        text = template.read_text()
        assert re.findall(r"<script(?![^>]*\bsrc=)[^>]*>", text) == [], template.name
        assert re.findall(r"\son[a-z]+\s*=", text) == [], template.name  # no onclick= and the like
        assert "javascript:" not in text, template.name


def test_an_app_for_a_bad_auth_setting_does_not_start(project: Path) -> None:
    path = write_config(project, "bad.json", auth="maybe")
    with pytest.raises(ConfigError, match="key 'auth' must be one of on, off"):
        create_app(path)


@pytest.mark.slow
def test_apicalls_takes_its_token_from_drs_token_against_a_real_server(served: Served) -> None:
    """DRS_TOKEN when set; without it, the pipeline's own token (tests/web/test_apicalls.py has its failures)."""
    from tests.conftest import run_script
    from tools.procs import gunicorn_server

    config = served.config
    with gunicorn_server(config.config_file) as url:
        without = run_script("apicalls.py", "--config", str(config.config_file), "--url", url, env={**os.environ, "DRS_TOKEN": ""})
        assert without.returncode == 0, without.stderr
        assert [a["status"] for a in json.loads(config.model_output("apireturns.json").read_text())["answers"]] == [200] * 5
        token = served.tokens["operator"]
        done = run_script("apicalls.py", "--config", str(config.config_file), "--url", url, env={**os.environ, "DRS_TOKEN": token})
        assert done.returncode == 0, done.stderr
    record = config.model_output("apireturns.json").read_text()
    assert [a["status"] for a in json.loads(record)["answers"]] == [200] * 5
    assert token not in record and token not in config.model_output("apireturns.txt").read_text()
