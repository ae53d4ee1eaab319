"""Deployment: put model, score and ingestion record into production as one set, roll back, list.

Copies `trainedmodel.pkl` and `latestscore.txt` (from `output_model_path`),
`ingestedfiles.txt` and the training data `finaldata.csv` (as `trainingdata.csv`,
the reference for data drift) and a summary of that data (`trainingreference.npz`,
drs/model/reference.py) into a new numbered version folder under `prod_deployment_path`,
then switches `current` to it in one rename (drs/production/versions.py). Before deploying
it checks that the three belong together: the score is the score of this model,
and the model was trained on the data this ingestion record describes.

Deployed by hand (`deployment.py`, `deploy_by_hand`), a set replaces the deployed
model only if it scores at least as well on the test data, unless forced; the full
process deploys through `deploy` and has its own gate (drs/pipeline/gate.py). A deployment by
hand and a rollback each leave a row in the run history and rank the list again
(drs/reporting.refresh), so the page, the API and the PDF describe the version in use.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from drs.alerts import notify
from drs.core import layout
from drs.core.errors import DeploymentError, StageError
from drs.core.fileio import sha256_file
from drs.core.layout import utc_now
from drs.core.settings import Config
from drs.core.stamps import FileStamp
from drs.data.intake import Status
from drs.data.readers import read_polars_checked
from drs.data.schema import schema_of
from drs.data.sources import list_source_files, recorded_files
from drs.history import audit
from drs.history import files as file_store
from drs.history import runs as history
from drs.history.files import SeenFile, Verdict
from drs.history.record import Outcome
from drs.model import reference
from drs.model.metrics import metrics
from drs.production import versions as production
from drs.production.versions import DeployedScore, Deployment, DeploymentMeta

log = logging.getLogger("deployment")


def _read_json(path: Path, what: str) -> dict[str, Any]:
    """A record the models folder's stage wrote (trainedmodel.json, latestscore.json), as parsed."""
    try:
        record = json.loads(path.read_text())
    except FileNotFoundError:
        raise StageError(f"{path} does not exist; run {what} first") from None
    except ValueError as exc:
        raise StageError(f"{path} is not valid JSON: {exc}") from None
    if not isinstance(record, dict):
        raise StageError(f"{path} is not a JSON object; run {what} again")
    return record


def ingested_stamps(config: Config) -> dict[str, FileStamp]:
    """Each accepted file's sha256, size and mtime_ns from the ingestion record, so that a later change is noticed."""
    return {
        f["name"]: {"sha256": f["sha256"], "size": f["size"], "mtime_ns": f["mtime_ns"]}
        for f in recorded_files(config.ingestion_record, config.input_folder)
        if f.get("status") == Status.ACCEPTED and f.get("sha256")
    }


def check_set(config: Config) -> DeploymentMeta:
    """Refuse a set whose parts do not belong together; return the metadata to deploy with."""
    for path, what in (
        (config.model_pkl, "training.py"),
        (config.latest_score_txt, "scoring.py"),
        (config.ingested_files_txt, "ingestion.py"),
    ):
        if not path.exists():
            raise StageError(f"{path} does not exist; run {what} first")
    trained = _read_json(config.model_meta, "training.py")
    scored = _read_json(config.latest_score_json, "scoring.py")
    model_sha = sha256_file(config.model_pkl)
    if scored.get("model_sha256") != model_sha:
        raise StageError(f"{config.latest_score_txt} is the score of another model than {config.model_pkl}; run scoring.py first")
    if trained.get("model_sha256") != model_sha:
        raise StageError(f"{config.model_meta} describes another model than {config.model_pkl}; run training.py again")
    if trained.get("ingestedfiles_sha256") != sha256_file(config.ingested_files_txt):
        raise StageError(f"{config.ingested_files_txt} changed after the model was trained; run training.py and scoring.py again")
    if not config.final_data_csv.exists() or trained.get("finaldata_sha256") != sha256_file(config.final_data_csv):
        raise StageError(f"{config.final_data_csv} is not the data {config.model_pkl} was trained on; run training.py and scoring.py again")
    score: DeployedScore = {  # each key present, None where latestscore.json lacks it
        "f1": scored.get("f1"),
        "precision": scored.get("precision"),
        "recall": scored.get("recall"),
        "accuracy": scored.get("accuracy"),
        "rows": scored.get("rows"),
        "confusion_matrix": scored.get("confusion_matrix"),
        "calibration": scored.get("calibration"),
        "test_data": scored.get("test_data"),
        "scored_at": scored.get("scored_at"),
    }
    return {
        "ingested": ingested_stamps(config),
        "trained_at": trained.get("trained_at"),
        "training_rows": trained.get("training_rows"),
        "training_files": trained.get("training_files"),
        "settings": trained.get("settings"),
        "features": trained.get("features"),
        "reference": trained.get("reference"),  # the training data's mean of each feature (drs/model/explain.py)
        "production_calibration": trained.get("production_calibration"),  # for the label-free estimate (drs/model/estimate.py)
        "score": score,
    }


