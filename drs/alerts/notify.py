"""Delivering alerts with Apprise: the targets, one message per run, a hard time limit, and no URL ever shown.

Targets are the config's `notify` list plus the space-separated URLs of the environment variable
DRS_NOTIFY_URLS (so secrets can stay out of the repository). A URL may hold a password or a token, so
it is never logged, recorded or shown: a target is named by its place and scheme, `target 2 (json)`.
What to say is drs/alerts/rules.py's; this module reads the state it needs from the history, sends, and
records the outcome in the run's history row (`details["notifications"]`) and in the `alerts` table.

Delivery never breaks or stalls the pipeline: each target is sent to in a daemon thread with socket
timeouts of `notify_timeout_seconds`, and the caller waits that long in all; a target that fails or
does not answer in time is one log line and a name in the history row. Apprise (about 0.3 s to load
its plugins) is imported only when there is a message and a target, so the cheap cron tick stays cheap.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TypedDict

from drs.alerts import rules as alerts
from drs.core.errors import DeploymentError
from drs.core.layout import CRON_LOG
from drs.core.redact import scrub
from drs.core.settings import Config
from drs.history import alerts as alert_store
from drs.history.record import DeliveryRecord, RunReport
from drs.production import versions as production

log = logging.getLogger("fullprocess")
ENV = "DRS_NOTIFY_URLS"


def clock() -> datetime:
    """Now, in UTC; the one clock of the alert rules (tests replace it instead of sleeping)."""
    return datetime.now(UTC)


def targets(config: Config, environ: Mapping[str, str] | None = None) -> list[str]:
    """The config's `notify` URLs, then those of DRS_NOTIFY_URLS, without repeats."""
    env = os.environ if environ is None else environ
    found: list[str] = []
    for url in [*config.notify, *env.get(ENV, "").split()]:
        if url not in found:
            found.append(url)
    return found


def label(index: int, url: str) -> str:
    """How a target is named in logs, the history and on screen: never its URL."""
    scheme = url.split("://", 1)[0].lower() if "://" in url else "?"
    return f"target {index} ({scheme if scheme.isascii() and scheme.replace('+', '').isalnum() else '?'})"


class _Reasons(logging.Handler):
    """Apprise's warnings, by the thread that logged them: the reason a target failed (scrubbed before use)."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.by_thread: dict[int, list[str]] = {}

    def emit(self, record: logging.LogRecord) -> None:
        self.by_thread.setdefault(record.thread or 0, []).append(record.getMessage())


_REASONS = _Reasons()
THREAD_PREFIX = "drs-notify-"
HTTP_LOGGERS = ("urllib3", "urllib3.connectionpool", "urllib3.util.retry", "requests_oauthlib", "oauthlib")


class _NotFromDelivery(logging.Filter):
    """Drops the records the HTTP libraries log from a delivery thread: at debug level they spell the URL."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not (record.threadName or "").startswith(THREAD_PREFIX)


_QUIET = _NotFromDelivery()


def _quiet_apprise() -> None:
    """Apprise and the HTTP libraries log target URLs (at debug level): none of it reaches the project's log."""
    logger = logging.getLogger("apprise")
    logger.propagate = False
    logger.setLevel(logging.WARNING)
    if _REASONS not in logger.handlers:
        logger.addHandler(_REASONS)
    for name in HTTP_LOGGERS:
        if _QUIET not in logging.getLogger(name).filters:
            logging.getLogger(name).addFilter(_QUIET)


@dataclass
class Delivery:
    targets: int = 0
    sent: int = 0
    failed: list[str] = field(default_factory=list)

    def as_details(self, message: alerts.Message) -> DeliveryRecord:
        return DeliveryRecord(
            events=message.events,
            severity=message.severity,
            title=message.title,
            targets=self.targets,
            sent=self.sent,
            failed=self.failed,
        )


class SendResult(TypedDict, total=False):
    """What one target's thread found: whether Apprise delivered (`ok`) and, if not, why (`reason`)."""

    ok: bool
    reason: str


def _send_one(url: str, message: alerts.Message, timeout: float, result: SendResult) -> None:
    import apprise  # deliberate: only a run with something to send loads Apprise and its plugins

    try:
        plugin = apprise.Apprise.instantiate(url)
        if plugin is None:
            result["reason"] = "not a URL Apprise knows"
            return
        plugin.socket_connect_timeout = plugin.socket_read_timeout = timeout
        kind = {alerts.INFO: apprise.NotifyType.INFO, alerts.WARNING: apprise.NotifyType.WARNING}.get(
            message.severity, apprise.NotifyType.FAILURE
        )
        ok = bool(plugin.notify(body=message.body, title=message.title, notify_type=kind))
        result["ok"] = ok
        if not ok:
            said = _REASONS.by_thread.pop(threading.get_ident(), [])
            result["reason"] = said[0] if said else "refused"
    except Exception as exc:  # a plugin's own bug must not reach the pipeline
        result["reason"] = f"{type(exc).__name__}: {exc}"
    finally:
        _REASONS.by_thread.pop(threading.get_ident(), None)


