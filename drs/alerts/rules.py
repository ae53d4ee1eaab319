"""What a run has to tell people, as pure functions: its events and at most one message (docs/alerts.md).

`run_events` turns what one full-process run did (its outcome, message and details) and what the
runs and alerts before it were (`AlertState`, from the history) into events; `compose` puts a run's
events into one message with what happened, when, which version is deployed, what to do next and a
link to the page. No storms: a failure is told once, then reminded at most every `repeat_hours`
while it lasts; a recovery once; a stale spell once; a run with no new data says nothing else.
Delivery (and every URL) is drs/alerts/notify.py's.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from drs.core import times
from drs.core.times import parse_time
from drs.history.record import Change, Outcome
from drs.history.runs import FinishedRun

if TYPE_CHECKING:  # built only for a run that has them (RunParts.of): the tick with nothing new never builds their classes
    from drs.history.modelresults import Noise
    from drs.history.results import ApiCallFailure, DataDrift, GateDecision, ScoreDriftCheck

INFO, WARNING, FAILURE = "info", "warning", "failure"
SEVERITIES = (INFO, WARNING, FAILURE)  # in rising order
ROLLBACK_COMMAND = "python deployment.py --rollback"


@dataclass(frozen=True)
class AlertState:
    """The runs and alerts before this run (drs/history.alert_memory)."""

    newest_run: int = 0
    last_finished: FinishedRun | None = None
    failures_in_a_row: int = 0
    failing_since: str | None = None
    last_success_run: int = 0
    failure_alert_at: str | None = None  # the newest failure alert delivered during the current streak
    stale_alert_since: str | None = None  # the last finished run the newest delivered stale alert was about


@dataclass(frozen=True)
class Rules:
    stale_after_minutes: float = 30
    repeat_hours: float = 24


@dataclass(frozen=True)
class Event:
    key: str
    severity: str
    headline: str
    lines: list[str] = field(default_factory=list)
    next_step: str = ""


@dataclass(frozen=True)
class Context:
    """What every message says besides its events: when, what is deployed, where the page and the log are."""

    now: datetime
    deployed: str | None  # "v0002 (F1 0.7909 on the test data)", None when nothing is deployed
    public_url: str | None = None
    log_file: str = ""


@dataclass(frozen=True)
class Message:
    title: str
    body: str
    severity: str
    events: list[str]


def when(moment: datetime | str | None) -> str:
    return times.when(moment, "an unknown time")


def is_stale(last_finished_at: str | None, now: datetime, stale_after_minutes: float) -> bool:
    """No run finished for longer than `stale_after_minutes` (False before any run: nothing to be late for)."""
    finished = parse_time(last_finished_at)
    return finished is not None and now - finished > timedelta(minutes=stale_after_minutes)


def minutes_between(since: str | None, now: datetime) -> int:
    started = parse_time(since)
    return int((now - started).total_seconds() // 60) if started else 0


@dataclass(frozen=True)
class RunParts:
    """The parts of a run's details the rules read, typed (drs/history/record.py): read in this one place (`of`),
    from the stored JSON or the details of the run being recorded."""

    check: ScoreDriftCheck | None  # None: no score-drift check recorded
    data_drift: DataDrift | None  # None: no data drift recorded
    gate: GateDecision | None
    trigger: str | None
    rejected: list[str] = field(default_factory=list)
    rejection_reasons: dict[str, str | None] = field(default_factory=dict)
    changed_files: list[Change] = field(default_factory=list)  # drs/data/ingest.py's changed-file records
    gone_files: list[str] = field(default_factory=list)
    apicalls_failures: list[ApiCallFailure] = field(default_factory=list)  # drs/web/apicalls.py Failure records

    @classmethod
    def of(cls, details: dict[str, Any]) -> RunParts:
        """Old rows and failed runs lack parts: a missing one reads as not recorded."""
        check, drift, gate, ingestion = (details.get(key) for key in ("drift", "data_drift", "gate", "ingestion"))
        files = ingestion.get("files") or [] if isinstance(ingestion, Mapping) else []
        typed: tuple[ScoreDriftCheck | None, DataDrift | None, GateDecision | None] = (None, None, None)
        if any(isinstance(part, Mapping) for part in (check, drift, gate)):
            from drs.history.results import DataDrift, GateDecision, ScoreDriftCheck  # a run that judged new data

            typed = (
                ScoreDriftCheck.from_record(check) if isinstance(check, Mapping) else None,
                DataDrift.from_record(drift) if isinstance(drift, Mapping) else None,
                GateDecision.from_record(gate) if isinstance(gate, Mapping) else None,
            )
        return cls(
            check=typed[0],
            data_drift=typed[1],
            gate=typed[2],
            trigger=details.get("trigger"),
            rejected=list(details.get("rejected") or []),
            rejection_reasons={str(f.get("name")): f.get("reason") for f in files if isinstance(f, Mapping)},
            changed_files=_records(details.get("changed_files")),
            gone_files=list(details.get("gone_files") or []),
            apicalls_failures=_records(details.get("apicalls_failures")),
        )


def _records(stored: Any) -> list[Any]:
    """The objects of a stored list (records of a shape drs/history/record.py declares; old rows may lack keys: read with .get)."""
    return [r for r in stored or [] if isinstance(r, Mapping)]


# ---- the events of one run ---------------------------------------------------------------


def failure_events(outcome: str, message: str, state: AlertState, rules: Rules, now: datetime, log_file: str) -> list[Event]:
    """failed (first notice of a streak), still failing (a reminder), recovered, or nothing."""
    if outcome != Outcome.FAILED:
        if state.failures_in_a_row == 0:
            return []
        return [
            Event(
                "recovered",
                INFO,
                "Recovered",
                [
                    f"This run succeeded ({outcome}) after {state.failures_in_a_row} failed run(s) in a row since {when(state.failing_since)}.",
                    f"It did: {message}",
                ],
                "nothing to do.",
            )
        ]
    reason = message.splitlines()[0] if message else "no reason recorded"
    where = f"The log: {log_file} (the cron line of cronjob.txt appends to it)."
    fix = f"read the log and fix the cause; the next cron run tries again. If the deployed model is at fault: {ROLLBACK_COMMAND}"
    in_a_row = state.failures_in_a_row + 1
    if state.failure_alert_at is None:
        since = f" ({in_a_row} failed runs in a row since {when(state.failing_since)})" if in_a_row > 1 else ""
        return [Event("failed", FAILURE, "Run failed", [f"Reason: {reason}{since}", where], fix)]
    told = parse_time(state.failure_alert_at)
    if told is not None and now - told < timedelta(hours=rules.repeat_hours):
        return []
    return [
        Event(
            "still failing",
            FAILURE,
            "Still failing",
            [
                f"{in_a_row} failed runs in a row since {when(state.failing_since)}; last told {when(state.failure_alert_at)}.",
                f"Reason now: {reason}",
                where,
                f"Reminders come at most every {rules.repeat_hours:g} hours (notify_repeat_hours) while it lasts.",
            ],
            fix,
        )
    ]


def stale_event(state: AlertState, rules: Rules, now: datetime, skipped: bool) -> list[Event]:
    """The pipeline was (or, seen by a run that found the lock held, is) stale: once per quiet spell."""
    last = state.last_finished
    finished_at = last.get("finished_at") if last else None
    if not is_stale(finished_at, now, rules.stale_after_minutes) or state.stale_alert_since == finished_at:
        return []
    gap = minutes_between(finished_at, now)
    limit = f"stale_after_minutes is {rules.stale_after_minutes:g}"
    if skipped:
        lines = [f"No run has finished since {when(finished_at)} ({gap} minutes; {limit}), and a run holds the lock now."]
        step = "a run may hang: look for a fullprocess.py process that has run for long, and at the log."
        return [Event("stale", WARNING, "Pipeline stale", lines, step)]
    lines = [f"No run finished between {when(finished_at)} and this run ({gap} minutes; {limit}). This run got going again."]
    step = "check that cron runs fullprocess.py every 10 minutes (`make cron-line` prints the line) and that the machine was up."
    return [Event("stale", WARNING, "Pipeline was stale", lines, step)]


def noise_words(check: ScoreDriftCheck) -> tuple[str, bool | None]:
    """The sampling-noise line of a drift decision and whether the drop is beyond it (None when not measured)."""
    return noise_line(check.noise)


def noise_line(noise: Noise | None) -> tuple[str, bool | None]:
    """The sampling-noise line of a drift check's `noise` (drs/model/drift.py sampling_noise), and whether the drop is beyond it."""
    if not isinstance(noise, Mapping):
        return "Sampling noise: not measured.", None
    both = f" and the {noise['threshold_rows']:,} test rows" if noise.get("threshold_rows") else ""
    verdict = "beyond sampling noise" if noise["beyond_noise"] else "within sampling noise"
    return (
        f"Sampling noise: F1 over {noise['rows']:,} rows lies in {noise['low']:.4f}-{noise['high']:.4f} ({noise['level']:.0%} bootstrap);"
        f" resampling the new rows{both}, F1 minus threshold is {noise['drop_low']:+.4f} to {noise['drop_high']:+.4f}:"
        f" the drop is {verdict} (no drop in {noise['share_at_or_above']:.0%} of {noise['resamples']:,} resamples).",
        bool(noise["beyond_noise"]),
    )


