"""Full process: the job cron runs every 10 minutes.

1. New data? Files in `input_folder_path` that the deployed `ingestedfiles.txt`
   does not list and that were not already judged against the deployed model
   (or rejected with the same content). None: log it, record it, stop. This
   path imports no pandas or scikit-learn and takes milliseconds.
2. Ingest the input folder.
3. Drift: the deployed model's F1 on the new data (the rows of the new files
   it was not trained on), judged by the test `drift_test` in config.json
   (`raw`, the course's rule, by default; `parametric`; `nonparametric`, see
   drs/drift.py), and data drift per feature (KS test and PSI) against the
   copy of the data the deployed model was trained on.
4. Drift (or data drift with `data_drift_retrain`, or nothing deployed yet):
   retrain and rescore; the promotion gate deploys the candidate only if its
   F1 on the test data is not below the deployed model's on the same data by
   more than `promotion_min_improvement` allows (`--force-deploy` overrides);
   a candidate it refuses is kept under `candidates/`. After a deployment:
   diagnostics, reporting and API calls. No drift: say so, remember the files
   as judged, and leave production alone.

A kernel lock keeps two runs from overlapping: the second logs that a run is in
progress and exits 0. Every run, skipped ones included, appends one record to
the run history (`output_folder_path/runhistory.sqlite`).

Run as a script, the tick with nothing to do is answered by drs/quickcheck.py
before the imports below (about 50 ms instead of 110 ms here); every other case
runs `main`.
"""
from __future__ import annotations

import sys

if __name__ == "__main__":
    from drs.quickcheck import answered

    if answered(sys.argv[1:]):
        raise SystemExit(0)

# The imports below come after the quick answer, which must not pay for them (pyproject.toml exempts this file from E402).
import argparse
import dataclasses
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

from drs import drift as drift_rules
from drs import history, production
from drs.cli import StageError, run_main
from drs.config import Config
from drs.fileio import LockBusy, remove_stale_temporaries, run_lock
from drs.history import VERDICT_DEPLOYED, VERDICT_NO_DRIFT, VERDICT_NOT_PROMOTED, VERDICT_REJECTED
from drs.production import Deployment, utc_now
from drs.quickcheck import DEPLOYED_BY, FINISHED_OUTCOMES, NO_NEW_DATA, no_new_data_message

if TYPE_CHECKING:
    import pandas as pd
    import polars as pl

    from drs import reference

log = logging.getLogger("fullprocess")



@dataclass
class RunReport:
    """What one run did; becomes one row of the run history."""

    started_at: str = field(default_factory=utc_now)
    outcome: str = "failed"
    message: str = ""
    deployed_version: int | None = None
    details: dict[str, Any] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)

    def timed(self, name: str, work: Callable[[], Any]) -> Any:
        started = time.perf_counter()
        try:
            return work()
        finally:
            self.timings[name] = round(time.perf_counter() - started, 4)


def find_new_files(config: Config, deployment: Deployment | None, retry_not_promoted: bool = False) -> list[Path]:
    """Source files that still need a verdict; cheap: a listing, one history query, hashes only for touched files.

    `retry_not_promoted` (--force-deploy) treats files whose candidate the gate refused as new again.
    """
    from ingestion import list_source_files

    deployed_names = set(deployment.ingested_files()) if deployment else set()
    keys, hashes = history.judged_files(
        history.seen_files(config.history_db), deployment.version if deployment else None, retry_not_promoted
    )
    folder = str(config.input_folder)
    return [
        path for path in list_source_files(config.input_folder)
        if path.name not in deployed_names and history.needs_verdict(str(path), folder, keys, hashes)
    ]


def seen_entries(records: list[Any], verdict_of: Callable[[Any], str], judged_against: int | None) -> list[dict[str, Any]]:
    return [
        {
            "name": r.name, "sha256": r.sha256 or "", "size": r.size or 0, "mtime_ns": r.mtime_ns or 0,
            "verdict": verdict_of(r), "judged_against": judged_against, "reason": r.reason, "run_id": None,
            "seen_at": utc_now(),
        }
        for r in records
    ]


def training_data(config: Config, deployed: Deployment) -> "pl.DataFrame | None":
    """The copy of the data the deployed model was trained on (checksum verified), or None for a version deployed without one.

    A polars frame: it can hold millions of rows, and only `rows_in` and the per-feature tests read it."""
    from drs.schema import Schema, read_polars_checked

    if deployed.training_data_path is None:
        return None
    production.verify(deployed)
    return read_polars_checked(deployed.training_data_path, Schema.from_config(config))


