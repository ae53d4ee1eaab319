"""The full process cron runs every 10 minutes (`fullprocess.py`): steps 1-2 (prepare; is there new data?) under
the run lock, and the run's record at the end. The steps are stated once, in docs/architecture.md#the-full-process;
steps 3-6 are drs/pipeline/retrain.py (imported only once there is new data, so the tick that finds nothing imports
no pandas, numpy, scipy, scikit-learn, polars or matplotlib), step 7 drs/pipeline/followup.py. Every run, skipped
ones included, appends one row to the run history (drs/history/runs.py).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

from drs.alerts import notify
from drs.core.errors import DeploymentError
from drs.core.fileio import LockBusy, describe_holder, remove_stale_temporaries, run_lock
from drs.core.layout import LARGE_FILES, ROWSTORE_DIR
from drs.core.settings import Config
from drs.data.sources import (
    GONE,
    file_notes,
    files_needing_verdict,
    list_ready_files,
    mark_removed,
    resent_line,
    touched_again,
    waiting_line,
)
from drs.history import runs as history
from drs.history.record import FINISHED_DEPLOYMENT, Outcome, Resent, RunReport
from drs.production import versions as production
from drs.production.versions import Deployment

log = logging.getLogger("fullprocess")


def prepare(config: Config) -> Deployment | None:
    """Step 1: clean a killed run's leftovers (the lock is held), and return the current deployment if its files are whole."""
    production.clean_stale(config.prod_deployment_folder)
    for folder in (config.output_folder, config.output_folder / ROWSTORE_DIR, config.kept_sources_folder, config.output_model_folder):
        remove_stale_temporaries(folder)
    deployed = production.current(config.prod_deployment_folder)
    if deployed is not None:
        try:
            production.verify(deployed, skip=LARGE_FILES)
        except DeploymentError as exc:
            raise DeploymentError(
                f"{exc}; refusing to use it (roll back with `python deployment.py --rollback` or redeploy with `python deployment.py --force`)"
            ) from None
    return deployed


@dataclass(frozen=True)
class SourceCheck:
    """Step 2's result: the files that need a verdict, and what the run tells about the others."""

    needing: list[Path]
    waiting: list[str] = field(default_factory=list)  # not settled yet
    gone: list[str] = field(default_factory=list)  # removed from the source folder (their rows are kept)
    resent: list[Resent] = field(default_factory=list)  # sent again unchanged (drs/data/sources.py touched_again)

    def notes(self) -> list[str]:
        """What a run with no new data says about the other files."""
        notes = [f"waiting for {name} to settle" for name in self.waiting]
        notes += [f"{name} removed (its rows are kept)" for name in self.gone]
        return notes + file_notes(self.resent, [])


def new_source_files(config: Config, report: RunReport, deployed: Deployment | None, retry_not_promoted: bool) -> SourceCheck:
    """Step 2: settled source files that still need a verdict (`retry_not_promoted`, --force-deploy: the gate's refusals too)."""
    listing = list_ready_files(config.input_folder, config.settle_seconds, report.clock, config.self_written_record)
    for name in listing.waiting:
        log.info("%s", waiting_line(name, config.settle_seconds))
    removed = mark_removed(config.ingestion_record, config.input_folder, {p.name for p in listing.ready} | set(listing.waiting), GONE)
    for entry in removed:
        log.warning("%s was removed from %s; its %s ingested row(s) are kept", entry["name"], config.input_folder, entry.get("rows_read"))
    needing = files_needing_verdict(
        listing.ready,
        config.input_folder,
        config.history_db,
        deployed.trained_on() if deployed else {},
        deployed.version if deployed else None,
        retry_not_promoted,
    )
    resent = touched_again(config.arrivals_record, config.input_folder, [p for p in listing.ready if p not in needing])
    for again in resent:
        log.warning("%s", resent_line(again))
    return SourceCheck(needing, listing.waiting, [entry["name"] for entry in removed], resent)


def unfinished(config: Config, deployed: Deployment) -> bool:
    """A deployment this job made whose run was killed before diagnostics, reporting and API calls were done."""
    return deployed.meta.get("deployed_by") == production.DEPLOYED_BY_PIPELINE and not history.has_run(
        config.history_db, FINISHED_DEPLOYMENT, deployed.version
    )


def process(config: Config, report: RunReport, force_deploy: bool = False) -> None:
    """One run under the lock: the steps of docs/architecture.md#the-full-process."""
    report.force_deploy = force_deploy
    deployed = prepare(config)
    if config.source_database_url:  # SQLAlchemy and the driver only when a database is configured
        from drs.data.dbsource import fetch

        report.database = report.timed("database", lambda: fetch(config).summary())
    checked = report.timed("check", lambda: new_source_files(config, report, deployed, force_deploy))
    new_files = checked.needing
    report.waiting, report.gone_files, report.resent = checked.waiting, checked.gone, checked.resent
    report.new_files = [p.name for p in new_files]
    if deployed is not None and not new_files and not unfinished(config, deployed):
        also = "".join(f"; {note}" for note in checked.notes())
        report.finish(
            Outcome.NO_NEW_DATA, f"no new data in {config.input_folder.name}{also}; {deployed.label} stays deployed", deployed.version
        )
        log.info("%s", report.message)
        return
    if deployed is None and not new_files and checked.waiting:
        report.finish(Outcome.NO_NEW_DATA, f"nothing deployed yet; waiting for {', '.join(checked.waiting)} to settle", None)
        log.info("%s", report.message)
        return
    # Steps 3-7 need pandas, polars and scikit-learn: imported only here, so the tick with nothing new never loads them.
    if deployed is not None and not new_files:
        from drs.pipeline.followup import finish_deployment

        finish_deployment(config, report, deployed)
    else:
        from drs.pipeline.retrain import handle_new_files

        handle_new_files(config, report, deployed, new_files, force_deploy)


def record(config: Config, report: RunReport) -> None:
    try:
        history.record_run(config.history_db, report)
    except Exception as exc:  # the history must never turn a good run into a crash
        log.error("could not append to the run history %s: %s", config.history_db, exc)


def run(config: Config, force_deploy: bool = False) -> int:
    """Take the lock and process; a run already in progress is logged, recorded and left alone. Returns the exit code.

    Before its row is recorded, a run tells what it has to tell (drs/alerts/notify.py, drs/alerts/rules.py): at most one
    message, within notify_timeout_seconds, never changing the outcome."""
    started = notify.clock()
    report = RunReport()
    try:
        with run_lock(config.lock_file, script="fullprocess.py"):
            try:
                process(config, report, force_deploy)
            except Exception as exc:
                report.finish(Outcome.FAILED, str(exc), report.deployed_version)
                raise
            finally:
                notify.alert_run(config, report, started)
                record(config, report)
    except LockBusy as busy:
        message = f"another run is in progress: {describe_holder(busy.holder)} holds the lock {config.lock_file}; not starting"
        report.finish(Outcome.SKIPPED_LOCKED, message, None)
        log.info("%s", report.message)
        notify.alert_run(config, report, started)
        record(config, report)
    return 0
