"""Sign-in and sessions hold (issue 21, part 3): `next`, ending sessions, the users file lock, open mode, logs, umask.

drs/web/signin.py, drs/web/auth.py, drs/web/users.py, drs/web/accesslog.py, drs/web/serving.py, drs/core/fileio.py.
"""

from __future__ import annotations

import logging
import os
import re
import runpy
import stat
import subprocess
import sys
import urllib.request
from pathlib import Path
from types import SimpleNamespace
from typing import Any
from urllib.parse import urlsplit

import pytest
from flask import Flask
from flask.testing import FlaskClient

from drs.core.settings import Config, load_config
from drs.web import accesslog, serving, users
from drs.web.app import create_app
from tests.conftest import ROOT, write_config

PASSWORD = "correct horse battery"


@pytest.fixture
def app(config: Config) -> Flask:
    """The app with a viewer vera and an operator otto (nothing deployed: an authorised /risk is a 503)."""
    users.add_user(config.users_file, "vera", "viewer", PASSWORD)
    users.add_user(config.users_file, "otto", "operator", PASSWORD)
    return create_app(config)


def csrf(client: FlaskClient, url: str = "/signin") -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', client.get(url).get_data(as_text=True))
    assert found is not None
    return found.group(1)


def sign_in(client: FlaskClient, name: str = "vera", password: str = PASSWORD, next_: str = "/") -> Any:
    return client.post("/signin", data={"csrf_token": csrf(client), "name": name, "password": password, "next": next_})


def browser_target(location: str) -> str:
    """Where a browser goes for a Location header: tab, newline, CR dropped, backslashes as slashes (WHATWG)."""
    return re.sub(r"[\t\n\r]", "", location).replace("\\", "/")


HOSTILE = [
    "/\t/evil.example",  # what the link /signin?next=/%09/evil.example puts into the form
    "/%09/evil.example",
    "/\n/evil.example",
    "/\r\n/evil.example",
    "/\r/evil.example",
    "\\\\evil.example",
    "/\\evil.example",
    "\\/evil.example",
    "//evil.example",
    "///evil.example",
    "https://evil.example",
    "HTTPS://evil.example/x",
    "\thttps://evil.example",
    "/%2F%2Fevil.example",
    "/%2f/evil.example",
    "/%5C%5Cevil.example",
    "/%5Cevil.example",
    "javascript:alert(1)",
    " javascript:alert(1)",
    "java\tscript:alert(1)",
    "data:text/html,<script>alert(1)</script>",
    "evil.example",
    "//évil.example",
    "/\t\\évil.example",
]
ODD = ["/x\r\nSet-Cookie: a=b", "/x\x00y", "/x\x7f", "/" + "a" * 5000, "/é\n", "/%0d%0aSet-Cookie:%20a=b"]


@pytest.mark.parametrize("target", HOSTILE)
def test_next_is_followed_only_to_a_path_on_this_site(app: Flask, target: str) -> None:
    client = app.test_client()
    answer = sign_in(client, next_=target)
    assert answer.status_code == 302, answer.get_data(as_text=True)[:300]
    location = answer.headers["Location"]
    followed = urlsplit(browser_target(location))
    assert not followed.scheme and not followed.netloc and location.startswith("/") and not browser_target(location).startswith("//")
    assert location == "/"


@pytest.mark.parametrize("target", ODD, ids=lambda t: repr(t[:20]))
def test_odd_next_values_are_never_a_500_nor_a_header_of_their_own(app: Flask, target: str) -> None:
    answer = sign_in(app.test_client(), next_=target)
    assert answer.status_code == 302
    location = answer.headers["Location"]
    assert location.startswith("/") and not location.startswith("//") and not urlsplit(location).netloc
    assert not re.search(r"[\x00-\x20\x7f]", location) and not any("a=b" in c for c in answer.headers.getlist("Set-Cookie"))


