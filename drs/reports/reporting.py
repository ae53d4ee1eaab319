"""Reporting: the confusion matrix, the ranked list of clients at risk, trends, and the PDF report.

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
import dataclasses
import json
import logging
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import seaborn as sns
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import FixedLocator, MaxNLocator

from drs.core import layout
from drs.core.errors import DataError, DeploymentError, StageError
from drs.core.fileio import atomic_output, atomic_write_json
from drs.core.formatting import threshold_of, when
from drs.core.settings import Config
from drs.data import csvsafe
from drs.data.schema import Schema, read_csv_checked, read_polars_checked
from drs.data.sources import recorded_files
from drs.history import runs as history
from drs.history.runs import Outcome
from drs.model import calibration, explain
from drs.model.metrics import metrics
from drs.production import versions as production
from drs.production.versions import Deployment
from drs.reports import callsummary, callvalues, rankings, risk, riskstore, standing
from drs.reports.diagnostics import deployed_model, distinct, missing_percent, summarize
from drs.reports.pdf import Report, write_pdf

log = logging.getLogger("reporting")
CLASS_NAMES = ["stayed (0)", "exited (1)"]
TOP_IN_REPORT = 20


def _save(fig: Figure, path: Path) -> None:
    """Save a figure atomically (a Figure without pyplot is freed with its last reference)."""
    fig.tight_layout()
    with atomic_output(path) as tmp:
        fig.savefig(tmp, format="png")


def plot_confusion_matrix(matrix: list[list[int]], title: str, path: Path) -> None:
    """Draw a 2x2 confusion matrix with seaborn and save it atomically."""
    fig = Figure(figsize=(5.6, 4.6), dpi=120)
    ax = fig.subplots()
    sns.heatmap(
        matrix,
        annot=True,
        fmt="d",
        cmap="Blues",
        cbar=True,
        square=True,
        ax=ax,
        xticklabels=CLASS_NAMES,
        yticklabels=CLASS_NAMES,
        annot_kws={"size": 14},
        cbar_kws={"label": "clients"},
    )
    colorbar = ax.collections[0].colorbar
    if colorbar is not None:  # cbar=True: always there
        colorbar.locator = MaxNLocator(integer=True)  # whole clients, also for a tiny test set
        colorbar.update_ticks()
    ax.set_xlabel("predicted")
    ax.set_ylabel("actual")
    ax.set_title(title, fontsize=10)
    _save(fig, path)


def confusion_matrix_report(config: Config, loaded: tuple[Any, Deployment] | None = None) -> dict[str, Any]:
    """Score the deployed model on the test data and draw its confusion matrix."""
    schema = Schema.from_config(config)
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
    return {**result, "version": deployment.label, "path": str(path)}


def plot_reliability(record: dict[str, Any], title: str, path: Path) -> None:
    """The reliability curve: each decile's mean predicted probability against the share that left, and the diagonal."""
    fig = Figure(figsize=(3.4, 3.7), dpi=150)
    ax = fig.subplots()
    ax.plot([0, 1], [0, 1], linestyle="--", color="#8a96a5", linewidth=1, label="80% means 8 in 10")
    deciles = record["deciles"]
    ax.plot(
        [d["mean_predicted"] for d in deciles],
        [d["observed_rate"] for d in deciles],
        marker="o",
        markersize=4,
        color="#1f3b5c",
        linewidth=1.4,
        label="the model, each tenth of the test clients",
    )
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ticks = [0, 0.25, 0.5, 0.75, 1]
    ax.xaxis.set_major_locator(FixedLocator(ticks))
    ax.yaxis.set_major_locator(FixedLocator(ticks))
    ax.set_xticklabels([f"{t:.0%}" for t in ticks], fontsize=7)
    ax.set_yticklabels([f"{t:.0%}" for t in ticks], fontsize=7)
    ax.set_xlabel("predicted exit probability", fontsize=8)
    ax.set_ylabel("share that left", fontsize=8)
    ax.set_title(title, fontsize=8)
    ax.set_aspect("equal")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=6.5, loc="upper center", bbox_to_anchor=(0.5, -0.2), ncol=1, frameon=False)  # below: no point hides it
    _save(fig, path)


def reliability_report(config: Config, loaded: tuple[Any, Deployment]) -> dict[str, Any]:
    """The deployed model's reliability on the test data, measured now (as the confusion matrix is), and its plot."""
    schema = Schema.from_config(config)
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


def source_files(config: Config) -> list[riskstore.SourceFile]:
    """The ingestion record's accepted files in arrival order, each with where to read it (its kept copy, else the
    input folder; None when neither is there) and its recorded sha256: the client views' rows over time."""
    found = []
    for entry in recorded_files(config.ingestion_record, config.input_folder):
        if entry.get("status") != "accepted":
            continue
        name = str(entry.get("name"))
        candidates = (config.kept_sources_folder / name, config.input_folder / name)
        path = next((p for p in candidates if p.is_file()), None)
        found.append(riskstore.SourceFile(name, path, entry.get("sha256"), int(entry.get("rows_read") or 0)))
    return found