def drift_reference(config: Config, deployed: Deployment) -> "reference.Reference | pl.DataFrame | None":
    """What the drift checks compare the new rows with: the version's summary of its training data when it has
    a usable one (checksum verified), else the training data itself (`training_data`)."""
    from drs import reference
    from drs.schema import Schema

    path = deployed.reference_path
    if path is not None:
        production.verify(deployed, skip=(production.TRAINING_DATA_FILE,))
        schema = Schema.from_config(config)
        summary = reference.read(path, schema.columns, config.features)
        if summary is not None:
            return summary
        log.info("%s/%s was built for other columns or another polars version; reading %s", deployed.label, path.name, production.TRAINING_DATA_FILE)
    return training_data(config, deployed)


def rows_in(frame: "pd.DataFrame | pl.DataFrame", other: "pd.DataFrame | pl.DataFrame", columns: list[str]) -> Any:
    """A boolean array: which rows of `frame` also appear, whole, in `other`; pure (exact; see drs.rowstore.rows_in)."""
    from drs.rowstore import rows_in as exact_rows_in

    return exact_rows_in(frame, other, columns)


def trained_on(reference: "reference.Reference | pl.DataFrame", frame: "pd.DataFrame", columns: list[str]) -> Any:
    """Which rows of `frame` the deployed model was trained on: by the summary's row hashes, or by value in its training data."""
    from drs.reference import Reference

    return reference.known(frame) if isinstance(reference, Reference) else rows_in(frame, reference, columns)


def new_data(config: Config, accepted_new: list[Any], reference: "reference.Reference | pl.DataFrame | None") -> tuple["pd.DataFrame", dict[str, Any]]:
    """The rows of the newly accepted files (de-duplicated) that the deployed model was not trained on."""
    from drs.schema import Schema
    from ingestion import combine, read_source_file

    schema = Schema.from_config(config)
    frames = []
    for record in accepted_new:
        frame, again = read_source_file(config.input_folder / record.name, config.input_folder, schema)
        if frame is None or again.sha256 != record.sha256:
            raise StageError(f"{record.name} changed during this run; it will be judged on the next run")
        frames.append(frame)
    frame, _ = combine(frames)
    info: dict[str, Any] = {"files": [r.name for r in accepted_new], "rows": len(frame), "rows_already_trained_on": None}
    if reference is not None:
        known = trained_on(reference, frame, list(schema.columns))
        info["rows_already_trained_on"] = int(known.sum())
        frame = frame[~known].reset_index(drop=True)
        info["rows"] = len(frame)
    return frame, info


def lineage_history(config: Config, deployed: Deployment) -> list[float]:
    """The F1 history of the deployed lineage: every deployment of the same trained model (same sha256,
    so a rollback or a re-deploy keeps its history) contributes its deployment score (F1 on the test data),
    then every F1 on new data that earlier full-process runs measured for that model, oldest first."""
    sha = deployed.model_sha256
    points = [d.score() for d in production.list_versions(config.prod_deployment_folder) if d.model_sha256 == sha]
    for run in history.runs(config.history_db):
        measured = run["details"].get("drift") or {}
        if run["kind"] == "fullprocess" and measured.get("model_sha256") == sha and "new_data_f1" in measured:
            points.append(float(measured["new_data_f1"]))
    return points


def drift_check(config: Config, deployed: Deployment, frame: "pd.DataFrame", settings: drift_rules.DriftSettings) -> dict[str, Any]:
    """The configured score test on the deployed model's F1 on the new rows."""
    from drs.schema import Schema
    from scoring import metrics

    model = production.load_model(deployed)
    new_f1 = metrics(model, frame, Schema.from_config(config))["f1"]
    verdict = drift_rules.score_drift(
        settings.drift_test, new_f1, deployed.score(), lineage_history(config, deployed), settings.min_history
    )
    return {**verdict, "deployed_version": deployed.label, "model_sha256": deployed.model_sha256, "new_rows": len(frame)}


def data_drift_check(
    config: Config, deployed: Deployment, reference: "reference.Reference | pl.DataFrame | None", frame: "pd.DataFrame"
) -> dict[str, Any]:
    """KS and PSI per feature between the deployed model's training data (or its summary) and the new rows."""
    if reference is None:
        return {"measured": False, "reason": f"{deployed.label} was deployed without a copy of its training data"}
    if frame.empty:
        return {"measured": False, "reason": "no new rows"}
    from drs.reference import Reference

    summarized = isinstance(reference, Reference)
    rows = reference.feature_drift(frame, config.features) if summarized else drift_rules.feature_drift(reference, frame, config.features)
    return {
        "measured": True, "reference": f"{deployed.label}/{production.TRAINING_DATA_FILE}", "features": rows,
        "summary": f"{deployed.label}/{production.REFERENCE_FILE}" if summarized else None, **drift_rules.data_drift_verdict(rows),
    }


