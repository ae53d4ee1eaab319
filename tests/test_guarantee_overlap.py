"""Promise 2, no overlap: a kernel lock (fcntl.flock) lets one full process work at a time;
the lock dies with its process, so a killed run never blocks the next one."""

from __future__ import annotations

import signal
import subprocess
import sys

from drs import history, production
from drs.fileio import run_lock
from drs.settings import Config
from tests.conftest import ROOT, run_script
from tests.faults import run_with_faults


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
    skipped = [err for _, err in results if "another full-process run is in progress" in err]
    assert len(skipped) == 1
    assert f"(lock {config.lock_file} is held); not starting" in skipped[0]
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
    with run_lock(config.lock_file):
        done = run_script("deployment.py", "--config", str(config.config_file), "--rollback")
    assert done.returncode == 1
    assert "a full-process run is in progress; try again when it has finished" in done.stderr
    assert production.current(config.prod_deployment_folder).version == 1
