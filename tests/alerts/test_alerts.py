"""Alerts against real receivers: a JSON webhook server and an SMTP server (aiosmtpd) on 127.0.0.1.

Runs are real pipeline runs; failures are made deterministic by making a step raise; time is moved by
replacing drs.alerts.notify.clock, never by sleeping."""

from __future__ import annotations

import email
import email.policy
import hashlib
import http.server
import json
import logging
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller

from drs.alerts import notify
from drs.alerts import rules as alerts
from drs.core.errors import StageError
from drs.core.fileio import run_lock
from drs.core.settings import Config, load_config
from drs.history import alerts as alert_store
from drs.history import runs as history
from drs.history.record import Outcome
from drs.pipeline import deploy
from drs.pipeline import run as pipeline
from drs.web import users
from drs.web.app import create_app
from tests.conftest import HEADER, app_server, run_script, write_config
from tools.procs import free_port


@dataclass
class JsonReceiver:
    """POSTs to /ok are kept and answered 200; /fail answers 500; /hang never answers (until the test ends)."""

    port: int
    posts: list[dict[str, Any]] = field(default_factory=list)
    release: threading.Event = field(default_factory=threading.Event)

    def url(self, path: str = "ok") -> str:
        return f"json://127.0.0.1:{self.port}/{path}"


@pytest.fixture
def receiver() -> Iterator[JsonReceiver]:
    box = JsonReceiver(0)

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            if self.path.startswith("/hang"):
                box.release.wait(60)
                return
            if self.path.startswith("/ok"):
                box.posts.append(json.loads(body))
            self.send_response(200 if self.path.startswith("/ok") else 500)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    box.port = server.server_address[1]
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield box
    box.release.set()
    server.shutdown()
    server.server_close()


class Mailbox:
    def __init__(self) -> None:
        self.messages: list[email.message.EmailMessage] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append(email.message_from_bytes(envelope.content, policy=email.policy.default))  # type: ignore[arg-type]
        return "250 OK"


@pytest.fixture
def mailbox() -> Iterator[tuple[Mailbox, str]]:
    box = Mailbox()
    port = free_port()
    controller = Controller(box, hostname="127.0.0.1", port=port)
    controller.start()
    yield box, f"mailto://127.0.0.1:{port}?from=drs@example.com&to=ops@example.com"
    controller.stop()


def with_targets(config: Config, *urls: str, **overrides: Any) -> Config:
    """The same project's config with these alert targets (and other settings)."""
    name = config.config_file.name
    base = {"input_folder_path": config.input_folder.name, "output_model_path": config.output_model_folder.name}
    return load_config(write_config(config.config_file.parent, name, **base, notify=list(urls), **overrides))


def received(receiver: JsonReceiver) -> list[tuple[str, str]]:
    return [(p["title"], p["type"]) for p in receiver.posts]


