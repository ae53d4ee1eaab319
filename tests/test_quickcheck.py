"""The cron tick with nothing to do, answered by drs/quickcheck.py before fullprocess.py's imports.

It must record and log what `fullprocess.main` would, import almost nothing, and hand every case it is
not sure of to `main`, which then behaves exactly as before (its own tests are in test_fullprocess.py and
the guarantee tests; here: that each such case reaches it).
"""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import fullprocess
from drs import history, layout, production, quickcheck
from drs.config import Config
from drs.fileio import run_lock
from tests.conftest import HEADER, ROOT, run_script

LOG_STAMP = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} ")


@pytest.fixture
def no_new_data(deployed_practice: Config, config: Config) -> Config:
    """Production data in and v0002 deployed: the next run finds nothing new."""
    assert fullprocess.run(config) == 0
    return config


def cron_run(config: Config, *args: str) -> subprocess.CompletedProcess[str]:
    """fullprocess.py as cron runs it: as a script, from another folder, with a minimal environment."""
    env = {"PATH": "/usr/bin:/bin", "HOME": str(config.config_file.parent)}
    return run_script("fullprocess.py", "--config", str(config.config_file), *args, cwd="/", env=env)


def comparable(run: dict[str, object]) -> dict[str, object]:
    """A history row without what differs between any two runs (ids, times, which path answered)."""
    details = {k: v for k, v in dict(run["details"]).items() if k not in ("quick", "timings")}
    return {"kind": run["kind"], "outcome": run["outcome"], "message": run["message"],
            "deployed_version": run["deployed_version"], "details": details,
            "timings": sorted(dict(run["details"])["timings"])}


def test_the_quick_answer_records_and_logs_what_main_does(no_new_data: Config) -> None:
    config = no_new_data
    quick = cron_run(config)
    assert quick.returncode == 0, quick.stderr
    main = subprocess.run(
        [sys.executable, "-c", "import sys, fullprocess; raise SystemExit(fullprocess.main(sys.argv[1:]))",
         "--config", str(config.config_file)],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
    )
    assert main.returncode == 0, main.stderr
    *_, by_quick, by_main = history.runs(config.history_db)
    assert by_quick["details"].get("quick") is True and "quick" not in by_main["details"]
    assert comparable(by_quick) == comparable(by_main)
    assert by_quick["message"] == "no new data in sourceddata; v0002 stays deployed"
    assert re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+00:00$", by_quick["started_at"])
    quick_lines, main_lines = quick.stderr.splitlines(), main.stderr.splitlines()
    assert len(quick_lines) == 1 and all(LOG_STAMP.match(line) for line in quick_lines + main_lines)
    assert [LOG_STAMP.sub("", line) for line in quick_lines] == [LOG_STAMP.sub("", line) for line in main_lines]


def test_the_quick_answer_imports_only_light_standard_modules(no_new_data: Config) -> None:
    done = subprocess.run(
        [sys.executable, "-X", "importtime", str(ROOT / "fullprocess.py"), "--config", str(no_new_data.config_file)],
        cwd="/", capture_output=True, text=True, timeout=60,
    )
    assert done.returncode == 0 and "no new data in sourceddata" in done.stderr
    imported = {line.split("|")[-1].strip() for line in done.stderr.splitlines() if line.startswith("import time:")}
    assert "drs.quickcheck" in imported
    heavy = {"argparse", "logging", "pathlib", "dataclasses", "typing", "hashlib", "contextlib",
             "pandas", "numpy", "sklearn", "matplotlib", "polars", "scipy", "drs.config", "drs.production", "drs.cli"}
    assert sorted(heavy & imported) == []


