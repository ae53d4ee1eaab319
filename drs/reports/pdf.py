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

from reportlab.lib import colors
from reportlab.lib.pagesizes import A4
from reportlab.lib.units import mm
from reportlab.platypus import Flowable, KeepInFrame, PageBreak, Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle

from drs.core.fileio import atomic_output
from drs.core.formatting import dependency_status, dependency_words, file_span, number, score, seconds, when
from drs.data.intake import Status
from drs.history.modelresults import ReliabilityReport
from drs.history.record import RunRecord
from drs.history.runs import DriftDecision
from drs.model.calibration import brier_words, plain_reading
from drs.production.versions import DeploymentMeta, DeploymentRow
from drs.reports.callpdf import calls_flow
from drs.reports.calls import Summary as CallSummary
from drs.reports.movement import Changes, reason_words, since_words
from drs.reports.pdf_drift import drift_block
from drs.reports.pdf_layout import (
    BODY,
    FOOTER,
    FRAME_HEIGHT,
    H1,
    H2,
    MARGIN,
    PAGE_WIDTH,
    SMALL,
    TEXT_WIDTH,
    TITLE,
    image,
    key_values,
    left_out,
    newest,
    table,
    text,
)
from drs.reports.reportparts import DataPart, OperationsPart, RiskPart, ShownEvaluation

SECTIONS = ("Model", "Clients at risk", "What changed", "Data", "Operations", "Trends")


@dataclass
class Report:
    """Everything the PDF shows; plain values, already gathered by drs/reports/reporting.py."""

    generated_at: str
    model: DeploymentMeta  # the deployed version's deployment.json, its label certain
    evaluation: ShownEvaluation
    confusion_png: Path
    trends_png: Path
    distribution_png: Path
    risk: RiskPart
    data: DataPart
    operations: OperationsPart
    last_run: RunRecord | None = None
    drift: DriftDecision | None = None
    deployments: list[DeploymentRow] = field(default_factory=list)
    changes: Changes | None = None  # since the previous ranking (drs/reports/movement.py what_changed, with its header)
    reliability: ReliabilityReport | None = None  # drs.model.calibration's record, measured now on the test data
    reliability_png: Path | None = None
    calls: CallSummary | None = None  # the client managers' day: value covered, holdout comparison (drs/reports/calls.py)


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
    c: Changes = report.changes or {"previous": None}
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


def timings_from(run: RunRecord | None) -> str:
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
