"""The cron tick that finds nothing new, answered before the full process's imports.

Nearly every one of the 52,560 runs a year finds no new file. `answered` does
what `fullprocess.py` does on that path (check the config, take the run lock,
check the deployed version against its checksums, list the input folder
against the deployed `ingestedfiles.txt` and the files already judged, append
one `no new data` row to the run history, log one line) with the standard
library's lightest modules: no argparse, logging, pathlib or dataclasses, and
nothing of pandas, numpy or scikit-learn. It answers only when it is sure;
anything else (another argument, a bad config, a lock held by another run, a
killed run's leftovers, a deployment to finish or that fails its checksums, a
new or changed file, any error) returns False and `fullprocess.main` runs and
says what it finds, exactly as without this module. Its rules are the stages'
own (drs.layout, drs.rawconfig, drs.history); tests/test_quickcheck.py checks
that both paths record and log the same.
"""
from __future__ import annotations

import json
import os
import sys
import time

from drs import history, layout, rawconfig

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

NO_NEW_DATA = "no new data"
DEPLOYED_BY = "fullprocess"
FINISHED_OUTCOMES = ("deployed", "completed deployment")
DRIFT_KEYS = ("drift_test", "drift_min_history", "data_drift_retrain", "promotion_min_improvement")
LOGGER = "fullprocess"


def no_new_data_message(input_folder: str, label: str) -> str:
    return f"no new data in {os.path.basename(input_folder)}; {label} stays deployed"


def config_argument(argv: list[str]) -> tuple[bool, str | None]:
    """(plain, config path): plain is False for any command line other than nothing or `--config FILE`."""
    if not argv:
        return True, None
    if len(argv) == 2 and argv[0] == "--config" and argv[1] and not argv[1].startswith("-"):  # argparse's rule
        return True, argv[1]
    if len(argv) == 1 and argv[0].startswith("--config=") and len(argv[0]) > len("--config="):
        return True, argv[0].split("=", 1)[1]
    return False, None


def log_line(level: str, message: str) -> str:
    """One line in drs.cli.LOG_FORMAT (`%(asctime)s %(levelname)s %(name)s: %(message)s`), as logging writes it."""
    now = time.time()
    stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(now))
    return f"{stamp},{int(now % 1 * 1000):03d} {level} {LOGGER}: {message}\n"


def current_deployment(prod: str) -> tuple[int, str, dict[str, Any]] | None:
    """(version, folder, deployment.json) of the version `current` names, if its files match their checksums."""
    link = os.path.join(prod, layout.CURRENT)
    try:
        folder = os.path.realpath(os.path.join(prod, os.readlink(link)))
    except OSError:
        return None
    version = layout.version_number(os.path.basename(folder))
    if version is None:
        return None
    with open(os.path.join(folder, layout.META_FILE), encoding="utf-8") as handle:
        meta = json.load(handle)
    if not isinstance(meta, dict) or layout.deployment_problem(folder, layout.version_label(version), meta, layout.LARGE_FILES):
        return None
    return version, folder, meta


def anything_new(input_folder: str, deployed_folder: str, history_db: str, version: int) -> bool:
    """Whether any source file still needs a verdict (the rule of fullprocess.find_new_files: history.needs_verdict)."""
    with open(os.path.join(deployed_folder, layout.INGESTED_FILE), encoding="utf-8") as handle:
        deployed = {line for line in handle.read().splitlines() if line.strip()}
    keys, hashes = history.judged_files(history.seen_files(history_db), version)
    return any(
        history.needs_verdict(os.path.join(input_folder, name), input_folder, keys, hashes)
        for name in os.listdir(input_folder)
        if layout.is_source_candidate(name) and name not in deployed
    )


def answered(argv: list[str]) -> bool:
    """Handle a tick with nothing to do and return True; False leaves the run to `fullprocess.main`."""
    plain, config_path = config_argument(argv)
    if not plain:
        return False
    try:
        return _nothing_to_do(rawconfig.config_file_path(config_path))
    except Exception:  # noqa: BLE001  any doubt: the full process runs and reports it properly
        return False


def _nothing_to_do(config_file: str) -> bool:
    raw = rawconfig.read(config_file)
    values = rawconfig.checked(raw, config_file)
    if any(key in raw for key in DRIFT_KEYS):
        from drs.drift import settings_from  # its checks are the full process's first step

        settings_from(raw, config_file)
    output, prod = values["output_folder_path"], values["prod_deployment_path"]
    started_at = layout.utc_now()
    try:
        lock = layout.acquire_lock(os.path.join(output, layout.LOCK_FILE))
    except layout.LockBusy:
        return False  # the full process records the skipped run
    try:
        stale_places = [output, os.path.join(output, layout.ROWSTORE_DIR), values["output_model_path"],
                        prod, os.path.join(prod, layout.VERSIONS), os.path.join(prod, layout.CANDIDATES)]
        if layout.has_stale_temporaries(stale_places):
            return False  # a killed run's leftovers: the full process removes them
        current = current_deployment(prod)
        if current is None:
            return False
        version, folder, meta = current
        db = os.path.join(output, layout.HISTORY_DB)
        if meta.get("deployed_by") == DEPLOYED_BY and not history.has_run(db, FINISHED_OUTCOMES, version):
            return False  # a killed run's deployment to finish
        began = time.perf_counter()
        if anything_new(values["input_folder_path"], folder, db, version):
            return False
        checked_in = round(time.perf_counter() - began, 4)
        message = no_new_data_message(values["input_folder_path"], layout.version_label(version))
        history.append_run(
            db, started_at=started_at, finished_at=layout.utc_now(), kind="fullprocess", outcome=NO_NEW_DATA,
            message=message, deployed_version=version,
            details={"force_deploy": False, "new_files": [], "timings": {"check": checked_in}, "quick": True},
        )
    finally:
        os.close(lock)
    try:  # the row is written: the tick is answered, whatever happens to its log line (stderr closed, disk full)
        sys.stderr.write(log_line("INFO", message))
        sys.stderr.flush()
    except Exception:  # noqa: BLE001  logging, in main(), swallows these too
        pass
    return True