def drift_event(parts: RunParts, outcome: str, deployed_label: str | None) -> list[Event]:
    """Drift found: the test, its numbers, the sampling noise, data drift, and what followed."""
    check, drifted = parts.check, parts.data_drift.drifted_features if parts.data_drift else []
    score_drift = check is not None and check.drift
    if not score_drift and not (drifted and parts.trigger):
        return []
    lines = []
    beyond: bool | None = None
    if check is not None and not check.measured:
        lines.append(f"Score not measurable: {check.reason}.")
    elif check is not None:
        lines.append(
            f"Test {check.test} ({check.rule}): F1 of {check.deployed_version} on {check.new_rows:,} new rows"
            f" {check.new_data_f1 or 0:.4f} vs threshold {check.threshold or 0:.4f}."
        )
        noise_said, beyond = noise_line(check.noise)
        lines.append(noise_said)
    if drifted:
        rule = parts.data_drift.rule if parts.data_drift else ""
        lines.append(f"Data drift in {', '.join(drifted)} ({rule}).")
    reason = (parts.gate.reason if parts.gate else None) or "no reason recorded"
    if outcome == Outcome.DEPLOYED:
        followed = f"retrained; the gate promoted the candidate ({reason})"
    elif outcome == Outcome.NOT_PROMOTED:
        followed = f"retrained; the gate refused the candidate ({reason})"
    else:
        followed = f"the run ended: {outcome}"
    lines.append(f"What followed: {followed}.")
    changed = outcome == Outcome.DEPLOYED
    severity = WARNING if beyond or changed or beyond is None else INFO
    headline = "Drift found" if severity == WARNING else "Drift within sampling noise"
    step = (
        "compare the new model with the old on the page; if it is worse in practice: " + ROLLBACK_COMMAND
        if changed
        else f"nothing urgent: {deployed_label or 'the deployed model'} stays deployed; watch the next batches."
    )
    return [Event("drift", severity, headline, lines, step)]


