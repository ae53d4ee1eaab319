"""Drift tests, data drift and the promotion gate inside the full process; the history they leave; rollback."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from drs.core.fileio import sha256_file
from drs.core.settings import Config, load_config
from drs.history import audit
from drs.history import runs as history
from drs.pipeline import run as pipeline
from drs.production import versions as production
from tests.conftest import run_script, stage_pass, tree_state, write_config
from tools.generate_data import CHANGED_WORLD, OLDER_WORLD, clients, unique_ids

SOURCED_FILES = ["clients_q1.csv", "clients_q2.csv", "clients_q3.csv", "clients_q4.csv"]


def reconfigure(config: Config, **settings: object) -> Config:
    """The same project's config file with extra keys (written beside it, so paths resolve alike)."""
    raw = {**json.loads(config.config_file.read_text()), "packages_timeout_seconds": 0, "api_url": "http://127.0.0.1:9", **settings}
    name = f"{config.config_file.stem}-{abs(hash(json.dumps(settings, sort_keys=True))) % 10**8}.json"
    path = config.config_file.parent / name
    path.write_text(json.dumps(raw, indent=2))
    return load_config(path)


def older_world_file(path: Path, rows: int, seed: int, activity_scale: float = 1.0) -> None:
    rng = np.random.default_rng(seed)
    world = dataclasses.replace(OLDER_WORLD, activity_scale=activity_scale)
    clients(rng, unique_ids(rng, rows), world).to_csv(path, index=False)


@pytest.fixture
def production_model_deployed(config: Config, practice_config: Config) -> tuple[Config, Config]:
    """The reverse story: the model trained on the sourced data is deployed (v0001, test F1 0.7909)."""
    stage_pass(config)
    return config, practice_config


def test_gate_keeps_a_better_deployed_model_and_says_why(
    production_model_deployed: tuple[Config, Config], caplog: pytest.LogCaptureFixture
) -> None:
    """The practice data drifts for the production model (0.4043 < 0.7909), but the model retrained on it scores 0.6305."""
    config, practice = production_model_deployed
    prod = config.prod_deployment_folder
    before = tree_state(prod)
    assert pipeline.run(practice) == 0
    assert "drift check (raw): v0001 F1 on the new data 0.4043 vs its latestscore 0.7909 -> drift" in caplog.text
    assert (
        "promotion gate: candidate F1 0.6305 vs deployed v0001 0.7909 on testdata.csv (1200 rows):"
        " improvement -0.1604 < minimum 0.0000 -> not promoted; v0001 stays deployed"
    ) in caplog.text
    assert production.current(prod).version == 1
    after = tree_state(prod)
    assert {k: v for k, v in after.items() if "/candidates/" not in k} == before  # production itself untouched

    run = history.runs(practice.history_db)[-1]
    assert run["outcome"] == "not promoted" and run["deployed_version"] == 1
    gate = run["details"]["gate"]
    assert gate["candidate_f1"] == pytest.approx(0.630462, abs=1e-6) and gate["deployed_f1"] == pytest.approx(0.790875, abs=1e-6)
    assert gate["promote"] is False and gate["forced"] is False and gate["evaluation_rows"] == 1200
    assert gate["evaluation_rows_in_training_data"] == {"candidate": 0, "deployed": 0}
    assert "-> not promoted; v0001 stays deployed" in gate["reason"]

    kept = production.list_candidates(prod)
    assert len(kept) == 1 and kept[0]["folder"] == gate["kept_candidate"]
    folder = Path(kept[0]["folder"])
    assert sha256_file(folder / "trainedmodel.pkl") == sha256_file(practice.model_pkl)
    assert (folder / "ingestedfiles.txt").read_text() == "dataset1.csv\ndataset2.csv\n"
    assert kept[0]["gate"]["reason"] == gate["reason"] and kept[0]["score"]["f1"] == pytest.approx(0.630462, abs=1e-6)
    listing = run_script("deployment.py", "--config", str(config.config_file), "--list").stdout.splitlines()
    assert listing[1].startswith("* v0001") and listing[2].startswith("kept candidates")
    assert listing[3].split()[1:] == ["F1", "0.6305", "vs", "deployed", "v0001", "0.7909"]

    caplog.clear()
    assert pipeline.run(practice) == 0  # the files were judged: the refused candidate is not retrained every tick
    assert history.runs(practice.history_db)[-1]["outcome"] == "no new data"


