"""Scoring from the linear parts training records in trainedmodel.json: the pickle path's results, no
scikit-learn or scipy imported, and never used for a pickle the record does not describe."""

from __future__ import annotations

import json
import logging
import pickle
import subprocess
import sys
from dataclasses import replace
from typing import Any

import numpy as np
import pytest

from drs.core.fileio import sha256_file
from drs.core.settings import Config
from drs.data import ingest
from drs.data.readers import read_polars_checked
from drs.data.schema import Schema
from drs.model import scoring, training
from drs.model.estimator import LinearModel, feature_matrix, linear_model_of
from drs.model.metrics import metrics
from tests.conftest import ROOT
from tools.generate_data import large_set, write_csv

SETTINGS = [{}, {"solver": "lbfgs", "scale": True}, {"solver": "newton-cholesky", "dtype": "float32"}]
RECORDED = "scoring the linear parts recorded"
UNPICKLED = "scoring trainedmodel.pkl unpickled"


@pytest.fixture
def trained(practice_config: Config, request: pytest.FixtureRequest) -> Config:
    """The practice project trained with the given model settings, scored on 50,000 generated rows."""
    config = replace(practice_config, model={**practice_config.model, **getattr(request, "param", {})}, test_data_file="big.csv")
    write_csv(large_set(50_000, seed=31), config.test_data_csv)
    ingest.ingest(config)
    training.train(config)
    return config


def score(config: Config, caplog: pytest.LogCaptureFixture) -> tuple[dict[str, Any], str, str]:
    """(latestscore.json without its time, latestscore.txt, the log) of one scoring.run."""
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="scoring"):
        scoring.score(config)
    result = json.loads(config.latest_score_txt.with_suffix(".json").read_text())
    del result["scored_at"]
    return result, config.latest_score_txt.read_text(), caplog.text


def drop_linear(config: Config) -> None:
    """trainedmodel.json as training wrote it before it recorded the linear parts."""
    meta = json.loads(config.model_meta.read_text())
    del meta["linear"]
    config.model_meta.write_text(json.dumps(meta))


@pytest.mark.parametrize("trained", SETTINGS, indirect=True, ids=["liblinear", "lbfgs-scaled", "newton-cholesky-float32"])
def test_recorded_parts_score_as_the_pickle_does(trained: Config, caplog: pytest.LogCaptureFixture) -> None:
    fast, fast_txt, log = score(trained, caplog)
    assert RECORDED in log
    drop_linear(trained)
    slow, slow_txt, log = score(trained, caplog)
    assert UNPICKLED in log
    assert (fast, fast_txt) == (slow, slow_txt)
    (tn, fp), (fn, tp) = fast["confusion_matrix"]
    assert fast["rows"] == 50_000 and tp + fp > 0 and tn + fn > 0  # both classes predicted: the comparison means something
    with open(trained.model_pkl, "rb") as handle:
        model = pickle.load(handle)
    x = feature_matrix(read_polars_checked(trained.test_data_csv, Schema()), Schema())
    assert (LinearModel.from_record(json.loads(json.dumps(linear_model_of(model).to_record()))).classes(x) == model.predict(x)).all()


def test_recorded_parts_read_back_exactly(trained: Config) -> None:
    with open(trained.model_pkl, "rb") as handle:
        expected = linear_model_of(pickle.load(handle))
    got = LinearModel.from_record(json.loads(trained.model_meta.read_text())["linear"])
    for name in ("mean", "scale", "weights", "labels"):
        assert getattr(got, name).tolist() == getattr(expected, name).tolist()
    assert got.intercept == expected.intercept


SCORE_ONLY = """
import runpy, sys
sys.argv = ["scoring.py", "--config", {config!r}]
try:
    runpy.run_path({script!r}, run_name="__main__")
except SystemExit as exit:
    code = exit.code
print(code, ",".join(m for m in ("sklearn", "scipy", "pandas") if m in sys.modules) or "none")
"""


def test_scoring_a_recorded_model_imports_neither_scikit_learn_nor_scipy(practice_config: Config) -> None:
    ingest.ingest(practice_config)
    training.train(practice_config)
    done = subprocess.run(
        [sys.executable, "-c", SCORE_ONLY.format(script=str(ROOT / "scoring.py"), config=str(practice_config.config_file))],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert RECORDED in done.stderr
    assert done.stdout.split() == ["0", "none"]


def test_a_pickle_the_record_does_not_describe_is_unpickled(trained: Config, caplog: pytest.LogCaptureFixture) -> None:
    recorded, _, _ = score(trained, caplog)
    with open(trained.model_pkl, "rb") as handle:
        other = pickle.load(handle)
    other.coef_ = -other.coef_  # replaced by hand: a working model that predicts the opposite
    other.intercept_ = -other.intercept_
    trained.model_pkl.write_bytes(pickle.dumps(other))
    result, text, log = score(trained, caplog)
    assert UNPICKLED in log and RECORDED not in log
    assert result["model_sha256"] == sha256_file(trained.model_pkl) != recorded["model_sha256"]
    frame = read_polars_checked(trained.test_data_csv, Schema())
    expected = metrics(other, frame, Schema())
    assert {k: result[k] for k in expected} == expected
    assert result["f1"] != recorded["f1"]
    assert text == scoring.format_score(expected["f1"])


def test_a_model_trained_before_the_record_still_scores(trained: Config, caplog: pytest.LogCaptureFixture) -> None:
    recorded, _, _ = score(trained, caplog)
    drop_linear(trained)
    old, _, log = score(trained, caplog)
    assert UNPICKLED in log and old == recorded
    trained.model_meta.unlink()
    none, _, log = score(trained, caplog)
    assert UNPICKLED in log and none == recorded


def test_other_models_record_no_linear_parts() -> None:
    from sklearn.tree import DecisionTreeClassifier

    x = np.arange(20.0).reshape(10, 2)
    assert linear_model_of(DecisionTreeClassifier().fit(x, np.arange(10) % 2)) is None