@pytest.mark.parametrize("target", ["/%09/evil.example", "/%0a/evil.example", "/%5c/evil.example", "https://evil.example"])
def test_a_crafted_sign_in_link_never_carries_an_other_site_into_the_form(app: Flask, target: str) -> None:
    form = app.test_client().get(f"/signin?next={target}").get_data(as_text=True)
    assert 'name="next" value="/"' in form


@pytest.mark.parametrize(
    "target", ["/risklist.csv", "/clients/abcd?x=1#top", "/images/trends.png", "/clients/%C3%A9t%C3%A9", "/clients/été"]
)
def test_next_to_a_path_of_this_site_is_followed(app: Flask, target: str) -> None:
    answer = sign_in(app.test_client(), next_=target)
    assert answer.status_code == 302
    location = answer.headers["Location"]
    assert location.startswith("/") and not location.startswith("//")
    assert urllib.request.unquote(location) == urllib.request.unquote(target)


def copied_cookie(app: Flask, client: FlaskClient) -> FlaskClient:
    """A second browser holding a copy of `client`'s session cookie."""
    cookie = client.get_cookie("drs_session")
    assert cookie is not None
    thief = app.test_client()
    thief.set_cookie("drs_session", cookie.value)
    return thief


def _sign_out(config: Config, client: FlaskClient) -> None:
    assert client.post("/signout", data={"csrf_token": csrf(client)}).status_code == 302  # the session's own CSRF token


ENDINGS = {
    "sign-out": _sign_out,
    "new password": lambda config, client: users.add_user(config.users_file, "vera", "viewer", "another good password"),
    "new role": lambda config, client: users.add_user(config.users_file, "vera", "operator", PASSWORD),
    "same password again": lambda config, client: users.add_user(config.users_file, "vera", "viewer", PASSWORD),
    "removal": lambda config, client: users.remove(config.users_file, "vera"),
    "removal and the same user again": lambda config, client: (
        users.remove(config.users_file, "vera"),
        users.add_user(config.users_file, "vera", "viewer", PASSWORD),
    ),
}


@pytest.mark.parametrize("ending", list(ENDINGS))
def test_a_copied_cookie_stops_working_when_the_session_ends(app: Flask, config: Config, ending: str) -> None:
    client = app.test_client()
    assert sign_in(client).status_code == 302
    thief = copied_cookie(app, client)
    assert thief.get("/risk").status_code == 503  # signed in (nothing deployed yet)
    ENDINGS[ending](config, client)
    assert thief.get("/risk").status_code == 401
    assert thief.get("/").status_code == 302  # the page sends it to the sign-in form
    assert client.get("/risk").status_code == 401


def test_signing_out_ends_that_users_sessions_only(app: Flask, config: Config) -> None:
    vera, vera_elsewhere, otto = app.test_client(), app.test_client(), app.test_client()
    for client, name in ((vera, "vera"), (vera_elsewhere, "vera"), (otto, "otto")):
        assert sign_in(client, name).status_code == 302
    _sign_out(config, vera)
    assert vera_elsewhere.get("/risk").status_code == 401  # signing out ends every session of vera's
    assert otto.get("/risk").status_code == 503  # otto stays signed in
    again = app.test_client()
    assert sign_in(again).status_code == 302 and again.get("/risk").status_code == 503  # and vera may sign in again


def run_users(config_file: Path, *args: str, stdin: str = "") -> subprocess.Popen[str]:
    command = [sys.executable, "-m", "drs.web.users", "--config", str(config_file), *args]
    proc = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stdin is not None
    proc.stdin.write(stdin)
    proc.stdin.close()
    return proc


def finish(procs: list[subprocess.Popen[str]]) -> None:
    for proc in procs:
        assert proc.wait(timeout=120) == 0, proc.stderr.read() if proc.stderr else ""


