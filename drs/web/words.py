"""The page's banners and status cards in a client manager's words, the numbers one click away; pure.

A client manager wants to know what happened and whether it changes anything
for the list they call from; the model's owners want the numbers. Each banner
says the first in one sentence and keeps the technical line (what fullprocess
logs) for a <details> element under it.

`OUTCOME_WORDS` is the one place for the words of each run outcome (drs.history.record.Outcome):
a short word for the status card and the banner's title, the sentence, and how
loud the banner is. A refused candidate has two readings, chosen by the sampling-noise
verdict the alerts use (drs.alerts.rules.noise_words): a dip within noise, or a drop beyond it.
`banners` and `status_cards` choose, from the run history, what the page says (drs/web/page.py renders
them); every word of them is here. See docs/reports.md (plain words on the page).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, TypedDict

from drs.alerts import rules as alerts
from drs.core import formatting
from drs.core.layout import version_label
from drs.core.times import parse_time
from drs.history.record import FINISHED_DEPLOYMENT, Outcome
from drs.history.results import DataDrift, ScoreDriftCheck
from drs.history.runs import RunRow
from drs.model import explain
from drs.model.drift import describe_score_drift

INFO, NOTICE, WARNING = "info", "notice", "warning"  # blue, amber, red; only "warning" is role="alert"
BEYOND_NOISE = "not promoted: drop beyond sampling noise"  # the second reading of Outcome.NOT_PROMOTED
NOT_MEASURED = "no drift: score not measurable"  # the second reading of Outcome.NO_DRIFT: too few new clients exited


class Banner(TypedDict):
    """One banner: its title, how loud it is (`level`), the sentence, and the technical line under <details>."""

    title: str
    level: str
    text: str
    technical: str


class Card(TypedDict):
    word: str
    level: str  # a class for its colour
    when: str  # how long ago


class CheckCard(Card):
    version: Any  # the version the check judged (the drift record's deployed_version; None in old records)


class Cards(TypedDict):
    """The "last update" and "model on new data" cards (not "update": Jinja would find dict.update)."""

    last_update: Card | None
    new_data_check: CheckCard | None


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


def day_words(value: Any, now: datetime) -> str:
    """'today', 'yesterday', '3 days ago' (days as the calendar counts them in UTC); 'at an unknown time'."""
    moment = parse_time(value)
    if moment is None:
        return "at an unknown time"
    days = (now.date() - moment.astimezone(now.tzinfo).date()).days
    return "today" if days <= 0 else "yesterday" if days == 1 else f"{days} days ago"


def ago(value: Any, now: datetime) -> str:
    """'3 days ago', '5 minutes ago'; '' for no time."""
    moment = parse_time(value)
    if moment is None:
        return ""
    seconds = (now - moment).total_seconds()
    if seconds < -60:  # a little clock skew between machines is "just now"
        return "in the future"
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60)):
        if seconds >= size:
            count = int(seconds // size)
            return f"{count} {unit}{'s' if count != 1 else ''} ago"
    return "just now"


def duration_words(delta: timedelta) -> str:
    """'3 hours', '45 minutes', '2 days': the largest whole unit."""
    seconds = max(delta.total_seconds(), 0)
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60)):
        if seconds >= size:
            count = int(seconds // size)
            return f"{count} {unit}{'s' if count != 1 else ''}"
    return "less than a minute"


def beyond_noise(run: RunRow) -> bool | None:
    """The alerts' verdict on a run's drift decision: beyond sampling noise, within it, or None when not measured."""
    check = (run.get("details") or {}).get("drift")
    return alerts.noise_words(ScoreDriftCheck.from_record(check))[1] if isinstance(check, Mapping) else None


def score_measured(run: RunRow) -> bool:
    """False when the run's score test could not measure the F1 (too few new clients exited: drs/drift.unmeasurable)."""
    check = (run.get("details") or {}).get("drift")
    return not (isinstance(check, Mapping) and check.get("measured") is False)


def words_for(run: RunRow) -> Words:
    """The words of one run's outcome (for a refused candidate, by its sampling-noise verdict)."""
    outcome = str(run.get("outcome"))
    if outcome == Outcome.NOT_PROMOTED and beyond_noise(run) is not False:  # not measured reads as beyond, as in the alerts
        return OUTCOME_WORDS[BEYOND_NOISE]
    if outcome == Outcome.NO_DRIFT and not score_measured(run):
        return OUTCOME_WORDS[NOT_MEASURED]
    return OUTCOME_WORDS.get(outcome, UNKNOWN)