def deliver(urls: Sequence[str], message: alerts.Message, timeout: float) -> Delivery:
    """Send `message` to every target at once and wait at most `timeout` seconds in all; never raises."""
    delivery = Delivery(targets=len(urls))
    if not urls:
        return delivery
    _quiet_apprise()
    results: list[SendResult] = [{} for _ in urls]
    threads = [
        threading.Thread(target=_send_one, args=(url, message, timeout, result), name=f"{THREAD_PREFIX}{i}", daemon=True)
        for i, (url, result) in enumerate(zip(urls, results, strict=True), start=1)
    ]
    deadline = time.monotonic() + timeout
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(max(0.0, deadline - time.monotonic()))
    for index, (url, result, thread) in enumerate(zip(urls, results, threads, strict=True), start=1):
        if result.get("ok"):
            delivery.sent += 1
        elif thread.is_alive():
            delivery.failed.append(f"{label(index, url)}: no answer within {timeout:g} s")
        else:
            delivery.failed.append(f"{label(index, url)}: {scrub(str(result.get('reason') or 'failed'), url)[:200]}")
    return delivery


def log_delivery(delivery: Delivery, message: alerts.Message) -> None:
    if delivery.failed:
        log.warning(
            "alert %r not delivered to %s (sent to %d of %d)", message.title, "; ".join(delivery.failed), delivery.sent, delivery.targets
        )
    else:
        log.info("alert %r sent to %d target(s)", message.title, delivery.sent)


def deployed_words(config: Config) -> str | None:
    """'v0002 (F1 0.7909 on the test data)' for the deployed version, None when nothing is (or it cannot be read)."""
    try:
        now = production.current(config.prod_deployment_folder)
        return f"{now.label} (F1 {now.score():.4f} on the test data)" if now else None
    except (DeploymentError, OSError, ValueError):
        return "unreadable (see the log)"


def context(config: Config, now: datetime) -> alerts.Context:
    return alerts.Context(now, deployed_words(config), config.public_url, str(config.project_root / CRON_LOG))


def rules(config: Config) -> alerts.Rules:
    return alerts.Rules(config.stale_after_minutes, config.notify_repeat_hours)


def send(config: Config, urls: Sequence[str], message: alerts.Message, now: datetime, after_run: int, stale_since: str | None) -> Delivery:
    """Deliver, log, and remember the alert in the history (what the next run's storm rules read)."""
    delivery = deliver(urls, message, config.notify_timeout_seconds)
    log_delivery(delivery, message)
    alert_store.record_alert(
        config.history_db,
        at=now.isoformat(timespec="seconds"),
        after_run=after_run,
        kind=message.events[0],
        events=message.events,
        severity=message.severity,
        title=message.title,
        failure=bool({"failed", "still failing"} & set(message.events)),
        stale_since=stale_since if "stale" in message.events else None,
        sent=delivery.sent,
        failed=len(delivery.failed),
    )
    return delivery


def alert_run(config: Config, report: RunReport, started: datetime, environ: Mapping[str, str] | None = None) -> None:
    """The alert of one full-process run (before its row is recorded): decide, send, note it in `report.notifications`.

    Nothing configured: nothing read, nothing imported. Any error here is logged and swallowed: alerts never fail a run."""
    urls = targets(config, environ)
    if not urls:
        return
    try:
        state = alerts.AlertState(**alert_store.alert_memory(config.history_db))
        deployed = production.current(config.prod_deployment_folder) if report.deployed_version is not None else None
        events = alerts.run_events(
            report.outcome,
            report.message,
            report.details(),
            deployed.label if deployed else None,
            state,
            rules(config),
            started,
            str(config.project_root / CRON_LOG),
        )
        message = alerts.compose(events, context(config, started))
        if message is None:
            return
        stale_since = state.last_finished["finished_at"] if state.last_finished else None
        delivery = send(config, urls, message, started, state.newest_run, stale_since)
        report.notifications = delivery.as_details(message)
    except Exception as exc:
        log.error("alerting failed (the run's outcome stands): %s: %s", type(exc).__name__, scrub_all(str(exc), urls))


def scrub_all(text: str, urls: Sequence[str]) -> str:
    for url in urls:
        text = scrub(text, url)
    return text


def alert_rollback(config: Config, from_label: str | None, to_label: str, pinned: Sequence[str]) -> DeliveryRecord | None:
    """The rollback's alert (deployment.py --rollback); the details for its history row, None when no target is set."""
    urls = targets(config)
    if not urls:
        return None
    now = clock()
    try:
        message = alerts.compose([alerts.rollback_event(from_label, to_label, pinned)], context(config, now))
        assert message is not None
        newest = alert_store.alert_memory(config.history_db)["newest_run"]
        return send(config, urls, message, now, newest, None).as_details(message)
    except Exception as exc:
        log.error("alerting failed (the rollback stands): %s: %s", type(exc).__name__, scrub_all(str(exc), urls))
        return None


def send_test(config: Config, environ: Mapping[str, str] | None = None, say: Callable[[str], None] = print) -> int:
    """`fullprocess.py --notify-test`: a test message to every target; says which failed; exit code 0 only if all got it."""
    urls = targets(config, environ)
    if not urls:
        say(f"no alert targets: set `notify` in {config.config_file.name} or {ENV} (see docs/alerts.md); nothing sent")
        return 1
    message = alerts.compose([alerts.notify_test_event()], context(config, clock()))
    assert message is not None
    delivery = deliver(urls, message, config.notify_timeout_seconds)
    failed = {f.split(":", 1)[0] for f in delivery.failed}
    for index, url in enumerate(urls, start=1):
        if label(index, url) not in failed:
            say(f"{label(index, url)}: sent")
    for line in delivery.failed:
        say(f"{line}: FAILED")
    say(f"test message sent to {delivery.sent} of {delivery.targets} target(s)")
    return 0 if not delivery.failed else 1