class Clock:
    """drs.alerts.notify.clock, moved by hand."""

    def __init__(self) -> None:
        self.now = datetime.now(UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    fake = Clock()
    monkeypatch.setattr(notify, "clock", fake)
    return fake


def failing(monkeypatch: pytest.MonkeyPatch, reason: str = "disk full (injected)") -> None:
    def broken(*args: Any) -> None:
        raise StageError(reason)

    monkeypatch.setattr(pipeline, "new_source_files", broken)


def fail_once(config: Config, monkeypatch: pytest.MonkeyPatch) -> None:
    with monkeypatch.context() as patch:
        failing(patch)
        with pytest.raises(StageError, match="disk full"):
            pipeline.run(config)


def test_fail_fail_fail_succeed_sends_one_failure_then_one_recovery(
    deployed_practice: Config, receiver: JsonReceiver, mailbox: tuple[Mailbox, str], monkeypatch: pytest.MonkeyPatch, clock: Clock
) -> None:
    mail, mail_url = mailbox
    config = with_targets(deployed_practice, receiver.url(), mail_url, public_url="https://risk.example.com")
    for _ in range(3):
        fail_once(config, monkeypatch)
        clock.advance(minutes=1)
    assert pipeline.run(config) == 0  # no new data: the first success after the failures
    assert received(receiver) == [("DRS failure: Run failed", "failure"), ("DRS info: Recovered", "info")]
    failed, recovered = (p["message"] for p in receiver.posts)
    log_file = config.project_root / "logs" / "fullprocess.log"
    assert failed.startswith(
        f"Run failed.\n  Reason: disk full (injected)\n  The log: {log_file} (the cron line of cronjob.txt appends to it).\n"
    )
    assert "  What to do: read the log and fix the cause; the next cron run tries again." in failed
    assert "python deployment.py --rollback" in failed
    assert "\nDeployed: v0001 (F1 0.6305 on the test data)\nPage: https://risk.example.com/" in failed
    assert f"When: {alerts.when(clock.now - timedelta(minutes=3))}" in failed
    assert recovered.startswith("Recovered.\n  This run succeeded (no new data) after 3 failed run(s) in a row since ")
    assert "  It did: no new data in practicedata; v0001 stays deployed\n  What to do: nothing to do." in recovered
    # the same two messages, as e-mail
    assert [m["Subject"] for m in mail.messages] == ["DRS failure: Run failed", "DRS info: Recovered"]
    assert "Reason: disk full (injected)" in mail.messages[0].get_body(("plain",)).get_content()  # type: ignore[union-attr]
    # the history: each run's row says what was sent; the alerts table what the next run reads
    runs = history.runs(config.history_db)
    notes = [r["details"].get("notifications") for r in runs if r["kind"] == "fullprocess"]
    sent = [n for n in notes if n]
    assert [(n["events"], n["sent"], n["failed"]) for n in sent] == [(["failed"], 2, []), (["recovered"], 2, [])]
    assert [a["events"] for a in alert_store.alerts(config.history_db)] == [["failed"], ["recovered"]]


def test_a_failure_is_reminded_every_repeat_hours_while_it_lasts(
    deployed_practice: Config, receiver: JsonReceiver, monkeypatch: pytest.MonkeyPatch, clock: Clock
) -> None:
    config = with_targets(deployed_practice, receiver.url(), notify_repeat_hours=24, stale_after_minutes=10_000)
    steps = [0, 1, 22, 2, 1, 20, 4]  # hours after the previous run: failures at 0, 1, 23, 25, 26, 46, then 50
    expected = ["Run failed", None, None, "Still failing", None, None, "Still failing"]
    for hours, title in zip(steps, expected, strict=True):
        clock.advance(hours=hours)
        before = len(receiver.posts)
        fail_once(config, monkeypatch)
        assert [p["title"] for p in receiver.posts[before:]] == ([f"DRS failure: {title}"] if title else []), hours
    reminder = receiver.posts[-1]["message"]
    assert reminder.startswith("Still failing.\n  7 failed runs in a row since ")
    assert "Reminders come at most every 24 hours (notify_repeat_hours) while it lasts." in reminder


def test_drift_then_deploy_then_rollback_each_say_so(
    deployed_practice: Config, config: Config, receiver: JsonReceiver, mailbox: tuple[Mailbox, str]
) -> None:
    mail, mail_url = mailbox
    config = with_targets(config, receiver.url(), mail_url)
    assert pipeline.run(config) == 0
    assert received(receiver) == [("DRS warning: Drift found (and 2 more)", "warning")]  # the third: no API at api_url
    body = receiver.posts[0]["message"]
    assert body.startswith(
        "Drift found.\n  Test raw (new F1 < deployed latestscore): F1 of v0001 on 10,000 new rows 0.4844 vs threshold 0.6305.\n"
        "  Sampling noise: F1 over 10,000 rows lies in "
    )
    assert "the drop is beyond sampling noise" in body
    assert "  What followed: retrained; the gate promoted the candidate (" in body
    unreachable = "the API is not reachable at http://127.0.0.1:9 (connection refused)"
    assert (
        f"\n\nNew version deployed.\n  Deployed v0002 (F1 0.7909 on the test data); API calls failed: {unreachable}.\n  It replaces v0001.\n"
        in body
    )
    assert f"\n\nAPI calls failed.\n  prediction: no answer: {unreachable}: is it running?" in body
    assert "  What to do: nothing, unless it misbehaves: python deployment.py --rollback (back to v0001)" in body
    assert body.endswith("Deployed: v0002 (F1 0.7909 on the test data)")  # no public_url: no page link
    noise = history.runs(config.history_db)[-1]["details"]["drift"]["noise"]
    assert noise["beyond_noise"] is True and noise["rows"] == 10_000 and noise["threshold_rows"] == 1200

    deploy.deploy_or_roll_back(config, "previous")
    assert [p["title"] for p in receiver.posts[1:]] == ["DRS warning: Rolled back to v0001"]
    assert receiver.posts[1]["message"].startswith(
        "Rolled back to v0001.\n  deployment.py --rollback made v0001 current, in place of v0002.\n"
        "  The full process will not retrain on clients_q1.csv, clients_q2.csv, clients_q3.csv, clients_q4.csv until new data arrives.\n"
        "  What to do: check the page; to go forward again: python deployment.py --rollback v0002"
    )
    assert history.runs(config.history_db)[-1]["details"]["notifications"]["events"] == ["rollback"]
    assert [m["Subject"] for m in mail.messages] == ["DRS warning: Drift found (and 2 more)", "DRS warning: Rolled back to v0001"]


@pytest.mark.parametrize("revoked", [False, True])
def test_a_deployment_tells_whether_its_api_calls_worked_once_users_exist(
    deployed_practice: Config, config: Config, receiver: JsonReceiver, revoked: bool
) -> None:
    """Adding the first user must not silently break the pipeline's API calls (cron's line passes no token)."""
    users.add_user(config.users_file, "otto", "operator", "correct horse battery")
    if revoked:  # the pipeline's token issued, then revoked: its calls get 401
        users.pipeline_token(config.users_file)
        users.remove(config.users_file, users.PIPELINE_TOKEN)
    with app_server(config.config_file) as url:
        config = with_targets(config, receiver.url(), api_url=url)
        assert pipeline.run(config) == 0
    run = history.runs(config.history_db)[-1]
    assert run["outcome"] == Outcome.DEPLOYED and run["deployed_version"] == 2  # the deployment stands either way
    body = receiver.posts[0]["message"]
    if not revoked:
        assert run["details"]["apicalls"] == "done" and "apicalls_failures" not in run["details"]
        answers = json.loads(config.model_output("apireturns.json").read_text())["answers"]
        assert [a["status"] for a in answers] == [200] * 5  # before: four 401s, recorded as "done"
        assert run["message"] == "deployed v0002 (F1 0.7909 on the test data)"
        assert received(receiver) == [("DRS warning: Drift found (and 1 more)", "warning")] and "API calls" not in body
        return
    failed = "failed: prediction 401, scoring 401, summarystats 401, diagnostics 401"
    assert run["details"]["apicalls"] == failed  # before: "done"
    assert [(f["endpoint"], f["status"]) for f in run["details"]["apicalls_failures"]] == [
        ("prediction", 401),
        ("scoring", 401),
        ("summarystats", 401),
        ("diagnostics", 401),
    ]
    assert run["message"] == f"deployed v0002 (F1 0.7909 on the test data); API calls {failed}"
    assert received(receiver) == [("DRS warning: Drift found (and 2 more)", "warning")]
    secret = users.pipeline_token_file(config.users_file)
    assert f"\n\nAPI calls failed.\n  prediction: HTTP 401: the API did not accept the pipeline's token ({secret}): it was revoked" in body
    assert body.count(": HTTP 401: the API did not accept the pipeline's token") == 4
    assert "  What to do: v0002 stays deployed; fix what each line says, then check with `python apicalls.py`" in body


def test_a_refused_candidate_and_a_rejected_file(deployed_practice: Config, config: Config, receiver: JsonReceiver) -> None:
    config = with_targets(config, receiver.url(), promotion_min_improvement=0.5)
    assert pipeline.run(config) == 0
    assert history.runs(config.history_db)[-1]["outcome"] == Outcome.NOT_PROMOTED
    assert received(receiver) == [("DRS warning: Drift found (and 1 more)", "warning")]
    body = receiver.posts[0]["message"]
    assert "  What followed: retrained; the gate refused the candidate (" in body
    assert "\n\nCandidate refused by the gate.\n  Gate: " in body
    assert "  What to do: v0001 stays deployed. To deploy the candidate anyway: python fullprocess.py --force-deploy" in body

    (config.input_folder / "clients_q5.csv").write_text(HEADER.replace(",", ";") + "abcd;1;2;3;0\n")
    assert pipeline.run(config) == 0
    assert [p["title"] for p in receiver.posts[1:]] == ["DRS warning: Source file rejected"]
    assert receiver.posts[1]["message"].startswith("Source file rejected.\n  clients_q5.csv: ")
    assert pipeline.run(config) == 0  # the same file again: no new data, nothing sent
    assert len(receiver.posts) == 2


def test_a_file_changed_after_ingestion_and_a_removed_file_reach_the_receiver(
    deployed_practice: Config, receiver: JsonReceiver, mailbox: tuple[Mailbox, str]
) -> None:
    """The events part 1 records (changed_files, gone_files) in real runs, as the receivers get them."""
    box, mail_url = mailbox
    config = with_targets(deployed_practice, receiver.url(), mail_url)
    dataset2 = config.input_folder / "dataset2.csv"
    old = dataset2.read_bytes()
    lines = old.decode().splitlines()
    dataset2.write_text("\n".join(lines[:101]) + "\n")  # a truncated re-export: 100 of its 280 rows
    assert pipeline.run(config) == 0
    new = dataset2.read_bytes()
    posts = [p for p in receiver.posts if "Source file changed" in p["title"]]
    assert len(posts) == 1
    old_sha, new_sha = hashlib.sha256(old).hexdigest(), hashlib.sha256(new).hexdigest()
    assert f"  dataset2.csv: sha256 {old_sha[:12]}... -> {new_sha[:12]}..., rows 280 -> 100\n" in posts[0]["message"]
    assert any("Source file changed" in str(m["Subject"]) for m in box.messages)

    count = len(receiver.posts)
    dataset2.unlink()
    assert pipeline.run(config) == 0
    assert [p["title"] for p in receiver.posts[count:]] == ["DRS info: Source file removed"]
    assert "  dataset2.csv: its rows stay in the ingested data\n" in receiver.posts[-1]["message"]
    assert pipeline.run(config) == 0  # noticed once
    assert len(receiver.posts) == count + 1


@pytest.mark.parametrize("path", ["hang", "fail", "refused"])
def test_a_receiver_that_hangs_fails_or_refuses_changes_only_the_log_and_the_history_row(
    deployed_practice: Config, receiver: JsonReceiver, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, path: str
) -> None:
    url = f"json://127.0.0.1:{free_port()}/hook" if path == "refused" else receiver.url(path) + "/tok3n"
    config = with_targets(deployed_practice, url, notify_timeout_seconds=1)
    with monkeypatch.context() as patch:
        failing(patch)
        started = time.monotonic()
        with pytest.raises(StageError, match="disk full"):  # the run's own failure, unchanged
            pipeline.run(config)
        took = time.monotonic() - started
    assert took < 1 + 5  # the hanging receiver is given up after notify_timeout_seconds
    run = history.runs(config.history_db)[-1]
    assert run["outcome"] == Outcome.FAILED and run["message"] == "disk full (injected)"
    note = run["details"]["notifications"]
    assert note["sent"] == 0 and note["targets"] == 1 and len(note["failed"]) == 1
    assert note["failed"][0].startswith("target 1 (json): ")
    if path == "hang":
        assert note["failed"][0] == "target 1 (json): no answer within 1 s"
    lines = [r.getMessage() for r in caplog.records if "not delivered" in r.getMessage()]
    assert len(lines) == 1 and lines[0].startswith("alert 'DRS failure: Run failed' not delivered to target 1 (json): ")
    secrets = (str(receiver.port), "tok3n", "/hook", "127.0.0.1")
    # (this pytest also hooks Apprise's own logger, which the project keeps off its handlers: test_notify_test checks that with -v)
    ours = "\n".join(r.getMessage() for r in caplog.records if not r.name.startswith("apprise"))
    everything = ours + json.dumps(history.runs(config.history_db)) + json.dumps(alert_store.alerts(config.history_db))
    assert not [s for s in secrets if s in everything.replace(str(config.project_root), "")]
    # nothing delivered: the next failing run tries to tell again (no reminder clock started)
    assert alert_store.alert_memory(config.history_db)["failure_alert_at"] is None


def test_stale_is_noticed_once_by_the_next_run_and_shown_by_the_page_and_health(
    deployed_practice: Config, receiver: JsonReceiver, clock: Clock
) -> None:
    config = with_targets(deployed_practice, receiver.url(), stale_after_minutes=30)
    long_ago = (clock.now - timedelta(minutes=45)).isoformat(timespec="seconds")
    history.append_run(
        config.history_db,
        started_at=long_ago,
        finished_at=long_ago,
        kind="fullprocess",
        outcome=Outcome.NO_NEW_DATA,
        message="no new data",
        deployed_version=1,
        details={},
    )
    client = create_app(config).test_client()
    health = client.get("/health").get_json()
    assert health["stale"] is True and health["last_finished_run"] == {"finished_at": long_ago, "outcome": "no new data"}
    assert "<strong>Updates have stopped.</strong> The pipeline has not run for 45 minutes" in client.get("/").get_data(as_text=True)

    with run_lock(config.lock_file):  # a run that finds the lock held sees it too
        assert pipeline.run(config) == 0
    assert received(receiver) == [("DRS warning: Pipeline stale", "warning")]
    assert receiver.posts[0]["message"].startswith(
        f"Pipeline stale.\n  No run has finished since {alerts.when(long_ago)} (45 minutes; stale_after_minutes is 30), and a run holds the lock now."
    )
    assert pipeline.run(config) == 0  # the same quiet spell: not told again; this run ends it
    assert len(receiver.posts) == 1
    assert client.get("/health").get_json()["stale"] is False
    assert "Updates have stopped." not in client.get("/").get_data(as_text=True)

    clock.advance(minutes=31)  # the next run comes 31 minutes after that one finished
    assert pipeline.run(config) == 0
    assert [p["title"] for p in receiver.posts[1:]] == ["DRS warning: Pipeline was stale"]
    assert (
        "  What to do: check that cron runs fullprocess.py every 10 minutes (`make cron-line` prints the line)"
        in receiver.posts[1]["message"]
    )


def test_quiet_runs_send_nothing_and_load_no_apprise(deployed_practice: Config, receiver: JsonReceiver) -> None:
    config = with_targets(deployed_practice, receiver.url())
    for _ in range(3):
        assert pipeline.run(config) == 0
    assert receiver.posts == [] and alert_store.alerts(config.history_db) == []
    assert all("notifications" not in r["details"] for r in history.runs(config.history_db))


def test_notify_test_says_which_target_failed(deployed_practice: Config, receiver: JsonReceiver) -> None:
    config = with_targets(deployed_practice, receiver.url(), receiver.url("fail"))
    env = {"PATH": "/usr/bin:/bin", "DRS_NOTIFY_URLS": receiver.url("ok/from-env")}
    done = run_script("fullprocess.py", "--config", str(config.config_file), "--notify-test", "-v", env=env)
    assert done.returncode == 1, done.stderr
    assert done.stdout.splitlines()[0] == "target 1 (json): sent"
    assert done.stdout.splitlines()[1] == "target 3 (json): sent"
    assert done.stdout.splitlines()[2].startswith("target 2 (json): ") and done.stdout.splitlines()[2].endswith(": FAILED")
    assert done.stdout.splitlines()[3] == "test message sent to 2 of 3 target(s)"
    assert str(receiver.port) not in done.stdout + done.stderr and "from-env" not in done.stderr  # not even Apprise's debug lines
    assert [p["title"] for p in receiver.posts] == ["DRS info: Test message", "DRS info: Test message"]

    bare = with_targets(deployed_practice)
    done = run_script("fullprocess.py", "--config", str(bare.config_file), "--notify-test", env={"PATH": "/usr/bin:/bin"})
    assert done.returncode == 1
    assert (
        done.stdout.strip() == "no alert targets: set `notify` in practiceconfig.json or DRS_NOTIFY_URLS (see docs/alerts.md); nothing sent"
    )


def test_file_events_and_their_words() -> None:
    details = {
        "changed_files": [{"name": "q1.csv", "old_sha256": "a" * 64, "new_sha256": "b" * 64, "old_rows": 10, "new_rows": 12}],
        "gone_files": ["q0.csv"],
    }
    events = alerts.run_events(Outcome.NO_DRIFT, "no drift", details, "v0002", alerts.AlertState(), alerts.Rules(), datetime.now(UTC))
    message = alerts.compose(events, alerts.Context(datetime(2026, 11, 25, 13, 0, tzinfo=UTC), "v0002 (F1 0.7909 on the test data)"))
    assert message is not None and message.title == "DRS warning: Source file changed after it was ingested (and 1 more)"
    assert message.body == (
        "Source file changed after it was ingested.\n"
        "  q1.csv: sha256 aaaaaaaaaaaa... -> bbbbbbbbbbbb..., rows 10 -> 12\n"
        "  What to do: its old rows were replaced by its new ones and judged again; check that the change was meant.\n\n"
        "Source file removed.\n"
        "  q0.csv: its rows stay in the ingested data\n"
        "  What to do: nothing, if the landing folder is emptied on purpose.\n\n"
        "When: 2026-11-25 13:00:00 UTC\n"
        "Deployed: v0002 (F1 0.7909 on the test data)"
    )


def test_drift_within_noise_is_an_information_line() -> None:
    check = {
        "test": "raw",
        "rule": "new F1 < deployed latestscore",
        "deployed_version": "v0002",
        "new_rows": 2000,
        "new_data_f1": 0.7571,
        "threshold": 0.7909,
        "drift": True,
        "noise": {
            "level": 0.95,
            "resamples": 2000,
            "rows": 2000,
            "low": 0.73,
            "high": 0.78,
            "threshold_rows": 1200,
            "drop": -0.0338,
            "drop_low": -0.07,
            "drop_high": 0.004,
            "share_at_or_above": 0.04,
            "beyond_noise": False,
        },
    }
    details = {"drift": check, "gate": {"promote": False, "reason": "F1 0.7905 vs 0.7909 -> not promoted"}, "trigger": "drift"}
    events = alerts.run_events(
        Outcome.NOT_PROMOTED, "not promoted", details, "v0002", alerts.AlertState(), alerts.Rules(), datetime.now(UTC)
    )
    assert [(e.key, e.severity, e.headline) for e in events] == [
        ("drift", "info", "Drift within sampling noise"),
        ("refused", "info", "Candidate refused by the gate"),
    ]
    assert "the drop is within sampling noise (no drop in 4% of 2,000 resamples)" in events[0].lines[1]


def test_targets_come_from_the_config_and_the_environment_and_are_named_by_scheme(config: Config) -> None:
    configured = with_targets(config, "json://h/secret-path", "mailto://alice:s3cretpw@mail.example.com")
    found = notify.targets(configured, {"DRS_NOTIFY_URLS": "slack://T000/B000/XXXX  json://h/secret-path"})
    assert found == ["json://h/secret-path", "mailto://alice:s3cretpw@mail.example.com", "slack://T000/B000/XXXX"]
    assert [notify.label(i, u) for i, u in enumerate(found, start=1)] == ["target 1 (json)", "target 2 (mailto)", "target 3 (slack)"]
    assert notify.scrub("error posting to mail.example.com as alice with s3cretpw", found[1]) == "error posting to *** as *** with ***"


def test_a_bad_notify_value_is_refused_without_showing_it(tmp_path: Path) -> None:
    path = write_config(tmp_path, notify=["https-not-apprise-secret-token"])
    done = run_script("fullprocess.py", "--config", str(path))
    assert done.returncode == 2 and "key 'notify' must be a list of Apprise URLs" in done.stderr
    assert "secret-token" not in done.stderr


def test_logging_is_quiet_about_apprise(caplog: pytest.LogCaptureFixture) -> None:
    """Apprise logs target URLs at debug level: its records never reach the project's handlers."""
    caplog.set_level(logging.DEBUG)
    message = alerts.compose([alerts.notify_test_event()], alerts.Context(datetime.now(UTC), None))
    assert message is not None
    delivery = notify.deliver([f"json://127.0.0.1:{free_port()}/secret-path"], message, 2)
    assert delivery.sent == 0 and delivery.failed[0].startswith("target 1 (json): ")
    assert "secret-path" not in caplog.text and "secret-path" not in delivery.failed[0]
