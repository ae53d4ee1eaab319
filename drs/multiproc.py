"""The folder where gunicorn's workers share their metrics (prometheus-client's multiprocess mode).

gunicorn.conf.py calls `prepare` in the master before any worker exists
(`on_starting`) and `worker_exited` when one ends (`child_exit`). Each worker
writes its counters and histograms to files of its own there; a scrape, served
by any worker, adds them all up. The folder is `output_folder_path/prometheus`
(drs.layout), owned by the project, emptied when the server starts so that one
server's counts never include an earlier one's.

prometheus-client chooses between in-memory and file-backed values once, when it
is first imported, from PROMETHEUS_MULTIPROC_DIR: so `prepare` sets the variable
before any worker imports it (the master never imports it before then; this
module imports it only inside `worker_exited`).
"""

from __future__ import annotations

import os
from pathlib import Path

from drs.errors import ConfigError
from drs.settings import load_config

ENV = "PROMETHEUS_MULTIPROC_DIR"
SUFFIX = ".db"  # prometheus-client's file names: counter_<pid>.db, histogram_<pid>.db, gauge_<mode>_<pid>.db


def folder_for(config_path: str | None) -> Path:
    """The metrics folder of the project `config_path` (DRS_CONFIG) names; ConfigError for a config that cannot be used."""
    return load_config(config_path or None).prometheus_folder


def empty(folder: Path) -> int:
    """Create `folder` or remove the metric files left in it; return how many were removed."""
    folder.mkdir(parents=True, exist_ok=True)
    removed = 0
    for entry in folder.iterdir():
        if entry.suffix == SUFFIX and entry.is_file():
            entry.unlink()
            removed += 1
    return removed


def prepare(config_path: str | None) -> str:
    """Empty the project's metrics folder and point PROMETHEUS_MULTIPROC_DIR at it; return what to log.

    A config that cannot be used leaves the variable unset (each worker then counts
    alone), and the workers' own start names the config's fault."""
    try:
        folder = folder_for(config_path)
    except ConfigError as exc:
        os.environ.pop(ENV, None)
        return f"metrics not shared between workers: {exc}"
    removed = empty(folder)
    os.environ[ENV] = str(folder)
    return f"metrics shared between workers in {folder} ({removed} file(s) of an earlier server removed)"


def worker_exited(pid: int) -> None:
    """Forget a dead worker's live gauges (its counters and histograms still count)."""
    if os.environ.get(ENV):
        from prometheus_client import multiprocess  # only now: after `prepare` set the folder

        multiprocess.mark_process_dead(pid)
