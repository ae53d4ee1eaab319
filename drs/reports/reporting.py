"""Reporting: one ranking of the active clients, and every file the views read of it (the report's assembly).

The plots are drawn by drs/reports/plots.py, the two indexed stores written by drs/reports/stores.py; this module
reads the inputs, ranks, and writes the rest in order, risklist.json last. The files and their meaning: docs/reports.md.

Writes to `output_model_path`, all with the deployed model:
  confusionmatrix.png  its confusion matrix on the test data (title: version and F1)
  reliability.png      its reliability curve on the test data (drs/model/calibration.py), with the Brier score
  risklist.csv         every active client of the latest ingested data (or of
                       `--input CSV`), ranked by exit probability, highest first
                       (see drs/reports/risk.py for "active" and "most recent row"), with its
                       movement since the previous ranking (drs/reports/rankings.py keeps each)
  risklist.sqlite      the same ranking, indexed, and clientrows.sqlite, each client's rows across
                       the ingested files: what the views read (drs/reports/riskstore.py)
  changes.json         what changed since the previous ranking (drs/reports/movement.py)
  risklist.json        which model ranked which data, when and why (drs/reports/standing.py), written last
  riskdistribution.png histogram of the active clients' exit probabilities
  trends.png           F1 of every deployment, and the drift decisions over time
  report.pdf           one page each: model, clients at risk, data, operations, trends

Numbers come from production (deployment.json of each version), the run
history (runhistory.sqlite, read with indexed queries only, so a report costs
the same however old the history is), ingestionrecord.json and diagnostics.json;
fields added later to the run history are shown where known and listed as they are otherwise.

`refresh` is the one path that ranks: each event that changes the deployed model or the ingested data calls it
once (drs/pipeline/followup.py after a pipeline run, drs/pipeline/deploy.py after a deployment by hand or a rollback, ingestion.py),
and every view reads what it wrote (drs/reports/standing.py).
"""

from __future__ import annotations

import csv
import logging
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypedDict

import polars as pl

from drs.core import layout
from drs.core.errors import DataError, DeploymentError, StageError
from drs.core.fileio import atomic_write_json, read_json
from drs.core.settings import Config
from drs.data import csvsafe
from drs.data.readers import read_csv_checked, read_polars_checked
from drs.data.schema import Schema, schema_of
from drs.history import runs as history
from drs.history.modelresults import ReliabilityReport
from drs.history.record import Outcome, RunRecord
from drs.model import calibration, explain
from drs.model.metrics import metrics
from drs.production import versions as production
from drs.production.versions import Deployment
from drs.reports import callsummary, callvalues, rankings, risk, riskstore, standing
from drs.reports.diagnostics import deployed_model, distinct, missing_percent, summarize
from drs.reports.pdf import Report, write_pdf
from drs.reports.plots import plot_confusion_matrix, plot_reliability, plot_risk_distribution, plot_trends
from drs.reports.reportparts import DataPart, Evaluation
from drs.reports.stores import Stores, source_files

log = logging.getLogger("reporting")
TOP_IN_REPORT = 20


class RankingRef(TypedDict):
    """The ranking a report wrote: its id in the run history, why it ranked, and the id of the one it is compared with."""

    id: int | None
    kind: str
    previous: int | None


class Reported(Evaluation):
    """What `run` wrote: the evaluation, then the risk list, the PDF, the trends plot and the ranking."""

    risk_list: str
    active_clients: int
    report: str
    pages: int
    trends: str
    ranking: RankingRef
    brier: float


def confusion_matrix_report(config: Config, loaded: tuple[Any, Deployment] | None = None) -> Evaluation:
    """Score the deployed model on the test data and draw its confusion matrix."""
    schema = schema_of(config)
    model, deployment = loaded or deployed_model(config)
    test = read_csv_checked(config.test_data_csv, schema, source=str(config.test_data_csv))
    result = metrics(model, test, schema)
    path = config.model_output(layout.CONFUSION_MATRIX)
    title = (
        f"Model {deployment.label} on {config.test_data_csv.name} ({result['rows']} clients)\n"
        f"F1 {result['f1']:.3f} · precision {result['precision']:.3f} · recall {result['recall']:.3f}"
    )
    plot_confusion_matrix(result["confusion_matrix"], title, path)
    log.info("wrote %s (model %s, F1 %.4f)", path, deployment.label, result["f1"])
    return {
        "f1": result["f1"],
        "precision": result["precision"],
        "recall": result["recall"],
        "accuracy": result["accuracy"],
        "rows": result["rows"],
        "confusion_matrix": result["confusion_matrix"],
        "version": deployment.label,
        "path": str(path),
    }