PARALLEL_ROWS = 200_000  # from this many ingested rows, the stores are written by helper processes


class Stores:
    """Writes the two stores (drs/reports/riskstore.py): by a helper process (`python -m drs.reports.riskstore`) on the machine's
    other core when the data is large (their SQLite inserts were half of a refresh at a million clients, in one
    thread), else here and now. clientrows.sqlite starts at once (it needs only the ingestion); `ranking` adds
    risklist.sqlite; `finish` waits for both and raises what failed; leaving the block ends the helper."""

    def __init__(self, config: Config, schema: Schema):
        self.config, self.schema = config, schema
        files = source_files(config)
        self.helper = riskstore.Helper() if sum(f.rows for f in files) >= PARALLEL_ROWS else None
        self.pending: list[tuple[str, dict[str, Any] | None]] = []  # None: the helper's answer, still to read
        self._start(layout.CLIENT_ROWS, {"files": [riskstore.file_task(f) for f in files]})

    def _start(self, name: str, task: dict[str, Any]) -> None:
        task = {**task, "path": str(self.config.model_output(name)), "schema": dataclasses.asdict(self.schema)}
        if self.helper is None:
            self.pending.append((name, riskstore.run_task(task)))
            return
        self.helper.send(task)
        self.pending.append((name, None))

    def ranking(self, ranked: pl.DataFrame) -> None:
        counts = {"active_clients": ranked.height, "above_half": risk.above(ranked), "threshold": risk.THRESHOLD}
        if self.helper is None:
            self._start(layout.RISK_STORE, {"ranked": ranked, "counts": counts})
            return
        frame = self.config.model_output(f"{layout.TMP_PREFIX}ranked.arrow")  # removed by the helper, or by the next run
        ranked.write_ipc(frame)
        self._start(layout.RISK_STORE, {"ranked": str(frame), "counts": counts})

    def finish(self) -> None:
        """Wait until both stores are written (before risklist.json names them); raise what failed."""
        for name, facts in self.pending:
            self.tell(name, facts if facts is not None else self._answer())
        self.pending = []

    def _answer(self) -> dict[str, Any]:
        assert self.helper is not None
        return self.helper.result()

    def __enter__(self) -> Stores:
        return self

    def __exit__(self, *failed: object) -> None:
        if self.helper is not None:  # after a failure, one still writing is stopped (it removes its temporary file)
            self.helper.stop()

    def tell(self, name: str, facts: dict[str, Any]) -> None:
        path = self.config.model_output(name)
        for problem in facts.get("unreadable", []):
            log.warning("the client views show a file as unreadable: %s", problem)
        if name == layout.RISK_STORE:
            log.info("wrote %s: %d ranked clients", path, facts["active_clients"])
        elif facts["written"]:
            log.info("wrote %s: %d client rows read from the ingested files", path, facts["rows"])
        else:
            log.info("%s kept: it holds the rows of the same ingested files", path)


# ---- history and trends ---------------------------------------------------------------


@dataclass(frozen=True)
class RecentRuns:
    """What the report shows of the run history: every drift decision, the latest run that deployed, the last run."""

    drifts: list[dict[str, Any]]
    deployed: dict[str, Any] | None
    last: dict[str, Any] | None


def recent_runs(db: Path, current_run: dict[str, Any] | None = None) -> RecentRuns:
    """Read with indexed queries, never the whole history; `current_run` (in progress, not yet recorded) counts as the newest."""
    extra = [current_run] if current_run else []
    deployed = [r for r in [history.latest_run(db, [Outcome.DEPLOYED]), *extra] if r and r.get("outcome") == Outcome.DEPLOYED]
    return RecentRuns(
        drifts=history.drift_decisions(history.drift_checked_runs(db) + extra),
        deployed=deployed[-1] if deployed else None,
        last=current_run or history.latest_run(db),
    )


