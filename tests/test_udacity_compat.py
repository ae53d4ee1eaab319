"""Compatibility with the course's own starter data in ../shared/udacity-starter (skipped where absent)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pandas as pd
import pytest

from drs.core.settings import load_config
from drs.data import ingest
from drs.pipeline import run as pipeline
from drs.production import versions as production
from tests.conftest import SHARED_STARTER, stage_pass, write_config

pytestmark = pytest.mark.skipif(
    not SHARED_STARTER.is_dir(), reason=f"course starter data not found at {SHARED_STARTER} (../shared is absent)"
)


@pytest.fixture
def starter(tmp_path: Path) -> Path:
    root = tmp_path / "starter"
    for name in ("practicedata", "sourcedata", "testdata"):
        shutil.copytree(SHARED_STARTER / name, root / name)
    (root / "practicedata" / "Icon\r").write_bytes(b"")  # as in the course's zip
    write_config(root, "practiceconfig.json", input_folder_path="practicedata", output_model_path="practicemodels")
    write_config(root, "config.json", input_folder_path="sourcedata")
    return root


def test_practice_pass_matches_the_reference_numbers(starter: Path) -> None:
    practice = load_config(starter / "practiceconfig.json")
    stage_pass(practice)
    final = pd.read_csv(practice.final_data_csv)
    assert len(final) == 26
    assert (final.exited == 1).sum() == 15
    deployed = production.current(practice.prod_deployment_folder)
    assert deployed.score() == pytest.approx(0.571429, abs=1e-6)


def test_raw_drift_test_finds_no_drift_on_the_source_data(starter: Path) -> None:
    practice = load_config(starter / "practiceconfig.json")
    stage_pass(practice)
    config = load_config(starter / "config.json")
    assert pipeline.run(config) == 0
    from drs.history import runs as history

    run = history.runs(config.history_db)[-1]
    assert run["outcome"] == "no drift"
    assert run["details"]["drift"]["new_data_f1"] == pytest.approx(0.692308, abs=1e-6)
    assert production.current(config.prod_deployment_folder).version == 1


def test_source_data_ingests_to_26_rows(starter: Path) -> None:
    config = load_config(starter / "config.json")
    result = ingest.ingest(config)
    assert result.rows_written == 26 and result.duplicates_dropped == 0


def test_source_trained_model_is_not_promoted_over_the_practice_model(starter: Path) -> None:
    """Data drift retrains (all three features drift), but the candidate scores 0.333 against the deployed 0.571."""
    from drs.history import runs as history

    practice = load_config(starter / "practiceconfig.json")
    stage_pass(practice)
    path = write_config(starter, "config.json", input_folder_path="sourcedata", data_drift_retrain=True)
    config = load_config(path)
    assert pipeline.run(config) == 0
    run = history.runs(config.history_db)[-1]
    assert run["details"]["trigger"] == "data drift in lastmonth_activity, lastyear_activity, number_of_employees"
    gate = run["details"]["gate"]
    assert gate["candidate_f1"] == pytest.approx(0.333333, abs=1e-6)
    assert gate["deployed_f1"] == pytest.approx(0.571429, abs=1e-6)
    assert run["outcome"] == "not promoted" and gate["promote"] is False
    assert "improvement -0.2381 < minimum 0.0000 -> not promoted; v0001 stays deployed" in gate["reason"]
    assert production.current(config.prod_deployment_folder).version == 1
    assert len(production.list_candidates(config.prod_deployment_folder)) == 1
