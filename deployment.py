"""Deployment: put model, score and ingestion record into production as one set.

Copies `trainedmodel.pkl` and `latestscore.txt` (from `output_model_path`),
`ingestedfiles.txt` and the training data `finaldata.csv` (as `trainingdata.csv`,
the reference for data drift; from `output_folder_path`) and a summary of that data
(`trainingreference.npz`, drs/reference.py: what a drift check needs, so that it reads only the
new rows) into a new, numbered version
folder under `prod_deployment_path`, then switches `current` to it in one
rename (see drs/production.py). Before deploying it checks that the three
belong together: the score is the score of this model, and the model was
trained on the data this ingestion record describes.

    python deployment.py             deploy what is in the models folder
    python deployment.py --list      list versions and kept (not promoted) candidates
    python deployment.py --rollback [VERSION]   make an earlier version current
"""
from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path
from typing import Any

from drs import history, production
from drs.cli import StageError, run_main
from drs.config import Config
from drs.fileio import LockBusy, run_lock, sha256_file
from drs.production import Deployment, DeploymentError, utc_now

log = logging.getLogger("deployment")


def _read_json(path: Any, what: str) -> dict[str, Any]:
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise StageError(f"{path} does not exist; run {what} first") from None
    except ValueError as exc:
        raise StageError(f"{path} is not valid JSON: {exc}") from None


def check_set(config: Config) -> dict[str, Any]:
    """Refuse a set whose parts do not belong together; return the metadata to deploy with."""
    for path, what in ((config.model_pkl, "training.py"), (config.latest_score_txt, "scoring.py"), (config.ingested_files_txt, "ingestion.py")):
        if not path.exists():
            raise StageError(f"{path} does not exist; run {what} first")
    trained = _read_json(config.model_meta, "training.py")
    scored = _read_json(config.latest_score_txt.with_suffix(".json"), "scoring.py")
    model_sha = sha256_file(config.model_pkl)
    if scored.get("model_sha256") != model_sha:
        raise StageError(f"{config.latest_score_txt} is the score of another model than {config.model_pkl}; run scoring.py first")
    if trained.get("model_sha256") != model_sha:
        raise StageError(f"{config.model_meta} describes another model than {config.model_pkl}; run training.py again")
    if trained.get("ingestedfiles_sha256") != sha256_file(config.ingested_files_txt):
        raise StageError(
            f"{config.ingested_files_txt} changed after the model was trained; run training.py and scoring.py again"
        )
    if not config.final_data_csv.exists() or trained.get("finaldata_sha256") != sha256_file(config.final_data_csv):
        raise StageError(
            f"{config.final_data_csv} is not the data {config.model_pkl} was trained on; run training.py and scoring.py again"
        )
    return {
        "trained_at": trained.get("trained_at"),
        "training_rows": trained.get("training_rows"),
        "training_files": trained.get("training_files"),
        "settings": trained.get("settings"),
        "features": trained.get("features"),
        "score": {k: scored.get(k) for k in ("f1", "precision", "recall", "accuracy", "rows", "test_data", "scored_at")},
    }


def model_set(config: Config) -> dict[str, Any]:
    """The files that make one deployable set, by their production names."""
    return {
        production.MODEL_FILE: config.model_pkl,
        production.SCORE_FILE: config.latest_score_txt,
        production.INGESTED_FILE: config.ingested_files_txt,
        production.TRAINING_DATA_FILE: config.final_data_csv,
    }


def training_reference(config: Config) -> Path:
    """Summarize the training data for the drift checks (drs/reference.py), beside the model; returns the file."""
    from drs import reference
    from drs.schema import Schema, read_polars_checked

    schema = Schema.from_config(config)
    summary = reference.build(read_polars_checked(config.final_data_csv, schema), schema.columns, config.features)
    path = config.output_model_folder / production.REFERENCE_FILE
    reference.write(path, summary)
    return path