def reliability_report(config: Config, loaded: tuple[Any, Deployment]) -> ReliabilityReport:
    """The deployed model's reliability on the test data, measured now (as the confusion matrix is), and its plot."""
    schema = schema_of(config)
    model, deployment = loaded
    test = read_csv_checked(config.test_data_csv, schema, source=str(config.test_data_csv))
    record = calibration.of_model(model, test, schema)
    path = config.model_output(layout.RELIABILITY)
    plot_reliability(record, f"Model {deployment.label} on {config.test_data_csv.name}: Brier {record['brier']:.3f}", path)
    log.info("wrote %s (model %s, Brier %.4f)", path, deployment.label, record["brier"])
    return {**record, "path": str(path), "test_data": config.test_data_csv.name}


# ---- the risk list ------------------------------------------------------------------


def read_clients(path: Path, schema: Schema) -> pl.DataFrame:
    """A CSV of clients to rank, checked; the `exited` column is optional."""
    try:
        with open(path, newline="", encoding="utf-8-sig") as handle:
            header = [h.strip() for h in next(csv.reader(handle), [])]
    except (OSError, UnicodeDecodeError):
        header = []  # the checked read below names the problem
    return read_polars_checked(path, schema, require_target=schema.target in header, source=str(path), unlabelled=True)


def write_risk_list(ranked: pl.DataFrame, path: Path) -> None:
    """risklist.csv, rounded as the API gives it, through the writer of every CSV for people (drs/data/csvsafe.py):
    a header, `\n` line ends, quotes only where needed, an unknown value an empty cell."""
    csvsafe.write_polars(risk.rounded(ranked), path)


# ---- history and trends ---------------------------------------------------------------


@dataclass(frozen=True)
class RecentRuns:
    """What the report shows of the run history: every drift decision, the latest run that deployed, the last run."""

    drifts: list[history.DriftDecision]
    deployed: RunRecord | None
    last: RunRecord | None


def recent_runs(db: Path, current_run: RunRecord | None = None) -> RecentRuns:
    """Read with indexed queries, never the whole history; `current_run` (in progress, not yet recorded) counts as the newest."""
    extra: list[RunRecord] = [current_run] if current_run else []
    deployed = [r for r in [history.latest_run(db, [Outcome.DEPLOYED]), *extra] if r and r.get("outcome") == Outcome.DEPLOYED]
    return RecentRuns(
        drifts=history.drift_decisions([*history.drift_checked_runs(db), *extra]),
        deployed=deployed[-1] if deployed else None,
        last=current_run or history.latest_run(db),
    )


# ---- putting it together ----------------------------------------------------------------


def gather(
    config: Config,
    deployment: Deployment,
    evaluation: Evaluation,
    ranked: pl.DataFrame,
    source: str,
    source_rows: int,
    ingested: Any,
    runs: RecentRuns,
) -> Report:
    """The numbers the PDF shows (and the trends and distribution plots it embeds)."""
    schema = schema_of(config)
    deployments = production.deployment_rows(config.prod_deployment_folder)
    trends_png = config.model_output(layout.TRENDS)
    plot_trends(deployments, runs.drifts, trends_png)
    distribution_png = config.model_output(layout.RISK_DISTRIBUTION)
    plot_risk_distribution(ranked[risk.PROBABILITY], risk.THRESHOLD, distribution_png)
    diagnostics_json = read_json(config.model_output(layout.DIAGNOSTICS)) or {}
    timings = ((runs.deployed["details"] if runs.deployed else None) or {}).get("timings") or {}
    data: DataPart = {"source": config.final_data_csv.name, "ingestion": read_json(config.ingestion_record)}
    if ingested is not None:
        numeric = [c for c in (*schema.features, schema.target) if c in ingested.columns]
        data["rows"] = len(ingested)
        data["corporations"] = distinct(ingested, schema.id_column)
        data["summary"] = summarize(ingested, numeric)
        data["missing"] = missing_percent(ingested)
    return Report(
        generated_at=layout.utc_now(),
        model={**deployment.meta, "label": deployment.label},
        evaluation={**evaluation, "test_data": config.test_data_csv.name, "exits": int(sum(evaluation["confusion_matrix"][1]))},
        confusion_png=Path(evaluation["path"]),
        trends_png=trends_png,
        distribution_png=distribution_png,
        risk={
            "source": source,
            "rows": source_rows,
            "active": len(ranked),
            "above": risk.above(ranked, risk.THRESHOLD),
            "threshold": risk.THRESHOLD,
            "features": list(schema.features),
            "top": risk.as_records(ranked.head(TOP_IN_REPORT)),
        },
        data=data,
        operations={
            "timings": timings,
            "timings_run": runs.deployed,
            "execution_time": diagnostics_json.get("execution_time_seconds"),
            "diagnostics_at": diagnostics_json.get("computed_at"),
            "dependencies": diagnostics_json.get("dependencies"),
        },
        last_run=runs.last,
        drift=runs.drifts[-1] if runs.drifts else None,
        deployments=deployments,
    )


