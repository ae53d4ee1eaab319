"""Steps 3-6 of the full process (docs/architecture.md#the-full-process): ingest, judge, retrain, gate and deploy; step 7 is
drs/pipeline/followup.py, steps 1-2 drs/pipeline/run.py."""

from __future__ import annotations

import logging
from dataclasses import replace
from pathlib import Path

from drs.core.layout import utc_now
from drs.core.settings import Config
from drs.data.ingest import ingest
from drs.data.intake import FileRecord, Status
from drs.data.sources import file_notes
from drs.history import files as file_store
from drs.history.files import Verdict
from drs.history.record import Outcome, RunReport
from drs.history.results import FollowUp, GateDecision
from drs.model.scoring import score
from drs.model.training import train
from drs.pipeline.deploy import check_set, deploy, model_set
from drs.pipeline.gate import gate
from drs.pipeline.judge import judge
from drs.production import versions as production
from drs.production.versions import Deployment, DeploymentMeta
from drs.reports import standing

log = logging.getLogger("fullprocess")


def remember(config: Config, records: list[FileRecord], verdict: Verdict, judged_against: int | None) -> None:
    """Record the verdict on these files, so that later ticks do not judge them again."""
    file_store.record_seen(
        config.history_db,
        [
            {
                "name": r.name,
                "sha256": r.sha256 or "",
                "size": r.size or 0,
                "mtime_ns": r.mtime_ns or 0,
                "verdict": verdict,
                "judged_against": judged_against,
                "reason": r.reason,
                "run_id": None,
                "seen_at": utc_now(),
            }
            for r in records
        ],
    )


def ingest_new(config: Config, report: RunReport, new_files: list[Path]) -> list[FileRecord]:
    """Step 3: ingest the input folder; remember the new files it rejected; return the new files it accepted."""
    result = report.timed("ingestion", lambda: ingest(config, report.clock))
    new_names = {p.name for p in new_files}
    new_records = [r for r in result.files if r.name in new_names]
    report.ingestion = {
        "files": [vars(r) for r in result.files],
        "rows_written": result.rows_written,
        "duplicates_dropped": result.duplicates_dropped,
    }
    report.changed_files = result.changed
    report.resent = report.resent + result.resent
    report.repeats = result.repeats
    rejected = [r for r in new_records if r.status == Status.REJECTED]
    remember(config, rejected, Verdict.REJECTED, None)
    report.rejected = [r.name for r in rejected]
    return [r for r in new_records if r.status == Status.ACCEPTED and r.kept is None]


def retrain(config: Config, report: RunReport) -> float:
    """Step 5: train and score a candidate in the models folder; return its F1 on the test data."""
    report.timed("training", lambda: train(config))
    scored = report.timed("scoring", lambda: score(config))
    report.new_model_test_f1 = round(scored["f1"], 6)
    return float(scored["f1"])


def deploy_candidate(config: Config, report: RunReport, reason: str, decision: GateDecision) -> Deployment:
    meta: DeploymentMeta = {"reason": reason, "deployed_by": production.DEPLOYED_BY_PIPELINE}
    return report.timed("deployment", lambda: deploy(config, meta, decision.forced))


def keep_candidate(config: Config, decision: GateDecision) -> Path:
    """Keep a refused candidate beside production (never current), and only the newest `keep_candidates` of them."""
    meta = check_set(config)
    kept = production.keep_candidate(
        config.prod_deployment_folder, model_set(config), meta, decision.to_record(), decision.deployed_version
    )
    pruned = production.prune_candidates(config.prod_deployment_folder, config.keep_candidates)
    if pruned:
        log.info("removed %d older kept candidate(s) (keep_candidates is %d)", len(pruned), config.keep_candidates)
    return kept


def stop(report: RunReport, outcome: Outcome, message: str, version: int, warn: bool = False) -> None:
    """Finish the run with `message` and what it has to say about re-sent and repeating files."""
    notes = file_notes(report.resent, report.repeats)
    report.finish(outcome, "; ".join([message, *notes]), version)
    log.log(logging.WARNING if warn else logging.INFO, "%s", report.message)


def _rank_again(config: Config, report: RunReport, deployed: Deployment) -> None:
    """The deployed model ranks the data just ingested (drs/pipeline/followup.py; the reports' libraries load only now), unless
    the current ranking is already its ranking of this data (new files rejected, finaldata.csv as it was)."""
    if not standing.problems(config, standing.read(config), deployed):
        report.followup = FollowUp({"current": True})
        return
    from drs.pipeline.followup import after_ingestion

    after_ingestion(config, report)


def handle_new_files(config: Config, report: RunReport, deployed: Deployment | None, new_files: list[Path], force_deploy: bool) -> None:
    """Steps 3-7 for new files (or for a first deployment)."""
    log.info("new data: %s", ", ".join(p.name for p in new_files) or "(none; nothing deployed yet)")
    accepted_new = ingest_new(config, report, new_files)  # step 3
    if deployed is None:
        log.info("nothing deployed yet: training and deploying a first model")
        report.trigger = "first deployment"
        retrain(config, report)
        decision = GateDecision(promote=True, reason="first deployment: nothing deployed to compare with")
        report.gate = decision
        new = deploy_candidate(config, report, "first deployment", decision)
    elif not accepted_new:
        rejected = ", ".join(report.rejected or [])
        stop(
            report,
            Outcome.NEW_FILES_REJECTED,
            f"new file(s) rejected: {rejected}; {deployed.label} stays deployed",
            deployed.version,
            warn=True,
        )
        _rank_again(config, report, deployed)  # a changed file may have changed the list
        return
    else:
        judged = judge(config, report, deployed, accepted_new)  # step 4
        trigger = report.trigger = judged.trigger
        if trigger is None:
            remember(config, accepted_new, Verdict.NO_DRIFT, deployed.version)
            measured = judged.check
            numbers = ""
            if measured and not measured.measured:
                numbers = f" (score not measurable: {measured.reason})"
            elif measured:
                numbers = f" (F1 {measured.new_data_f1:.4f} >= {measured.threshold:.4f}, {measured.test})"
            stop(report, Outcome.NO_DRIFT, f"no drift: {deployed.label} stays deployed{numbers}", deployed.version)
            _rank_again(config, report, deployed)
            return
        log.info("retraining: %s", trigger)
        candidate_f1 = retrain(config, report)  # step 5
        decision = report.timed("gate", lambda: gate(config, deployed, candidate_f1, force_deploy))  # step 6
        report.gate = decision
        log.log(logging.WARNING if decision.forced else logging.INFO, "promotion gate: %s", decision.reason)
        if not decision.promote:
            kept = keep_candidate(config, decision)
            report.gate = replace(decision, kept_candidate=str(kept))
            remember(config, accepted_new, Verdict.NOT_PROMOTED, deployed.version)
            stop(
                report,
                Outcome.NOT_PROMOTED,
                f"candidate not promoted, {deployed.label} stays deployed; candidate kept in {kept}",
                deployed.version,
            )
            _rank_again(config, report, deployed)
            return
        new = deploy_candidate(config, report, f"{trigger}; {decision.reason}", decision)
    remember(config, accepted_new, Verdict.DEPLOYED, new.version)
    forced = " past the gate (--force-deploy)" if decision.forced else ""
    stop(report, Outcome.DEPLOYED, f"deployed {new.label}{forced} (F1 {new.score():.4f} on the test data)", new.version)
    # Step 7. The reports' libraries (matplotlib, reportlab, requests) load only now: runs that deploy nothing never pay for them.
    from drs.pipeline.followup import after_deploy

    after_deploy(config, report)