def test_a_bad_config_is_reported_as_main_reports_it(no_new_data: Config) -> None:
    raw = json.loads(no_new_data.config_file.read_text())
    for key, value, message in (
        ("features", "lastmonth_activity", "key 'features' must be a non-empty list of column names"),
        ("drift_test", "sometimes", "key 'drift_test' must be one of"),
        ("api_timeout_seconds", "soon", "has a value of the wrong type"),
    ):
        no_new_data.config_file.write_text(json.dumps({**raw, key: value}))
        done = cron_run(no_new_data)
        assert done.returncode in (1, 2) and message in done.stderr, (key, done.stderr)
    no_new_data.config_file.write_text(json.dumps(raw))
    assert cron_run(no_new_data).returncode == 0


def test_a_valid_drift_setting_keeps_the_quick_answer(no_new_data: Config) -> None:
    raw = json.loads(no_new_data.config_file.read_text())
    no_new_data.config_file.write_text(json.dumps({**raw, "drift_test": "parametric"}))
    assert cron_run(no_new_data).returncode == 0
    assert history.runs(no_new_data.history_db)[-1]["details"].get("quick") is True


def test_a_new_file_goes_to_the_full_process(no_new_data: Config) -> None:
    rows = "".join(f"newco{i},{i * 3 % 200},{i * 7 % 900},{i % 40 + 1},{i % 2}\n" for i in range(60))
    (no_new_data.input_folder / "clients_q5.csv").write_text(HEADER + rows)
    done = cron_run(no_new_data)
    assert done.returncode == 0, done.stderr
    last = history.runs(no_new_data.history_db)[-1]
    assert "quick" not in last["details"] and last["details"]["new_files"] == ["clients_q5.csv"]
    assert last["outcome"] != "no new data"


def test_a_touched_but_unchanged_file_is_still_nothing_new(no_new_data: Config) -> None:
    path = no_new_data.input_folder / "clients_q1.csv"
    os.utime(path, ns=(path.stat().st_atime_ns, path.stat().st_mtime_ns + 10**9))
    (no_new_data.input_folder / "notes.txt").write_text("not a csv")
    assert cron_run(no_new_data).returncode == 0
    assert history.runs(no_new_data.history_db)[-1]["details"].get("quick") is True


def test_a_held_lock_is_recorded_by_the_full_process(no_new_data: Config) -> None:
    with run_lock(no_new_data.lock_file):
        done = cron_run(no_new_data)
    assert done.returncode == 0 and "another full-process run is in progress" in done.stderr
    assert history.runs(no_new_data.history_db)[-1]["outcome"] == "skipped: locked"


def test_a_tampered_model_fails_every_tick_with_the_reason(no_new_data: Config) -> None:
    model = production.current(no_new_data.prod_deployment_folder).model_path
    model.write_bytes(model.read_bytes() + b"\0")
    done = cron_run(no_new_data)
    assert done.returncode == 1
    assert "trainedmodel.pkl does not match the checksum recorded at deployment" in done.stderr


def test_leftovers_of_a_killed_run_are_cleaned_by_the_full_process(no_new_data: Config) -> None:
    leftover = no_new_data.output_folder / f"{layout.TMP_PREFIX}finaldata.csv.x"
    leftover.write_text("half")
    assert cron_run(no_new_data).returncode == 0
    assert not leftover.exists()
    last = history.runs(no_new_data.history_db)[-1]
    assert last["outcome"] == "no new data" and "quick" not in last["details"]


def test_an_unfinished_deployment_is_finished_by_the_full_process(no_new_data: Config) -> None:
    db = no_new_data.history_db
    shutil.copy(db, db.with_suffix(".bak"))
    with history._Opened(db) as conn, conn:
        conn.execute("DELETE FROM runs WHERE outcome IN ('deployed', 'completed deployment')")
    done = cron_run(no_new_data)
    assert done.returncode == 0, done.stderr
    assert history.runs(db)[-1]["outcome"] == "completed deployment"


@pytest.mark.parametrize("argv", [["-v"], ["--force-deploy"], ["--api-url", "http://127.0.0.1:9"], ["--config"], ["--help"],
                                  ["--config", "-x.json"], ["--conf", "x.json"]])