def retrain(config: Config, report: RunReport) -> dict[str, Any]:
    """Train and score a candidate in the models folder; return its score record."""
    import scoring
    import training

    report.timed("training", lambda: training.run(config))
    scored = report.timed("scoring", lambda: scoring.run(config))
    report.details["new_model_test_f1"] = round(scored["f1"], 6)
    return scored


def gate(config: Config, deployed: Deployment, candidate: dict[str, Any], settings: drift_rules.DriftSettings, forced: bool) -> dict[str, Any]:
    """Score the deployed model on the test data the candidate was scored on and decide.

    The comparison is fair only if neither model was trained on the test rows: how many test rows appear
    in each model's training data is counted, recorded and warned about (None: no copy to check against).
    """
    from drs.schema import Schema, read_csv_checked, read_polars_checked
    from scoring import metrics

    schema = Schema.from_config(config)
    test = read_csv_checked(config.test_data_csv, schema, source=str(config.test_data_csv))
    overlap = {}
    for whose, data in (("candidate", read_polars_checked(config.final_data_csv, schema)), ("deployed", drift_reference(config, deployed))):
        overlap[whose] = None if data is None else int(trained_on(data, test, list(schema.columns)).sum())
        if overlap[whose]:
            log.warning("the gate's evaluation data is not independent: %d test row(s) are in the %s model's training data", overlap[whose], whose)
    deployed_f1 = metrics(production.load_model(deployed), test, schema)["f1"]
    decision = drift_rules.promotion_decision(candidate["f1"], deployed_f1, settings.promotion_min_improvement, forced)
    comparison = (
        f"candidate F1 {decision['candidate_f1']:.4f} vs deployed {deployed.label} {decision['deployed_f1']:.4f}"
        f" on {config.test_data_csv.name} ({len(test)} rows): improvement {decision['improvement']:+.4f}"
        f" {'>=' if decision['passes'] else '<'} minimum {decision['min_improvement']:.4f}"
    )
    if decision["passes"]:
        decision["reason"] = f"{comparison} -> promoted"
    elif decision["forced"]:
        decision["reason"] = f"{comparison} -> deployed anyway: forced by --force-deploy"
    else:
        decision["reason"] = f"{comparison} -> not promoted; {deployed.label} stays deployed"
    return {
        **decision, "deployed_version": deployed.label, "evaluation_data": str(config.test_data_csv),
        "evaluation_rows": len(test), "evaluation_rows_in_training_data": overlap,
    }


def deploy_candidate(config: Config, report: RunReport, reason: str) -> Deployment:
    import deployment as deployment_stage

    return report.timed("deployment", lambda: deployment_stage.deploy(config, {"reason": reason, "deployed_by": DEPLOYED_BY}))


def keep_candidate(config: Config, decision: dict[str, Any]) -> Path:
    import deployment as deployment_stage

    meta = {**deployment_stage.check_set(config), "gate": decision, "deployed_version": decision["deployed_version"]}
    return production.keep_candidate(config.prod_deployment_folder, deployment_stage.model_set(config), meta)


def after_deploy(config: Config, report: RunReport) -> None:
    """Diagnostics, reporting and API calls; an API that is down is a warning, not a failed deployment."""
    import apicalls
    import diagnostics
    import reporting

    report.timed("diagnostics", lambda: diagnostics.run(config))
    in_progress = {"started_at": report.started_at, "outcome": report.outcome, "message": report.message,
                   "details": {**report.details, "timings": report.timings}}
    report.timed("reporting", lambda: reporting.run(config, current_run=in_progress))
    try:
        report.timed("apicalls", lambda: apicalls.run(config))
        report.details["apicalls"] = "done"
    except StageError as exc:
        log.warning("API calls skipped: %s", exc)
        report.details["apicalls"] = f"skipped: {exc}"


def checked_current(prod: Path) -> Deployment | None:
    """The current deployment, only if its files match the checksums recorded at deployment."""
    deployed = production.current(prod)
    if deployed is not None:
        try:
            production.verify(deployed, skip=production.LARGE_FILES)
        except production.DeploymentError as exc:
            raise production.DeploymentError(
                f"{exc}; refusing to use it (roll back with `python deployment.py --rollback` or redeploy)"
            ) from None
    return deployed


