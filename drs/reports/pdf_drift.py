"""The drift part of the PDF risk report's Model page (drs/reports/pdf.py): the last run, the last drift decision
(score test, labelled sample, sampling noise, promotion gate), the data drift per feature, and the numbers recorded
with the decision that this layout does not show otherwise. docs/reports.md has the rest.
"""

from __future__ import annotations

from typing import Any

from reportlab.platypus import Flowable, Paragraph, Spacer

from drs.core.formatting import flag, number, score, threshold_of, when
from drs.history.record import RunRecord
from drs.history.results import DataDrift, ScoreDriftCheck
from drs.history.runs import DriftDecision
from drs.model import labelsample
from drs.model.drift import describe_noise, describe_score_drift
from drs.model.estimate import describe as describe_estimate
from drs.reports.pdf_layout import ALERT, BODY, GOOD, SMALL, key_values, left_out, newest, table, text


def drift_block(last_run: RunRecord | None, drift: DriftDecision | None) -> list[Flowable]:
    """The last run, then the last drift decision: score test, data drift per feature, promotion gate."""
    flow: list[Flowable] = []
    if last_run:
        flow.append(
            key_values(
                [
                    ("Last run", f"{text(when(last_run.get('started_at')))}: <b>{text(last_run.get('outcome'))}</b>"),
                    ("What it did", text(last_run.get("message"))),
                ]
            )
        )
    if not drift:
        flow.append(
            Paragraph(
                "No drift check is recorded in the run history yet "
                "(a first deployment, or the practice pass, has nothing to compare against).",
                BODY,
            )
        )
        return flow
    check = drift.get("check") or {}
    decision = check.get("drift")
    verdicts: dict[Any, str] = {True: "drift", False: "no drift"}
    verdict = "not measurable" if check.get("measured") is False else verdicts.get(decision, "unknown")
    rows = [
        (
            "Drift check",
            f"{text(when(drift.get('started_at')))}: test '{text(check.get('test', 'raw'))}'"
            + (f" ({text(check.get('rule'))})" if check.get("rule") else ""),
        ),
        (
            "Decision",
            f"<font color='{ALERT if decision else GOOD if check.get('measured') is not False else '#8a5a00'}'><b>{verdict}</b></font>: {score_numbers(check)}",
        ),
    ]
    if check.get("fallback"):
        rows.append(("Fallback", text(check["fallback"])))
    if isinstance(check.get("estimate"), dict):
        realized = check.get("new_data_f1") if check.get("measured") is not False else None
        against = check.get("against_estimate") if realized is not None and isinstance(check.get("against_estimate"), dict) else None
        rows.append(("Estimated F1 (before the labels)", text(describe_estimate(check["estimate"], realized, against), 400)))
    sample = labelsample.recorded_words(check)
    if sample:
        alarm = f"<font color='{ALERT}'><b>alarm</b></font>: " if check["labelled_sample"].get("alarm") else ""
        rows.append(("Labelled sample", alarm + text(sample, 600)))
    if isinstance(check.get("noise"), dict):
        rows.append(("Sampling noise", text(describe_noise(check["noise"]), 400)))
    rows.append(("New files", text(", ".join(drift.get("new_files") or []) or "-", 400)))
    gate = drift.get("gate")
    if isinstance(gate, dict) and gate.get("reason"):
        rows.append(("Promotion gate", text(gate["reason"])))
    flow += [Spacer(1, 4), key_values(rows)]
    flow += data_drift_table(drift.get("data_drift"))
    extra = extra_numbers(check)
    if extra:
        flow.append(Paragraph("Other numbers recorded with the drift decision", SMALL))
        shown, hidden = newest(extra, 8)
        flow.append(table([["what", "value"], *shown], [0.45, 0.55], align_right=(1,)))
        flow += left_out(hidden, "numbers")
    return flow


def score_numbers(check: dict[str, Any]) -> str:
    """The drift test's numbers in words, as fullprocess logs them."""
    try:
        words = describe_score_drift(check)
    except (KeyError, TypeError, ValueError):
        new_f1 = check.get("new_data_f1")
        threshold = threshold_of(check)
        if new_f1 is None or threshold is None:
            return "numbers not recorded"
        words = f"F1 on the new data {score(new_f1)} vs threshold {score(threshold)}"
    rows = check.get("new_rows")
    model = check.get("deployed_version", "the deployed model")
    return f"{text(model)}: {text(words.split(' -> ')[0])}" + (f" ({number(rows)} new rows)" if rows is not None else "")


def data_drift_table(stored: Any) -> list[Flowable]:
    """The stored data-drift check (drs/history/record.py DataDrift) as a table of the features."""
    if not isinstance(stored, dict):
        return []
    data = DataDrift.from_record(stored)
    if not data.measured:
        return [Paragraph(f"Data drift not measured: {text(data.reason)}.", SMALL)] if data.reason else []
    rows = [["feature", "KS statistic", "KS p-value", "KS verdict", "PSI", "PSI verdict"]] + [
        [
            f.get("feature"),
            number(f.get("ks_statistic")),
            number(f.get("ks_p_value")),
            flag(f.get("ks_drift")),
            number(f.get("psi")),
            flag(f.get("psi_drift")),
        ]
        for f in data.features
    ]
    drifted = ", ".join(data.drifted_features) or "none"
    return [
        Spacer(1, 5),
        Paragraph(
            f"Data drift of each feature, {text(data.reference)} against the new rows. A feature drifts "
            f"when {text(data.rule)}; drifted: <b>{text(drifted)}</b>.",
            SMALL,
        ),
        Spacer(1, 2),
        table(rows, [0.3, 0.14, 0.14, 0.13, 0.14, 0.15], align_right=(1, 2, 4)),
    ]


# Of the keys a drift check may store (drs/history/record.py ScoreDriftCheck), those this layout says in its own
# words; `labelled_rows` is said as the new rows the test ran on. The labelled sample and "waiting" (when rows wait for
# labels) still reach the reader among the other numbers, and so does any key a later version adds.
SHOWN_AS_OTHER_NUMBERS = frozenset({"labelled_sample", "waiting"})
KNOWN_DRIFT_KEYS = ScoreDriftCheck.keys() - SHOWN_AS_OTHER_NUMBERS


def extra_numbers(check: dict[str, Any], prefix: str = "") -> list[list[str]]:
    """Fields of the drift decision this layout does not know yet, flattened, so they still reach the reader."""
    rows = []
    for key, value in check.items():
        if not prefix and key in KNOWN_DRIFT_KEYS:
            continue
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            rows += extra_numbers(value, f"{name} / ")
        elif isinstance(value, list):
            rows.append([name, ", ".join(number(v) for v in value[:8]) + (" ..." if len(value) > 8 else "")])
        else:
            rows.append([name, number(value)])
    return rows
