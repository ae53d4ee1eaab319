"""The page's banners and status cards in a client manager's words, the numbers one click away; pure.

A client manager wants to know what happened and whether it changes anything
for the list they call from; the model's owners want the numbers. Each banner
says the first in one sentence and keeps the technical line (what fullprocess
logs) for a <details> element under it.

`OUTCOME_WORDS` is the one place for the words of each run outcome (drs.history.record.Outcome):
a short word for the status card and the banner's title, the sentence, and how
loud the banner is. A refused candidate has two readings, chosen by the sampling-noise
verdict the alerts use (drs.alerts.rules.noise_words): a dip within noise, or a drop beyond it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from drs.alerts import rules as alerts
from drs.core import formatting
from drs.core.layout import version_label
from drs.history.record import FINISHED_DEPLOYMENT, Outcome
from drs.model import explain

INFO, NOTICE, WARNING = "info", "notice", "warning"  # blue, amber, red; only "warning" is role="alert"
BEYOND_NOISE = "not promoted: drop beyond sampling noise"  # the second reading of Outcome.NOT_PROMOTED
NOT_MEASURED = "no drift: score not measurable"  # the second reading of Outcome.NO_DRIFT: too few new clients exited


@dataclass(frozen=True)
class Words:
    short: str  # the status card's value and the banner's title
    sentence: str  # what happened and what it means for the list; {label} is the deployed version, {day} when
    level: str


OUTCOME_WORDS: dict[str, Words] = {
    Outcome.DEPLOYED: Words("New model", "A new model ({label}) was deployed {day}: the list below uses it.", INFO),
    Outcome.COMPLETED_DEPLOYMENT: Words(
        "New model", "A new model ({label}) was deployed {day} (its last steps finished late): the list below uses it.", INFO
    ),
    Outcome.NO_DRIFT: Words(
        "Model kept",
        "New client data arrived {day}; the model was checked on it and kept. The list below ranks the new data with it.",
        INFO,
    ),
    NOT_MEASURED: Words(
        "Model kept",
        "New client data arrived {day}, but too few of its clients had left to check how well the model predicts leaving; "
        "the model was kept. Nothing changes for you.",
        INFO,
    ),
    Outcome.NOT_PROMOTED: Words(
        "Model kept",
        "New client data arrived {day}; the model scored a little lower on it, within what chance alone explains, "
        "and a model retrained on it was no better, so the model was kept. The list below ranks the new data with it.",
        INFO,
    ),
    BEYOND_NOISE: Words(
        "Model kept",
        "New client data arrived {day}; the model did clearly worse on it and a model retrained on it was no better, "
        "so the model was kept and the list below still uses {label}: treat close calls near 50% with care until its owners have looked into it.",
        WARNING,
    ),
    Outcome.NEW_FILES_REJECTED: Words(
        "File refused",
        "A new client file arrived {day} but could not be used, so the model and the list below are unchanged; "
        "its owners need to fix the file.",
        NOTICE,
    ),
    Outcome.NO_NEW_DATA: Words("No new data", "No new client data since the last update ({day}); the list below is unchanged.", INFO),
    Outcome.FAILED: Words(
        "Update failed", "The last update ({day}) failed: the list below is from before it and may miss the newest data.", WARNING
    ),
    Outcome.SKIPPED_LOCKED: Words("Busy", "An update was already running {day}; this check waited for the next turn.", INFO),
    Outcome.ROLLED_BACK: Words(
        "Earlier model", "The model was switched back to an earlier version ({label}) {day}: the list below uses it.", NOTICE
    ),
}
UNKNOWN = Words("Unknown", "The last update ({day}) ended in a way this page does not know.", NOTICE)
QUIET = (Outcome.NO_NEW_DATA, Outcome.SKIPPED_LOCKED)  # runs that change nothing: the banner speaks of the last one that did


def parse_time(value: Any) -> datetime | None:
    if isinstance(value, datetime):
        return value
    try:
        return datetime.fromisoformat(str(value))
    except (TypeError, ValueError):
        return None


def day_words(value: Any, now: datetime) -> str:
    """'today', 'yesterday', '3 days ago' (days as the calendar counts them in UTC); 'at an unknown time'."""
    moment = parse_time(value)
    if moment is None:
        return "at an unknown time"
    days = (now.date() - moment.astimezone(now.tzinfo).date()).days
    return "today" if days <= 0 else "yesterday" if days == 1 else f"{days} days ago"


def duration_words(delta: timedelta) -> str:
    """'3 hours', '45 minutes', '2 days': the largest whole unit."""
    seconds = max(delta.total_seconds(), 0)
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60)):
        if seconds >= size:
            count = int(seconds // size)
            return f"{count} {unit}{'s' if count != 1 else ''}"
    return "less than a minute"


def beyond_noise(run: Mapping[str, Any]) -> bool | None:
    """The alerts' verdict on a run's drift decision: beyond sampling noise, within it, or None when not measured."""
    check = (run.get("details") or {}).get("drift")
    return alerts.noise_words(check)[1] if isinstance(check, Mapping) else None


def score_measured(run: Mapping[str, Any]) -> bool:
    """False when the run's score test could not measure the F1 (too few new clients exited: drs/drift.unmeasurable)."""
    check = (run.get("details") or {}).get("drift")
    return not (isinstance(check, Mapping) and check.get("measured") is False)


