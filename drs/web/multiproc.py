"""The folder where gunicorn's workers share their metrics (prometheus-client's multiprocess mode).

gunicorn.conf.py calls `prepare` in the master before any worker exists
(`on_starting`) and `worker_exited` when one ends (`child_exit`). Each worker
writes its counters and histograms to files of its own there; a scrape, served
by any worker, adds them all up. The folder is `output_folder_path/prometheus/server-<master pid>`
(drs.core.layout), owned by the project: one per server, so that one server's counts never include
an earlier one's, and a second server started on the same project (on another port, or one that
fails to bind a port in use) never touches a live server's files. The folders of servers that
are gone are removed when the next one starts.

prometheus-client chooses between in-memory and file-backed values once, when it
is first imported, from PROMETHEUS_MULTIPROC_DIR: so `prepare` sets the variable
before any worker imports it (the master never imports it before then; this
module imports it only inside `worker_exited`). See docs/metrics.md#across-gunicorns-workers.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from drs.core.errors import ConfigError
from drs.core.settings import load_config

ENV = "PROMETHEUS_MULTIPROC_DIR"
SERVER_PREFIX = "server-"
SUFFIX = ".db"  # prometheus-client's file names: counter_<pid>.db, histogram_<pid>.db, gauge_<mode>_<pid>.db


def folder_for(config_path: str | None) -> Path:
    """The metrics folder of the project `config_path` (DRS_CONFIG) names; ConfigError for a config that cannot be used."""
    return load_config(config_path or None).prometheus_folder


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process: alive
        return True
    return True


def remove_dead_servers(base: Path) -> int:
    """Remove the folders of servers whose master is gone (and loose files of older layouts); return how many."""
    removed = 0
    for entry in base.iterdir():
        pid = entry.name.removeprefix(SERVER_PREFIX)
        if entry.is_dir() and entry.name.startswith(SERVER_PREFIX) and pid.isdigit() and not alive(int(pid)):
            shutil.rmtree(entry, ignore_errors=True)
            removed += 1
        elif entry.is_file() and entry.suffix == SUFFIX:
            entry.unlink()
            removed += 1
    return removed


def prepare(config_path: str | None, master_pid: int | None = None) -> str:
    """Give this server (the master calling it) a metrics folder of its own and point PROMETHEUS_MULTIPROC_DIR at it;
    return what to log.

    A config that cannot be used leaves the variable unset (each worker then counts
    alone), and the workers' own start names the config's fault."""
    try:
        base = folder_for(config_path)
    except ConfigError as exc:
        os.environ.pop(ENV, None)
        return f"metrics not shared between workers: {exc}"
    base.mkdir(parents=True, exist_ok=True)
    removed = remove_dead_servers(base)
    folder = base / f"{SERVER_PREFIX}{master_pid or os.getpid()}"
    shutil.rmtree(folder, ignore_errors=True)  # a reused pid's leftovers
    folder.mkdir()
    os.environ[ENV] = str(folder)
    return f"metrics shared between workers in {folder} ({removed} folder(s) of stopped servers removed)"


def worker_exited(pid: int) -> None:
    """Forget a dead worker's live gauges (its counters and histograms still count)."""
    if os.environ.get(ENV):
        from prometheus_client import multiprocess  # only now: after `prepare` set the folder

        multiprocess.mark_process_dead(pid)  # type: ignore[no-untyped-call]