def sample_alarm_event(parts: RunParts, deployed_label: str | None) -> list[Event]:
    """The labelled-sample alarm (drs/model/labelsample.py): the labels known so far of a partly labelled batch contradict the
    label-free estimate or the score test's threshold beyond sampling noise, before the score test can run."""
    check = parts.check
    sample = check.labelled_sample if check else None
    if check is None or not isinstance(sample, Mapping) or not sample.get("alarm"):
        return []
    said = []
    if sample.get("below_estimate"):
        said.append(f"below the label-free estimate {sample['estimated_f1']:.4f} (concept drift: the link from activity to exit changed)")
    if sample.get("below_threshold"):
        said.append(f"below the score test's threshold {sample['threshold']:.4f} (the drift decision to come)")
    lines = [
        f"{sample['labels']:,} of {sample.get('of', check.new_rows):,} new rows labelled so far ({sample['exits']:,} exited):"
        f" F1 of {check.deployed_version} {sample['f1']:.4f} ({sample['level']:.0%} {sample['low']:.4f}-{sample['high']:.4f}),"
        f" {' and '.join(said)}, beyond sampling noise.",
        f"Caveat: {sample.get('caveat')}.",
    ]
    step = (
        f"{deployed_label or 'the deployed model'} stays deployed and the score test waits for every label: check how the"
        " labelled clients were chosen (a fair reading needs a random sample), read the risk list with care, and export the"
        " batch again with its labels as soon as they are known (it is then judged again and may retrain)"
    )
    return [Event("sample_alarm", WARNING, "Labelled sample: the model is worse than expected", lines, step)]