def words_for(run: Mapping[str, Any]) -> Words:
    """The words of one run's outcome (for a refused candidate, by its sampling-noise verdict)."""
    outcome = str(run.get("outcome"))
    if outcome == Outcome.NOT_PROMOTED and beyond_noise(run) is not False:  # not measured reads as beyond, as in the alerts
        return OUTCOME_WORDS[BEYOND_NOISE]
    if outcome == Outcome.NO_DRIFT and not score_measured(run):
        return OUTCOME_WORDS[NOT_MEASURED]
    return OUTCOME_WORDS.get(outcome, UNKNOWN)


def telling_run(runs: Sequence[Mapping[str, Any]]) -> Mapping[str, Any] | None:
    """The run the page's status speaks of: the newest run if it failed, else the newest that changed or decided
    something (runs that found no new data or a held lock say nothing new), else the newest run."""
    real = [r for r in runs if r.get("outcome") != Outcome.SKIPPED_LOCKED]
    if real and real[-1].get("outcome") == Outcome.FAILED:
        return real[-1]
    for run in runs[::-1]:
        if run.get("outcome") not in QUIET and run.get("outcome") != Outcome.FAILED:
            return run
    return real[-1] if real else (runs[-1] if runs else None)


def technical(run: Mapping[str, Any], drift_words: Any) -> str:
    """The run as its owners read it: time, outcome, message, and the drift decision's numbers when it made one."""
    details = run.get("details") or {}
    parts = [f"{formatting.when(run.get('started_at'))}, {run.get('outcome')}: {run.get('message') or 'no message'}."]
    check = details.get("drift")
    if isinstance(check, Mapping):
        parts.append(f"Drift check: {drift_words(check)}.")
        parts.append(alerts.noise_words(check)[0])
    gate = details.get("gate")
    if isinstance(gate, Mapping) and gate.get("reason"):
        parts.append(f"Promotion gate: {gate['reason']}.")
    return " ".join(parts)


def run_banner(
    run: Mapping[str, Any], label: str | None, now: datetime, last_check: Mapping[str, Any] | None, drift_words: Any
) -> dict[str, str]:
    """What the telling run did, in words; `last_check` is the newest run if it was a quiet one after it."""
    words = words_for(run)
    version = run.get("deployed_version")  # the run's own (a deployment by hand and a rollback record a row too)
    named = version_label(version) if isinstance(version, int) else label or "the deployed model"
    sentence = words.sentence.format(label=named, day=day_words(run.get("started_at"), now))
    if last_check is not None and last_check is not run:
        checked = parse_time(last_check.get("started_at"))
        since = f"{duration_words(now - checked)} ago" if checked and now - checked >= timedelta(minutes=1) else "just now"
        sentence += f" Checked again {since}: no new data since."
    return {"title": words.short, "level": words.level, "text": sentence, "technical": technical(run, drift_words)}


def stale_words(finished: Mapping[str, Any], now: datetime, stale_after_minutes: float) -> dict[str, str]:
    since = parse_time(finished.get("finished_at"))
    gap = duration_words(now - since) if since else "a while"
    return {
        "title": "Updates have stopped",
        "level": WARNING,
        "text": f"The pipeline has not run for {gap}: the list may be out of date.",
        "technical": f"No full-process run has finished since {formatting.when(finished.get('finished_at'))} "
        f"(stale_after_minutes is {formatting.number(stale_after_minutes)}): check that cron runs fullprocess.py and that no run hangs.",
    }


def old_model_words(label: str, trained: datetime, trained_at: Any, now: datetime, max_age_days: float) -> dict[str, str]:
    return {
        "title": "Model getting old",
        "level": NOTICE,
        "text": f"The model was trained {duration_words(now - trained)} ago, longer than the {formatting.number(max_age_days)} days "
        "its owners allow: it may miss recent changes in how clients behave.",
        "technical": f"{label} was trained {formatting.when(trained_at)}; max_model_age_days is {formatting.number(max_age_days)}.",
    }


def data_drift_words(drifted: Sequence[str], run: Mapping[str, Any]) -> dict[str, str]:
    """Data drift of the newest drift decision; whether a model that learned from the new data followed."""
    details = run.get("details") or {}
    raw = details.get("data_drift")
    data: Mapping[str, Any] = raw if isinstance(raw, Mapping) else {}
    named = ", ".join(explain.feature_name(f) for f in drifted)
    changed = run.get("outcome") in FINISHED_DEPLOYMENT
    follow = (
        "the new model learned from it." if changed else "the model was kept, so the scores of clients like the new ones are less certain."
    )
    return {
        "title": "Client data has changed",
        "level": INFO if changed else NOTICE,
        "text": f"The newest client data looks different from the data the model learned from ({named}); {follow}",
        "technical": f"Data drift in {', '.join(map(str, drifted))} ({data.get('rule') or 'drift rule not recorded'}), "
        f"run of {formatting.when(run.get('started_at'))}.",
    }


CHECK_WORDS = {
    "no drift": ("Held up", "good"),
    "within noise": ("Small dip", "notice"),
    "drift": ("Did worse", "alert"),
    "not measured": ("Not measurable", "notice"),
}


def check_card(run: Mapping[str, Any]) -> tuple[str, str]:
    """The status card of the newest drift check: its word and its class (good, notice, alert)."""
    check = (run.get("details") or {}).get("drift") or {}
    if not score_measured(run):
        return CHECK_WORDS["not measured"]
    if not check.get("drift"):
        return CHECK_WORDS["no drift"]
    return CHECK_WORDS["within noise" if beyond_noise(run) is False else "drift"]
