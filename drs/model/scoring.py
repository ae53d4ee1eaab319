"""Scoring: F1 of the trained model on the test data.

Writes `output_model_path/latestscore.txt` (the bare F1, as the course has it)
and `latestscore.json` (F1, precision, recall, accuracy, the test file and the
checksum of the model that was scored, so deployment can check that score and
model belong together; and `calibration`, the reliability table of the exit
probability per decile with the Brier score, drs/model/calibration.py, which deploys
with the rest of the score).

When trainedmodel.json records the model's linear parts (drs.model.estimator.LinearModel)
and its `model_sha256` is that of the pickle on disk, the model is scored from
them without unpickling, which saves importing scikit-learn; the results are the
same. Any other model, or a pickle the record does not vouch for, is unpickled.
"""

from __future__ import annotations

import json
import logging
import pickle
from pathlib import Path
from typing import Any

from drs.core.errors import StageError
from drs.core.fileio import atomic_write_json, atomic_write_text, sha256_bytes
from drs.core.layout import utc_now
from drs.core.settings import Config
from drs.data.readers import read_polars_checked
from drs.data.schema import schema_of
from drs.history.modelresults import Reliability
from drs.model import calibration
from drs.model.estimator import LinearModel
from drs.model.metrics import Metrics, metrics

log = logging.getLogger("scoring")


def format_score(f1: float) -> str:
    return f"{f1:.6f}\n"


def recorded_linear(meta_path: Path, model_sha256: str) -> LinearModel | None:
    """The linear parts trainedmodel.json records, if it describes the pickle whose checksum is given."""
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        log.debug("no usable %s (%s)", meta_path, exc)
        return None
    if not isinstance(meta, dict) or meta.get("model_sha256") != model_sha256:
        log.info("%s describes another model than the pickle; unpickling it", meta_path.name)
        return None
    if not meta.get("linear"):
        log.debug("%s records no linear parts (another kind of model, or trained before they were recorded)", meta_path.name)
        return None
    try:
        return LinearModel.from_record(meta["linear"])
    except ValueError as exc:
        log.info("%s: %s; unpickling the model", meta_path.name, exc)
        return None


def model_to_score(config: Config) -> tuple[Any, str]:
    """(model, sha256 of the pickle's bytes): the recorded linear parts when they belong to those bytes, else those bytes unpickled."""
    try:
        blob = config.model_pkl.read_bytes()
    except FileNotFoundError:
        raise StageError(f"{config.model_pkl} does not exist; run training.py first") from None
    digest = sha256_bytes(blob)
    linear = recorded_linear(config.model_meta, digest)
    if linear is not None:
        log.info("scoring the linear parts recorded in %s (its model_sha256 matches %s)", config.model_meta.name, config.model_pkl.name)
        return linear, digest
    log.info("scoring %s unpickled", config.model_pkl.name)
    return pickle.loads(blob), digest


class Score(Metrics):
    """latestscore.json: the metrics on the test data, the reliability table, and what was scored."""

    calibration: Reliability
    scored_at: str
    test_data: str
    model_sha256: str


def score(config: Config) -> Score:
    """Score output_model_path/trainedmodel.pkl on the test data and record it."""
    schema = schema_of(config)
    model, digest = model_to_score(config)
    test = read_polars_checked(config.test_data_csv, schema, source=str(config.test_data_csv))
    result: Score = {
        **metrics(model, test, schema),
        "calibration": calibration.of_model(model, test, schema),
        "scored_at": utc_now(),
        "test_data": str(config.test_data_csv),
        "model_sha256": digest,
    }
    atomic_write_text(config.latest_score_txt, format_score(result["f1"]))
    atomic_write_json(config.latest_score_json, result)
    log.info(
        "F1 %.4f (precision %.4f, recall %.4f, Brier %.4f) on %d rows of %s; wrote %s",
        result["f1"],
        result["precision"],
        result["recall"],
        result["calibration"]["brier"],
        result["rows"],
        config.test_data_csv.name,
        config.latest_score_txt,
    )
    return result