def test_parallel_changes_of_the_users_file_lose_nothing(config: Config) -> None:
    finish([run_users(config.config_file, "add", f"user{i}", "--role", "viewer", stdin=PASSWORD + "\n") for i in range(8)])
    assert sorted(users.read_users(config.users_file).users) == [f"user{i}" for i in range(8)]
    assert stat.S_IMODE(config.users_file.stat().st_mode) == 0o600


def test_a_removal_racing_additions_leaves_the_removed_token_invalid(config: Config) -> None:
    token = users.new_token(config.users_file, "leaked", "operator")
    procs = [run_users(config.config_file, "add", f"user{i}", "--role", "viewer", stdin=PASSWORD + "\n") for i in range(3)]
    procs.append(run_users(config.config_file, "remove", "leaked"))
    procs += [run_users(config.config_file, "add", f"user{i}", "--role", "viewer", stdin=PASSWORD + "\n") for i in range(3, 6)]
    finish(procs)
    found = users.read_users(config.users_file)
    assert found.check_token(token) is None and found.tokens == {}
    assert sorted(found.users) == [f"user{i}" for i in range(6)]


FORWARDING = [
    {"X-Forwarded-For": "203.0.113.5"},
    {"Forwarded": "for=203.0.113.5;proto=https"},
    {"X-Real-IP": "203.0.113.5"},
    {"X-Forwarded-Host": "risk.example.com"},
    {"X-Forwarded-Proto": "https"},
    {"Via": "1.1 proxy"},
    {"X-Forwarded-For": "127.0.0.1"},  # a proxy on the same machine passes on a request from anywhere
]


@pytest.mark.parametrize("headers", FORWARDING, ids=lambda h: next(iter(h)))
def test_with_no_user_a_request_through_a_proxy_is_not_served_as_local(config: Config, headers: dict[str, str]) -> None:
    client = create_app(config).test_client()
    assert client.get("/risk").status_code == 503  # local: open, as before (nothing deployed yet)
    for url in ("/risk", "/", "/scoring"):
        answer = client.get(url, headers=headers)
        assert answer.status_code == 401, url
        message = answer.get_json()["message"]
        assert f"it came through a proxy ({next(iter(headers))})" in message and "python -m drs.users add NAME --role operator" in message
    assert client.get("/health", headers=headers).status_code in (200, 503)  # open to all, as always


@pytest.mark.parametrize(
    ("host", "served"),
    [
        ("localhost:8000", True),
        ("127.0.0.1:8000", True),
        ("127.0.0.2", True),
        ("[::1]:8000", True),
        ("evil.example", False),  # DNS rebinding: a page of evil.example, its name now 127.0.0.1, reads the list
        ("evil.example:8000", False),
        ("127.0.0.1.nip.io:8000", False),
        ("localhost.evil.example", False),
    ],
)
def test_with_no_user_only_a_request_addressed_to_this_machine_is_local(config: Config, host: str, served: bool) -> None:
    answer = create_app(config).test_client().get("/risk", base_url=f"http://{host}")
    if served:
        assert answer.status_code == 503  # open (nothing deployed yet)
    else:
        name = host.rsplit(":", 1)[0] if host.count(":") == 1 else host
        assert answer.status_code == 401 and f"it was addressed to '{name}', not to this machine" in answer.get_json()["message"]


def test_with_no_user_and_a_proxy_declared_a_forwarded_request_is_refused(project: Path) -> None:
    config = load_config(write_config(project, proxy_hops=1))
    client = create_app(config).test_client()
    answer = client.get("/risk", headers={"X-Forwarded-For": "127.0.0.1"})  # ProxyFix makes the peer look local
    assert answer.status_code == 401 and "came through a proxy (X-Forwarded-For)" in answer.get_json()["message"]


