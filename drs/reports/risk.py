"""The ranked list of clients at risk: who a client manager should call first.

Shared by drs/reports/reporting.py (which writes `risklist.csv` and puts the top of it in
the PDF) and the API's `GET /risk`, so both always give the same answer.

A corporation that appears more than once is judged by its most recent row:
the last one in ingestion order. `finaldata.csv` keeps the files in the order
they arrived, whatever their names (drs/data/sources.py `arrival_plan`: a new export
`clients_2027_q1.csv` comes after `clients_q1.csv`), and rows in file order, so
the most recent row is the one from the file that arrived later, and within one
file the later row. That row decides whether
the corporation is still active (`exited == 0`): a client whose latest row says
it left is not on the list, even if an older row says it stayed.

Each ranked client also gets its reasons (drs/model/explain.py): `top_reason` and one
`<feature>_contribution` per feature, in log-odds against the reference client;
empty when the model is not a logistic regression or no reference is known.

More: docs/reports.md (The risk list; Reasons).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import polars as pl

from drs.core.errors import DataError
from drs.data import rowstore
from drs.data.readers import read_csv_as_written, to_polars, validate_frame
from drs.data.schema import Schema
from drs.model import explain
from drs.model.estimator import exit_probabilities, feature_matrix, linear_model_of

if TYPE_CHECKING:
    import pandas as pd

    from drs.core.settings import Config

RANK = "rank"
PROBABILITY = "exit_probability"
PROBABILITY_DECIMALS = 6
THRESHOLD = 0.5  # "at risk": more likely to leave than to stay
DEFAULT_TOP = 20
MAX_TOP = 1000


def risk_columns(schema: Schema) -> list[str]:
    """`rank, corporation, exit_probability, <features>, top_reason, <feature>_contribution...`: the columns of risklist.csv."""
    return [RANK, schema.id_column, PROBABILITY, *schema.features, *explain.explanation_columns(schema.features)]


def read_ingested(path: Path, schema: Schema) -> tuple[pd.DataFrame, pl.DataFrame]:
    """finaldata.csv as written (to count its missing data) and checked (to score it)."""
    if not Path(path).exists():
        raise DataError(str(path), "does not exist; run ingestion.py first")
    raw = read_csv_as_written(path, schema)
    return raw, to_polars(validate_frame(raw, schema, str(path), unlabelled=True))


def read_current(config: Config, schema: Schema) -> tuple[pd.DataFrame | pl.DataFrame, pl.DataFrame]:
    """The ingested rows (as written, and checked): from the row store when it holds exactly finaldata.csv's rows
    (drs/data/rowstore.py: checked rows, so both are the same frame), else read from finaldata.csv."""
    stored = rowstore.final_rows(config.output_folder, config.final_data_csv, config.input_folder, schema.columns)
    if stored is not None:
        return stored, stored
    return read_ingested(config.final_data_csv, schema)


def _polars(frame: Any) -> pl.DataFrame:
    return frame if isinstance(frame, pl.DataFrame) else to_polars(frame)


def active_clients(frame: pd.DataFrame | pl.DataFrame, schema: Schema) -> pl.DataFrame:
    """The most recent row of each corporation, kept only if it is active; pure.

    Without the target column (a file of current clients only) every
    corporation counts as active; so does one whose label is not known yet (an empty exited: it has not left as far as we know).
    """
    rows = _polars(frame)
    latest = rows.filter(pl.col(schema.id_column).is_last_distinct())
    if schema.target in latest.columns:
        latest = latest.filter((pl.col(schema.target) != 1).fill_null(True))  # an unknown label: still a client
    return latest


def rank_clients(
    clients: pd.DataFrame | pl.DataFrame, probabilities: Any, schema: Schema, explained: explain.Explained | None = None
) -> pl.DataFrame:
    """Sort by exit probability, highest first (ties by corporation, so the order is stable); pure.

    Probabilities and contributions come rounded to PROBABILITY_DECIMALS (after sorting), as every view shows them.
    `explained` holds the clients' reasons, rows as in `clients`; without them the reasons are empty."""
    rows = _polars(clients)
    n = rows.height
    columns: dict[str, pl.Series] = {
        schema.id_column: rows[schema.id_column].cast(pl.String),
        PROBABILITY: pl.Series(np.asarray(probabilities, dtype="float64").reshape(n), dtype=pl.Float64),
        **{f: rows[f] for f in schema.features},
        explain.TOP_REASON: pl.Series(explained.reasons if explained else [""] * n, dtype=pl.String),
    }
    for i, feature in enumerate(schema.features):
        values = explained.contributions[:, i] if explained else None
        columns[explain.contribution_column(feature)] = (
            pl.Series(values, dtype=pl.Float64) if values is not None else pl.repeat(None, n, dtype=pl.Float64, eager=True)
        )
    ranked = pl.DataFrame(columns).sort([PROBABILITY, schema.id_column], descending=[True, False], maintain_order=True)
    ranked = ranked.with_row_index(RANK, offset=1).with_columns(pl.col(RANK).cast(pl.Int64))
    return rounded(ranked).select(risk_columns(schema))


def risk_list(model: Any, frame: pd.DataFrame | pl.DataFrame, schema: Schema, reference: explain.Reference | None = None) -> pl.DataFrame:
    """Score every active client with `model` and rank them, each with its reasons against `reference`."""
    clients = active_clients(frame, schema)
    x = feature_matrix(clients, schema)
    probabilities: Any = exit_probabilities(model, x) if clients.height else []
    linear = linear_model_of(model) if reference is not None else None
    explained = explain.explain(linear, x, reference, schema.features) if linear is not None and reference is not None else None
    return rank_clients(clients, probabilities, schema, explained)


def above(ranked: Any, threshold: float = THRESHOLD) -> int:
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


def rounded(ranked: pl.DataFrame) -> pl.DataFrame:
    """Probabilities and contributions rounded to PROBABILITY_DECIMALS, as risklist.csv and the API give them."""
    columns = [PROBABILITY, *(c for c in ranked.columns if str(c).endswith(explain.CONTRIBUTION_SUFFIX))]
    return ranked.with_columns(pl.col(c).round(PROBABILITY_DECIMALS) for c in columns)


def as_records(ranked: pl.DataFrame) -> list[dict[str, Any]]:
    """Rows as JSON-ready dicts, rounded as in risklist.csv; a contribution not known is None, a top reason not known ''."""
    return rounded(ranked).to_dicts()
