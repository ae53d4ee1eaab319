"""The page's view models: what the templates show, built from what the pipeline wrote; pure but for reading a PNG's header.

drs/web/page.py reads the files and renders; the shapes it hands the templates are here: a ranked client's row
(`ShownRow`, for the list and the client's own view), a section that has data or says why not (`Section`), the
ranking's header (`RankingView`), a plot (`Image`), and the small helpers the templates call (how long ago, a run's
files, the outcomes counted). The banners and cards, being words, are drs/web/words.py's. See docs/reports.md
(the page for client managers).
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, TypedDict, cast

from drs.core.settings import Config
from drs.core.times import parse_time
from drs.data.schema import Schema
from drs.history.modelresults import Estimate, Noise
from drs.history.runs import RunRow
from drs.model import estimate, explain
from drs.production.versions import DeploymentMeta
from drs.reports import movement, risk, riskstore


class ShownRow(TypedDict):
    """A ranked client as the list and the client's view show it (risklist.csv's row, its columns the config's)."""

    rank: int
    corporation: str
    probability: float
    features: list[Any]  # the feature values in config order (None when unknown)
    reason: str  # the top reason ("" when none)
    contributions: list[Any]  # each feature's contribution in config order (None without reasons)
    previous_rank: int | None  # the movement since the previous ranking (None: not ranked before)
    rank_change: int | None
    probability_change: float | None


def shown_row(record: dict[str, Any], schema: Schema) -> ShownRow:
    """A row of the ranking's store (drs/reports/riskstore.py) as the page and the client view show it; pure."""
    return {
        "rank": record[risk.RANK],
        "corporation": record[schema.id_column],
        "probability": float(record[risk.PROBABILITY]),
        "features": [record[f] for f in schema.features],
        "reason": record[explain.TOP_REASON] or "",
        "contributions": [record[explain.contribution_column(f)] for f in schema.features],
        "previous_rank": record.get(movement.PREVIOUS_RANK),
        "rank_change": record.get(movement.RANK_CHANGE),
        "probability_change": record.get(movement.PROBABILITY_CHANGE),
    }


@dataclass(frozen=True)
class ShownPage:
    """One page of the ranking, or of a search (drs/reports/riskstore.py's Page), its rows as shown."""

    rows: list[ShownRow]
    page: int
    pages: int
    first: int  # 1-based position of the first row shown (0 when none)
    last: int
    total: int

    @classmethod
    def of(cls, found: riskstore.Page, schema: Schema) -> ShownPage:
        rows = [shown_row(r, schema) for r in found.rows]
        return cls(rows, found.page, found.pages, found.first, found.last, found.total)


@dataclass
class Section:
    """What one part of the page has, or why it has nothing."""

    data: Any = None
    problem: str | None = None
    notes: list[str] = field(default_factory=list)


class RankingView(TypedDict):
    """The head of the ranking's section: its counts, when and by what it was ranked, and the store its pages come from."""

    total: int
    above: int
    first: str | None  # the corporation ranked first (the search box's example)
    written_at: str
    named: str  # standing.words: which model ranked which data
    meta: dict[str, Any] | None  # risklist.json, as standing.read gives it
    store: Path


class Image(TypedDict):
    name: str
    width: int
    height: int
    version: int  # the file's mtime in ns: a new plot gets a new URL


def parse_page(raw: str | None) -> int:
    """A page number from the query string; anything that is not a whole number >= 1 is page 1."""
    text = (raw or "").strip()
    return int(text) if text.isascii() and text.isdigit() and int(text) >= 1 else 1


def png_size(path: Path) -> tuple[int, int] | None:
    """Width and height from a PNG's header (so the page reserves the image's space: no layout shift)."""
    try:
        with open(path, "rb") as handle:
            head = handle.read(24)
    except OSError:
        return None
    if len(head) < 24 or head[:8] != b"\x89PNG\r\n\x1a\n" or head[12:16] != b"IHDR":
        return None
    width, height = struct.unpack(">II", head[16:24])
    return width, height


def image_of(config: Config, name: str) -> Image | None:
    """One of reporting's plots in output_model_path, with its size; None when there is no readable PNG."""
    path = config.model_output(name)
    size = png_size(path)
    if size is None:
        return None
    return {"name": name, "width": size[0], "height": size[1], "version": path.stat().st_mtime_ns}


def estimate_words(check: dict[str, Any]) -> str | None:
    """The label-free estimate recorded with a drift check, beside the realized F1 once measured; None when none was made."""
    expected = check.get("estimate")
    if not isinstance(expected, dict):
        return None
    realized = check.get("new_data_f1") if check.get("measured") is not False else None
    try:
        against = check.get("against_estimate")
        noise = cast("Noise", against) if isinstance(against, dict) and realized is not None else None
        return estimate.describe(cast("Estimate", expected), realized, noise)  # as the run stored them
    except (KeyError, TypeError, ValueError):
        return None


def recorded_calibration(meta: DeploymentMeta) -> dict[str, Any] | None:
    """The reliability table scoring recorded in latestscore.json and deployment copied, if it did."""
    found = (meta.get("score") or {}).get("calibration")
    return found if isinstance(found, dict) and found.get("deciles") else None


# ---- the runs (the history's records, oldest first) -----------------------------------------


def recent_runs(runs: Sequence[RunRow], now: datetime, days: float) -> list[RunRow]:
    """Runs that started within the last `days`, newest first."""
    since = now - timedelta(days=days)
    return [r for r in reversed(runs) if (t := parse_time(r.get("started_at"))) is not None and t >= since]


def run_files(run: RunRow) -> list[str]:
    details = run.get("details") or {}
    return list(details.get("new_files") or (details.get("new_data") or {}).get("files") or [])


def outcome_counts(runs: Sequence[RunRow]) -> list[tuple[str, int]]:
    counts: dict[str, int] = {}
    for run in runs:
        counts[str(run.get("outcome"))] = counts.get(str(run.get("outcome")), 0) + 1
    return sorted(counts.items(), key=lambda kv: -kv[1])