def refused_event(parts: RunParts, outcome: str, deployed_label: str | None) -> list[Event]:
    if outcome != Outcome.NOT_PROMOTED:
        return []
    gate = parts.gate
    lines = [f"Gate: {gate.reason if gate else 'no reason recorded'}."]
    if gate and gate.kept_candidate:
        lines.append(f"The candidate is kept in {gate.kept_candidate}.")
    _, beyond = noise_line(parts.check.noise) if parts.check else ("", None)
    step = f"{deployed_label or 'the deployed model'} stays deployed. To deploy the candidate anyway: python fullprocess.py --force-deploy"
    return [Event("refused", WARNING if beyond else INFO, "Candidate refused by the gate", lines, step)]


def deployed_event(outcome: str, message: str, parts: RunParts) -> list[Event]:
    if outcome not in (Outcome.DEPLOYED, Outcome.COMPLETED_DEPLOYMENT):
        return []
    gate = parts.gate
    before = gate.deployed_version if gate else None
    lines = [message[:1].upper() + message[1:] + "."]
    if before:
        lines.append(f"It replaces {before}.")
    step = f"nothing, unless it misbehaves: {ROLLBACK_COMMAND}" + (f" (back to {before})" if before else "")
    return [Event("deployed", WARNING, "New version deployed", lines, step)]


def apicalls_event(parts: RunParts, deployed_label: str | None) -> list[Event]:
    """The API calls after a deployment failed: each failed call, its status and cause (the deployment stands)."""
    failed = parts.apicalls_failures
    if not failed:
        return []
    lines = [
        f"{f.get('endpoint')}: {'HTTP ' + str(f['status']) if f.get('status') is not None else 'no answer'}: {f.get('cause')}"
        for f in failed
    ]
    step = (
        f"{deployed_label or 'the new version'} stays deployed; fix what each line says, then check with `python apicalls.py`"
        " (it exits 0 when every call succeeds)."
    )
    return [Event("apicalls", WARNING, "API calls failed", lines, step)]