def telling_run(runs: Sequence[RunRow]) -> RunRow | None:
    """The run the page's status speaks of: the newest run if it failed, else the newest that changed or decided
    something (runs that found no new data or a held lock say nothing new), else the newest run."""
    real = [r for r in runs if r.get("outcome") != Outcome.SKIPPED_LOCKED]
    if real and real[-1].get("outcome") == Outcome.FAILED:
        return real[-1]
    for run in runs[::-1]:
        if run.get("outcome") not in QUIET and run.get("outcome") != Outcome.FAILED:
            return run
    return real[-1] if real else (runs[-1] if runs else None)


def technical(run: RunRow) -> str:
    """The run as its owners read it: time, outcome, message, and the drift decision's numbers when it made one."""
    details = run.get("details") or {}
    parts = [f"{formatting.when(run.get('started_at'))}, {run.get('outcome')}: {run.get('message') or 'no message'}."]
    check = details.get("drift")
    if isinstance(check, Mapping):
        parts.append(f"Drift check: {drift_words(dict(check))}.")
        parts.append(alerts.noise_words(ScoreDriftCheck.from_record(check))[0])
    gate = details.get("gate")
    if isinstance(gate, Mapping) and gate.get("reason"):
        parts.append(f"Promotion gate: {gate['reason']}.")
    return " ".join(parts)


def run_banner(run: RunRow, label: str | None, now: datetime, last_check: RunRow | None) -> Banner:
    """What the telling run did, in words; `last_check` is the newest run if it was a quiet one after it."""
    words = words_for(run)
    version = run.get("deployed_version")  # the run's own (a deployment by hand and a rollback record a row too)
    named = version_label(version) if isinstance(version, int) else label or "the deployed model"
    sentence = words.sentence.format(label=named, day=day_words(run.get("started_at"), now))
    if last_check is not None and last_check is not run:
        checked = parse_time(last_check.get("started_at"))
        since = f"{duration_words(now - checked)} ago" if checked and now - checked >= timedelta(minutes=1) else "just now"
        sentence += f" Checked again {since}: no new data since."
    return {"title": words.short, "level": words.level, "text": sentence, "technical": technical(run)}


def stale_words(finished: RunRow, now: datetime, stale_after_minutes: float) -> Banner:
    since = parse_time(finished.get("finished_at"))
    gap = duration_words(now - since) if since else "a while"
    return {
        "title": "Updates have stopped",
        "level": WARNING,
        "text": f"The pipeline has not run for {gap}: the list may be out of date.",
        "technical": f"No full-process run has finished since {formatting.when(finished.get('finished_at'))} "
        f"(stale_after_minutes is {formatting.number(stale_after_minutes)}): check that cron runs fullprocess.py and that no run hangs.",
    }


def old_model_words(label: str, trained: datetime, trained_at: Any, now: datetime, max_age_days: float) -> Banner:
    return {
        "title": "Model getting old",
        "level": NOTICE,
        "text": f"The model was trained {duration_words(now - trained)} ago, longer than the {formatting.number(max_age_days)} days "
        "its owners allow: it may miss recent changes in how clients behave.",
        "technical": f"{label} was trained {formatting.when(trained_at)}; max_model_age_days is {formatting.number(max_age_days)}.",
    }


def data_drift_words(drifted: Sequence[str], run: RunRow) -> Banner:
    """Data drift of the newest drift decision; whether a model that learned from the new data followed."""
    data = DataDrift.from_record((run.get("details") or {}).get("data_drift"))
    named = ", ".join(explain.feature_name(f) for f in drifted)
    changed = run.get("outcome") in FINISHED_DEPLOYMENT
    follow = (
        "the new model learned from it." if changed else "the model was kept, so the scores of clients like the new ones are less certain."
    )
    return {
        "title": "Client data has changed",
        "level": INFO if changed else NOTICE,
        "text": f"The newest client data looks different from the data the model learned from ({named}); {follow}",
        "technical": f"Data drift in {', '.join(map(str, drifted))} ({data.rule or 'drift rule not recorded'}), "
        f"run of {formatting.when(run.get('started_at'))}.",
    }


CHECK_WORDS = {
    "no drift": ("Held up", "good"),
    "within noise": ("Small dip", "notice"),
    "drift": ("Did worse", "alert"),
    "not measured": ("Not measurable", "notice"),
}


def check_card(run: RunRow) -> tuple[str, str]:
    """The status card of the newest drift check: its word and its class (good, notice, alert)."""
    check = (run.get("details") or {}).get("drift") or {}
    if not score_measured(run):
        return CHECK_WORDS["not measured"]
    if not check.get("drift"):
        return CHECK_WORDS["no drift"]
    return CHECK_WORDS["within noise" if beyond_noise(run) is False else "drift"]


