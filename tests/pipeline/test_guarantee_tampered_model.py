"""Promise 7, tampered or missing model: the checksum recorded at deployment is checked before any
unpickling, so a replaced pickle is never loaded (a booby-trapped one would leave a marker file);
the API answers 503 with the reason, and the full process and the stages refuse to use it."""

from __future__ import annotations

import os
import pickle
from collections.abc import Callable
from pathlib import Path

import pytest

from drs.core.settings import Config
from drs.history import runs as history
from drs.production import versions as production
from drs.web.app import create_app
from tests.conftest import run_script, tree_state
from tests.faults import RECORD


class Trap:
    """Unpickling this runs code: it creates the file named at pickling time."""

    def __init__(self, marker: Path):
        self.marker = str(marker)

    def __reduce__(self) -> tuple:
        return (open, (self.marker, "w"))


def truncate(model: Path, marker: Path) -> None:
    model.write_bytes(model.read_bytes()[: model.stat().st_size // 2])


def replace_with_trap(model: Path, marker: Path) -> None:
    model.write_bytes(pickle.dumps(Trap(marker)))


def replace_with_other_model(model: Path, marker: Path) -> None:
    other = pickle.loads(model.read_bytes())
    other.coef_ = -other.coef_  # a working model that predicts the opposite
    model.write_bytes(pickle.dumps(other))


def remove(model: Path, marker: Path) -> None:
    model.unlink()


CHANGED = "deployment v0001: trainedmodel.pkl does not match the checksum recorded at deployment (changed or damaged)"
DAMAGE: dict[str, tuple[Callable[[Path, Path], None], str]] = {
    "truncated": (truncate, CHANGED),
    "replaced by code": (replace_with_trap, CHANGED),
    "replaced by another model": (replace_with_other_model, CHANGED),
    "missing": (remove, "deployment v0001 is missing trainedmodel.pkl"),
}


@pytest.fixture(params=sorted(DAMAGE))
def damaged(request: pytest.FixtureRequest, deployed_practice: Config, tmp_path: Path) -> tuple[Config, str, Path]:
    damage, reason = DAMAGE[request.param]
    marker = tmp_path / "trap-sprung"
    model = production.current(deployed_practice.prod_deployment_folder).model_path
    damage(model, marker)
    return deployed_practice, reason, marker


def test_api_answers_503_with_the_reason(damaged: tuple[Config, str, Path]) -> None:
    config, reason, marker = damaged
    client = create_app(config).test_client()
    for method, path, kwargs in (("get", "/health", {}), ("post", "/prediction", {"json": {"records": [RECORD]}}), ("get", "/scoring", {})):
        answer = getattr(client, method)(path, **kwargs)
        assert answer.status_code == 503
        assert answer.get_json() == {
            "status": 503,
            "error": "Service Unavailable",
            "message": f"the deployed model cannot be used: {reason}",
        }
    assert client.get("/summarystats").status_code == 200  # what needs no model still works
    assert not marker.exists()


def test_full_process_refuses_with_and_without_new_data(damaged: tuple[Config, str, Path], config: Config) -> None:
    practice, reason, marker = damaged
    prod_before = tree_state(practice.prod_deployment_folder)
    for cfg in (practice, config):  # practice: no new data; production config: four new files
        done = run_script("fullprocess.py", "--config", str(cfg.config_file))
        assert done.returncode == 1
        assert (
            done.stderr.strip()
            .splitlines()[-1]
            .endswith(
                f"ERROR fullprocess: {reason}; refusing to use it (roll back with `python deployment.py --rollback` or redeploy with `python deployment.py --force`)"
            )
        )
        assert "Traceback" not in done.stderr
        assert history.runs(cfg.history_db)[-1]["outcome"] == "failed"
    assert tree_state(practice.prod_deployment_folder) == prod_before
    assert not marker.exists()


@pytest.mark.parametrize("script", ["diagnostics.py", "reporting.py"])
def test_stages_that_use_the_deployed_model_refuse(damaged: tuple[Config, str, Path], script: str) -> None:
    config, reason, marker = damaged
    done = run_script(script, "--config", str(config.config_file))
    assert done.returncode == 1
    assert done.stderr.strip().splitlines()[-1].endswith(reason)
    assert "Traceback" not in done.stderr
    assert not marker.exists()


def test_missing_manifest_or_version_folder(deployed_practice: Config) -> None:
    prod = deployed_practice.prod_deployment_folder
    (prod / "versions" / "v0001" / "deployment.json").unlink()
    answer = create_app(deployed_practice).test_client().get("/health")
    assert answer.status_code == 503
    assert answer.get_json()["message"] == "the deployed model cannot be used: deployment v0001 has no deployment.json"
    done = run_script("fullprocess.py", "--config", str(deployed_practice.config_file))
    assert done.returncode == 1 and done.stderr.strip().splitlines()[-1].endswith("deployment v0001 has no deployment.json")
    os.rename(prod / "versions" / "v0001", prod / "versions" / "old")
    answer = create_app(deployed_practice).test_client().get("/health")
    assert answer.status_code == 503 and "has no deployment.json" in answer.get_json()["message"]