def test_force_deploy_overrides_the_gate_and_the_record_says_so(production_model_deployed: tuple[Config, Config]) -> None:
    config, practice = production_model_deployed
    assert pipeline.run(practice) == 0
    assert production.current(config.prod_deployment_folder).version == 1
    done = run_script("fullprocess.py", "--config", str(practice.config_file), "--force-deploy")
    assert done.returncode == 0, done.stderr
    assert "WARNING fullprocess: promotion gate: candidate F1 0.6305 vs deployed v0001 0.7909" in done.stderr
    assert "-> deployed anyway: forced by --force-deploy" in done.stderr
    current = production.current(config.prod_deployment_folder)
    assert current.version == 2 and current.score() == pytest.approx(0.630462, abs=1e-6)
    run = history.runs(practice.history_db)[-1]
    assert run["outcome"] == "deployed" and run["deployed_version"] == 2 and run["details"]["force_deploy"] is True
    assert run["details"]["gate"]["forced"] is True and run["details"]["gate"]["passes"] is False
    assert run["message"] == (  # the test config's API (127.0.0.1:9) is down: the run says so beside the deployment
        "deployed v0002 past the gate (--force-deploy) (F1 0.6305 on the test data);"
        " API calls failed: the API is not reachable at http://127.0.0.1:9 (connection refused)"
    )
    assert "forced by --force-deploy" in current.meta["reason"]
    event = audit.events(practice, limit=1)[0]  # the audit log names the forced deployment
    assert (event["actor"], event["action"], event["target"], event["origin"]) == (
        "fullprocess",
        "forced deployment",
        "v0002",
        "full process",
    )


def test_minimum_improvement_is_configurable(deployed_practice: Config, config: Config) -> None:
    strict = reconfigure(config, promotion_min_improvement=0.2)
    assert pipeline.run(strict) == 0
    run = history.runs(strict.history_db)[-1]
    assert run["outcome"] == "not promoted"
    assert "improvement +0.1604 < minimum 0.2000 -> not promoted" in run["details"]["gate"]["reason"]
    assert production.current(config.prod_deployment_folder).version == 1


def test_shipped_story_under_the_default_config_records_every_decision(deployed_practice: Config, config: Config) -> None:
    assert pipeline.run(config) == 0
    run = history.runs(config.history_db)[-1]
    d = run["details"]
    assert run["outcome"] == "deployed" and run["deployed_version"] == 2
    assert d["trigger"] == "drift (raw): F1 0.4844 < 0.6305" and d["force_deploy"] is False
    event = audit.events(config, limit=1)[0]
    assert (event["actor"], event["action"], event["target"]) == ("fullprocess", "deployed", "v0002")
    assert d["drift"]["test"] == "raw" and d["drift"]["fallback"] is None and d["drift"]["drift"] is True
    assert d["drift"]["new_data_f1"] == pytest.approx(0.484434, abs=1e-6) and d["drift"]["new_rows"] == 10000
    assert d["new_data"] == {"files": SOURCED_FILES, "rows": 10000, "rows_already_trained_on": 0, "waiting_files": []}
    table = {r["feature"]: r for r in d["data_drift"]["features"]}
    assert set(table) == set(config.features) and all(r["reference_rows"] == 520 for r in table.values())
    assert table["lastyear_activity"]["ks_drift"] is True and table["lastyear_activity"]["psi_drift"] is False
    assert d["data_drift"]["drift"] is False and d["data_drift"]["reference"] == "v0001/trainingdata.csv"
    assert d["gate"]["promote"] is True and "improvement +0.1604 >= minimum 0.0000 -> promoted" in d["gate"]["reason"]
    assert [f["name"] for f in d["ingestion"]["files"]] == SOURCED_FILES
    assert all(len(f["sha256"]) == 64 and f["rows_read"] >= 2500 for f in d["ingestion"]["files"])
    assert {"ingestion", "drift", "data_drift", "training", "scoring", "gate", "deployment"} <= set(d["timings"])
    deployed = production.current(config.prod_deployment_folder)
    assert sha256_file(deployed.training_data_path) == sha256_file(config.final_data_csv)


