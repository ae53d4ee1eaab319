"""Promise 1, crash consistency: fullprocess.py killed with SIGKILL anywhere in a redeploying run.

Kill points, chosen by the test:
  * event kills: a reference run under tests/faultrun.py lists every change the run makes inside
    the project (each file opened for writing, rename, symlink, mkdir, removal, copy, SQLite
    connection), in order. For each chosen N the run is repeated and SIGKILLs itself just before
    its Nth change. N runs over the first and last change of every run of changes to one path
    (the changes in between, such as the chmod of a temporary file, leave the same state), so
    every distinct on-disk state a crash can leave is tried.
  * timed kills: the plain run (no hook) killed from outside with SIGKILL at times spread evenly
    over the reference run's duration, which also lands inside computations and SQLite commits.

After each kill: production holds one whole deployment and the API serves it, the sources are
untouched; then the next ordinary run finishes the work (the changed world's model deployed,
diagnostics and confusion matrix written for it), a further run finds nothing to do, and no
temporary file is left in the project or in the killed process's TMPDIR.
"""

from __future__ import annotations

import shutil
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from drs.core import layout
from drs.core.settings import Config, load_config
from drs.history import runs as history
from drs.history.record import FINISHED_DEPLOYMENT
from drs.pipeline import run as pipeline
from drs.production import versions as production
from tests.faults import (
    assert_api_answers,
    assert_one_whole_deployment,
    fault_command,
    fault_env,
    leftovers,
    redeploy_scenario,
    sources_state,
)

pytestmark = pytest.mark.slow

TIMED_KILLS = 8
PRACTICE_FILES = ["dataset1.csv", "dataset2.csv"]
SOURCED_FILES = ["clients_q1.csv", "clients_q2.csv", "clients_q3.csv", "clients_q4.csv"]


@dataclass
class Reference:
    config: Config
    events: list[str]
    seconds: float


def reference_run(pristine: Path, folder: Path) -> Reference:
    shutil.copytree(pristine, folder / "project", symlinks=True)
    config = load_config(folder / "project" / "config.json")
    log = folder / "events.log"
    started = time.monotonic()
    done = subprocess.run(
        fault_command("fullprocess.py", config),
        cwd="/",
        capture_output=True,
        text=True,
        timeout=300,
        env=fault_env(config.config_file.parent, log=log),
    )
    seconds = time.monotonic() - started
    assert done.returncode == 0, done.stderr
    assert production.current(config.prod_deployment_folder).version == 2
    return Reference(config, log.read_text().splitlines(), seconds)


def kill_points(events: list[str]) -> list[int]:
    """Event numbers to kill before: the first and the last of each run of changes to one path
    (opening, writing and chmod of one temporary file leave the same state on disk)."""
    paths = [line.split("\t")[2] for line in events]
    return [n for n in range(1, len(paths) + 1) if n == 1 or n == len(paths) or paths[n - 1] != paths[n - 2] or paths[n - 1] != paths[n]]


def kill_run(project: Path, tmpdir: Path, event: int | None, after: float | None) -> bool:
    """Run the full process and SIGKILL it; True when it was killed (not finished first)."""
    config = load_config(project / "config.json")
    env = fault_env(project, tmpdir, **({"kill_at": event} if event else {}))
    proc = subprocess.Popen(fault_command("fullprocess.py", config), cwd="/", env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    if after is not None:
        try:
            proc.wait(timeout=after)
        except subprocess.TimeoutExpired:
            proc.send_signal(signal.SIGKILL)
    return proc.wait(timeout=300) == -signal.SIGKILL


def check_after_kill(config: Config, sources: dict[str, tuple[str, int]]) -> None:
    current = assert_one_whole_deployment(config)
    assert current.ingested_files() in (PRACTICE_FILES, SOURCED_FILES)
    assert_api_answers(config, current.label)
    assert sources_state(config.config_file.parent) == sources


def check_finished(config: Config, reference: Reference) -> None:
    """The recovered project holds what an uninterrupted run produces."""
    ref = reference.config
    current = assert_one_whole_deployment(config)
    ref_current = production.current(ref.prod_deployment_folder)
    assert current.ingested_files() == SOURCED_FILES
    for name in (layout.SCORE_FILE, layout.INGESTED_FILES):
        assert (current.folder / name).read_bytes() == (ref_current.folder / name).read_bytes(), name
    model, ref_model = production.load_model(current), production.load_model(ref_current)
    assert (model.coef_ == ref_model.coef_).all() and (model.intercept_ == ref_model.intercept_).all()
    for name in ("finaldata.csv", "ingestedfiles.txt"):
        assert (config.output_folder / name).read_bytes() == (ref.output_folder / name).read_bytes(), name
    deployed_at = (current.folder / layout.META_FILE).stat().st_mtime_ns
    for name in ("diagnostics.json", "confusionmatrix.png"):
        assert (config.output_model_folder / name).stat().st_mtime_ns >= deployed_at, f"{name} predates {current.label}"
    same_label = current.label == ref_current.label
    if same_label:  # the picture's title names the version
        assert (config.output_model_folder / "confusionmatrix.png").read_bytes() == (
            ref.output_model_folder / "confusionmatrix.png"
        ).read_bytes()
    assert history.has_run(config.history_db, FINISHED_DEPLOYMENT, current.version)
    assert pipeline.run(config) == 0
    assert history.runs(config.history_db)[-1]["outcome"] == "no new data"


def test_sigkill_anywhere_leaves_one_whole_deployment_and_the_next_run_finishes(tmp_path: Path) -> None:
    pristine = tmp_path / "pristine"
    redeploy_scenario(pristine)
    reference = reference_run(pristine, tmp_path / "reference")
    sources = sources_state(pristine)
    plan: list[tuple[str, int | None, float | None]] = [(f"before change {n}", n, None) for n in kill_points(reference.events)]
    plan += [
        (f"at {reference.seconds * (i + 0.5) / TIMED_KILLS:.2f}s", None, reference.seconds * (i + 0.5) / TIMED_KILLS)
        for i in range(TIMED_KILLS)
    ]

    survived, not_killed, failures = 0, [], []
    for i, (name, event, after) in enumerate(plan):
        trial = tmp_path / f"trial-{i:02d}"
        shutil.copytree(pristine, trial / "project", symlinks=True)
        (trial / "tmp").mkdir()
        config = load_config(trial / "project" / "config.json")
        if not kill_run(trial / "project", trial / "tmp", event, after):
            not_killed.append(name)
        try:
            check_after_kill(config, sources)
            assert pipeline.run(config) == 0
            check_finished(config, reference)
            assert leftovers(trial) == []
            assert list((trial / "tmp").iterdir()) == []
        except Exception as exc:  # collect every failing kill point, not just the first
            failures.append(f"kill {name} ({reference.events[event - 1] if event else 'timed'}): {type(exc).__name__}: {exc}")
        else:
            survived += 1 if name not in not_killed else 0
        shutil.rmtree(trial)
    print(
        f"\nkill points: {len(plan)} planned, {survived} killed and survived, "
        f"{len(not_killed)} finished before their kill time ({', '.join(not_killed) or 'none'}); "
        f"reference run {reference.seconds:.2f}s with {len(reference.events)} changes"
    )
    assert failures == [], "\n".join(failures)
    assert survived >= 30