def unfinished(config: Config, deployed: Deployment) -> bool:
    """A deployment this job made whose run was killed before diagnostics, reporting and API calls were done."""
    return deployed.meta.get("deployed_by") == DEPLOYED_BY and not history.has_run(
        config.history_db, FINISHED_OUTCOMES, deployed.version
    )


def judge(config: Config, report: RunReport, deployed: Deployment, accepted_new: list[Any], settings: drift_rules.DriftSettings) -> str | None:
    """Run both drift checks, log and record them; return why to retrain, or None."""
    reference = report.timed("reference", lambda: drift_reference(config, deployed))
    frame, info = report.timed("new_data", lambda: new_data(config, accepted_new, reference))
    report.details["new_data"] = info
    log.info(
        "new rows: %d from %s%s", info["rows"], ", ".join(info["files"]),
        "" if info["rows_already_trained_on"] is None else f" ({info['rows_already_trained_on']} row(s) the deployed model was trained on left out)",
    )
    data = report.timed("data_drift", lambda: data_drift_check(config, deployed, reference, frame))
    report.details["data_drift"] = data
    if data["measured"]:
        log.info("data drift, %s vs the new rows (drift: KS p < %s; PSI > %s):", data["reference"], drift_rules.KS_ALPHA, drift_rules.PSI_THRESHOLD)
        for line in drift_rules.format_feature_table(data["features"]):
            log.info("  %s", line)
        log.info("data drift (%s in the same feature): %s", data["rule"], ", ".join(data["drifted_features"]) or "none")
    else:
        log.info("data drift not measured: %s", data["reason"])
    if frame.empty:
        log.info("no drift test: the new files hold only rows %s was trained on", deployed.label)
        return None
    score = report.timed("drift", lambda: drift_check(config, deployed, frame, settings))
    report.details["drift"] = score
    if score["fallback"]:
        log.warning("drift test %s falls back to raw: %s", score["requested_test"], score["fallback"])
    log.info("drift check (%s): %s %s", score["test"], deployed.label, drift_rules.describe_score_drift(score))
    if score["drift"]:
        return f"drift ({score['test']}): F1 {score['new_data_f1']:.4f} < {score['threshold']:.4f}"
    if data.get("drift"):
        if settings.data_drift_retrain:
            return f"data drift in {', '.join(data['drifted_features'])}"
        log.info("data drift alone does not retrain (data_drift_retrain is off)")
    return None