def test_the_access_log_atoms_carry_no_credential() -> None:
    atoms = {
        "r": "GET /risk?top=3&token=S1&Access_Token=S2&to%6Ben=S3;api_key=S4 HTTP/1.1",
        "q": "top=3&token=S1&password=S5",
        "U": "/risk",
        "f": "https://risk.example/?session=S6#frag",
        "{authorization}i": "Bearer S7",
        "{cookie}i": "drs_session=S8",
        "{set-cookie}o": "drs_session=S9; HttpOnly",
        "{x-api-key}i": "S10",
        "{http_authorization}e": "Basic S11",
        "{raw_uri}e": "/risk?token=S12",
        "{user-agent}i": "curl/8",
        "s": "400",
        "B": 12,
    }
    clean = accesslog.redact_atoms(atoms)
    assert not re.search(r"S\d", " ".join(str(v) for v in clean.values()))
    assert clean["r"] == "GET /risk?top=3&token=[redacted]&Access_Token=[redacted]&to%6Ben=[redacted];api_key=[redacted] HTTP/1.1"
    assert clean["q"] == "top=3&token=[redacted]&password=[redacted]"
    assert clean["f"] == "https://risk.example/?session=[redacted]#frag"
    assert clean["{user-agent}i"] == "curl/8" and clean["U"] == "/risk" and clean["B"] == 12


@pytest.mark.slow
def test_gunicorns_access_log_never_holds_a_credential(config: Config, monkeypatch: pytest.MonkeyPatch) -> None:
    from tools.procs import gunicorn_server

    users.add_user(config.users_file, "otto", "operator", PASSWORD)
    token = users.new_token(config.users_file, "api", "operator")
    log = config.config_file.parent / "access.log"
    monkeypatch.setenv("ACCESS_LOG", str(log))
    everything = '%(h)s %(u)s "%(r)s" %(s)s q=%(q)s f="%(f)s" a=%({authorization}i)s c=%({cookie}i)s o=%({set-cookie}o)s'
    monkeypatch.setenv("GUNICORN_CMD_ARGS", f"--access-logformat='{everything}'")
    secrets = ["QUERYSECRET1", "QUERYSECRET2", token, "COOKIESECRET", "REFERERSECRET", PASSWORD]
    with gunicorn_server(config.config_file, workers=1) as url:

        def get(path: str, **headers: str) -> int:
            try:
                with urllib.request.urlopen(urllib.request.Request(url + path, headers=headers), timeout=30) as answer:
                    return int(answer.status)
            except urllib.error.HTTPError as exc:
                return int(exc.code)

        assert get("/risk?token=QUERYSECRET1") == 400
        assert get("/risk?top=3&api_key=QUERYSECRET2") == 400
        assert get("/risk", Authorization=f"Bearer {token}", Cookie="drs_session=COOKIESECRET") == 503
        assert get("/health", Referer=f"{url}/?access_token=REFERERSECRET") in (200, 503)
        import base64

        assert get("/scoring", Authorization="Basic " + base64.b64encode(f"otto:{PASSWORD}".encode()).decode()) in (200, 503)
    text = log.read_text()
    assert text.count("\n") >= 5, text
    assert not [s for s in secrets if s in text], text
    assert '"GET /risk?token=[redacted] HTTP/1.1" 400' in text and "a=[redacted]" in text and "c=[redacted]" in text


def fake_server(binds: list[str], certfile: str | None = None) -> tuple[SimpleNamespace, list[str]]:
    said: list[str] = []
    log = SimpleNamespace(warning=lambda fmt, *a: said.append(fmt % a), info=lambda *a: None)
    cfg = SimpleNamespace(bind=binds, certfile=certfile, worker_class_str="gevent", keepalive=5)
    return SimpleNamespace(cfg=cfg, log=log), said


