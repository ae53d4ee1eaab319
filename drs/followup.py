"""Step 7 of the full process (drs/pipeline.py): after a deployment, diagnostics, reporting and API calls."""

from __future__ import annotations

import logging

from drs import apicalls, diagnostics, reporting
from drs.errors import StageError
from drs.history import Outcome, RunReport
from drs.production import Deployment
from drs.settings import Config

log = logging.getLogger("fullprocess")


def after_deploy(config: Config, report: RunReport) -> None:
    """Step 7: diagnostics, reporting and API calls; an API that is down is a warning, not a failed deployment."""
    report.timed("diagnostics", lambda: diagnostics.run(config))
    reported = report.timed("reporting", lambda: reporting.run(config, current_run=report.as_run()))
    report.details["ranking"] = reported.get("ranking")
    try:
        report.timed("apicalls", lambda: apicalls.run(config))
        report.details["apicalls"] = "done"
    except StageError as exc:
        log.warning("API calls skipped: %s", exc)
        report.details["apicalls"] = f"skipped: {exc}"


def finish_deployment(config: Config, report: RunReport, deployed: Deployment) -> None:
    """Step 7 for a deployment whose run was killed before it."""
    log.warning("%s was deployed by a run that did not finish; doing its remaining steps", deployed.label)
    message = f"finished the deployment of {deployed.label} (diagnostics, reporting, API calls)"
    report.finish(Outcome.COMPLETED_DEPLOYMENT, message, deployed.version)  # first, so the report shows this run as it ends
    after_deploy(config, report)
    log.info("%s", report.message)
