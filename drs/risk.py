"""The ranked list of clients at risk: who a client manager should call first.

Shared by drs/reporting.py (which writes `risklist.csv` and puts the top of it in
the PDF) and the API's `GET /risk`, so both always give the same answer.

A corporation that appears more than once is judged by its most recent row:
the last one in ingestion order. `finaldata.csv` keeps ingestion order (files
in name order, as the quarterly exports `clients_q1.csv` .. `clients_q4.csv`
sort by time, and rows in file order), so the most recent row is the one from
the later file, and within one file the later row. That row decides whether
the corporation is still active (`exited == 0`): a client whose latest row says
it left is not on the list, even if an older row says it stayed.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from drs.errors import DataError
from drs.model import exit_probabilities, feature_matrix
from drs.schema import Schema, read_csv_as_written, validate_frame

RANK = "rank"
PROBABILITY = "exit_probability"
PROBABILITY_DECIMALS = 6
THRESHOLD = 0.5  # "at risk": more likely to leave than to stay
DEFAULT_TOP = 20
MAX_TOP = 1000


def risk_columns(schema: Schema) -> list[str]:
    """`rank, corporation, exit_probability, <features>`: the columns of risklist.csv."""
    return [RANK, schema.id_column, PROBABILITY, *schema.features]


def read_ingested(path: Path, schema: Schema) -> tuple[pd.DataFrame, pd.DataFrame]:
    """finaldata.csv as written (to count its missing data) and checked (to score it)."""
    if not Path(path).exists():
        raise DataError(str(path), "does not exist; run ingestion.py first")
    raw = read_csv_as_written(path, schema)
    return raw, validate_frame(raw, schema, str(path))


def active_clients(frame: pd.DataFrame, schema: Schema) -> pd.DataFrame:
    """The most recent row of each corporation, kept only if it is active; pure.

    Without the target column (a file of current clients only) every
    corporation counts as active.
    """
    latest = frame.drop_duplicates(subset=[schema.id_column], keep="last")
    if schema.target in latest.columns:
        latest = latest[latest[schema.target] == 0]
    return latest.reset_index(drop=True)


def rank_clients(clients: pd.DataFrame, probabilities: Any, schema: Schema) -> pd.DataFrame:
    """Sort by exit probability, highest first (ties by corporation, so the order is stable); pure."""
    ranked = clients[[schema.id_column, *schema.features]].copy()
    ranked.insert(1, PROBABILITY, pd.Series(probabilities, index=ranked.index, dtype="float64"))
    ranked = ranked.sort_values([PROBABILITY, schema.id_column], ascending=[False, True], kind="mergesort")
    ranked.insert(0, RANK, range(1, len(ranked) + 1))
    return ranked.reset_index(drop=True)[risk_columns(schema)]


def risk_list(model: Any, frame: pd.DataFrame, schema: Schema) -> pd.DataFrame:
    """Score every active client with `model` and rank them."""
    clients = active_clients(frame, schema)
    if clients.empty:
        probabilities: Any = []
    else:
        probabilities = exit_probabilities(model, feature_matrix(clients, schema))
    return rank_clients(clients, probabilities, schema)


def above(ranked: pd.DataFrame, threshold: float = THRESHOLD) -> int:
    """How many clients have an exit probability above `threshold`."""
    return int((ranked[PROBABILITY] > threshold).sum())


def parse_top(raw: str | None, default: int = DEFAULT_TOP, maximum: int = MAX_TOP) -> int:
    """The `top` of a request: a whole number from 1 to `maximum`; ValueError with the reason otherwise."""
    if raw is None:
        return default
    text = raw.strip()
    if not (text.isascii() and text.isdigit()) or not 1 <= int(text) <= maximum:
        raise ValueError(f"'top' must be a whole number from 1 to {maximum}, got {raw[:40]!r}")
    return int(text)


def as_records(ranked: pd.DataFrame) -> list[dict[str, Any]]:
    """Rows as JSON-ready dicts, probabilities rounded as in risklist.csv, empty cells null."""
    rows = ranked.to_dict(orient="records")
    for row in rows:
        row[PROBABILITY] = round(float(row[PROBABILITY]), PROBABILITY_DECIMALS)
        row.update({k: None for k, v in row.items() if v is pd.NA or v is None or (isinstance(v, float) and v != v)})
    return rows