# ---- the banners and cards of the page (drs/web/page.py) ----------------------------------------


def drift_words(check: dict[str, Any]) -> str:
    """The score-drift decision in the words fullprocess logs, or what is known of it."""
    try:
        return describe_score_drift(check)
    except (KeyError, TypeError, ValueError):
        threshold = formatting.threshold_of(check)
        return f"F1 on the new data {formatting.score(check.get('new_data_f1'))} vs threshold {formatting.score(threshold)}"


def last_real_run(runs: Sequence[RunRow]) -> RunRow | None:
    """The newest run that did something (a run skipped because another held the lock says nothing)."""
    for run in runs[::-1]:
        if run.get("outcome") != Outcome.SKIPPED_LOCKED:
            return run
    return None


def last_finished(runs: Sequence[RunRow]) -> RunRow | None:
    """The newest full-process run that got the lock (what staleness is measured from), or None."""
    for run in runs[::-1]:
        if run.get("kind", "fullprocess") == "fullprocess" and run.get("outcome") != Outcome.SKIPPED_LOCKED:
            return run
    return None


def last_drift_run(runs: Sequence[RunRow]) -> RunRow | None:
    """The newest run that made a score-drift decision (its outcome says what followed), or None."""
    for run in runs[::-1]:
        if isinstance((run.get("details") or {}).get("drift"), dict):
            return run
    return None


def stale_banner(finished: RunRow | None, now: datetime, stale_after_minutes: float) -> Banner | None:
    """The banner of a pipeline with no finished run for longer than stale_after_minutes; pure."""
    if finished is None or not alerts.is_stale(finished.get("finished_at"), now, stale_after_minutes):
        return None
    return stale_words(finished, now, stale_after_minutes)


def banners(
    meta: Mapping[str, Any] | None,
    runs: Sequence[RunRow],
    now: datetime,
    stale_after_minutes: float,
    max_age_days: float,
) -> list[Banner]:
    """The banners, in a client manager's words with the technical line for the model's owners; pure.

    Updates stopped (stale); what the newest run that did something did (the words per outcome above);
    the model too old; the newest client data unlike the training data. Each has a `level`:
    "warning" (red, role="alert"), "notice" (amber) or "info" (blue)."""
    found = [b for b in [stale_banner(last_finished(runs), now, stale_after_minutes)] if b]
    told = telling_run(runs)
    if told is not None:
        newest = last_real_run(runs)
        quiet_after = newest if newest is not None and newest is not told and newest.get("outcome") == Outcome.NO_NEW_DATA else None
        found.append(run_banner(told, (meta or {}).get("label"), now, quiet_after))
    drift_run = last_drift_run(runs)
    in_use = (meta or {}).get("version")
    if (
        drift_run is not None
        and drift_run is not told
        and drift_run.get("outcome") == Outcome.NOT_PROMOTED
        and drift_run.get("deployed_version") == in_use  # about the model in use, not one since replaced or rolled back
    ):
        found.append(run_banner(drift_run, (meta or {}).get("label"), now, None))  # still what holds
    if meta:
        trained = parse_time(meta.get("trained_at") or meta.get("deployed_at"))
        if trained is not None and now - trained > timedelta(days=max_age_days):
            found.append(
                old_model_words(
                    str(meta.get("label", "the deployed model")),
                    trained,
                    meta.get("trained_at") or meta.get("deployed_at"),
                    now,
                    max_age_days,
                )
            )
    drifted = DataDrift.from_record((drift_run.get("details") or {}).get("data_drift")).drifted_features if drift_run else []
    if drift_run is not None and drifted:
        found.append(data_drift_words(drifted, drift_run))
    return found


def status_cards(runs: Sequence[RunRow], now: datetime) -> Cards:
    """The "last update" and "model on new data" cards: a word or two each, when, and a class for its colour."""
    told = telling_run(runs)
    drift_run = last_drift_run(runs)
    cards: Cards = {"last_update": None, "new_data_check": None}
    if told is not None:
        words = words_for(told)
        cards["last_update"] = {"word": words.short, "level": words.level, "when": ago(told.get("started_at"), now)}
    if drift_run is not None:
        word, level = check_card(drift_run)
        version = ((drift_run.get("details") or {}).get("drift") or {}).get("deployed_version")  # the model it checked
        cards["new_data_check"] = {"word": word, "level": level, "when": ago(drift_run.get("started_at"), now), "version": version}
    return cards
