"""Training: fit the model on the ingested data and describe it.

Reads `output_folder_path/finaldata.csv` (from the row store when it matches the
file); writes `output_model_path/trainedmodel.pkl` and `trainedmodel.json` (when,
on which files and rows, with which settings; for a binary logistic regression
also its weights, `linear`, so scoring need not unpickle; and `reference`, the training
data's mean of each feature, against which drs/model/explain.py measures each client's reasons; and `production_calibration`,
whether such a model's probabilities are calibrated out of fold on this data, drs/model/estimate.py).
`corporation` is an id, never a feature.
"""

from __future__ import annotations

import logging
import pickle
import time
from typing import TypedDict

from drs.core.configkeys import ModelSettings
from drs.core.errors import StageError
from drs.core.fileio import atomic_write_bytes, atomic_write_json, sha256_bytes, sha256_file
from drs.core.layout import utc_now
from drs.core.settings import Config
from drs.data import rowstore
from drs.data.readers import Table, labelled, read_polars_checked
from drs.data.schema import Schema, schema_of
from drs.history.modelresults import ProductionCalibration
from drs.model import estimate
from drs.model.estimator import LinearRecord, fit, linear_model_of
from drs.model.explain import ReferenceRecord, reference_record

log = logging.getLogger("training")


def training_frame(config: Config, schema: Schema) -> Table:
    """finaldata.csv's rows: from the row store when it matches the file (Parquet, no parsing), else the CSV."""
    if not config.final_data_csv.exists():
        raise StageError(f"{config.final_data_csv} does not exist; run ingestion.py first")
    store = rowstore.load(config.output_folder, config.final_data_csv, config.input_folder, schema.columns)
    if store is not None:
        return rowstore.read_rows(config.output_folder, store, [*schema.features, schema.target])
    return read_polars_checked(config.final_data_csv, schema, unlabelled=True)


class TrainedModel(TypedDict):
    """trainedmodel.json: the model's description, deployed with it (drs/pipeline/deploy.py copies parts of it)."""

    trained_at: str
    training_rows: int
    unlabelled_rows: int
    training_files: list[str]
    ingestedfiles_sha256: str | None
    finaldata_sha256: str
    features: list[str]
    target: str
    settings: ModelSettings  # config.json's `model`, as checked
    model_sha256: str
    linear: LinearRecord | None
    reference: ReferenceRecord
    production_calibration: ProductionCalibration
    seconds: float


def train(config: Config) -> TrainedModel:
    """Train on finaldata.csv and write the model and its description; return the description."""
    started = time.perf_counter()
    schema = schema_of(config)
    ingested = training_frame(config, schema)
    frame = labelled(ingested, schema)  # a row whose label is not known yet is never trained on
    waiting = ingested.height - frame.height
    if not frame.height and waiting:  # not "only one class": there is no class at all yet
        raise StageError(
            f"{config.final_data_csv.name}: {waiting:,} of {ingested.height:,} rows have no label yet (empty {schema.target}):"
            " nothing to train on"
        )
    if waiting:
        log.info("%d row(s) of %s have no label yet (empty %s) and are not trained on", waiting, config.final_data_csv.name, schema.target)
    model = fit(frame, schema, config.model)
    blob = pickle.dumps(model, protocol=pickle.HIGHEST_PROTOCOL)
    listed = config.ingested_files_txt.exists()
    files = config.ingested_files_txt.read_text().split() if listed else []
    linear = linear_model_of(model)
    meta: TrainedModel = {
        "trained_at": utc_now(),
        "training_rows": len(frame),
        "unlabelled_rows": waiting,
        "training_files": files,
        "ingestedfiles_sha256": sha256_file(config.ingested_files_txt) if listed else None,
        "finaldata_sha256": sha256_file(config.final_data_csv),
        "features": list(schema.features),
        "target": schema.target,
        "settings": config.model,
        "model_sha256": sha256_bytes(blob),
        "linear": linear.to_record() if linear is not None else None,
        "reference": reference_record({f: frame[f].to_numpy() for f in schema.features}, schema.features),
        "production_calibration": estimate.production_calibration(frame, schema, config.model),
        "seconds": round(time.perf_counter() - started, 4),
    }
    atomic_write_bytes(config.model_pkl, blob)
    atomic_write_json(config.model_meta, meta)
    log.info("trained %s on %d rows from %d file(s); wrote %s", type(model).__name__, len(frame), len(files), config.model_pkl)
    return meta