def model_set(config: Config) -> dict[str, Path]:
    """The files that make one deployable set, by their production names."""
    return {
        layout.MODEL_FILE: config.model_pkl,
        layout.SCORE_FILE: config.latest_score_txt,
        layout.INGESTED_FILES: config.ingested_files_txt,
        layout.TRAINING_DATA_FILE: config.final_data_csv,
    }


def training_reference(config: Config) -> Path:
    """Summarize the training data for the drift checks (drs/model/reference.py), beside the model; returns the file."""
    schema = schema_of(config)
    summary = reference.build(read_polars_checked(config.final_data_csv, schema, unlabelled=True), schema.columns, config.features)
    path = config.model_output(layout.REFERENCE_FILE)
    reference.write(path, summary)
    return path


def deploy(config: Config, extra_meta: DeploymentMeta | None = None, forced: bool = False) -> Deployment:
    """Deploy the models folder's set with the training data's summary; the caller holds the run lock."""
    deployment = _publish(config, {**check_set(config), **(extra_meta or {})}, forced)
    log.info("deployed %s (F1 %.4f) to %s", deployment.label, deployment.score(), config.prod_deployment_folder)
    return deployment


def _publish(config: Config, meta: DeploymentMeta, forced: bool = False) -> Deployment:
    """Publish the checked set (`meta` from check_set) as a new version, make it current, and say so in the audit log."""
    files = {**model_set(config), layout.REFERENCE_FILE: training_reference(config)}
    new = production.publish(config.prod_deployment_folder, files, meta)
    by_pipeline = meta.get("deployed_by") == production.DEPLOYED_BY_PIPELINE
    action = audit.FORCED_DEPLOYMENT if forced else audit.DEPLOYED
    where = "full process" if by_pipeline else audit.command_line()
    details = {"version": new.version, "f1": new.score(), "reason": meta.get("reason", "by hand")}
    audit.record(config, production.DEPLOYED_BY_PIPELINE if by_pipeline else audit.os_user(), action, new.label, where, details)
    return new


def current_label(config: Config) -> str | None:
    """The deployed version's label, None when nothing is deployed (only then does `make run`'s practice pass run)."""
    now = production.current(config.prod_deployment_folder)
    return now.label if now else None


def compare_with_deployed(config: Config, score: DeployedScore, deployed: Deployment) -> tuple[float, float]:
    """(deployed F1, candidate F1) on config.test_data_csv: the candidate's from its latestscore.json (`score`,
    which scoring.py computed on that file), the deployed model scored now on the same file."""
    test_csv = config.test_data_csv
    candidate_f1 = score.get("f1")
    if score.get("test_data") != str(test_csv) or not isinstance(candidate_f1, int | float):
        raise StageError(f"{config.latest_score_json} does not score the model on {test_csv}; run scoring.py again")
    schema = schema_of(config)
    test = read_polars_checked(test_csv, schema, source=str(test_csv))  # the reader scoring.py used for the candidate
    return metrics(production.load_model(deployed), test, schema)["f1"], float(candidate_f1)


