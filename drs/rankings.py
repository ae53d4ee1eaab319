"""Every ranking kept in the run history, and each new one compared with the previous (drs/movement.py).

A ranking is recorded by
  `deployment`  the reports after a deployment (drs/followup.py -> drs/reporting.run with the run in progress)
  `reporting`   each `reporting.py` invocation (of finaldata.csv, or of `--input CSV`: that file's name is its source)
  `ingestion`   a full-process run whose ingestion changed the list without deploying (no drift, candidate not
                promoted, new files rejected): the deployed model ranks the new data; nothing else is written
Only the newest `keep_rankings` are kept (of every source together).

The previous ranking of a list: the newest kept ranking of the same source recorded before it whose list
differs from it (another client, order or probability). A ranking identical to the one before it (reporting.py
run twice, or a run that added only exited clients) is recorded, but is not a change: the list it follows is
compared with the last different one, so "what changed" never goes blank because nothing happened since.
`GET /risk` compares its list the same way, with the newest kept ranking of finaldata.csv that differs from it.
"""

from __future__ import annotations

import logging
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from drs import history, layout, movement, risk
from drs.history import RunReport
from drs.production import Deployment, load_model
from drs.schema import Schema
from drs.settings import Config

log = logging.getLogger("rankings")

DEPLOYMENT = "deployment"
REPORTING = "reporting"
INGESTION = "ingestion"
HEADER_FIELDS = ("id", "at", "kind", "model_version", "source", "clients")


@dataclass(frozen=True)
class Compared:
    """A ranked list with its movement columns, the ranking it was compared with, and what changed."""

    ranked: pd.DataFrame
    ranking_id: int | None
    previous: dict[str, Any] | None
    changes: dict[str, Any]


def header(ranking: dict[str, Any] | None) -> dict[str, Any] | None:
    """A kept ranking as answers and files name it: id, at, kind, model_version, source, clients."""
    return {k: ranking[k] for k in HEADER_FIELDS} if ranking else None


def _text(ranked: pd.DataFrame, schema: Schema) -> bytes:
    return movement.canonical(ranked[schema.id_column].astype(str).tolist(), ranked[risk.PROBABILITY].tolist())


def latest_status(frame: pd.DataFrame, schema: Schema) -> tuple[set[str], set[str]]:
    """(corporations whose latest row says exited 1, every corporation) of the ranked data; pure."""
    ids = frame[schema.id_column].astype(str)
    if schema.target not in frame.columns:
        return set(), set(ids)
    latest = frame.assign(_id=ids).drop_duplicates(subset=["_id"], keep="last")
    return set(latest["_id"][latest[schema.target] == 1]), set(ids)


def _previous(db: Path, source: str, digest: str, before: int | None) -> dict[str, Any] | None:
    try:
        return history.previous_ranking(db, source, digest, before)
    except (sqlite3.Error, OSError) as exc:
        log.error("could not read the previous ranking from %s: %s; the list shows no movement", db, exc)
        return None


def compare(
    ranked: pd.DataFrame, frame: pd.DataFrame | None, schema: Schema, previous: dict[str, Any] | None, ranking_id: int | None = None
) -> Compared:
    """`ranked` with its movement against `previous` (a kept ranking with its rows, or None), and what changed among the
    clients of `frame` (the ranked data; None: movement only); pure."""
    before = movement.unpack(previous["rows"]) if previous else None
    moved = movement.with_movement(ranked, schema.id_column, risk.PROBABILITY, before)
    changes: dict[str, Any] = {"previous": header(previous)}
    if before is not None and frame is not None:
        now = {
            str(c): (int(r), round(float(p), movement.DECIMALS))
            for c, r, p in zip(ranked[schema.id_column], ranked[risk.RANK], ranked[risk.PROBABILITY], strict=True)
        }
        exited, in_data = latest_status(frame, schema)
        changes.update(movement.what_changed(now, before, exited, in_data, risk.THRESHOLD))
    return Compared(moved, ranking_id, header(previous), changes)


def record(
    config: Config, ranked: pd.DataFrame, frame: pd.DataFrame, *, kind: str, source: str, model_version: str, run_started_at: str | None
) -> Compared:
    """Keep this ranking in the run history (pruning to keep_rankings) and compare it with the previous one.

    A history that cannot be written is logged, never fatal: the list is still written, compared with what can be read."""
    schema = Schema.from_config(config)
    text = _text(ranked, schema)
    digest = movement.digest(text)
    at = layout.utc_now()
    ranking_id: int | None = None
    try:
        ranking_id = history.record_ranking(
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
    compared = compare(ranked, frame, schema, _previous(config.history_db, source, digest, ranking_id), ranking_id)
    compared.changes.update(ranking_id=ranking_id, ranked_at=at, kind=kind, source=source, model_version=model_version)
    return compared


def compare_live(db: Path, ranked: pd.DataFrame, schema: Schema, source: str) -> Compared:
    """A list ranked on request (GET /risk) with its movement against the newest kept ranking of `source` that differs from it."""
    return compare(ranked, None, schema, _previous(db, source, movement.digest(_text(ranked, schema)), None))


def after_ingestion(config: Config, report: RunReport, deployed: Deployment) -> None:
    """A full-process run that ingested without deploying: keep the deployed model's ranking of the new data when it
    differs from the newest kept one of finaldata.csv. Never fails the run (its outcome is already decided)."""
    try:
        schema = Schema.from_config(config)
        _, frame = risk.read_ingested(config.final_data_csv, schema)
        ranked = risk.risk_list(load_model(deployed), frame, schema)
        digest = movement.digest(_text(ranked, schema))
        newest = history.newest_ranking(config.history_db, config.final_data_csv.name)
        if newest is not None and newest["digest"] == digest:
            report.details["ranking"] = {"id": newest["id"], "kind": newest["kind"], "recorded": False}
            return
        compared = record(
            config,
            ranked,
            frame,
            kind=INGESTION,
            source=config.final_data_csv.name,
            model_version=deployed.label,
            run_started_at=report.started_at,
        )
        report.details["ranking"] = {"id": compared.ranking_id, "kind": INGESTION, "recorded": compared.ranking_id is not None}
        log.info("kept the ranking of the new data by %s (%d active clients)", deployed.label, len(ranked))
    except Exception as exc:  # the run's outcome stands; the next deployment's list is compared with an older ranking
        log.warning("could not rank the new data for the run history: %s", exc)
        report.details["ranking"] = {"error": str(exc)}
