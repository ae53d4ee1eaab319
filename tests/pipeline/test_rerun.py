"""The main job is safe to run again: the practice pass only bootstraps an empty system, and
`deployment.py` by hand says what it replaces and refuses (without --force) a set that scores worse."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from drs.core.settings import Config, load_config
from drs.data import ingest
from drs.model import scoring, training
from drs.pipeline.deploy import current_label
from drs.production import versions as production
from tests.conftest import OUTPUT_FOLDERS, ROOT, run_script, stage_pass
from tools.procs import free_port

PRACTICE_FILES = ["dataset1.csv", "dataset2.csv"]
REFUSED = (
    "ERROR deployment: the new set scores F1 0.6305 on testdata.csv, below v0002's 0.7909 (-0.1604);"
    " nothing deployed (use --force to deploy it anyway)"
)


def versions(config: Config) -> list[str]:
    return [d.label for d in production.list_versions(config.prod_deployment_folder)]


def deployment_line(done: subprocess.CompletedProcess[str]) -> str:
    """The deployment's own last line (reporting's lines follow it: the list is ranked again after a deployment)."""
    return [line for line in done.stderr.splitlines() if " deployment: " in line][-1]


def stages_without_deploying(config: Config) -> None:
    ingest.ingest(config)
    training.train(config)
    scoring.score(config)


@pytest.fixture
def production_over_practice(deployed_practice: Config, config: Config) -> Config:
    """v0001 the practice model, v0002 the production model; then the practice stages again, as a second
    `make run` did before: practicemodels/ holds a practice set that scores below v0002."""
    stage_pass(config)
    stages_without_deploying(deployed_practice)
    return deployed_practice


def deploy_by_hand(config: Config, *args: str) -> subprocess.CompletedProcess[str]:
    return run_script("deployment.py", "--config", str(config.config_file), *args)


def test_a_worse_set_is_refused_and_production_is_unchanged(production_over_practice: Config) -> None:
    practice = production_over_practice
    done = deploy_by_hand(practice)
    assert done.returncode == 1
    assert done.stderr.strip().splitlines() == [done.stderr.strip()]  # one line
    assert done.stderr.strip().endswith(REFUSED)
    assert current_label(practice) == "v0002"
    assert versions(practice) == ["v0001", "v0002"]
    assert not list((practice.prod_deployment_folder / "versions").glob(".tmp-*"))


def test_force_deploys_a_worse_set_and_says_what_it_replaces(production_over_practice: Config) -> None:
    practice = production_over_practice
    done = deploy_by_hand(practice, "--force")
    assert done.returncode == 0, done.stderr
    assert deployment_line(done).endswith(
        "INFO deployment: deployed v0003 (forced by --force), replacing v0002: F1 0.7909 -> 0.6305 (-0.1604) on testdata.csv"
    )
    assert current_label(practice) == "v0003"
    assert production.current(practice.prod_deployment_folder).meta["training_files"] == PRACTICE_FILES


def test_a_better_set_deploys_without_force_and_says_what_it_replaces(deployed_practice: Config, config: Config) -> None:
    stages_without_deploying(config)
    done = deploy_by_hand(config)
    assert done.returncode == 0, done.stderr
    old = production.get(config.prod_deployment_folder, 1).meta["score"]["f1"]
    assert f"{old:.4f}" == "0.6305"
    assert deployment_line(done).endswith("INFO deployment: deployed v0002, replacing v0001: F1 0.6305 -> 0.7909 (+0.1604) on testdata.csv")
    assert current_label(config) == "v0002"


def test_an_equal_set_deploys_without_force(config: Config) -> None:
    stage_pass(config)
    done = deploy_by_hand(config)  # the same set again: not worse
    assert done.returncode == 0, done.stderr
    assert deployment_line(done).endswith("INFO deployment: deployed v0002, replacing v0001: F1 0.7909 -> 0.7909 (+0.0000) on testdata.csv")
    assert versions(config) == ["v0001", "v0002"] and current_label(config) == "v0002"


def test_the_first_version_is_deployed_without_comparing(config: Config) -> None:
    stages_without_deploying(config)
    done = deploy_by_hand(config)
    assert done.returncode == 0, done.stderr
    assert "INFO deployment: deployed v0001 (F1 0.7909), the first version, to " in done.stderr
    assert current_label(config) == "v0001"


def test_a_deployed_model_that_does_not_load_cannot_be_compared(deployed_practice: Config, config: Config) -> None:
    stages_without_deploying(config)
    (config.prod_deployment_folder / "versions" / "v0001" / "trainedmodel.pkl").write_bytes(b"not a pickle")
    done = deploy_by_hand(config)
    assert done.returncode == 1
    assert done.stderr.strip().endswith(
        "ERROR deployment: deployment v0001: trainedmodel.pkl does not match the checksum recorded at deployment"
        " (changed or damaged); cannot compare the new set with it; nothing deployed (use --force to deploy it anyway)"
    )
    assert versions(config) == ["v0001"]
    done = deploy_by_hand(config, "--force")
    assert done.returncode == 0, done.stderr
    assert "WARNING deployment: deployment v0001: trainedmodel.pkl does not match" in done.stderr
    assert "INFO deployment: deployed v0002 (F1 0.7909, forced by --force) to " in done.stderr
    assert current_label(config) == "v0002"


def test_force_is_for_deploying_only(deployed_practice: Config) -> None:
    done = deploy_by_hand(deployed_practice, "--rollback", "--force")
    assert done.returncode == 1
    assert done.stderr.strip().endswith("ERROR deployment: --force applies to deploying only")


def test_current_says_whether_the_practice_pass_may_bootstrap(config: Config, practice_config: Config) -> None:
    """`make run` runs the practice pass only when `deployment.py --current` prints nothing."""
    empty = deploy_by_hand(config, "--current")
    assert (empty.returncode, empty.stdout, empty.stderr) == (0, "", "")
    stage_pass(practice_config)
    stage_pass(config)
    assert deploy_by_hand(config, "--current").stdout == "v0002\n"


# ---- `make run` twice ----------------------------------------------------------------------


def copy_checkout(dest: Path) -> Path:
    """The checkout's code and shipped data, with empty outputs and this checkout's .venv (a link)."""
    skip_top = {".git", ".venv", "logs", "bench", "docs", "tests", ".ci", *OUTPUT_FOLDERS}
    caches = {"__pycache__", ".mypy_cache", ".pytest_cache", ".ruff_cache"}

    def ignore(folder: str, names: list[str]) -> list[str]:
        return [n for n in names if n in caches or (Path(folder) == ROOT and n in skip_top)]

    shutil.copytree(ROOT, dest, ignore=ignore)
    for name in OUTPUT_FOLDERS:
        (dest / name).mkdir()
    (dest / ".venv").symlink_to(ROOT / ".venv")
    for name in ("config.json", "practiceconfig.json"):  # diagnostics does not ask the package index
        settings = json.loads((dest / name).read_text())
        (dest / name).write_text(json.dumps({**settings, "packages_timeout_seconds": 0}, indent=2))
    return dest


def main_job(checkout: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PY": str(ROOT / ".venv" / "bin" / "python"), "PORT": str(free_port())}
    return subprocess.run(
        ["bash", str(checkout / "tools" / "run_main_job.sh")], cwd=checkout, env=env, capture_output=True, text=True, timeout=600
    )


@pytest.mark.slow
def test_make_run_twice_never_deploys_the_practice_model_again(tmp_path: Path) -> None:
    checkout = copy_checkout(tmp_path / "checkout")
    config = load_config(checkout / "config.json")
    first = main_job(checkout)
    assert first.returncode == 0, first.stdout + first.stderr
    assert "== practice pass (practiceconfig.json)" in first.stdout
    before = production.list_versions(config.prod_deployment_folder)
    assert [d.meta["training_files"] == PRACTICE_FILES for d in before] == [True, False]  # v0001 practice, v0002 production
    ingested = config.ingested_files_txt.read_text()

    second = main_job(checkout)
    assert second.returncode == 0, second.stdout + second.stderr
    assert "== production already has v0002 deployed: skipping the practice pass (it only bootstraps an empty system)" in second.stdout
    assert "== practice pass" not in second.stdout
    after = production.list_versions(config.prod_deployment_folder)
    assert len(after) - len(before) <= 1
    assert all(d.meta["training_files"] != PRACTICE_FILES for d in after[len(before) :])
    assert production.current(config.prod_deployment_folder).meta["training_files"] != PRACTICE_FILES
    assert config.ingested_files_txt.read_text() == ingested  # the practice data did not replace the ingested data