def deploy_by_hand(config: Config, force: bool = False) -> Deployment:
    """deployment.py: deploy the models folder's set, saying which version it replaces and the F1 change;
    refuse (unless `force`) a set that scores below the deployed model on the test data. The caller holds the run lock.

    Equal scores deploy (not worse is enough, as at the full process's gate by default). A deployed model that cannot
    be loaded cannot be compared: refused too, unless forced."""
    meta = check_set(config)
    prod = config.prod_deployment_folder
    try:
        deployed = production.current(prod)
        scores = None if deployed is None else compare_with_deployed(config, meta["score"], deployed)
    except DeploymentError as exc:
        if not force:
            raise StageError(f"{exc}; cannot compare the new set with it; nothing deployed (use --force to deploy it anyway)") from None
        log.warning("%s; deploying without comparing (--force)", exc)
        new = _publish(config, meta, forced=True)
        log.info("deployed %s (F1 %.4f, forced by --force) to %s", new.label, new.score(), prod)
        return new
    if deployed is None or scores is None:
        new = _publish(config, meta)
        log.info("deployed %s (F1 %.4f), the first version, to %s", new.label, new.score(), prod)
        return new
    deployed_f1, candidate_f1 = scores
    change, worse, test_name = candidate_f1 - deployed_f1, candidate_f1 < deployed_f1, config.test_data_csv.name
    if worse and not force:
        raise StageError(
            f"the new set scores F1 {candidate_f1:.4f} on {test_name}, below {deployed.label}'s {deployed_f1:.4f} ({change:+.4f});"
            " nothing deployed (use --force to deploy it anyway)"
        )
    new = _publish(config, meta, forced=worse)
    forced = " (forced by --force)" if worse else ""
    log.info(
        "deployed %s%s, replacing %s: F1 %.4f -> %.4f (%+.4f) on %s",
        new.label,
        forced,
        deployed.label,
        deployed_f1,
        candidate_f1,
        change,
        test_name,
    )
    return new


def record_by_hand(config: Config, before: Deployment | None, new: Deployment, forced: bool) -> None:
    """A row in the run history for a deployment by hand (kind `deployment`), as a rollback leaves one, so that the
    page's banner speaks of the version in use and not of an older run's deployment."""
    replaced = f", replacing {before.label}" if before else ""
    message = f"deployed {new.label} by hand{replaced}{' (--force)' if forced else ''} (F1 {new.score():.4f} on the test data)"
    details = {"from": before.version if before else None, "to": new.version, "by_hand": True, "force": forced}
    record_event(config, "deployment", Outcome.DEPLOYED, message, new, details)


def record_event(config: Config, kind: str, outcome: Outcome, message: str, now_current: Deployment, details: dict[str, Any]) -> None:
    """One run-history row for a change of production made outside a full-process run (by hand, a rollback)."""
    at = utc_now()
    history.append_run(
        config.history_db,
        started_at=at,
        finished_at=at,
        kind=kind,
        outcome=outcome,
        message=message,
        deployed_version=now_current.version,
        details=details,
    )


def rollback(config: Config, version: int | None = None) -> Deployment:
    """Make `version` (default: the one before the current) current; the current stays if it cannot load."""
    prod = config.prod_deployment_folder
    now = production.current(prod)
    if version is None:
        earlier = [d.version for d in production.list_versions(prod) if now is None or d.version < now.version]
        if not earlier:
            raise StageError("there is no earlier deployment to roll back to")
        version = max(earlier)
    production.load_model(production.get(prod, version))  # refuse a version whose model does not load
    target = production.activate(prod, version)
    log.info("rolled back from %s to %s", now.label if now else "nothing", target.label)
    pinned = pin_input_files(config, target)
    if pinned:
        log.info("the full process will not retrain on %s until new data arrives", ", ".join(pinned))
    details: dict[str, Any] = {"from": now.version if now else None, "to": target.version, "pinned_files": pinned}
    sent = notify.alert_rollback(config, now.label if now else None, target.label, pinned)
    if sent is not None:
        details["notifications"] = sent
    audit.record(config, audit.os_user(), audit.ROLLED_BACK, target.label, audit.command_line(), details)
    record_event(
        config, "rollback", Outcome.ROLLED_BACK, f"rolled back from {now.label if now else 'nothing'} to {target.label}", target, details
    )
    return target


