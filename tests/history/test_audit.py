"""The audit log (drs/history/audit.py): each event lands one row with who, when, from where and what; rows are never changed."""

from __future__ import annotations

import re
import sqlite3
import subprocess
import sys
from typing import Any

import pytest

from drs.core.settings import Config
from drs.history import audit
from drs.history import db as rundb
from drs.history import runs as history
from drs.pipeline import deploy
from drs.web import users
from drs.web.app import create_app
from tests.conftest import stage_pass

PASSWORD = "correct horse battery"
STAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+00:00$")


def rows(config: Config) -> list[dict[str, Any]]:
    """Every event, oldest first."""
    return audit.events(config, limit=None)[::-1]


def only(config: Config, action: str) -> dict[str, Any]:
    found = [e for e in rows(config) if e["action"] == action]
    assert len(found) == 1, found
    assert STAMP.match(found[0]["at"])
    return found[0]


def users_command(config: Config, *args: str, stdin: str = "") -> None:
    command = [sys.executable, "-m", "drs.web.users", "--config", str(config.config_file), *args]
    done = subprocess.run(command, input=stdin, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr


def test_user_and_token_changes_from_the_command_line_are_audited(config: Config) -> None:
    users_command(config, "add", "vera", "--role", "viewer", stdin=PASSWORD + "\n")
    users_command(config, "add", "vera", "--role", "operator", stdin=PASSWORD + "\n")
    users_command(config, "token", "apicalls", "--role", "operator")
    users_command(config, "token", "apicalls", "--role", "viewer")
    users_command(config, "remove", "vera")
    users_command(config, "remove", "apicalls")
    me, where = audit.os_user(), audit.command_line()
    assert [(e["actor"], e["action"], e["target"], e["origin"], e["details"]) for e in rows(config)] == [
        (me, "user added", "vera", where, {"role": "viewer"}),
        (me, "user changed", "vera", where, {"role": "operator", "role_before": "viewer"}),
        (me, "token created", "apicalls", where, {"role": "operator"}),
        (me, "token replaced", "apicalls", where, {"role": "viewer"}),
        (me, "user removed", "vera", where, {}),
        (me, "token removed", "apicalls", where, {}),
    ]
    assert PASSWORD not in config.history_db.read_bytes().decode("latin-1")


def test_sign_ins_failures_and_sign_outs_are_audited_with_the_address_never_the_password(config: Config) -> None:
    users.add_user(config.users_file, "vera", "viewer", PASSWORD)
    client = create_app(config).test_client()

    def form_token() -> str:
        found = re.search(r'name="csrf_token" value="([^"]+)"', client.get("/signin").get_data(as_text=True))
        assert found is not None
        return found.group(1)

    address = {"REMOTE_ADDR": "192.0.2.44"}
    wrong = {"csrf_token": form_token(), "name": "vera", "password": "not the password", "next": "/"}
    assert client.post("/signin", data=wrong, environ_base=address).status_code == 401
    right = {**wrong, "csrf_token": form_token(), "password": PASSWORD}
    assert client.post("/signin", data=right, environ_base=address).status_code == 302
    assert client.post("/signout", data={"csrf_token": form_token()}, environ_base=address).status_code == 302
    basic = {"Authorization": "Basic " + __import__("base64").b64encode(b"mallory:guess").decode()}
    assert client.get("/risk", headers=basic, environ_base={"REMOTE_ADDR": "198.51.100.9"}).status_code == 401
    assert [(e["actor"], e["action"], e["target"], e["origin"], e["details"]) for e in rows(config)] == [
        ("vera", "sign-in failed", "vera", "192.0.2.44", {"via": "form"}),
        ("vera", "sign-in", "vera", "192.0.2.44", {"role": "viewer"}),
        ("vera", "sign-out", "vera", "192.0.2.44", {"sessions": "all of this user's"}),
        ("mallory", "sign-in failed", "mallory", "198.51.100.9", {"via": "HTTP Basic"}),
    ]
    text = config.history_db.read_bytes().decode("latin-1")
    assert PASSWORD not in text and "not the password" not in text and "guess" not in text


def test_deployments_forced_deployments_and_rollbacks_are_audited(practice_config: Config, monkeypatch: pytest.MonkeyPatch) -> None:
    config = practice_config
    stage_pass(config)  # deploy(): as the library deploys, by this user
    first = only(config, "deployed")
    assert (first["actor"], first["target"], first["details"]["version"]) == (audit.os_user(), "v0001", 1)
    deploy.deploy(config, {"reason": "drift", "deployed_by": "fullprocess"}, forced=True)  # the full process past its gate
    monkeypatch.setattr(deploy, "compare_with_deployed", lambda *a: (0.9, 0.5))  # the set scores below the deployed model
    deploy.deploy_or_roll_back(config, None, force=True)  # deployment.py --force
    deploy.deploy_or_roll_back(config, "previous")  # deployment.py --rollback
    events = rows(config)
    assert [(e["actor"], e["action"], e["target"]) for e in events] == [
        (audit.os_user(), "deployed", "v0001"),
        ("fullprocess", "forced deployment", "v0002"),
        (audit.os_user(), "forced deployment", "v0003"),
        (audit.os_user(), "rolled back", "v0002"),
    ]
    assert events[1]["origin"] == "full process" and events[1]["details"]["reason"] == "drift"
    assert events[2]["origin"] == audit.command_line() and events[2]["details"]["version"] == 3
    assert events[3]["details"]["from"] == 3 and events[3]["details"]["to"] == 2


def test_the_audit_log_is_append_only(config: Config) -> None:
    audit.record(config, "otto", "sign-in", "otto", "127.0.0.1", {"role": "operator"})
    with sqlite3.connect(config.history_db) as conn:
        for statement in ("UPDATE audit SET actor = 'someone else'", "DELETE FROM audit", "UPDATE audit SET details = '{}' WHERE id = 1"):
            with pytest.raises(sqlite3.DatabaseError, match="the audit log is append-only"):
                conn.execute(statement)
    assert [e["actor"] for e in rows(config)] == ["otto"]


def test_an_older_history_gets_the_audit_table_and_keeps_its_runs(config: Config) -> None:
    with sqlite3.connect(config.history_db) as conn:
        for statement in rundb.statements(";".join([rundb.SCHEMA, *rundb.MIGRATIONS[:4]])):
            conn.execute(statement)
        conn.execute("PRAGMA user_version = 4")
        conn.execute("INSERT INTO runs (started_at, finished_at, kind, outcome, message, details) VALUES ('a', 'b', 'k', 'o', 'm', '{}')")
    audit.record(config, "otto", "sign-in", "otto", "127.0.0.1")
    assert len(history.runs(config.history_db)) == 1 and len(rows(config)) == 1
    with rundb.opened(config.history_db) as conn:
        assert rundb.schema_version(conn) == rundb.SCHEMA_VERSION


def test_the_command_line_lists_newest_first_with_since_and_limit(config: Config) -> None:
    for name in ("first", "second", "third"):
        audit.record(config, name, "sign-in", name, "127.0.0.1", {"role": "viewer"})

    def listed(*args: str) -> list[str]:
        command = [sys.executable, "-m", "drs.history.audit", "--config", str(config.config_file), *args]
        done = subprocess.run(command, capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stderr
        return done.stdout.splitlines()

    lines = listed()
    assert [line.split()[1] for line in lines] == ["third", "second", "first"]
    assert re.match(r"^\S+\s+third\s+sign-in\s+third\s+127\.0\.0\.1  role=viewer$", lines[0])
    assert [line.split()[1] for line in listed("--limit", "2")] == ["third", "second"]
    assert listed("--since", "2999-01-01") == ["no audit events"]


def test_operators_read_the_audit_log_on_the_page_and_viewers_do_not(config: Config) -> None:
    users.add_user(config.users_file, "otto", "operator", PASSWORD)
    users.add_user(config.users_file, "vera", "viewer", PASSWORD)
    token = users.new_token(config.users_file, "ops", "operator")
    audit.record(config, "someone", "user added", "<script>x</script>", "command line on host", {"role": "viewer"})
    client = create_app(config).test_client()
    page = client.get("/audit", headers={"Authorization": f"Bearer {token}"})
    text = page.get_data(as_text=True)
    assert page.status_code == 200 and "user added" in text and "&lt;script&gt;x&lt;/script&gt;" in text and "role: viewer" in text
    viewer = users.new_token(config.users_file, "reader", "viewer")
    assert client.get("/audit", headers={"Authorization": f"Bearer {viewer}"}).status_code == 403

    def signed_in_page(name: str) -> str:
        browser = create_app(config).test_client()
        found = re.search(r'name="csrf_token" value="([^"]+)"', browser.get("/signin").get_data(as_text=True))
        assert found is not None
        browser.post("/signin", data={"csrf_token": found.group(1), "name": name, "password": PASSWORD, "next": "/signin"})
        return browser.get("/signin").get_data(as_text=True)

    assert 'href="/audit"' in signed_in_page("otto") and 'href="/audit"' not in signed_in_page("vera")
