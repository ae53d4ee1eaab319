"""The layout of the PDF risk report (reportlab), one section per page.

drs/reports/reporting.py gathers the numbers into a `Report` and calls `write_pdf`; this
module only lays them out, so what the report says and how it looks can be
changed apart. It imports reportlab at module level, so it is itself imported
only when a report is written (never by the cron job's cheap path).

Every table is given column widths that add up to the text width and wraps
long text in its cells, so nothing runs off the page; lists that can grow
without bound (files, deployments, extra drift numbers) are cut to their most
recent entries with a line saying how many were left out.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

from reportlab.lib import colors
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import ParagraphStyle, getSampleStyleSheet
from reportlab.lib.units import mm
from reportlab.lib.utils import ImageReader
from reportlab.platypus import (
    Flowable,
    Image,
    KeepInFrame,
    PageBreak,
    Paragraph,
    SimpleDocTemplate,
    Spacer,
    Table,
    TableStyle,
)

from drs.core.fileio import atomic_output
from drs.core.formatting import dependency_status, dependency_words, file_span, flag, number, score, seconds, threshold_of, when
from drs.data.ingest import Status
from drs.model import labelsample
from drs.model.calibration import brier_words, plain_reading
from drs.model.drift import describe_noise, describe_score_drift
from drs.model.estimate import describe as describe_estimate
from drs.reports.callpdf import calls_flow
from drs.reports.calls import Summary as CallSummary
from drs.reports.movement import reason_words, since_words

SECTIONS = ("Model", "Clients at risk", "What changed", "Data", "Operations", "Trends")
PAGE_WIDTH, PAGE_HEIGHT = A4
MARGIN = 16 * mm
FOOTER = 4 * mm
FRAME_PADDING = 6  # points on each side of reportlab's default frame
TEXT_WIDTH = PAGE_WIDTH - 2 * MARGIN - 2 * FRAME_PADDING
FRAME_HEIGHT = PAGE_HEIGHT - 2 * MARGIN - FOOTER - 2 * FRAME_PADDING - 1
MAX_TABLE_ROWS = 14
HEADER_BG = colors.HexColor("#1f3b5c")
ZEBRA = colors.HexColor("#eef2f7")
ALERT = "#b3261e"
GOOD = "#1e6b34"

_styles = getSampleStyleSheet()
TITLE = ParagraphStyle("title", parent=_styles["Title"], fontSize=17, leading=21, alignment=0, spaceAfter=2)
H1 = ParagraphStyle("h1", parent=_styles["Heading1"], fontSize=15, leading=19, spaceBefore=0, spaceAfter=6, textColor=HEADER_BG)
H2 = ParagraphStyle("h2", parent=_styles["Heading2"], fontSize=11.5, leading=14, spaceBefore=9, spaceAfter=4, textColor=HEADER_BG)
BODY = ParagraphStyle("body", parent=_styles["BodyText"], fontSize=9, leading=12)
SMALL = ParagraphStyle("small", parent=BODY, fontSize=7.5, leading=9.5, textColor=colors.HexColor("#444444"))
CELL = ParagraphStyle("cell", parent=BODY, fontSize=8, leading=9.8)
CELL_BOLD = ParagraphStyle("cellbold", parent=CELL, fontName="Helvetica-Bold")
HEAD_CELL = ParagraphStyle("headcell", parent=CELL, fontName="Helvetica-Bold", textColor=colors.white)
RIGHT = {s.name: ParagraphStyle(s.name + "right", parent=s, alignment=2) for s in (CELL, HEAD_CELL)}


@dataclass
class Report:
    """Everything the PDF shows; plain values, already gathered by drs/reports/reporting.py."""

    generated_at: str
    model: dict[str, Any]
    evaluation: dict[str, Any]
    confusion_png: Path
    trends_png: Path
    distribution_png: Path
    risk: dict[str, Any]
    data: dict[str, Any]
    operations: dict[str, Any]
    last_run: dict[str, Any] | None = None
    drift: dict[str, Any] | None = None
    deployments: list[dict[str, Any]] = field(default_factory=list)
    changes: dict[str, Any] | None = None  # since the previous ranking (drs/movement.what_changed, with its header)
    reliability: dict[str, Any] | None = None  # drs.model.calibration's record, measured now on the test data
    reliability_png: Path | None = None
    calls: CallSummary | None = None  # the client managers' day: value covered, holdout comparison (drs/reports/calls.py)


# ---- formatting: pure helpers -------------------------------------------------


def text(value: Any, limit: int = 300) -> str:
    """Escaped for a Paragraph, cut at `limit` characters."""
    raw = "-" if value is None else str(value)
    return escape(raw if len(raw) <= limit else raw[: limit - 3] + "...")


def newest(items: Sequence[Any], limit: int = MAX_TABLE_ROWS) -> tuple[list[Any], int]:
    """The last `limit` items and how many were left out."""
    items = list(items)
    return items[-limit:], max(len(items) - limit, 0)


# ---- building blocks -------------------------------------------------------------


def table(rows: list[list[Any]], widths: Sequence[float], header: bool = True, align_right: Sequence[int] = ()) -> Table:
    """A zebra table whose widths (fractions of the text width) fill the page; cells wrap."""
    cells = []
    for r, row in enumerate(rows):
        style = HEAD_CELL if header and r == 0 else CELL
        cells.append(
            [
                c if isinstance(c, Flowable) else Paragraph(text(c), RIGHT[style.name] if i in align_right else style)
                for i, c in enumerate(row)
            ]
        )
    result = Table(cells, colWidths=[w * TEXT_WIDTH for w in widths], repeatRows=1 if header else 0, hAlign="LEFT")
    commands: list[tuple[Any, ...]] = [
        ("VALIGN", (0, 0), (-1, -1), "TOP"),
        ("TOPPADDING", (0, 0), (-1, -1), 2.5),
        ("BOTTOMPADDING", (0, 0), (-1, -1), 2.5),
        ("LINEBELOW", (0, -1), (-1, -1), 0.5, colors.HexColor("#9aa7b5")),
    ]
    if header:
        commands.append(("BACKGROUND", (0, 0), (-1, 0), HEADER_BG))
    for r in range(1 if header else 0, len(rows)):
        if (r % 2 == 0) == header:
            commands.append(("BACKGROUND", (0, r), (-1, r), ZEBRA))
    result.setStyle(TableStyle(commands))
    return result


def key_values(pairs: list[tuple[str, Any]], key_width: float = 0.24) -> Table:
    rows = [[Paragraph(text(k), CELL_BOLD), Paragraph(v if isinstance(v, str) else text(v), CELL)] for k, v in pairs]
    return table(rows, [key_width, 1 - key_width], header=False)


def image(path: Path, width: float) -> Image:
    """A PNG scaled to `width`, keeping its aspect ratio."""
    pixels_w, pixels_h = ImageReader(str(path)).getSize()
    return Image(str(path), width=width, height=width * pixels_h / pixels_w)


def left_out(count: int, what: str) -> list[Flowable]:
    return [Paragraph(f"({count} older {what} not shown)", SMALL)] if count else []


# ---- the sections, one page each -------------------------------------------------


def model_section(report: Report) -> list[Flowable]:
    m, e = report.model, report.evaluation
    files = m.get("training_files") or []
    header = key_values(
        [
            ("Deployed model", f"<b>{text(m.get('label'))}</b> (deployed {text(when(m.get('deployed_at')))})"),
            ("Trained", f"{text(when(m.get('trained_at')))} on {text(number(m.get('training_rows')))} rows"),
            ("Training files", text(", ".join(files) or "-", 600)),
            ("Why deployed", text(m.get("reason") or "-")),
            (
                "Evaluated on",
                f"{text(e.get('test_data'))}: {text(number(e.get('rows')))} labelled clients "
                f"({text(number(e.get('exits')))} exited), none of them in the training data",
            ),
        ]
    )
    cal = report.reliability
    metrics = table(
        [
            ["metric", "value"],
            ["F1", score(e.get("f1"))],
            ["precision", score(e.get("precision"))],
            ["recall", score(e.get("recall"))],
            ["accuracy", score(e.get("accuracy"))],
            *([["Brier score", f"{cal['brier']:.3f}"]] if cal else []),
        ],
        [0.2, 0.14],
        align_right=(1,),
    )
    recorded = m.get("score") or {}
    note = Paragraph(
        f"Measured now on the test data. Recorded at deployment: F1 {score(recorded.get('f1'))}."
        " F1 weighs missed leavers (recall) and false alarms (precision) alike."
        + (" Brier: the mean squared gap between probability and outcome." if cal else ""),
        SMALL,
    )
    left: list[Flowable] = [metrics, Spacer(1, 4), note]
    if cal and report.reliability_png is not None:
        left += [Spacer(1, 4), image(report.reliability_png, 0.35 * TEXT_WIDTH)]
    side = Table(
        [[left, image(report.confusion_png, 0.6 * TEXT_WIDTH)]],
        colWidths=[0.37 * TEXT_WIDTH, 0.63 * TEXT_WIDTH],
        hAlign="LEFT",
    )
    side.setStyle(TableStyle([("VALIGN", (0, 0), (-1, -1), "TOP"), ("LEFTPADDING", (0, 0), (0, 0), 0)]))
    flow: list[Flowable] = [
        Paragraph("Client attrition risk report", TITLE),
        Paragraph(f"Generated {text(when(report.generated_at))}", SMALL),
        Spacer(1, 6),
        header,
        Paragraph(f"Model quality on {text(e.get('test_data'))}", H2),
        side,
    ]
    if cal:
        flow.append(Paragraph(f"<b>{text(brier_words(cal))}.</b> {text(plain_reading(cal), 600)}", SMALL))
    flow += [
        Paragraph("Drift decision of the last run", H2),
    ]
    flow += drift_block(report.last_run, report.drift)
    return flow


def drift_block(last_run: dict[str, Any] | None, drift: dict[str, Any] | None) -> list[Flowable]:
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


def data_drift_table(data: Any) -> list[Flowable]:
    if not isinstance(data, dict):
        return []
    if not data.get("measured"):
        return [Paragraph(f"Data drift not measured: {text(data.get('reason'))}.", SMALL)] if data.get("reason") else []
    features = [f for f in data.get("features") or [] if isinstance(f, dict)]
    rows = [["feature", "KS statistic", "KS p-value", "KS verdict", "PSI", "PSI verdict"]] + [
        [
            f.get("feature"),
            number(f.get("ks_statistic")),
            number(f.get("ks_p_value")),
            flag(f.get("ks_drift")),
            number(f.get("psi")),
            flag(f.get("psi_drift")),
        ]
        for f in features
    ]
    drifted = ", ".join(data.get("drifted_features") or []) or "none"
    return [
        Spacer(1, 5),
        Paragraph(
            f"Data drift of each feature, {text(data.get('reference'))} against the new rows. A feature drifts "
            f"when {text(data.get('rule'))}; drifted: <b>{text(drifted)}</b>.",
            SMALL,
        ),
        Spacer(1, 2),
        table(rows, [0.3, 0.14, 0.14, 0.13, 0.14, 0.15], align_right=(1, 2, 4)),
    ]


KNOWN_DRIFT_KEYS = {
    "noise",
    "estimate",
    "against_estimate",
    "measured",
    "reason",
    "exits",
    "test",
    "requested_test",
    "fallback",
    "rule",
    "deployed_version",
    "new_data_f1",
    "deployed_score",
    "threshold",
    "drift",
    "model_sha256",
    "new_rows",
    "history",
    "history_points",
    "mean",
    "std",
    "q1",
    "q3",
    "iqr",
    "labelled_rows",  # said as the new rows the test ran on; "waiting", when rows wait for labels, still reaches the reader
    "waiting_rows",
}


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


def risk_section(report: Report) -> list[Flowable]:
    r = report.risk
    top = r.get("top") or []
    intro = (
        f"<b>{number(r.get('above'))}</b> of {number(r.get('active'))} active clients have an exit probability above "
        f"{r.get('threshold', 0.5):g} (model {text(report.model.get('label'))}, scored on {text(r.get('source'))}, "
        f"{number(r.get('rows'))} rows). The full ranked list is risklist.csv; the API answers it at GET /risk?top=N."
        + (f" {text(r['named'])}." if r.get("named") else "")
    )
    features = r.get("features", [])
    header = ["rank", "corporation", "exit probability", *[c.replace("_", " ") for c in features], "top reason"]
    rows = [header] + [
        [
            str(row["rank"]),
            row["corporation"],
            f"{row['exit_probability']:.3f}",
            *[number(row[c]) for c in features],
            row.get("top_reason") or "-",
        ]
        for row in top
    ]
    widths = [0.06, 0.12, 0.115] + [0.345 / max(len(features), 1)] * len(features) + [0.36]
    flow: list[Flowable] = [
        Paragraph("Clients at risk", H1),
        Paragraph(intro, BODY),
        Spacer(1, 6),
        Paragraph(f"The {len(top)} clients most likely to leave", H2),
    ]
    flow.append(table(rows, widths, align_right=tuple(range(2, len(header) - 1))) if top else Paragraph("No active clients.", BODY))
    calls = calls_flow(report.calls, H2, BODY, table)  # today's calls: what the top N cover, whether calling helps
    flow += [*calls, Spacer(1, 8), image(report.distribution_png, TEXT_WIDTH * (0.6 if calls else 0.92)), Spacer(1, 4)]
    flow.append(
        Paragraph(
            "Active: the most recent row of each corporation (later file in ingestion order, later row within a file) "
            "says it has not exited. Exit probability: the deployed model's predicted probability that the client leaves. "
            "Top reason: the feature that raises the risk most against a typical client (the training data's mean of each "
            "feature), in log-odds of exit; risklist.csv has each feature's contribution.",
            SMALL,
        )
    )
    return flow


CHANGES_SHOWN = 8


def _changed(title: str, header: list[str], rows: list[list[Any]], total: int, widths: Sequence[float]) -> list[Flowable]:
    flow: list[Flowable] = [Paragraph(f"{title} ({number(total)})", H2)]
    if not rows:
        return [*flow, Paragraph("None.", BODY)]
    flow.append(
        table(
            [header, *rows[:CHANGES_SHOWN]], widths, align_right=tuple(i for i, h in enumerate(header) if h != "corporation" and h != "why")
        )
    )
    more = total - min(len(rows), CHANGES_SHOWN)
    return flow + ([Paragraph(f"({number(more)} more not shown; the page lists up to 50)", SMALL)] if more > 0 else [])


def _prob(value: Any) -> str:
    return "-" if value is None else f"{float(value):.3f}"


def changes_section(report: Report) -> list[Flowable]:
    """What changed since the previous ranking: new above 0.5, the biggest risers, who left the list and why."""
    c = report.changes or {}
    flow: list[Flowable] = [Paragraph("What changed since the last list", H1), Paragraph(text(since_words(c)), BODY)]
    if not c.get("previous"):
        return flow
    threshold = c.get("threshold", 0.5)
    new = [
        [
            str(r["rank"]),
            r["corporation"],
            _prob(r["probability"]),
            _prob(r["previous_probability"]) if r["previous_rank"] else "not ranked",
        ]
        for r in c.get("new_above", [])
    ]
    flow += _changed(
        f"New above {threshold:g}",
        ["rank", "corporation", "exit probability", "before"],
        new,
        c.get("new_above_total", 0),
        [0.1, 0.4, 0.25, 0.25],
    )
    if c.get("new_above_unranked"):
        flow.append(
            Paragraph(f"{number(c['new_above_unranked'])} of them were not ranked before (new in the data, or active again).", SMALL)
        )
    risers = [
        [str(r["rank"]), r["corporation"], _prob(r["probability"]), f"{r['probability_change']:+.3f}", f"{r['previous_rank']:,}"]
        for r in c.get("risers", [])
    ]
    flow += _changed(
        "Biggest risers",
        ["rank", "corporation", "exit probability", "change", "rank before"],
        risers,
        c.get("risers_total", 0),
        [0.1, 0.3, 0.2, 0.2, 0.2],
    )
    left = [
        [str(r["previous_rank"]), r["corporation"], _prob(r["previous_probability"]), reason_words(r, threshold)] for r in c.get("left", [])
    ]
    flow += _changed(
        f"Left the list (were above {threshold:g})",
        ["rank before", "corporation", "probability before", "why"],
        left,
        c.get("left_total", 0),
        [0.12, 0.25, 0.18, 0.45],
    )
    flow.append(
        Paragraph(
            "Compared with the newest earlier ranking whose list differs (a ranking repeated without change does not count). "
            "In risklist.csv: previous_rank; rank_change = previous_rank - rank, positive when a client moved up toward rank 1; "
            "probability_change = now - then. Empty cells: the client was not ranked then. Risers: the largest rises in exit probability.",
            SMALL,
        )
    )
    return flow


def data_section(report: Report) -> list[Flowable]:
    d = report.data
    summary = d.get("summary") or {}
    missing = d.get("missing") or {}
    stat_rows = [["column", "mean", "median", "std", "missing"]] + [
        [c, number(s.get("mean")), number(s.get("median")), number(s.get("std")), f"{missing.get(c, 0.0):.2f} %"]
        for c, s in summary.items()
    ]
    other_missing = [c for c in missing if c not in summary]
    flow: list[Flowable] = [
        Paragraph("Data", H1),
        Paragraph(
            f"The latest ingested data: {text(d.get('source'))}, {number(d.get('rows'))} rows, "
            f"{number(d.get('corporations'))} corporations.",
            BODY,
        ),
        Paragraph("Summary statistics and missing data", H2),
        table(stat_rows, [0.34, 0.165, 0.165, 0.165, 0.165], align_right=(1, 2, 3, 4)),
        Paragraph("Missing data in the other columns: " + ", ".join(f"{text(c)} {missing[c]:.2f} %" for c in other_missing), SMALL)
        if other_missing
        else Spacer(1, 0),
    ]
    record = d.get("ingestion")
    flow.append(Paragraph("Ingestion", H2))
    if not record:
        flow.append(Paragraph("No ingestion record found.", BODY))
        return flow
    files = record.get("files") or []
    rejected = [f for f in files if f.get("status") == Status.REJECTED]
    flow.append(
        key_values(
            [
                ("Ingested at", text(when(record.get("ingested_at")))),
                (
                    "Rows",
                    f"{number(record.get('rows_before_dedup'))} read from {len(files) - len(rejected)} accepted file(s); "
                    f"{number(record.get('duplicates_dropped'))} exact duplicates dropped; "
                    f"<b>{number(record.get('rows_written'))}</b> written",
                ),
                ("Rejected", f"{len(rejected)} file(s), {number(sum(int(f.get('rows_rejected') or 0) for f in rejected))} rows"),
            ]
        )
    )
    flow.append(Spacer(1, 5))
    shown, hidden = newest(files)
    rows = [["file", "status", "rows read", "rows rejected", "reason"]] + [
        [f.get("name"), f.get("status"), number(f.get("rows_read")), number(f.get("rows_rejected")), f.get("reason") or ""] for f in shown
    ]
    flow.append(table(rows, [0.22, 0.11, 0.1, 0.12, 0.45], align_right=(2, 3)))
    flow += left_out(hidden, "files")
    return flow


def operations_section(report: Report) -> list[Flowable]:
    o = report.operations
    timings = o.get("timings") or {}
    measured = o.get("execution_time") or {}
    stages = list(dict.fromkeys([*timings, *measured]))
    timing_rows = [["stage", "in the run", "diagnostics' measurement"]] + [
        [s, seconds(timings.get(s)), seconds(measured.get(s))] for s in stages
    ]
    flow: list[Flowable] = [Paragraph("Operations", H1), Paragraph("Stage timings", H2)]
    if stages:
        flow += [
            Paragraph(
                f"'In the run': {timings_from(o.get('timings_run'))}. "
                f"'Diagnostics': ingestion, training and scoring re-run into a temporary folder "
                f"({text(when(o.get('diagnostics_at')))}).",
                SMALL,
            ),
            Spacer(1, 3),
            table(timing_rows, [0.4, 0.3, 0.3], align_right=(1, 2)),
        ]
    else:
        flow.append(Paragraph("No stage timings recorded yet: no full-process run has deployed, and diagnostics.py has not run.", BODY))
    flow.append(Paragraph("Dependencies", H2))
    dependencies = o.get("dependencies")
    if not dependencies:
        flow.append(Paragraph("No dependency check recorded; run diagnostics.py.", BODY))
        return flow
    rows = [["package", "required", "installed", "newest", "status"]]
    for dep in dependencies:
        rows.append(
            [
                dep.get("package"),
                dep.get("required") or "any",
                dep.get("installed") or "missing",
                dep.get("newest") or "unknown",
                dependency_status(dep),
            ]
        )
    flow.append(Paragraph(text(dependency_words(dependencies), limit=1000), BODY))
    flow.append(Spacer(1, 3))
    flow.append(table(rows, [0.28, 0.16, 0.16, 0.16, 0.24]))
    return flow


def timings_from(run: dict[str, Any] | None) -> str:
    if not run:
        return "no full-process run that deployed is recorded"
    return f"the full-process run of {text(when(run.get('started_at')))} ({text(run.get('message'))})"


def trends_section(report: Report) -> list[Flowable]:
    flow: list[Flowable] = [
        Paragraph("Trends", H1),
        Paragraph("From the deployments in production and the run history, which every full-process run appends to.", BODY),
        Spacer(1, 4),
        image(report.trends_png, TEXT_WIDTH * 0.86),
        Paragraph("Deployments", H2),
    ]
    shown, hidden = newest(report.deployments, 5)
    rows = [["version", "deployed", "F1", "training files", "why"]] + [
        [d.get("label"), when(d.get("deployed_at")), score(d.get("f1")), file_span(d.get("training_files") or []), d.get("reason") or "-"]
        for d in shown
    ]
    flow.append(table(rows, [0.095, 0.165, 0.075, 0.24, 0.425], align_right=(2,)))
    flow += left_out(hidden, "deployments")
    return flow


BUILDERS = (model_section, risk_section, changes_section, data_section, operations_section, trends_section)


def write_pdf(report: Report, path: Path) -> int:
    """Lay out the report, one section per page, and write it atomically; return the page count."""
    pages: list[int] = []

    def footer(canvas: Any, doc: Any) -> None:
        pages.append(doc.page)
        canvas.saveState()
        canvas.setFont("Helvetica", 7.5)
        canvas.setFillColor(colors.HexColor("#666666"))
        label = f"Dynamic Risk Assessment  |  model {report.model.get('label', '-')}  |  generated {when(report.generated_at)}"
        canvas.drawString(MARGIN, MARGIN - 6 * mm, label)
        canvas.drawRightString(PAGE_WIDTH - MARGIN, MARGIN - 6 * mm, f"page {doc.page} of {len(SECTIONS)}")
        canvas.restoreState()

    story: list[Flowable] = []
    for i, build in enumerate(BUILDERS):
        if i:
            story.append(PageBreak())
        story.append(KeepInFrame(TEXT_WIDTH, FRAME_HEIGHT, build(report), mode="shrink"))
    with atomic_output(path) as tmp:
        doc = SimpleDocTemplate(
            str(tmp),
            pagesize=A4,
            leftMargin=MARGIN,
            rightMargin=MARGIN,
            topMargin=MARGIN,
            bottomMargin=MARGIN + FOOTER,
            title="Client attrition risk report",
            author="Dynamic Risk Assessment System",
            subject=f"model {report.model.get('label')}",
        )
        doc.build(story, onFirstPage=footer, onLaterPages=footer)
    return len(pages)