def test_parametric_test_falls_back_to_raw_on_a_short_history(
    deployed_practice: Config, config: Config, caplog: pytest.LogCaptureFixture
) -> None:
    parametric = reconfigure(config, drift_test="parametric")
    assert pipeline.run(parametric) == 0
    message = "parametric needs at least 3 F1 values in the lineage's history, it has 1; used raw"
    assert f"drift test parametric falls back to raw: {message}" in caplog.text
    drift = history.runs(config.history_db)[-1]["details"]["drift"]
    assert (drift["requested_test"], drift["test"], drift["fallback"]) == ("parametric", "raw", message)
    assert drift["history"] == [0.630462]


def test_parametric_test_runs_once_the_lineage_has_history(deployed_practice: Config) -> None:
    """Three batches from the practice model's own world, one a run: the third is judged by mean - 2*std."""
    practice = reconfigure(deployed_practice, drift_test="parametric")
    measured = []
    for i, seed in enumerate((7, 8, 9), start=3):
        older_world_file(practice.input_folder / f"dataset{i}.csv", 400, seed)
        assert pipeline.run(practice) == 0
        run = history.runs(practice.history_db)[-1]
        assert run["outcome"] == "no drift" and run["details"]["drift"]["new_rows"] == 400
        measured.append(run["details"]["drift"])
    assert [m["test"] for m in measured] == ["raw", "raw", "parametric"]
    third = measured[2]
    expected_history = [0.630462, measured[0]["new_data_f1"], measured[1]["new_data_f1"]]
    assert third["history"] == pytest.approx(expected_history, abs=1e-6)
    assert third["threshold"] == pytest.approx(np.mean(expected_history) - 2 * np.std(expected_history, ddof=1), abs=1e-5)


def test_rows_the_deployed_model_was_trained_on_are_not_new_data(deployed_practice: Config) -> None:
    practice = deployed_practice
    known = pd.read_csv(practice.input_folder / "dataset1.csv").head(50)
    rng = np.random.default_rng(5)
    fresh = clients(rng, unique_ids(rng, 100, set(known.corporation)), OLDER_WORLD)
    pd.concat([known, fresh]).to_csv(practice.input_folder / "dataset3.csv", index=False)
    assert pipeline.run(practice) == 0
    d = history.runs(practice.history_db)[-1]["details"]
    assert d["new_data"] == {"files": ["dataset3.csv"], "rows": 100, "rows_already_trained_on": 50, "waiting_files": []}
    assert d["drift"]["new_rows"] == 100 and all(r["new_rows"] == 100 for r in d["data_drift"]["features"])


@pytest.mark.parametrize("switch", [False, True])
def test_data_drift_retrains_only_when_switched_on(deployed_practice: Config, switch: bool) -> None:
    """Twice the activity: KS and PSI both see it, while the practice model's F1 stays above its score."""
    practice = reconfigure(deployed_practice, data_drift_retrain=switch)
    older_world_file(practice.input_folder / "dataset3.csv", 400, seed=7, activity_scale=2.0)
    assert pipeline.run(practice) == 0
    run = history.runs(practice.history_db)[-1]
    d = run["details"]
    assert d["drift"]["drift"] is False and d["drift"]["new_data_f1"] > d["drift"]["deployed_score"]
    assert d["data_drift"]["drifted_features"] == ["lastmonth_activity", "lastyear_activity"]
    if not switch:
        assert run["outcome"] == "no drift" and "gate" not in d and d["trigger"] is None
        return
    assert d["trigger"] == "data drift in lastmonth_activity, lastyear_activity"
    gate = d["gate"]  # retrained on the 920 older-world rows, the candidate edges past the deployed model
    assert gate["candidate_f1"] == pytest.approx(0.6324, abs=1e-4) and gate["deployed_f1"] == pytest.approx(0.630462, abs=1e-6)
    assert run["outcome"] == "deployed" and run["deployed_version"] == 2


