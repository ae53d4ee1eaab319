"""The client managers' day in the PDF report, on its "Clients at risk" page (drs/reports/pdf.py calls `calls_flow`):
the value the top `calls_per_day` cover ranked by value at risk beside ranked by probability alone, and the exit rate of
called against held-out clients with its interval and the clients the difference needs. See docs/reports.md#the-client-managers-day.

pdf.py passes its styles and its table builder in, so that this module needs nothing of pdf.py's (no import cycle).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from reportlab.lib.styles import ParagraphStyle
from reportlab.platypus import Flowable, Paragraph

from drs.core.formatting import number
from drs.reports.calls import Comparison, Summary


def money(value: float) -> str:
    return f"{value:,.0f}"


def percent(value: float | None) -> str:
    return "-" if value is None else f"{value * 100:.1f}%"


def interval(bounds: tuple[float, float] | None) -> str:
    return "" if bounds is None else f" ({percent(bounds[0])} to {percent(bounds[1])})"


def p_text(p: float) -> str:
    return "p < 0.001" if p < 0.001 else f"p = {p:.3f}"


def verdict(k: Comparison) -> str:
    """The comparison in plain words: the two rates, the difference with its interval, whether it is beyond chance, and
    how many clients a group needs for a difference this size (the page and the PDF say the same)."""
    if k.difference is None or k.interval is None or k.p_value is None or k.called_rate is None or k.held_rate is None:
        return "No comparison yet: it needs clients with a known outcome (a label in a file that came after the call) in both groups."
    low, high = k.interval
    said = (
        f"Called clients left at {percent(k.called_rate)}, held-out ones at {percent(k.held_rate)}: a difference of "
        f"{k.difference * 100:+.1f} points (95% interval {low * 100:+.1f} to {high * 100:+.1f}; {p_text(k.p_value)})."
    )
    if high < 0:
        said += " Calling lowers the exit rate, beyond what chance explains."
    elif low > 0:
        said += " Called clients left more often, beyond what chance explains: look at what the calls say."
    else:
        said += " The difference may be chance."
    if k.needed_per_group is None:
        return said + " The two rates are equal: no difference to detect yet."
    if k.enough:
        return said + f" Both groups have the {number(k.needed_per_group)} clients a difference this size needs (80% power, 5% level)."
    return (
        said + f" A difference this size needs about {number(k.needed_per_group)} clients with a known outcome in each group "
        "(80% power, 5% level) before it means something."
    )


def calls_flow(summary: Summary | None, h2: ParagraphStyle, body: ParagraphStyle, table: Callable[..., Any]) -> list[Flowable]:
    """The page's flowables for the day; none when neither a value column nor a holdout is configured or recorded."""
    if summary is None or (summary.coverage is None and summary.comparison is None):
        return []
    flow: list[Flowable] = []
    c = summary.coverage
    if c is not None:
        flow.append(Paragraph(f"Today's {summary.count} calls: the value they cover", h2))
        rows = [
            ["ranked by", f"expected value at risk of the top {summary.count}", "share of all"],
            ["value at risk (probability x value)", money(c.by_value), percent(c.by_value / c.total if c.total else None)],
            ["probability alone", money(c.by_probability), percent(c.by_probability / c.total if c.total else None)],
        ]
        flow.append(table(rows, [0.4, 0.35, 0.25], align_right=(1, 2)))
        missing = (
            f" {number(summary.missing_values)} active clients have no usable {summary.value_column}: counted as 0."
            if summary.missing_values
            else ""
        )
        flow.append(Paragraph(f"Value: {summary.value_column} of the source data; all active clients: {money(c.total)}.{missing}", body))
    k = summary.comparison
    if k is not None:
        flow.append(Paragraph("Does calling help? Called against held-out clients", h2))
        rows = [
            ["group", "outcome known", "left", "exit rate (95% interval)"],
            ["called", number(k.called), number(k.called_exits), percent(k.called_rate) + interval(k.called_interval)],
            ["held out (not called)", number(k.held), number(k.held_exits), percent(k.held_rate) + interval(k.held_interval)],
        ]
        flow.append(table(rows, [0.3, 0.2, 0.15, 0.35], align_right=(1, 2, 3)))
        held = (
            f"{summary.holdout_fraction * 100:.0f}% of the would-be-queued clients are held out and not called. "
            if summary.holdout_fraction
            else ""
        )
        flow.append(Paragraph(held + verdict(k), body))
    return flow
