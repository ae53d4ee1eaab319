"""Promise 2, no overlap: a kernel lock (fcntl.flock) lets one full process work at a time;
the lock dies with its process, so a killed run never blocks the next one."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from collections.abc import Iterator

import pytest

from drs.core.fileio import run_lock
from drs.core.settings import Config
from drs.data.ingest import ingest
from drs.history import runs as history
from drs.production import versions as production
from tests.conftest import ROOT, run_script, tree_state
from tests.faults import fault_command, fault_env, run_with_faults


def test_two_runs_started_together_one_works_the_other_exits_zero(deployed_practice: Config, config: Config) -> None:
    command = [sys.executable, str(ROOT / "fullprocess.py"), "--config", str(config.config_file)]
    procs = [subprocess.Popen(command, cwd="/", stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    results = [(proc.wait(timeout=300), proc.stderr.read()) for proc in procs]
    for proc in procs:
        proc.stdout.close()
        proc.stderr.close()
    assert [code for code, _ in results] == [0, 0]
    outcomes = sorted(r["outcome"] for r in history.runs(config.history_db))
    assert outcomes == ["deployed", "skipped: locked"]
    skipped = [err for _, err in results if "another run is in progress: the full process (pid " in err]
    assert len(skipped) == 1
    assert f"holds the lock {config.lock_file}; not starting" in skipped[0]
    assert "deployed v0002" not in skipped[0]
    assert [d.label for d in production.list_versions(config.prod_deployment_folder)] == ["v0001", "v0002"]
    assert production.current(config.prod_deployment_folder).version == 2


def test_lock_left_by_a_killed_run_does_not_block_the_next(deployed_practice: Config, config: Config) -> None:
    killed = run_with_faults("fullprocess.py", config, kill_at=2)  # lock taken, nothing written yet
    assert killed.returncode == -signal.SIGKILL
    assert config.lock_file.exists()  # the file stays; the lock died with the process
    done = run_script("fullprocess.py", "--config", str(config.config_file))
    assert done.returncode == 0, done.stderr
    assert "in progress" not in done.stderr
    assert history.runs(config.history_db)[-1]["outcome"] == "deployed"
    assert production.current(config.prod_deployment_folder).version == 2


def test_a_lock_file_by_itself_is_not_a_lock(deployed_practice: Config, config: Config) -> None:
    config.lock_file.parent.mkdir(parents=True, exist_ok=True)
    config.lock_file.write_text("12345\n")  # what a pid-file lock would leave behind
    done = run_script("fullprocess.py", "--config", str(config.config_file))
    assert done.returncode == 0 and "in progress" not in done.stderr
    assert history.runs(config.history_db)[-1]["outcome"] == "deployed"


def test_rollback_is_refused_while_a_run_holds_the_lock(deployed_practice: Config, config: Config) -> None:
    with run_lock(config.lock_file, script="fullprocess.py"):
        done = run_script("deployment.py", "--config", str(config.config_file), "--rollback", "--wait-seconds", "0")
    assert done.returncode == 75
    assert f"the full process (pid {os.getpid()}, started at 20" in done.stderr and "nothing was changed" in done.stderr
    assert production.current(config.prod_deployment_folder).version == 1


# ---- every script that writes takes the same lock (drs/core/cli.py): it waits for the holder, or gives up naming it ----

HOLD = """import sys
from drs.core.fileio import run_lock
with run_lock(sys.argv[1], script="fullprocess.py"):
    print("held", flush=True)
    sys.stdin.read()
"""
WRITING = [
    ("ingestion.py",),
    ("ingestion.py", "--from-database"),
    ("training.py",),
    ("scoring.py",),
    ("deployment.py",),
    ("deployment.py", "--rollback"),
    ("diagnostics.py",),
    ("reporting.py",),
    ("apicalls.py",),
]


@contextlib.contextmanager
def lock_held_by_a_full_process(config: Config) -> Iterator[subprocess.Popen[str]]:
    """Another process holding the run lock as fullprocess.py would, until the block ends."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(config.lock_file)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline() == "held\n"
        yield holder
    finally:
        if holder.stdin:
            holder.stdin.close()
        holder.wait(timeout=60)
        if holder.stdout:
            holder.stdout.close()


def written_state(config: Config) -> dict[str, tuple[str, int]]:
    return tree_state(config.output_folder, config.output_model_folder, config.prod_deployment_folder)