def deploy(config: Config, extra_meta: dict[str, Any] | None = None) -> Deployment:
    """Deploy the models folder's set with the training data's summary; the caller holds the run lock."""
    meta = {**check_set(config), **(extra_meta or {})}
    files = {**model_set(config), production.REFERENCE_FILE: training_reference(config)}
    deployment = production.publish(config.prod_deployment_folder, files, meta)
    log.info("deployed %s (F1 %.4f) to %s", deployment.label, deployment.score(), config.prod_deployment_folder)
    return deployment


def rollback(config: Config, version: int | None = None) -> Deployment:
    """Make `version` (default: the one before the current) current; the current stays if it cannot load."""
    prod = config.prod_deployment_folder
    now = production.current(prod)
    if version is None:
        earlier = [d.version for d in production.list_versions(prod) if now is None or d.version < now.version]
        if not earlier:
            raise StageError("there is no earlier deployment to roll back to")
        version = max(earlier)
    _check_loads(production.get(prod, version))
    target = production.activate(prod, version)
    log.info("rolled back from %s to %s", now.label if now else "nothing", target.label)
    pinned = pin_input_files(config, target)
    if pinned:
        log.info("the full process will not retrain on %s until new data arrives", ", ".join(pinned))
    history.append_run(
        config.history_db, started_at=utc_now(), finished_at=utc_now(), kind="rollback", outcome="rolled back",
        message=f"rolled back from {now.label if now else 'nothing'} to {target.label}", deployed_version=target.version,
        details={"from": now.version if now else None, "to": target.version, "pinned_files": pinned},
    )
    return target


def pin_input_files(config: Config, target: Deployment) -> list[str]:
    """Record the input folder's files as judged against `target`, so that the next cron run does not
    retrain on the very data the rolled-back version was replaced on and undo the rollback; a file
    that changes, or a new one, is judged as usual."""
    from ingestion import list_source_files

    if not config.input_folder.is_dir():
        return []
    known, entries = set(target.ingested_files()), []
    for path in list_source_files(config.input_folder):
        if path.name in known or not path.is_file():
            continue
        stat = path.stat()
        entries.append({
            "name": path.name, "sha256": sha256_file(path), "size": stat.st_size, "mtime_ns": stat.st_mtime_ns,
            "verdict": "rolled back", "judged_against": target.version, "reason": f"rolled back to {target.label}",
            "run_id": None, "seen_at": utc_now(),
        })
    history.record_seen(config.history_db, entries)
    return [e["name"] for e in entries]


def _check_loads(deployment: Deployment) -> None:
    try:
        production.load_model(deployment)
    except DeploymentError:
        raise
    except Exception as exc:  # an unpicklable file is a broken deployment, whatever the exception
        raise DeploymentError(f"deployment {deployment.label}: the model does not load ({type(exc).__name__}: {exc})") from None


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


def _arguments(p: argparse.ArgumentParser) -> None:
    group = p.add_mutually_exclusive_group()
    group.add_argument("--list", action="store_true", help="list deployed versions (* marks the current one)")
    group.add_argument("--rollback", nargs="?", const="previous", metavar="VERSION", help="make VERSION (default: the previous one) current")


def _parse_version(text: str) -> int:
    try:
        return int(text.lower().lstrip("v"))
    except ValueError:
        raise StageError(f"not a version: {text!r} (expected a number such as 3 or v0003)") from None


def _body(config: Config, args: argparse.Namespace) -> int:
    if args.list:
        print(format_versions(config))
        return 0
    try:
        with run_lock(config.lock_file, wait=False):
            if args.rollback:
                rollback(config, None if args.rollback == "previous" else _parse_version(args.rollback))
            else:
                deploy(config)
    except LockBusy:
        raise StageError("a full-process run is in progress; try again when it has finished") from None
    return 0


def main(argv: list[str] | None = None) -> int:
    return run_main(__doc__.splitlines()[0], _body, argv, _arguments)


if __name__ == "__main__":
    raise SystemExit(main())
