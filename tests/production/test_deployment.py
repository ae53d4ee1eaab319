"""Deployment: the set goes in together, readers never see a mixed set, versions can be rolled back."""

from __future__ import annotations

import json
import pickle
import threading

import pytest

from drs.core.errors import DeploymentError, StageError
from drs.core.fileio import sha256_file
from drs.core.settings import Config
from drs.data import ingest
from drs.model import scoring, training
from drs.pipeline import deploy
from drs.production import versions as production
from tests.conftest import HEADER, run_script, stage_pass


def test_deploy_puts_the_course_files_in_production(deployed_practice: Config) -> None:
    prod = deployed_practice.prod_deployment_folder
    assert (prod / "trainedmodel.pkl").read_bytes() == deployed_practice.model_pkl.read_bytes()
    assert (prod / "latestscore.txt").read_text() == deployed_practice.latest_score_txt.read_text()
    assert (prod / "ingestedfiles.txt").read_text() == "dataset1.csv\ndataset2.csv\n"
    meta = json.loads((prod / "deployment.json").read_text())
    assert meta["version"] == 1 and meta["training_files"] == ["dataset1.csv", "dataset2.csv"]
    assert meta["sha256"]["trainedmodel.pkl"] == sha256_file(deployed_practice.model_pkl)


def test_score_of_another_model_is_refused(deployed_practice: Config) -> None:
    training.train(deployed_practice)
    with open(deployed_practice.model_pkl, "rb") as handle:
        model = pickle.load(handle)
    model.C = 0.5  # a different model, same files otherwise
    deployed_practice.model_pkl.write_bytes(pickle.dumps(model))
    with pytest.raises(StageError, match="latestscore.txt is the score of another model"):
        deploy.deploy(deployed_practice)
    assert production.current(deployed_practice.prod_deployment_folder).version == 1


def test_ingestion_after_training_is_refused(deployed_practice: Config) -> None:
    (deployed_practice.input_folder / "dataset3.csv").write_text(HEADER + "newco,1,2,3,0\n")
    ingest.ingest(deployed_practice)
    with pytest.raises(StageError, match="ingestedfiles.txt changed after the model was trained"):
        deploy.deploy(deployed_practice)


def test_readers_never_see_a_mixed_set(deployed_practice: Config, config: Config) -> None:
    """While versions are deployed back to back, every read through `current` is one whole version."""
    ingest.ingest(config)
    training.train(config)
    scoring.score(config)
    prod = config.prod_deployment_folder
    stop = threading.Event()
    seen, problems = set(), []

    def reader() -> None:
        while not stop.is_set():
            current = production.current(prod)
            try:
                production.verify(current)
            except DeploymentError as exc:
                problems.append(str(exc))
            # the course names, read through the link, agree with the manifest read at the same moment
            seen.add(current.version)

    thread = threading.Thread(target=reader)
    thread.start()
    try:
        for _ in range(15):
            deploy.deploy(config)
    finally:
        stop.set()
        thread.join()
    assert problems == []
    assert len(seen) > 1
    assert production.current(prod).version == 16


def test_list_and_rollback(deployed_practice: Config, config: Config) -> None:
    stage_pass(config)
    listing = run_script("deployment.py", "--config", str(config.config_file), "--list")
    assert listing.returncode == 0
    lines = listing.stdout.splitlines()
    assert lines[1].startswith("  v0001") and lines[2].startswith("* v0002")
    assert "clients_q1.csv" in lines[2]
    done = run_script("deployment.py", "--config", str(config.config_file), "--rollback")
    assert done.returncode == 0, done.stderr
    assert "rolled back from v0002 to v0001" in done.stderr
    prod = config.prod_deployment_folder
    assert (prod / "ingestedfiles.txt").read_text() == "dataset1.csv\ndataset2.csv\n"
    done = run_script("deployment.py", "--config", str(config.config_file), "--rollback", "v0002")
    assert done.returncode == 0
    assert production.current(prod).version == 2


def test_rollback_to_a_broken_version_is_refused(deployed_practice: Config, config: Config) -> None:
    stage_pass(config)
    prod = config.prod_deployment_folder
    (prod / "versions" / "v0001" / "trainedmodel.pkl").write_bytes(b"not a pickle")
    done = run_script("deployment.py", "--config", str(config.config_file), "--rollback", "1")
    assert done.returncode == 1
    assert "deployment v0001: trainedmodel.pkl does not match the checksum recorded at deployment" in done.stderr
    assert production.current(prod).version == 2
