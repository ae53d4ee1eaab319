"""The course's function names in the scripts, and `python app.py`, for users coming from a course solution (issue 20)."""

from __future__ import annotations

import importlib.util
import os
import shutil
import signal
import socket
import subprocess
import sys
import urllib.request
from pathlib import Path
from types import ModuleType

import pandas as pd
import pytest
from flask import Flask

from drs.core.fileio import LockBusy, run_lock
from drs.core.settings import load_config
from drs.production import versions as production
from tests.conftest import HEADER, ROOT, SHARED_STARTER, run_script, write_config
from tools.procs import free_port, stop, wait_until_answering


def script(name: str) -> ModuleType:
    """The top-level script `name`.py, imported by its path (under another name: the library has modules of the same names)."""
    spec = importlib.util.spec_from_file_location(f"course_script_{name}", ROOT / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def practice(project: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The practice config, chosen as the course's functions find it: through DRS_CONFIG."""
    path = project / "practiceconfig.json"
    monkeypatch.setenv("DRS_CONFIG", str(path))
    return path


def course_pass() -> float:
    """The course's fullprocess by hand: ingest, train, score, deploy; the F1."""
    script("ingestion").merge_multiple_dataframe()
    script("training").train_model()
    f1 = script("scoring").score_model()
    script("deployment").store_model_into_pickle(None)
    return f1


def test_merge_multiple_dataframe_ingests_the_configured_folder(practice: Path) -> None:
    config = load_config(practice)
    frame = script("ingestion").merge_multiple_dataframe()
    written = pd.read_csv(config.final_data_csv)
    assert isinstance(frame, pd.DataFrame) and len(frame) == len(written) > 0
    assert list(frame.columns) == list(written.columns)
    assert config.ingested_files_txt.read_text().split() == sorted(p.name for p in config.input_folder.glob("*.csv"))


def test_train_score_and_store_do_what_the_scripts_do(practice: Path, project: Path) -> None:
    config = load_config(practice)
    script("ingestion").merge_multiple_dataframe()
    script("training").train_model()
    assert config.model_output("trainedmodel.pkl").stat().st_size > 0
    f1 = script("scoring").score_model()
    assert isinstance(f1, float) and float(config.latest_score_txt.read_text()) == pytest.approx(f1, abs=1e-6)
    config.latest_score_txt.unlink()
    assert run_script("scoring.py", "--config", str(practice)).returncode == 0
    assert float(config.latest_score_txt.read_text()) == pytest.approx(f1, abs=1e-6)  # what scoring.py writes
    deployed = script("deployment").store_model_into_pickle(object())  # a course solution's model argument: ignored
    assert deployed.version == 1 and production.current(config.prod_deployment_folder).version == 1
    assert deployed.score() == pytest.approx(f1, abs=1e-6)
    assert (config.prod_deployment_folder / "current" / "trainedmodel.pkl").exists()


def test_merge_multiple_dataframe_ranks_the_new_data_as_ingestion_py_does(practice: Path, project: Path) -> None:
    course_pass()
    config = load_config(practice)
    (config.input_folder / "dataset9.csv").write_text(HEADER + "zqzq,12,345,67,0\n")
    assert "zqzq" not in config.model_output("risklist.csv").read_text()
    frame = script("ingestion").merge_multiple_dataframe()
    assert "zqzq" in set(frame.corporation)
    assert "zqzq" in config.model_output("risklist.csv").read_text()  # the deployed model ranked the new data


def test_diagnostics_and_reporting_names_return_the_course_values(practice: Path, project: Path) -> None:
    course_pass()
    config = load_config(practice)
    diagnostics = script("diagnostics")
    test_rows = len(pd.read_csv(config.test_data_csv))
    predictions = diagnostics.model_predictions()
    assert isinstance(predictions, list) and len(predictions) == test_rows and set(predictions) <= {0, 1}
    final = pd.read_csv(config.final_data_csv)
    summary = diagnostics.dataframe_summary()
    assert isinstance(summary, list)
    assert [row[0] for row in summary] == ["lastmonth_activity", "lastyear_activity", "number_of_employees", "exited"]
    assert summary[0][1:] == pytest.approx(
        [final.lastmonth_activity.mean(), final.lastmonth_activity.median(), final.lastmonth_activity.std()]
    )
    assert diagnostics.missing_data() == [[column, 0.0] for column in final.columns]
    timings = diagnostics.execution_time()
    assert len(timings) == 2 and all(isinstance(t, float) and t >= 0 for t in timings)
    assert {"package", "installed", "newest"} <= set(diagnostics.outdated_packages_list()[0])
    png = config.model_output("confusionmatrix.png")
    png.unlink()  # drawn at the deployment already
    assert script("reporting").score_model() == png
    assert png.read_bytes().startswith(b"\x89PNG")


@pytest.mark.skipif(not SHARED_STARTER.is_dir(), reason=f"course starter data not found at {SHARED_STARTER}")
def test_course_names_on_the_starter_data_give_the_reference_f1(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("practicedata", "testdata"):
        shutil.copytree(SHARED_STARTER / name, tmp_path / name)
    path = write_config(tmp_path, "practiceconfig.json", input_folder_path="practicedata", output_model_path="practicemodels")
    monkeypatch.setenv("DRS_CONFIG", str(path))
    assert len(script("ingestion").merge_multiple_dataframe()) == 26
    script("training").train_model()
    assert script("scoring").score_model() == pytest.approx(0.571429, abs=1e-6)  # the starter README's reference


def test_a_course_name_waits_for_the_run_lock_of_another_process(practice: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import drs.course

    config = load_config(practice)
    script("ingestion").merge_multiple_dataframe()
    holder = subprocess.Popen(
        [sys.executable, "-c", f"import sys, time\nfrom drs.core.fileio import run_lock\nwith run_lock({str(config.lock_file)!r}, 0, 'other.py'):\n"
         "    print('held', flush=True); time.sleep(60)"],
        stdout=subprocess.PIPE, text=True, env={**os.environ, "PYTHONPATH": str(ROOT)},
    )  # fmt: skip
    try:
        assert holder.stdout is not None and holder.stdout.readline() == "held\n"
        monkeypatch.setattr(drs.course, "LOCK_WAIT_SECONDS", 0.3)
        with pytest.raises(LockBusy):
            script("training").train_model()
        assert not config.model_output("trainedmodel.pkl").exists()
    finally:
        holder.kill()
        holder.wait()


def test_a_course_name_inside_this_process_s_lock_goes_on(practice: Path) -> None:
    """Called from a script's body (this process holds the lock already): no wait for itself."""
    config = load_config(practice)
    script("ingestion").merge_multiple_dataframe()
    with run_lock(config.lock_file, 0, "myscript.py"):
        script("training").train_model()
    assert config.model_output("trainedmodel.pkl").exists()


def test_app_exposes_the_flask_app_lazily(practice: Path) -> None:
    module = script("app")
    assert "app" not in vars(module)  # importing made no app
    app = module.app
    assert isinstance(app, Flask) and module.app is app
    assert app.test_client().get("/health").status_code == 503  # nothing deployed in the new project


def test_python_app_py_serves_through_gunicorn_and_stops_on_sigterm(project: Path) -> None:
    port = free_port()
    env = {**os.environ, "DRS_CONFIG": str(project / "config.json"), "PORT": str(port), "WORKERS": "1"}
    env.pop("BIND", None)
    log = project / "app.log"
    with open(log, "w") as handle:
        proc = subprocess.Popen([sys.executable, str(ROOT / "app.py")], cwd="/", env=env, stdout=handle, stderr=subprocess.STDOUT)
    try:
        url = f"http://127.0.0.1:{port}"
        wait_until_answering(proc, url, log)
        try:
            urllib.request.urlopen(url + "/health", timeout=10)
            raise AssertionError("/health should be 503 with nothing deployed")
        except urllib.error.HTTPError as answer:
            assert answer.code == 503 and answer.headers["Server"].startswith("gunicorn")
        assert "gunicorn" in Path(f"/proc/{proc.pid}/cmdline").read_bytes().decode()
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
    finally:
        stop(proc)
    assert "Shutting down: Master" in log.read_text()


def test_python_app_py_refuses_to_serve_open_beyond_the_loopback(project: Path) -> None:
    port = free_port()
    env = {**os.environ, "DRS_CONFIG": str(project / "config.json"), "BIND": f"0.0.0.0:{port}", "WORKERS": "1"}
    done = subprocess.run([sys.executable, str(ROOT / "app.py")], cwd="/", env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 1
    assert done.stderr.strip().splitlines()[-1].startswith(f"refusing to serve on 0.0.0.0:{port} with no user configured")
    assert "Listening at" not in done.stderr
    with socket.socket() as probe:
        assert probe.connect_ex(("127.0.0.1", port)) != 0  # never listened
