"""Full process: the job cron runs every 10 minutes.

1. New data? Files in `input_folder_path` that the deployed `ingestedfiles.txt`
   does not list and that were not already judged against the deployed model
   (or rejected with the same content). None: log it, record it, stop. This
   path imports no pandas or scikit-learn and takes milliseconds.
2. Ingest the input folder.
3. Drift: F1 of the deployed model on the new `finaldata.csv` below the
   deployed `latestscore.txt` means the model has drifted (the course's rule).
4. Drift (or nothing deployed yet): retrain, rescore, redeploy, then
   diagnostics, reporting and API calls. No drift: say so, remember the files
   as judged, and leave production alone.

A kernel lock keeps two runs from overlapping: the second logs that a run is in
progress and exits 0. Every run, skipped ones included, appends one record to
the run history (`output_folder_path/runhistory.sqlite`).
"""
from __future__ import annotations

import argparse
import dataclasses
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from drs import history, production
from drs.cli import StageError, run_main
from drs.config import Config
from drs.fileio import LockBusy, remove_stale_temporaries, run_lock, sha256_file
from drs.production import Deployment, utc_now

log = logging.getLogger("fullprocess")

VERDICT_REJECTED = "rejected"
VERDICT_NO_DRIFT = "no drift"
VERDICT_DEPLOYED = "deployed"


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


def find_new_files(config: Config, deployment: Deployment | None) -> list[Path]:
    """Source files that still need a verdict; cheap: a listing, one history query, hashes only for touched files."""
    from ingestion import list_source_files

    deployed_names = set(deployment.ingested_files()) if deployment else set()
    judged_keys: set[tuple[str, int, int]] = set()
    judged_hashes: set[tuple[str, str]] = set()
    for entry in history.seen_files(config.history_db):
        still_valid = entry["verdict"] == VERDICT_REJECTED or (
            deployment is not None and entry["judged_against"] == deployment.version
        )
        if still_valid:
            judged_keys.add((entry["name"], entry["size"], entry["mtime_ns"]))
            judged_hashes.add((entry["name"], entry["sha256"]))
    new = []
    for path in list_source_files(config.input_folder):
        if path.name in deployed_names:
            continue
        try:
            stat = path.stat()
        except OSError:
            new.append(path)  # a dangling link: ingestion will name the problem
            continue
        if (path.name, stat.st_size, stat.st_mtime_ns) in judged_keys:
            continue
        if path.is_file() and (path.name, sha256_file(path)) in judged_hashes:
            continue  # touched but unchanged
        new.append(path)
    return new


def seen_entries(records: list[Any], verdict_of: Callable[[Any], str], judged_against: int | None) -> list[dict[str, Any]]:
    return [
        {
            "name": r.name, "sha256": r.sha256 or "", "size": r.size or 0, "mtime_ns": r.mtime_ns or 0,
            "verdict": verdict_of(r), "judged_against": judged_against, "reason": r.reason, "run_id": None,
            "seen_at": utc_now(),
        }
        for r in records
    ]


def drift_check(config: Config, deployment: Deployment) -> dict[str, Any]:
    """The course's raw test: the deployed model's F1 on the new data below its recorded score."""
    from scoring import f1_on_ingested

    model = production.load_model(deployment)
    new_f1 = f1_on_ingested(config, model, deployment.meta["sha256"][production.MODEL_FILE])
    deployed_score = deployment.score()
    drift = new_f1 < deployed_score
    return {"test": "raw", "deployed_version": deployment.label, "new_data_f1": round(new_f1, 6), "deployed_score": deployed_score, "drift": drift}


def retrain_and_deploy(config: Config, report: RunReport, reason: str) -> Deployment:
    import deployment as deployment_stage
    import scoring
    import training

    report.timed("training", lambda: training.run(config))
    scored = report.timed("scoring", lambda: scoring.run(config))
    deployed = report.timed("deployment", lambda: deployment_stage.deploy(config, {"reason": reason}))
    report.details["new_model_test_f1"] = round(scored["f1"], 6)
    return deployed


def after_deploy(config: Config, report: RunReport) -> None:
    """Diagnostics, reporting and API calls; an API that is down is a warning, not a failed deployment."""
    import apicalls
    import diagnostics
    import reporting

    report.timed("diagnostics", lambda: diagnostics.run(config))
    report.timed("reporting", lambda: reporting.run(config))
    try:
        report.timed("apicalls", lambda: apicalls.run(config))
        report.details["apicalls"] = "done"
    except StageError as exc:
        log.warning("API calls skipped: %s", exc)
        report.details["apicalls"] = f"skipped: {exc}"


def process(config: Config, report: RunReport) -> int:
    """One run under the lock; returns the exit code."""
    import ingestion

    prod = config.prod_deployment_folder
    production.clean_stale(prod)
    for folder in (config.output_folder, config.output_model_folder):
        remove_stale_temporaries(folder)
    deployed = production.current(prod)
    new_files = report.timed("check", lambda: find_new_files(config, deployed))
    report.details["new_files"] = [p.name for p in new_files]
    if deployed is not None and not new_files:
        report.outcome, report.deployed_version = "no new data", deployed.version
        report.message = f"no new data in {config.input_folder.name}; {deployed.label} stays deployed"
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
        new = retrain_and_deploy(config, report, "first deployment")
    elif not accepted_new:
        report.outcome, report.deployed_version = "new files rejected", deployed.version
        report.message = f"new file(s) rejected: {', '.join(r.name for r in rejected)}; {deployed.label} stays deployed"
        log.warning("%s", report.message)
        return 0
    else:
        drift = report.timed("drift", lambda: drift_check(config, deployed))
        report.details["drift"] = drift
        log.info(
            "drift check (%s): %s F1 on the new data %.4f vs its latestscore %.4f -> %s",
            drift["test"], deployed.label, drift["new_data_f1"], drift["deployed_score"], "drift" if drift["drift"] else "no drift",
        )
        if not drift["drift"]:
            history.record_seen(config.history_db, seen_entries(accepted_new, lambda r: VERDICT_NO_DRIFT, deployed.version))
            report.outcome, report.deployed_version = "no drift", deployed.version
            report.message = f"no drift: {deployed.label} stays deployed (F1 {drift['new_data_f1']:.4f} >= {drift['deployed_score']:.4f})"
            return 0
        new = retrain_and_deploy(config, report, f"drift: F1 {drift['new_data_f1']:.4f} < {drift['deployed_score']:.4f}")

    history.record_seen(config.history_db, seen_entries(accepted_new, lambda r: VERDICT_DEPLOYED, new.version))
    report.outcome, report.deployed_version = "deployed", new.version
    report.message = f"deployed {new.label} (F1 {new.score():.4f} on the test data)"
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


def run(config: Config) -> int:
    """Take the lock and process; a run already in progress is logged, recorded and left alone."""
    report = RunReport()
    try:
        with run_lock(config.lock_file):
            try:
                return process(config, report)
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


def _body(config: Config, args: argparse.Namespace) -> int:
    if args.api_url:
        config = dataclasses.replace(config, api_url=args.api_url.rstrip("/"))
    return run(config)


def main(argv: list[str] | None = None) -> int:
    return run_main(__doc__.splitlines()[0], _body, argv, _arguments)


if __name__ == "__main__":
    raise SystemExit(main())
