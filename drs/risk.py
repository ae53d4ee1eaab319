"""The ranked list of clients at risk: who a client manager should call first.

Shared by drs/reporting.py (which writes `risklist.csv` and puts the top of it in
the PDF) and the API's `GET /risk`, so both always give the same answer.

A corporation that appears more than once is judged by its most recent row:
the last one in ingestion order. `finaldata.csv` keeps the files in the order
they arrived, whatever their names (drs/sources.py `arrival_plan`: a new export
`clients_2027_q1.csv` comes after `clients_q1.csv`), and rows in file order, so
the most recent row is the one from the file that arrived later, and within one
file the later row. That row decides whether
the corporation is still active (`exited == 0`): a client whose latest row says
it left is not on the list, even if an older row says it stayed.

Each ranked client also gets its reasons (drs/explain.py): `top_reason` and one
`<feature>_contribution` per feature, in log-odds against the reference client;
empty when the model is not a logistic regression or no reference is known.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from drs import explain
from drs.errors import DataError
from drs.model import exit_probabilities, feature_matrix, linear_model_of
from drs.schema import Schema, read_csv_as_written, validate_frame

RANK = "rank"
PROBABILITY = "exit_probability"
PROBABILITY_DECIMALS = 6
THRESHOLD = 0.5  # "at risk": more likely to leave than to stay
DEFAULT_TOP = 20
MAX_TOP = 1000


def risk_columns(schema: Schema) -> list[str]:
    """`rank, corporation, exit_probability, <features>, top_reason, <feature>_contribution...`: the columns of risklist.csv."""
    return [RANK, schema.id_column, PROBABILITY, *schema.features, *explain.explanation_columns(schema.features)]


def read_ingested(path: Path, schema: Schema) -> tuple[pd.DataFrame, pd.DataFrame]:
    """finaldata.csv as written (to count its missing data) and checked (to score it)."""
    if not Path(path).exists():
        raise DataError(str(path), "does not exist; run ingestion.py first")
    raw = read_csv_as_written(path, schema)
    return raw, validate_frame(raw, schema, str(path), unlabelled=True)


def active_clients(frame: pd.DataFrame, schema: Schema) -> pd.DataFrame:
    """The most recent row of each corporation, kept only if it is active; pure.

    Without the target column (a file of current clients only) every
    corporation counts as active; so does one whose label is not known yet (an empty exited: it has not left as far as we know).
    """
    latest = frame.drop_duplicates(subset=[schema.id_column], keep="last")
    if schema.target in latest.columns:
        latest = latest[(latest[schema.target] != 1).fillna(True).to_numpy(dtype=bool)]
    return latest.reset_index(drop=True)


def rank_clients(clients: pd.DataFrame, probabilities: Any, schema: Schema, explained: explain.Explained | None = None) -> pd.DataFrame:
    """Sort by exit probability, highest first (ties by corporation, so the order is stable); pure.

    `explained` holds the clients' reasons, rows as in `clients`; without it they are empty."""
    ranked = clients[[schema.id_column, *schema.features]].copy()
    ranked.insert(1, PROBABILITY, pd.Series(probabilities, index=ranked.index, dtype="float64"))
    ranked[explain.TOP_REASON] = pd.Series(explained.reasons if explained else "", index=ranked.index, dtype="object")
    for i, feature in enumerate(schema.features):
        values = explained.contributions[:, i] if explained else np.nan
        ranked[explain.contribution_column(feature)] = pd.Series(values, index=ranked.index, dtype="float64")
    ranked = ranked.sort_values([PROBABILITY, schema.id_column], ascending=[False, True], kind="mergesort")
    ranked.insert(0, RANK, range(1, len(ranked) + 1))
    return ranked.reset_index(drop=True)[risk_columns(schema)]


def risk_list(model: Any, frame: pd.DataFrame, schema: Schema, reference: explain.Reference | None = None) -> pd.DataFrame:
    """Score every active client with `model` and rank them, each with its reasons against `reference`."""
    clients = active_clients(frame, schema)
    x = feature_matrix(clients, schema)
    probabilities: Any = exit_probabilities(model, x) if len(clients) else []
    linear = linear_model_of(model) if reference is not None else None
    explained = explain.explain(linear, x, reference, schema.features) if linear is not None and reference is not None else None
    return rank_clients(clients, probabilities, schema, explained)


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


def rounded(ranked: pd.DataFrame) -> pd.DataFrame:
    """Probabilities and contributions rounded to PROBABILITY_DECIMALS, as risklist.csv and the API give them."""
    columns = [PROBABILITY, *(c for c in ranked.columns if str(c).endswith(explain.CONTRIBUTION_SUFFIX))]
    return ranked.assign(**{c: ranked[c].round(PROBABILITY_DECIMALS) for c in columns})


def as_records(ranked: pd.DataFrame) -> list[dict[str, Any]]:
    """Rows as JSON-ready dicts, rounded as in risklist.csv; a contribution not known is None, a top reason not known ''."""
    rows = rounded(ranked).astype(object).where(ranked.notna(), None).to_dict(orient="records")
    for row in rows:
        row[PROBABILITY] = float(row[PROBABILITY])
    return rows