def refresh(config: Config, reason: str, current_run: RunRecord | None = None, fail: bool = True) -> dict[str, Any] | None:
    """Rank the current data with the deployed model once more after `reason` (an event that changed either), and
    write every file the views read; None when nothing is deployed or ingested yet (there is no list to rank).
    The answer is `run`'s, as the plain record the run history keeps of it.

    A refresh that fails raises StageError (`fail`), or is logged as an error: the views then say their list is stale."""
    if production.current(config.prod_deployment_folder) is None or not config.final_data_csv.exists():
        log.info("nothing deployed or ingested yet: no list to rank after %s", reason)
        return None
    try:
        return dict(run(config, current_run=current_run, reason=reason))
    except (StageError, DataError, DeploymentError, OSError, sqlite3.Error, riskstore.StoreError) as exc:
        if fail:
            raise StageError(f"after {reason}, the risk list could not be ranked again: {exc}") from None
        log.error("after %s, the risk list could not be ranked again: %s; the page and the API say their list is stale", reason, exc)
        return None


def run(config: Config, input_csv: Path | None = None, current_run: RunRecord | None = None, reason: str | None = None) -> Reported:
    """Write the confusion matrix, the risk list, the trends plot and the PDF report, and risklist.json naming them.

    `current_run` is the full-process run in progress (not yet in the history),
    so that the report shows the drift decision that led to this deployment.
    `reason` is the event that asked for this ranking (kept with it in the run history).
    """
    schema = schema_of(config)
    model, deployment = deployed_model(config)
    with Stores(config, schema) as stores:  # the client rows while the rest is computed
        return _run(config, schema, model, deployment, stores, input_csv, current_run, reason)


def _run(
    config: Config,
    schema: Schema,
    model: Any,
    deployment: Deployment,
    stores: Stores,
    input_csv: Path | None,
    current_run: RunRecord | None,
    reason: str | None,
) -> Reported:
    raw: Any = None  # inputs are read and checked before anything is written
    if input_csv is None:
        final = config.final_data_csv  # its identity before reading it: a change while reading shows as stale
        data = standing.data_identity(final) if final.exists() else {}
        raw, clients = risk.read_current(config, schema)
    else:
        if config.final_data_csv.exists():
            raw, _ = risk.read_current(config, schema)  # for the report's data page
        clients = read_clients(input_csv, schema)
        data = standing.data_identity(Path(input_csv))
    evaluation = confusion_matrix_report(config, (model, deployment))
    reliability = reliability_report(config, (model, deployment))

    reference = explain.deployed_reference(deployment, schema.features)
    if reference is None:
        log.warning(
            "%s records no reference for the reasons and has no training data to compute one: top_reason left empty", deployment.label
        )
    elif reference.source != explain.RECORDED:
        log.info("reasons measured against %s", reference.source)
    source = Path(input_csv).name if input_csv is not None else config.final_data_csv.name
    kind = reason or (rankings.DEPLOYMENT if current_run else rankings.REPORTING)
    started = current_run["started_at"] if current_run else None
    compared = rankings.record(
        config,
        risk.risk_list(model, clients, schema, reference),
        clients,
        kind=kind,
        source=source,
        model_version=deployment.label,
        run_started_at=started,
    )
    ranked = compared.ranked  # the risk list's columns, then previous_rank, rank_change, probability_change (drs/reports/movement.py)
    atomic_write_json(config.model_output(layout.CHANGES), compared.changes)
    risk_csv = config.model_output(layout.RISK_LIST)
    stores.ranking(ranked)
    write_risk_list(ranked, risk_csv)
    log.info("wrote %s: %d active clients of %s ranked, %d above %.1f", risk_csv, len(ranked), source, risk.above(ranked), risk.THRESHOLD)

    runs = recent_runs(config.history_db, current_run)
    report = gather(config, deployment, evaluation, ranked, source, len(clients), raw, runs)
    report.changes = compared.changes
    values = callvalues.write(config, source_files(config))  # what each client is worth, for the call queue (value_column)
    report.calls = callsummary.summary(config, ranked, values)  # the day's figures (drs/reports/callsummary.py)
    report.risk["named"] = standing.words({"model_version": deployment.label, "data": data})
    report.reliability, report.reliability_png = reliability, Path(reliability["path"])
    pdf = config.model_output(layout.REPORT_PDF)
    pages = write_pdf(report, pdf)
    log.info("wrote %s (%d pages, model %s)", pdf, pages, deployment.label)
    facts: standing.RefreshFacts = {
        "reason": kind,
        "active_clients": len(ranked),
        "above_half": risk.above(ranked),
        "ranking_id": compared.ranking_id,
    }
    stores.finish()
    standing.write(config, deployment, data, facts)
    return {
        **evaluation,
        "risk_list": str(risk_csv),
        "active_clients": len(ranked),
        "report": str(pdf),
        "pages": pages,
        "trends": str(report.trends_png),
        "ranking": {"id": compared.ranking_id, "kind": kind, "previous": compared.previous["id"] if compared.previous else None},
        "brier": reliability["brier"],
    }
