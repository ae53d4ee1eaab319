"""Training and scoring: the course's model on the three features, F1 written as a bare number."""

from __future__ import annotations

import json
import pickle

import pandas as pd
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import f1_score

from drs.core.settings import Config
from drs.data import ingest
from drs.model import scoring, training
from tests.conftest import run_script

FEATURES = ["lastmonth_activity", "lastyear_activity", "number_of_employees"]


def test_training_fits_the_course_model_on_three_features(practice_config: Config) -> None:
    ingest.ingest(practice_config)
    meta = training.train(practice_config)
    with open(practice_config.model_pkl, "rb") as handle:
        model = pickle.load(handle)
    assert isinstance(model, LogisticRegression)
    assert (model.C, model.solver, model.random_state) == (1.0, "liblinear", 0)
    assert model.n_features_in_ == 3
    data = pd.read_csv(practice_config.final_data_csv)
    reference = LogisticRegression(C=1.0, solver="liblinear", random_state=0).fit(data[FEATURES].to_numpy(float), data.exited)
    assert (model.coef_ == reference.coef_).all()
    assert meta["training_rows"] == 520 and meta["training_files"] == ["dataset1.csv", "dataset2.csv"]
    assert json.loads(practice_config.model_meta.read_text())["features"] == FEATURES


def test_scoring_writes_the_f1_on_the_test_data(practice_config: Config) -> None:
    ingest.ingest(practice_config)
    training.train(practice_config)
    result = scoring.score(practice_config)
    with open(practice_config.model_pkl, "rb") as handle:
        model = pickle.load(handle)
    test = pd.read_csv(practice_config.test_data_csv)
    expected = f1_score(test.exited, model.predict(test[FEATURES].to_numpy(float)))
    text = practice_config.latest_score_txt.read_text()
    assert text == f"{expected:.6f}\n"
    assert abs(result["f1"] - expected) < 1e-12
    assert 0.55 < expected < 0.7  # the practice model in the changed world (README's data story)


def test_training_without_ingested_data_says_what_to_run(practice_config: Config) -> None:
    done = run_script("training.py", "--config", str(practice_config.config_file))
    assert done.returncode == 1
    assert "finaldata.csv does not exist; run ingestion.py first" in done.stderr
