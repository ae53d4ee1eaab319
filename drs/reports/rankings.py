"""Every ranking kept in the run history, and each new one compared with the previous (drs/reports/movement.py).

A ranking is recorded by
  `deployment`  the reports after a deployment (drs/pipeline/followup.py -> drs/reports/reporting.run with the run in progress)
  `reporting`   each `reporting.py` invocation (of finaldata.csv, or of `--input CSV`: that file's name is its source)
  `ingestion`   a full-process run whose ingestion changed the list without deploying (no drift, candidate not
                promoted, new files rejected): the deployed model ranks the new data (drs/pipeline/followup.py)
  `deployment by hand`, `rollback`, `ingestion by hand`   deployment.py, deployment.py --rollback, ingestion.py
Each is drs/reports/reporting.refresh: the list, changes.json, the PDF and risklist.json (drs/reports/standing.py) written together.
Only the newest `keep_rankings` are kept (of every source together).

The previous ranking of a list: the newest kept ranking of the same source recorded before it whose list
differs from it (another client, order or probability). A ranking identical to the one before it (reporting.py
run twice, or a run that added only exited clients) is recorded, but is not a change: the list it follows is
compared with the last different one, so "what changed" never goes blank because nothing happened since.
`GET /risk` and the page read the movement risklist.csv and changes.json hold; nothing ranks on request.

More: docs/reports.md (What changed since the last list).
"""

from __future__ import annotations

import logging
import sqlite3
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from drs.core import layout
from drs.core.settings import Config
from drs.data.schema import Schema, schema_of
from drs.history import rankings as ranking_store
from drs.history.rankings import Ranking, RankingWithRows
from drs.reports import movement, risk
from drs.reports.movement import Changes, Header, Movement

log = logging.getLogger("rankings")

DEPLOYMENT = "deployment"
REPORTING = "reporting"
INGESTION = "ingestion"
BY_HAND = "deployment by hand"
ROLLBACK = "rollback"
INGESTION_BY_HAND = "ingestion by hand"


@dataclass(frozen=True)
class Compared:
    """A ranked list with its movement columns, the ranking it was compared with, and what changed."""

    ranked: pl.DataFrame
    ranking_id: int | None
    previous: Header | None
    changes: Changes


def header(ranking: Ranking | None) -> Header | None:
    """A kept ranking as answers and files name it: id, at, kind, model_version, source, clients."""
    if not ranking:
        return None
    return {
        "id": ranking["id"],
        "at": ranking["at"],
        "kind": ranking["kind"],
        "model_version": ranking["model_version"],
        "source": ranking["source"],
        "clients": ranking["clients"],
    }


def _text(ranked: pl.DataFrame, schema: Schema) -> bytes:
    return movement.canonical(ranked[schema.id_column].cast(pl.String).to_list(), ranked[risk.PROBABILITY].to_list())


def exited_now(frame: pl.DataFrame, schema: Schema) -> pl.Series:
    """The corporations whose latest row in the ranked data says exited 1 (none without the target column); pure."""
    if schema.target not in frame.columns:
        return pl.Series([], dtype=pl.String)
    latest = frame.filter(pl.col(schema.id_column).is_last_distinct())
    return latest.filter(pl.col(schema.target) == 1)[schema.id_column].cast(pl.String)


def _previous(db: Path, source: str, digest: str, before: int | None) -> RankingWithRows | None:
    try:
        found = ranking_store.previous_ranking(db, source, digest, before)
    except (sqlite3.Error, OSError) as exc:
        log.error("could not read the previous ranking from %s: %s; the list shows no movement", db, exc)
        return None
    return found


def compare(
    ranked: pl.DataFrame,
    frame: pl.DataFrame | None,
    schema: Schema,
    previous: RankingWithRows | None,
    ranking_id: int | None,
    *,
    ranked_at: str,
    kind: str,
    source: str,
    model_version: str,
) -> Compared:
    """`ranked` with its movement against `previous` (a kept ranking with its rows, or None), and what changed among the
    clients of `frame` (the ranked data; None: movement only), with what changes.json says of this ranking (`ranking_id`
    None when it could not be kept); pure."""
    before = movement.positions(previous["rows"]) if previous else None
    moved = movement.with_movement(ranked, schema.id_column, risk.PROBABILITY, before)
    since: Movement = {}
    if before is not None and frame is not None:
        now = ranked.select(
            pl.col(schema.id_column).cast(pl.String).alias(movement.ID),
            pl.col(risk.RANK).alias(movement.RANK),
            pl.col(risk.PROBABILITY).round(movement.DECIMALS).alias(movement.PROBABILITY),
        )
        since = movement.what_changed(now, before, exited_now(frame, schema), risk.THRESHOLD)
    changes: Changes = {
        "previous": header(previous),
        **since,
        "ranking_id": ranking_id,
        "ranked_at": ranked_at,
        "kind": kind,
        "source": source,
        "model_version": model_version,
    }
    return Compared(moved, ranking_id, header(previous), changes)


def record(
    config: Config, ranked: pl.DataFrame, frame: pl.DataFrame, *, kind: str, source: str, model_version: str, run_started_at: str | None
) -> Compared:
    """Keep this ranking in the run history (pruning to keep_rankings) and compare it with the previous one.

    A history that cannot be written is logged, never fatal: the list is still written, compared with what can be read."""
    schema = schema_of(config)
    text = _text(ranked, schema)
    digest = movement.digest(text)
    at = layout.utc_now()
    ranking_id: int | None = None
    try:
        ranking_id = ranking_store.record_ranking(
            config.history_db,
            at=at,
            kind=kind,
            run_started_at=run_started_at,
            model_version=model_version,
            source=source,
            clients=len(ranked),
            digest=digest,
            rows=movement.pack(text),
            keep=config.keep_rankings,
        )
    except (sqlite3.Error, OSError) as exc:
        log.error("could not keep this ranking in the run history %s: %s", config.history_db, exc)
    previous = _previous(config.history_db, source, digest, ranking_id)
    return compare(ranked, frame, schema, previous, ranking_id, ranked_at=at, kind=kind, source=source, model_version=model_version)