@pytest.mark.parametrize(
    ("binds", "certfile", "proxy_hops", "warned"),
    [
        (["0.0.0.0:8000"], None, 0, True),
        (["127.0.0.1:8000", "10.0.0.5:8000"], None, 0, True),
        (["0.0.0.0:8000"], "cert.pem", 0, False),
        (["0.0.0.0:8000"], None, 1, False),
        (["127.0.0.1:8000"], None, 0, False),
        (["unix:/run/drs.sock"], None, 0, False),
    ],
)
def test_serving_beyond_the_loopback_without_tls_warns_once_at_start_with_the_fix(
    project: Path, monkeypatch: pytest.MonkeyPatch, binds: list[str], certfile: str | None, proxy_hops: int, warned: bool
) -> None:
    config_file = write_config(project, proxy_hops=proxy_hops)
    users.add_user(load_config(config_file).users_file, "otto", "operator", PASSWORD)
    monkeypatch.setenv("DRS_CONFIG", str(config_file))
    hooks = runpy.run_path(str(ROOT / "gunicorn.conf.py"))
    server, said = fake_server(binds, certfile)
    hooks["on_starting"](server)
    tls = [line for line in said if "without TLS" in line]
    if not warned:
        assert tls == []
        return
    outside = ", ".join(b for b in binds if not serving.is_loopback_bind(b))
    assert tls == [
        f"serving on {outside} without TLS: passwords, tokens and session cookies cross the network in clear;"
        ' give gunicorn a certificate (GUNICORN_CMD_ARGS="--certfile=cert.pem --keyfile=key.pem"), or serve on 127.0.0.1'
        ' behind a TLS proxy and set "proxy_hops": 1 in config.json (docs/security.md#tls)'
    ]


def test_create_app_does_not_repeat_the_tls_warning_in_each_worker(
    config: Config, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    users.add_user(config.users_file, "otto", "operator", PASSWORD)
    monkeypatch.setenv("DRS_BIND", "0.0.0.0:8000")
    caplog.set_level(logging.WARNING)
    create_app(config)
    assert "without TLS" not in caplog.text


def modes_under(umask: int, project: Path, config_file: Path) -> dict[str, int]:
    """Run ingestion and `drs.web.users add` under `umask` in fresh processes; the modes of what they wrote."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    script = (
        f"import os, sys; os.umask(0o{umask:o}); sys.argv = sys.argv[1:]; import runpy; runpy.run_path(sys.argv[0], run_name='__main__')"
    )
    done = subprocess.run(
        [sys.executable, "-c", script, str(ROOT / "ingestion.py"), "--config", str(config_file)], env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    code = f"import os, sys; os.umask(0o{umask:o}); from drs.web.users import main; sys.exit(main(sys.argv[1:]))"
    added = subprocess.run(
        [sys.executable, "-c", code, "--config", str(config_file), "add", "vera", "--role", "viewer"],
        input=PASSWORD + "\n",
        env=env,
        capture_output=True,
        text=True,
    )
    assert added.returncode == 0, added.stderr
    config = load_config(config_file)
    written = [config.final_data_csv, config.final_data_csv.with_name("ingestedfiles.txt"), config.users_file]
    return {p.name: stat.S_IMODE(p.stat().st_mode) for p in written}


@pytest.mark.parametrize(("umask", "data_mode"), [(0o027, 0o640), (0o077, 0o600), (0o022, 0o644)])
def test_outputs_follow_the_umask_and_secrets_stay_0600(project: Path, umask: int, data_mode: int) -> None:
    modes = modes_under(umask, project, write_config(project))
    assert modes == {"finaldata.csv": data_mode, "ingestedfiles.txt": data_mode, "users.json": 0o600}


def test_a_sign_out_that_cannot_write_the_users_file_signs_this_browser_out_and_says_so(
    app: Flask, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    client = app.test_client()
    assert sign_in(client).status_code == 302

    def read_only(path: Path, name: str) -> bool:
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(users, "end_sessions", read_only)
    caplog.set_level(logging.ERROR)
    assert client.post("/signout", data={"csrf_token": csrf(client)}).status_code == 302
    assert client.get("/risk").status_code == 401
    assert "cannot end the other sessions of 'vera' ([Errno 13] Permission denied): remove or re-add the user to end them" in caplog.text