def pin_input_files(config: Config, target: Deployment) -> list[str]:
    """Record the input folder's files as judged against `target`, so that the next cron run does not
    retrain on the very data the rolled-back version was replaced on and undo the rollback; a file
    that changes, or a new one, is judged as usual."""
    if not config.input_folder.is_dir():
        return []
    known = set(target.ingested_files())
    entries: list[SeenFile] = []
    for path in list_source_files(config.input_folder):
        if path.name in known or not path.is_file():
            continue
        stat = path.stat()
        entries.append(
            {
                "name": path.name,
                "sha256": sha256_file(path),
                "size": stat.st_size,
                "mtime_ns": stat.st_mtime_ns,
                "verdict": Verdict.ROLLED_BACK,
                "judged_against": target.version,
                "reason": f"rolled back to {target.label}",
                "run_id": None,
                "seen_at": utc_now(),
            }
        )
    file_store.record_seen(config.history_db, entries)
    return [e["name"] for e in entries]


def format_versions(config: Config) -> str:
    prod = config.prod_deployment_folder
    now = production.current(prod)
    lines = [f"{'':2}{'version':8} {'deployed at':26} {'F1':>8}  source files"]
    for d in production.list_versions(prod):
        mark = "* " if now and d.version == now.version else "  "
        f1 = d.meta.get("score", {}).get("f1")
        files = ", ".join(d.meta.get("training_files") or [])
        lines.append(f"{mark}{d.label:8} {d.meta.get('deployed_at', '?'):26} {f1 if f1 is None else format(f1, '8.4f'):>8}  {files}")
    if len(lines) == 1:
        lines.append("  (nothing deployed)")
    candidates = production.list_candidates(prod)
    if candidates:
        lines.append("kept candidates (not promoted by the gate; never current):")
        for c in candidates:
            gate = c.get("gate", {})
            lines.append(
                f"  {Path(c['folder']).name}  F1 {gate.get('candidate_f1', float('nan')):.4f} vs deployed"
                f" {c.get('deployed_version', '?')} {gate.get('deployed_f1', float('nan')):.4f}"
            )
    return "\n".join(lines)


def parse_version(text: str) -> int:
    """3 for `3`, `v3` or `v0003`."""
    try:
        return int(text.lower().lstrip("v"))
    except ValueError:
        raise StageError(f"not a version: {text!r} (expected a number such as 3 or v0003)") from None


def _current_or_none(config: Config) -> Deployment | None:
    try:
        return production.current(config.prod_deployment_folder)
    except DeploymentError:
        return None


def deploy_or_roll_back(config: Config, rollback_to: str | None, force: bool = False) -> Deployment:
    """Deploy the models folder's set by hand (`force`: even if it scores below the deployed model), or roll back
    (`rollback_to` "previous" or a version). The caller holds the run lock (deployment.py, through drs/core/cli.py),
    so no full-process run ranks in between the switch and the refresh."""
    from drs.reports import rankings, reporting  # the reports' libraries, only once something is deployed or rolled back

    if rollback_to is None:
        before = _current_or_none(config)
        target = deploy_by_hand(config, force)
        record_by_hand(config, before, target, force)
        reason = rankings.BY_HAND
    else:
        target = rollback(config, None if rollback_to == "previous" else parse_version(rollback_to))
        reason = rankings.ROLLBACK
    reporting.refresh(config, reason)
    return target
