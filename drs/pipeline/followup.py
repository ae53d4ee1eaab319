"""Step 7 of the full process (drs/pipeline/run.py): after a deployment, diagnostics, reporting and API calls; after a run
that ingested without deploying, the deployed model's ranking of the new data (drs/reports/reporting.py's refresh)."""

from __future__ import annotations

import logging
from dataclasses import replace

from drs.core.errors import StageError
from drs.core.settings import Config
from drs.history.record import Outcome, RunReport
from drs.history.results import ApiCallFailure, FollowUp
from drs.production.versions import Deployment
from drs.reports import diagnostics, rankings, reporting
from drs.web import apicalls

log = logging.getLogger("fullprocess")


def after_deploy(config: Config, report: RunReport) -> None:
    """Step 7: diagnostics, reporting and API calls. Failed API calls do not undo the deployment, but the run's
    message, its follow-up record (`apicalls`, `apicalls_failures`) and its alert (drs/alerts/rules.py) say which call failed and why."""
    report.timed("diagnostics", lambda: diagnostics.run(config, measured=report.timings))  # not trained twice
    reported = report.timed("reporting", lambda: reporting.run(config, current_run=report.as_run(), reason=rankings.DEPLOYMENT))
    report.followup = done = FollowUp(dict(reported["ranking"]) if reported.get("ranking") else None)
    try:
        calls = report.timed("apicalls", lambda: apicalls.run(config))
        found, summary = calls.failures, calls.summary()
    except StageError as exc:  # no token could be read: no call was made
        found = [apicalls.Failure("apicalls", None, str(exc))]
        summary = f"failed: {exc}"
    report.followup = replace(done, apicalls=summary, apicalls_failures=[failure_record(f) for f in found])
    if found:
        report.message += f"; API calls {summary}"
        log.warning("the deployment stands, but the API calls %s", summary)


def failure_record(failure: apicalls.Failure) -> ApiCallFailure:
    return {"endpoint": failure.endpoint, "status": failure.status, "cause": failure.cause}


def finish_deployment(config: Config, report: RunReport, deployed: Deployment) -> None:
    """Step 7 for a deployment whose run was killed before it."""
    log.warning("%s was deployed by a run that did not finish; doing its remaining steps", deployed.label)
    message = f"finished the deployment of {deployed.label} (diagnostics, reporting, API calls)"
    report.finish(Outcome.COMPLETED_DEPLOYMENT, message, deployed.version)  # first, so the report shows this run as it ends
    after_deploy(config, report)
    log.info("%s", report.message)


def after_ingestion(config: Config, report: RunReport) -> None:
    """A run that ingested without deploying (no drift, not promoted, new files rejected): the deployed model ranks the
    new data once, and every view shows that list. Never fails the run (its outcome is already decided)."""
    try:
        reported = report.timed("reporting", lambda: reporting.refresh(config, rankings.INGESTION, current_run=report.as_run()))
        report.followup = FollowUp((reported or {}).get("ranking"))
    except Exception as exc:  # the views say their list is stale (drs/reports/standing.py) until the next refresh
        log.error("could not rank the new data: %s", exc)
        report.followup = FollowUp({"error": str(exc)})