def test_history_survives_and_grows_across_runs(deployed_practice: Config, config: Config) -> None:
    assert pipeline.run(config) == 0
    first = history.runs(config.history_db)
    assert run_script("deployment.py", "--config", str(config.config_file), "--rollback").returncode == 0
    assert pipeline.run(config) == 0  # the rollback sticks: the sourced files are not new for v0001
    rng = np.random.default_rng(3)
    clients(rng, unique_ids(rng, 500), CHANGED_WORLD).to_csv(config.input_folder / "clients_q5.csv", index=False)
    assert pipeline.run(config) == 0
    everything = history.runs(config.history_db)
    assert everything[: len(first)] == first
    assert [(r["kind"], r["outcome"], r["deployed_version"]) for r in everything] == [
        ("fullprocess", "deployed", 2),
        ("rollback", "rolled back", 1),
        ("fullprocess", "no new data", 1),
        ("fullprocess", "deployed", 3),
    ]
    assert [r["id"] for r in everything] == sorted(r["id"] for r in everything)
    assert everything[1]["details"] == {"from": 2, "to": 1, "pinned_files": SOURCED_FILES}
    last = everything[3]["details"]
    assert last["new_data"]["files"] == ["clients_q5.csv"] and last["drift"]["deployed_version"] == "v0001"
    # v0001's lineage holds its test score and the F1 the first run measured for it, across the rollback
    assert last["drift"]["history"] == [pytest.approx(0.630462, abs=1e-6), pytest.approx(0.484434, abs=1e-6)]


def test_refused_rollback_leaves_production_as_it_was(deployed_practice: Config, config: Config) -> None:
    assert pipeline.run(config) == 0
    prod = config.prod_deployment_folder
    (prod / "versions" / "v0001" / "trainingdata.csv").unlink()
    before = tree_state(prod)
    done = run_script("deployment.py", "--config", str(config.config_file), "--rollback", "v0001")
    assert done.returncode == 1
    assert "deployment v0001 is missing trainingdata.csv" in done.stderr.splitlines()[-1]
    assert tree_state(prod) == before and production.current(prod).version == 2
    assert [r["kind"] for r in history.runs(config.history_db)] == ["fullprocess"]


def test_bad_drift_setting_is_a_clear_error(project: Path) -> None:
    path = write_config(project, "bad.json", drift_test="sometimes")
    done = run_script("fullprocess.py", "--config", str(path))
    assert done.returncode == 2 and "Traceback" not in done.stderr  # a config error, found before any work
    assert done.stderr == f"error: config file {path}: key 'drift_test' must be one of raw, parametric, nonparametric, got \"sometimes\"\n"


def test_gate_warns_when_the_evaluation_data_was_trained_on(
    deployed_practice: Config, config: Config, caplog: pytest.LogCaptureFixture
) -> None:
    """Test rows sent again as new data make the candidate's test score optimistic; the gate says so."""
    test_rows = pd.read_csv(config.test_data_csv).head(200)
    test_rows.to_csv(config.input_folder / "clients_q5.csv", index=False)
    assert pipeline.run(config) == 0
    gate = history.runs(config.history_db)[-1]["details"]["gate"]
    assert gate["evaluation_rows_in_training_data"] == {"candidate": 200, "deployed": 0}
    assert "the gate's evaluation data is not independent: 200 test row(s) are in the candidate model's training data" in caplog.text