def process(config: Config, report: RunReport, force_deploy: bool = False) -> int:
    """One run under the lock; returns the exit code."""
    import ingestion

    try:
        settings = drift_rules.settings_from(config.raw, str(config.config_file))
    except drift_rules.SettingsError as exc:
        raise StageError(str(exc)) from None
    report.details["force_deploy"] = force_deploy
    prod = config.prod_deployment_folder
    production.clean_stale(prod)
    from drs import rowstore

    for folder in (config.output_folder, rowstore.folder(config.output_folder), config.output_model_folder):
        remove_stale_temporaries(folder)
    deployed = checked_current(prod)
    new_files = report.timed("check", lambda: find_new_files(config, deployed, retry_not_promoted=force_deploy))
    report.details["new_files"] = [p.name for p in new_files]
    if deployed is not None and not new_files and unfinished(config, deployed):
        log.warning("%s was deployed by a run that did not finish; doing its remaining steps", deployed.label)
        after_deploy(config, report)
        report.outcome, report.deployed_version = "completed deployment", deployed.version
        report.message = f"finished the deployment of {deployed.label} (diagnostics, reporting, API calls)"
        log.info("%s", report.message)
        return 0
    if deployed is not None and not new_files:
        report.outcome, report.deployed_version = NO_NEW_DATA, deployed.version
        report.message = no_new_data_message(str(config.input_folder), deployed.label)
        log.info("%s", report.message)
        return 0
    log.info("new data: %s", ", ".join(p.name for p in new_files) or "(none; nothing deployed yet)")

    result = report.timed("ingestion", lambda: ingestion.ingest(config))
    new_names = {p.name for p in new_files}
    new_records = [r for r in result.files if r.name in new_names]
    report.details["ingestion"] = {
        "files": [vars(r) for r in result.files], "rows_written": result.rows_written,
        "duplicates_dropped": result.duplicates_dropped,
    }
    rejected = [r for r in new_records if r.status == "rejected"]
    history.record_seen(config.history_db, seen_entries(rejected, lambda r: VERDICT_REJECTED, None))
    accepted_new = [r for r in new_records if r.status == "accepted"]

    if deployed is None:
        log.info("nothing deployed yet: training and deploying a first model")
        report.details["trigger"] = "first deployment"
        retrain(config, report)
        report.details["gate"] = {"promote": True, "reason": "first deployment: nothing deployed to compare with"}
        new = deploy_candidate(config, report, "first deployment")
    elif not accepted_new:
        report.outcome, report.deployed_version = "new files rejected", deployed.version
        report.message = f"new file(s) rejected: {', '.join(r.name for r in rejected)}; {deployed.label} stays deployed"
        log.warning("%s", report.message)
        return 0
    else:
        trigger = judge(config, report, deployed, accepted_new, settings)
        report.details["trigger"] = trigger
        if trigger is None:
            history.record_seen(config.history_db, seen_entries(accepted_new, lambda r: VERDICT_NO_DRIFT, deployed.version))
            report.outcome, report.deployed_version = "no drift", deployed.version
            score = report.details.get("drift")
            numbers = f" (F1 {score['new_data_f1']:.4f} >= {score['threshold']:.4f}, {score['test']})" if score else ""
            report.message = f"no drift: {deployed.label} stays deployed{numbers}"
            log.info("%s", report.message)
            return 0
        log.info("retraining: %s", trigger)
        candidate = retrain(config, report)
        decision = report.timed("gate", lambda: gate(config, deployed, candidate, settings, force_deploy))
        report.details["gate"] = decision
        log.log(logging.WARNING if decision["forced"] else logging.INFO, "promotion gate: %s", decision["reason"])
        if not decision["promote"]:
            kept = keep_candidate(config, decision)
            decision["kept_candidate"] = str(kept)
            history.record_seen(config.history_db, seen_entries(accepted_new, lambda r: VERDICT_NOT_PROMOTED, deployed.version))
            report.outcome, report.deployed_version = "not promoted", deployed.version
            report.message = f"candidate not promoted, {deployed.label} stays deployed; candidate kept in {kept}"
            log.info("%s", report.message)
            return 0
        new = deploy_candidate(config, report, f"{trigger}; {decision['reason']}")

    history.record_seen(config.history_db, seen_entries(accepted_new, lambda r: VERDICT_DEPLOYED, new.version))
    report.outcome, report.deployed_version = "deployed", new.version
    forced = " past the gate (--force-deploy)" if report.details["gate"].get("forced") else ""
    report.message = f"deployed {new.label}{forced} (F1 {new.score():.4f} on the test data)"
    log.info("%s", report.message)
    after_deploy(config, report)
    return 0


def record(config: Config, report: RunReport) -> None:
    try:
        history.append_run(
            config.history_db, started_at=report.started_at, finished_at=utc_now(), kind="fullprocess",
            outcome=report.outcome, message=report.message, deployed_version=report.deployed_version,
            details={**report.details, "timings": report.timings},
        )
    except Exception as exc:  # the history must never turn a good run into a crash
        log.error("could not append to the run history %s: %s", config.history_db, exc)


def run(config: Config, force_deploy: bool = False) -> int:
    """Take the lock and process; a run already in progress is logged, recorded and left alone."""
    report = RunReport()
    try:
        with run_lock(config.lock_file):
            try:
                return process(config, report, force_deploy)
            except Exception as exc:
                report.outcome, report.message = "failed", str(exc)
                raise
            finally:
                record(config, report)
    except LockBusy:
        report.outcome = "skipped: locked"
        report.message = f"another full-process run is in progress (lock {config.lock_file} is held); not starting"
        log.info("%s", report.message)
        record(config, report)
        return 0


def _arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--api-url", help="base URL of the API for the API calls (default: api_url in the config)")
    p.add_argument(
        "--force-deploy", action="store_true",
        help="deploy a retrained candidate even if the promotion gate refuses it (files whose candidate was refused are judged again)",
    )


def _body(config: Config, args: argparse.Namespace) -> int:
    if args.api_url:
        config = dataclasses.replace(config, api_url=args.api_url.rstrip("/"))
    return run(config, args.force_deploy)


def main(argv: list[str] | None = None) -> int:
    return run_main(__doc__.splitlines()[0], _body, argv, _arguments)


if __name__ == "__main__":
    raise SystemExit(main())