def test_other_command_lines_are_left_to_main(argv: list[str], tmp_path: Path) -> None:
    assert quickcheck.config_argument(argv)[0] is False
    assert quickcheck.answered(argv) is False


def test_nothing_deployed_is_left_to_main(config: Config) -> None:
    assert quickcheck.answered(["--config", str(config.config_file)]) is False
    assert not config.history_db.exists()  # it wrote nothing


def test_the_default_config_is_the_one_beside_the_scripts() -> None:
    assert quickcheck.config_argument([]) == (True, None)
    assert quickcheck.config_argument(["--config=x.json"]) == (True, "x.json")
    from drs.rawconfig import config_file_path

    assert config_file_path(None) == str(ROOT / "config.json")


def test_checksums_without_openssl_equal_hashlibs(tmp_path: Path) -> None:
    import hashlib

    sizes = (0, 1, layout.SMALL_FILE_BYTES, layout.SMALL_FILE_BYTES + 1, 3 * layout.SMALL_FILE_BYTES + 5)
    paths = []
    for size in sizes:
        path = tmp_path / f"f{size}"
        path.write_bytes(os.urandom(size))
        paths.append(path)
    script = ("import sys; from drs import layout\n"
              "for p in sys.argv[1:]:\n"
              "    print(layout.sha256_file(p), 'hashlib' in sys.modules)\n")
    done = subprocess.run([sys.executable, "-c", script, *map(str, paths)], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    lines = [line.split() for line in done.stdout.splitlines()]
    assert [digest for digest, _ in lines] == [hashlib.sha256(p.read_bytes()).hexdigest() for p in paths]
    assert [loaded for _, loaded in lines] == ["False", "False", "False", "True", "True"]  # OpenSSL only past 1 MB


def test_a_tick_whose_log_line_cannot_be_written_is_recorded_once(no_new_data: Config) -> None:
    rows = len(history.runs(no_new_data.history_db))
    for redirect in ("2>&-", "2>/dev/full"):  # stderr closed; stderr on a full disk
        done = subprocess.run(
            f"{sys.executable} {ROOT / 'fullprocess.py'} --config {no_new_data.config_file} {redirect}",
            shell=True, cwd="/", timeout=120,
        )
        assert done.returncode == 0
    runs = history.runs(no_new_data.history_db)
    assert len(runs) == rows + 2 and all(r["details"].get("quick") for r in runs[-2:])


def test_a_pipe_in_the_input_folder_is_refused_unopened(no_new_data: Config) -> None:
    os.mkfifo(no_new_data.input_folder / "pipe.csv")  # opening it would block the run, lock held
    done = subprocess.run(
        [sys.executable, str(ROOT / "fullprocess.py"), "--config", str(no_new_data.config_file)],
        cwd="/", capture_output=True, text=True, timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert "pipe.csv: is not a regular file (a pipe, socket or device)" in done.stderr
    assert history.runs(no_new_data.history_db)[-1]["outcome"] == "new files rejected"
    assert cron_run(no_new_data).returncode == 0  # refused once: the next tick has nothing to do
    assert history.runs(no_new_data.history_db)[-1]["details"].get("quick") is True


def test_the_quick_path_knows_every_drift_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    """A drift key missing from DRIFT_KEYS would let the quick path answer where main refuses a bad value."""
    from drs import drift

    class Recording(dict):
        read: set[str] = set()

        def get(self, key, default=None):  # type: ignore[no-untyped-def]
            self.read.add(key)
            return super().get(key, default)

        def __getitem__(self, key):  # type: ignore[no-untyped-def]
            self.read.add(key)
            return super().__getitem__(key)

        def __contains__(self, key):  # type: ignore[no-untyped-def]
            self.read.add(key)
            return super().__contains__(key)

    raw = Recording()
    drift.settings_from(raw)
    assert raw.read and raw.read <= set(quickcheck.DRIFT_KEYS)