def file_events(parts: RunParts) -> list[Event]:
    """Rejected source files, files changed after they were ingested, files gone from the source folder."""
    events = []
    if parts.rejected:
        lines = [f"{name}: {parts.rejection_reasons.get(name) or 'rejected'}" for name in parts.rejected]
        step = "export the file again as the reason says and put it back; a file is read again when its content changes."
        events.append(Event("rejected", WARNING, "Source file rejected", lines, step))
    every = parts.changed_files
    labelled = [c for c in every if c.get("labels_filled")]  # the file's only change: labels filled in (drs/data/ingest.py)
    if labelled:
        lines = [f"labels arrived for {c['labels_filled']:,} row(s) of {c.get('name')}" for c in labelled]
        step = "nothing: its rows were judged again with their labels (the drift check on the page has the realized F1)."
        events.append(Event("labels", INFO, "Labels arrived", lines, step))
    changed = [c for c in every if not c.get("labels_filled")]
    if changed:
        lines = [
            f"{c.get('name')}: sha256 {str(c.get('old_sha256'))[:12]}... -> {str(c.get('new_sha256'))[:12]}...,"
            f" rows {c.get('old_rows')} -> {c.get('new_rows')}"
            for c in changed
        ]
        step = "its old rows were replaced by its new ones and judged again; check that the change was meant."
        events.append(Event("changed", WARNING, "Source file changed after it was ingested", lines, step))
    gone = parts.gone_files
    if gone:
        lines = [f"{name}: its rows stay in the ingested data" for name in gone]
        events.append(Event("gone", INFO, "Source file removed", lines, "nothing, if the landing folder is emptied on purpose."))
    return events


def run_events(
    outcome: str,
    message: str,
    details: dict[str, Any],
    deployed_label: str | None,
    state: AlertState,
    rules: Rules,
    now: datetime,
    log_file: str = "",
) -> list[Event]:
    """Everything one full-process run has to tell, given the state before it; [] for a quiet run."""
    if outcome == Outcome.SKIPPED_LOCKED:
        return stale_event(state, rules, now, skipped=True)
    events = stale_event(state, rules, now, skipped=False)
    events += failure_events(outcome, message, state, rules, now, log_file)
    if outcome == Outcome.FAILED:
        return events
    parts = RunParts.of(details)  # the stored JSON (or the run's own details) read once, typed
    events += drift_event(parts, outcome, deployed_label)
    events += sample_alarm_event(parts, deployed_label)
    events += refused_event(parts, outcome, deployed_label)
    events += deployed_event(outcome, message, parts)
    events += apicalls_event(parts, deployed_label)
    events += file_events(parts)
    return events


def rollback_event(from_label: str | None, to_label: str, pinned: Sequence[str]) -> Event:
    lines = [f"deployment.py --rollback made {to_label} current, in place of {from_label or 'nothing'}."]
    if pinned:
        lines.append(f"The full process will not retrain on {', '.join(pinned)} until new data arrives.")
    step = f"check the page; to go forward again: python deployment.py --rollback {from_label}" if from_label else "check the page."
    return Event("rollback", WARNING, f"Rolled back to {to_label}", lines, step)


def notify_test_event() -> Event:
    return Event(
        "test", INFO, "Test message", ["Sent by `python fullprocess.py --notify-test`: this target receives the alerts."], "nothing."
    )


# ---- one message -------------------------------------------------------------------------


def compose(events: Sequence[Event], context: Context) -> Message | None:
    """All of a run's events in one message, the most severe first; None for no events."""
    if not events:
        return None
    ordered = sorted(events, key=lambda e: -SEVERITIES.index(e.severity))
    first = ordered[0]
    more = f" (and {len(ordered) - 1} more)" if len(ordered) > 1 else ""
    sections = []
    for event in ordered:
        lines = [event.headline + "."] + [f"  {line}" for line in event.lines]
        if event.next_step:
            lines.append(f"  What to do: {event.next_step}")
        sections.append("\n".join(lines))
    footer = [f"When: {when(context.now)}", f"Deployed: {context.deployed or 'nothing'}"]
    if context.public_url:
        footer.append(f"Page: {context.public_url}/")
    body = "\n\n".join(sections) + "\n\n" + "\n".join(footer)
    return Message(f"DRS {first.severity}: {first.headline}{more}", body, first.severity, [e.key for e in ordered])