@pytest.mark.parametrize("script", WRITING, ids=" ".join)
def test_a_writing_script_refuses_while_the_full_process_holds_the_lock(deployed_practice: Config, script: tuple[str, ...]) -> None:
    config = deployed_practice
    with lock_held_by_a_full_process(config) as holder:
        before = written_state(config)
        done = run_script(script[0], "--config", str(config.config_file), *script[1:], "--wait-seconds", "0")
        assert written_state(config) == before
    assert done.returncode == 75, done.stderr
    assert f"the full process (pid {holder.pid}, started at 20" in done.stderr
    assert "gave up after waiting 0s (--wait-seconds): nothing was changed" in done.stderr
    assert "Traceback" not in done.stderr


@pytest.mark.parametrize("script", [("deployment.py", "--list"), ("deployment.py", "--current")], ids=" ".join)
def test_read_only_commands_need_no_lock(deployed_practice: Config, script: tuple[str, ...]) -> None:
    with lock_held_by_a_full_process(deployed_practice):
        done = run_script(script[0], "--config", str(deployed_practice.config_file), *script[1:])
    assert done.returncode == 0, done.stderr
    assert "v0001" in done.stdout and "lock" not in done.stderr


def test_a_dry_run_needs_no_lock(config: Config) -> None:
    with lock_held_by_a_full_process(config):
        done = run_script("ingestion.py", "--config", str(config.config_file), "--from-database", "--dry-run")
    assert done.returncode == 1 and "no source database configured" in done.stderr
    assert "lock" not in done.stderr


@pytest.mark.parametrize("script", ["ingestion.py", "training.py"])
def test_a_writing_script_waits_for_the_holder_then_proceeds(deployed_practice: Config, config: Config, script: str) -> None:
    ingested, model = config.final_data_csv, config.output_model_folder / "trainedmodel.pkl"
    if script == "training.py":
        ingest(config)  # the sourced data for training.py to train on
    with lock_held_by_a_full_process(config) as holder:
        before = written_state(config)
        waiting = subprocess.Popen(
            [sys.executable, str(ROOT / script), "--config", str(config.config_file)], cwd="/", stderr=subprocess.PIPE, text=True
        )
        assert waiting.stderr is not None
        line = waiting.stderr.readline()
        assert f"waiting for the full process (pid {holder.pid}, started at 20" in line and "to finish (at most 600s" in line
        assert written_state(config) == before  # nothing written while the holder runs
    assert waiting.wait(timeout=120) == 0, waiting.stderr.read()
    waiting.stderr.close()
    if script == "ingestion.py":
        assert "clients_q1.csv" in (config.output_folder / "ingestedfiles.txt").read_text()
        assert len(ingested.read_text().splitlines()) == 10_001
    else:
        assert model.is_file()


def test_the_full_process_skips_while_a_stage_script_holds_the_lock(deployed_practice: Config, config: Config) -> None:
    """ingestion.py stopped just after taking the lock: a cron tick then records `skipped: locked` naming it."""
    proc = subprocess.Popen(
        fault_command("ingestion.py", config), cwd="/", stderr=subprocess.DEVNULL, env=fault_env(config.config_file.parent, stop_at=2)
    )
    try:
        _, status = os.waitpid(proc.pid, os.WUNTRACED)
        assert os.WIFSTOPPED(status)
        before = written_state(config)
        done = run_script("fullprocess.py", "--config", str(config.config_file))
        assert done.returncode == 0, done.stderr
        assert f"another run is in progress: ingestion.py (pid {proc.pid}, started at 20" in done.stderr
        run = history.runs(config.history_db)[-1]
        assert run["outcome"] == "skipped: locked" and f"ingestion.py (pid {proc.pid}" in run["message"]
        assert without_history(written_state(config)) == without_history(before)
    finally:
        os.kill(proc.pid, signal.SIGCONT)
    assert proc.wait(timeout=120) == 0
    assert len(config.final_data_csv.read_text().splitlines()) == 10_001  # the stage script went on and finished


def without_history(state: dict[str, tuple[str, int]]) -> dict[str, tuple[str, int]]:
    return {k: v for k, v in state.items() if not k.endswith("runhistory.sqlite")}


def test_a_run_that_loses_the_race_by_an_instant_still_names_the_holder(tmp_path) -> None:
    """The holder writes its name just after taking the lock; a run refused in between used to name 'another process'
    (seen on a loaded machine in test_two_runs_started_together_one_works_the_other_exits_zero)."""
    import fcntl
    import json
    import threading

    from drs.core.fileio import LockBusy

    path = tmp_path / "run.lock"
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # taken, its name not written yet
    later = threading.Timer(
        0.3, lambda: os.pwrite(fd, (json.dumps({"pid": 4242, "script": "fullprocess.py", "started_at": "t"}) + "\n").encode(), 0)
    )
    later.start()
    try:
        with pytest.raises(LockBusy) as refused, run_lock(path):
            pass
    finally:
        later.join()
        os.close(fd)
    assert refused.value.holder == {"pid": 4242, "script": "fullprocess.py", "started_at": "t"}
