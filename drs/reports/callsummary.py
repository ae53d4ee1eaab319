"""The day's figures for the PDF report, gathered at a ranking (drs/reports/reporting.py): the value the top `calls_per_day`
cover ranked by value at risk and by probability alone, and the exit rate of called against held-out clients.

The comparison reads the calls and the control group from the run history (drs/history/calls.py) and the labels from
clientrows.sqlite as it stands when the PDF is written (the current one, but for data large enough to be written by the
helper process, when it may be the previous ingestion's). See docs/reports.md#the-client-managers-day.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from drs.core import layout
from drs.core.settings import Config
from drs.history import calls as call_log
from drs.model import explain
from drs.reports import calls as day
from drs.reports import movement, risk, riskstore
from drs.reports.callvalues import Values

if TYPE_CHECKING:
    import polars as pl


def candidates(ranked: pl.DataFrame, id_column: str) -> list[day.Candidate]:
    """The ranked frame's clients as the queue needs them, in rank order."""
    changes = ranked[movement.RANK_CHANGE].to_list() if movement.RANK_CHANGE in ranked.columns else [None] * ranked.height
    rows = zip(
        ranked[risk.RANK].to_list(),
        ranked[id_column].cast(str).to_list(),
        ranked[risk.PROBABILITY].to_list(),
        ranked[explain.TOP_REASON].to_list(),
        changes,
        strict=True,
    )
    return [day.Candidate(int(r), c, float(p), t or "", None if m is None else int(m)) for r, c, p, t, m in rows]


def comparison(config: Config) -> day.Comparison | None:
    """Called against held out, on the clients whose outcome came in a later file; None when there was never a holdout."""
    held = call_log.holdouts(config.history_db)
    if config.holdout_fraction <= 0 and not held:
        return None
    called = {c: f for c, f in call_log.first_calls(config.history_db).items() if c not in held}
    try:
        with riskstore.opened(config.model_output(layout.CLIENT_ROWS)) as con:
            labels = day.labels_after(con, {**called, **held}, config.target)
    except riskstore.StoreError:
        labels = {}
    return day.compare(*day.outcomes(called, labels), *day.outcomes(held, labels))


def summary(config: Config, ranked: pl.DataFrame, values: Values | None) -> day.Summary:
    cover, missing = None, 0
    if values is not None:
        found = candidates(ranked, config.id_column)
        cover = day.coverage(found, values.values, config.calls_per_day)
        missing = sum(1 for c in found if c.corporation not in values.values)
    return day.Summary(config.calls_per_day, config.value_column, cover, missing, config.holdout_fraction, comparison(config))