def _event_axis(ax: Axes, times: list[Any], what: str, labels: list[str] | None = None) -> None:
    """Events evenly spaced in order, labelled with their time (UTC); at most 8 labels.

    Evenly spaced, because a burst of runs seconds apart (`make run`) and cron
    runs days apart must both stay readable.
    """
    n = len(times)
    step = max(1, -(-n // 8))
    ticks = list(range(0, n, step))
    if ticks and ticks[-1] != n - 1 and n > 1:
        ticks[-1] = n - 1
    ax.xaxis.set_major_locator(FixedLocator(ticks))
    names = labels or [""] * n
    ax.set_xticklabels([(names[i] + "\n" if names[i] else "") + when(times[i]).replace(" ", "\n", 1) for i in ticks], fontsize=7.5)
    ax.set_xlim(-0.6, max(n - 1, 0) + 0.6)
    ax.set_xlabel(f"{what}, in order (time in UTC)")


def plot_trends(deployments: list[dict[str, Any]], drifts: list[dict[str, Any]], path: Path) -> None:
    """Two panels: F1 of each deployment, and each drift check's F1 against its threshold, in time order."""
    fig = Figure(figsize=(7.6, 6.4), dpi=130)
    top, bottom = fig.subplots(2, 1)
    scored = [d for d in deployments if d.get("f1") is not None]
    if scored:
        y = [float(d["f1"]) for d in scored]
        x = list(range(len(y)))
        top.plot(x, y, marker="o", color="#1f3b5c", linewidth=1.2)
        for xi, yi in zip(x, y, strict=True) if len(y) <= 12 else ():  # beyond that the labels would overlap
            top.annotate(f"{yi:.3f}", (xi, yi), textcoords="offset points", xytext=(0, 7), ha="center", fontsize=7.5)
        _event_axis(top, [d.get("deployed_at") for d in scored], "deployment", [d["label"] for d in scored])
    else:
        top.text(0.5, 0.5, "no deployment recorded", ha="center", va="center", transform=top.transAxes)
    top.set_title(f"F1 of each deployment on the test data ({len(scored)} deployments)", fontsize=10)
    top.set_ylabel("F1 (0 to 1)")

    usable = [d for d in drifts if d["check"].get("new_data_f1") is not None and threshold_of(d["check"]) is not None]
    if usable:
        x = list(range(len(usable)))
        new = [float(d["check"]["new_data_f1"]) for d in usable]
        ref = [float(threshold_of(d["check"])) for d in usable]
        bottom.vlines(
            x,
            [min(a, b) for a, b in zip(new, ref, strict=True)],
            [max(a, b) for a, b in zip(new, ref, strict=True)],
            color="#999999",
            linewidth=0.8,
        )
        bottom.scatter(
            x, ref, marker="_", s=260, linewidths=2, color="#333333", label="drift threshold (raw test: deployed model's recorded F1)"
        )
        for flag, colour, marker, label in (
            (True, "#b3261e", "X", "F1 on new data: drift"),
            (False, "#1e6b34", "o", "F1 on new data: no drift"),
        ):
            pts = [(xi, ni) for xi, ni, d in zip(x, new, usable, strict=True) if bool(d["check"].get("drift")) is flag]
            if pts:
                bottom.scatter([p[0] for p in pts], [p[1] for p in pts], marker=marker, s=60, color=colour, label=label, zorder=3)
        bottom.legend(fontsize=7.5, loc="lower left")
        _event_axis(
            bottom,
            [d["started_at"] for d in usable],
            "full-process run with a drift check",
            [d["check"].get("deployed_version") or "" for d in usable],
        )
    else:
        bottom.text(0.5, 0.5, "no drift check in the run history yet", ha="center", va="center", transform=bottom.transAxes)
    drifted = sum(1 for d in drifts if d["check"].get("drift"))
    unmeasured = sum(1 for d in drifts if d["check"].get("measured") is False)  # too few exits: no F1 to plot
    also = f", {unmeasured} not measurable" if unmeasured else ""
    bottom.set_title(f"Drift checks of the deployed model on new data: {len(drifts)} run(s), {drifted} found drift{also}", fontsize=10)
    bottom.set_ylabel("F1 (0 to 1)")
    for ax in (top, bottom):
        ax.set_ylim(0, 1.1)
        ax.grid(alpha=0.3)
    _save(fig, path)


def plot_risk_distribution(probabilities: Any, threshold: float, path: Path) -> None:
    """Histogram of the active clients' exit probabilities, with the threshold marked."""
    values = np.asarray(probabilities, dtype="float64")
    fig = Figure(figsize=(7.6, 2.5), dpi=130)
    ax = fig.subplots()
    ax.hist(values, bins=np.linspace(0, 1, 21).tolist(), color="#5b7fa6", edgecolor="white")
    count = int((values > threshold).sum())
    ax.axvline(threshold, color="#b3261e", linestyle="--", linewidth=1.2)
    ax.text(
        threshold + 0.01,
        0.95,
        f"{count:,} of {len(values):,} above {threshold:g}",
        color="#b3261e",
        transform=ax.get_xaxis_transform(),
        va="top",
        fontsize=8,
    )
    ax.set_xlim(0, 1)
    ax.set_title("Exit probability of the active clients", fontsize=10)
    ax.set_xlabel("exit probability (0 to 1)")
    ax.set_ylabel("clients")
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    ax.grid(alpha=0.3, axis="y")
    _save(fig, path)


def read_json(path: Path) -> dict[str, Any] | None:
    try:
        record: dict[str, Any] | None = json.loads(path.read_text(encoding="utf-8"))
        return record
    except (OSError, ValueError):
        return None


# ---- putting it together ----------------------------------------------------------------


def gather(
    config: Config,
    deployment: Deployment,
    evaluation: dict[str, Any],
    ranked: pl.DataFrame,
    scored_source: dict[str, Any],
    ingested: Any,
    runs: RecentRuns,
) -> Report:
    """The numbers the PDF shows (and the trends and distribution plots it embeds)."""
    schema = Schema.from_config(config)
    deployments = production.deployment_rows(config.prod_deployment_folder)
    trends_png = config.model_output(layout.TRENDS)
    plot_trends(deployments, runs.drifts, trends_png)
    distribution_png = config.model_output(layout.RISK_DISTRIBUTION)
    plot_risk_distribution(ranked[risk.PROBABILITY], risk.THRESHOLD, distribution_png)
    diagnostics_json = read_json(config.model_output(layout.DIAGNOSTICS)) or {}
    timings = ((runs.deployed or {}).get("details") or {}).get("timings") or {}
    data: dict[str, Any] = {"source": config.final_data_csv.name, "ingestion": read_json(config.ingestion_record)}
    if ingested is not None:
        numeric = [c for c in (*schema.features, schema.target) if c in ingested.columns]
        data.update(
            rows=len(ingested),
            corporations=distinct(ingested, schema.id_column),
            summary=summarize(ingested, numeric),
            missing=missing_percent(ingested),
        )
    return Report(
        generated_at=layout.utc_now(),
        model={**deployment.meta, "label": deployment.label},
        evaluation={**evaluation, "test_data": config.test_data_csv.name, "exits": int(sum(evaluation["confusion_matrix"][1]))},
        confusion_png=Path(evaluation["path"]),
        trends_png=trends_png,
        distribution_png=distribution_png,
        risk={
            **scored_source,
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


def refresh(config: Config, reason: str, current_run: dict[str, Any] | None = None, fail: bool = True) -> dict[str, Any] | None:
    """Rank the current data with the deployed model once more after `reason` (an event that changed either), and
    write every file the views read; None when nothing is deployed or ingested yet (there is no list to rank).

    A refresh that fails raises StageError (`fail`), or is logged as an error: the views then say their list is stale."""
    if production.current(config.prod_deployment_folder) is None or not config.final_data_csv.exists():
        log.info("nothing deployed or ingested yet: no list to rank after %s", reason)
        return None
    try:
        return run(config, current_run=current_run, reason=reason)
    except (StageError, DataError, DeploymentError, OSError, sqlite3.Error, riskstore.StoreError) as exc:
        if fail:
            raise StageError(f"after {reason}, the risk list could not be ranked again: {exc}") from None
        log.error("after %s, the risk list could not be ranked again: %s; the page and the API say their list is stale", reason, exc)
        return None


def run(
    config: Config, input_csv: Path | None = None, current_run: dict[str, Any] | None = None, reason: str | None = None
) -> dict[str, Any]:
    """Write the confusion matrix, the risk list, the trends plot and the PDF report, and risklist.json naming them.

    `current_run` is the full-process run in progress (not yet in the history),
    so that the report shows the drift decision that led to this deployment.
    `reason` is the event that asked for this ranking (kept with it in the run history).
    """
    schema = Schema.from_config(config)
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
    current_run: dict[str, Any] | None,
    reason: str | None,
) -> dict[str, Any]:
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
    started = (current_run or {}).get("started_at")
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
    report = gather(config, deployment, evaluation, ranked, {"source": source, "rows": len(clients)}, raw, runs)
    report.changes = compared.changes
    values = callvalues.write(config, source_files(config))  # what each client is worth, for the call queue (value_column)
    report.calls = callsummary.summary(config, ranked, values)  # the day's figures (drs/reports/callsummary.py)
    report.risk["named"] = standing.words({"model_version": deployment.label, "data": data})
    report.reliability, report.reliability_png = reliability, Path(reliability["path"])
    pdf = config.model_output(layout.REPORT_PDF)
    pages = write_pdf(report, pdf)
    log.info("wrote %s (%d pages, model %s)", pdf, pages, deployment.label)
    facts = {"reason": kind, "active_clients": len(ranked), "above_half": risk.above(ranked), "ranking_id": compared.ranking_id}
    stores.finish()
    standing.write(config, deployment, data, facts)
    return {
        **evaluation,
        "risk_list": str(risk_csv),
        "active_clients": len(ranked),
        "report": str(pdf),
        "pages": pages,
        "trends": str(report.trends_png),
        "ranking": {"id": compared.ranking_id, "kind": kind, "previous": (compared.previous or {}).get("id")},
        "brier": reliability["brier"],
    }
