"""Training: fit the course's logistic regression on the ingested data.

Reads `output_folder_path/finaldata.csv`; writes `output_model_path/trainedmodel.pkl`
and `trainedmodel.json` (when, on which files and rows, with which settings; for a
binary logistic regression also its weights, `linear`, so scoring need not unpickle).
`corporation` is an id, never a feature.
"""
from __future__ import annotations

import logging
import pickle
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from drs import rowstore
from drs.cli import StageError, run_stage
from drs.config import Config
from drs.fileio import atomic_write_bytes, atomic_write_json, sha256_bytes, sha256_file
from drs.production import utc_now
from drs.schema import Schema, read_polars_checked

if TYPE_CHECKING:
    import pandas as pd
    import polars as pl

log = logging.getLogger("training")


def build_model(settings: dict[str, Any]) -> Any:
    """The course's model (C=1.0, liblinear, random_state 0) unless config.json says otherwise.

    `scale: true` puts a StandardScaler in front, which solvers such as lbfgs need;
    `dtype: "float32"` fits on float32 features (half the memory traffic).
    liblinear is the course's but slow on millions of rows; the README
    ("Speed at scale") says when to switch to `newton-cholesky` or `lbfgs` with `scale`.
    """
    from sklearn.linear_model import LogisticRegression

    model = LogisticRegression(
        C=float(settings.get("C", 1.0)),
        solver=str(settings.get("solver", "liblinear")),
        random_state=int(settings.get("random_state", 0)),
        max_iter=int(settings.get("max_iter", 1000)),
    )
    if settings.get("scale"):
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import StandardScaler

        return make_pipeline(StandardScaler(), model)
    return model


def feature_matrix(frame: "pd.DataFrame | pl.DataFrame", schema: Schema, dtype: str = "float64") -> Any:
    """Features (config order) of a pandas or polars frame; the model is fitted on arrays, not names."""
    import numpy as np

    return np.asarray(frame[list(schema.features)].to_numpy(), dtype=dtype)


def features_and_target(frame: "pd.DataFrame | pl.DataFrame", schema: Schema, dtype: str = "float64") -> tuple[Any, Any]:
    return feature_matrix(frame, schema, dtype), frame[schema.target].to_numpy()


def train(frame: "pd.DataFrame | pl.DataFrame", schema: Schema, settings: dict[str, Any]) -> Any:
    """Fit a model on a checked frame; pure (no I/O)."""
    return fit(*features_and_target(frame, schema, str(settings.get("dtype", "float64"))), schema, settings)


def fit(x: Any, y: Any, schema: Schema, settings: dict[str, Any]) -> Any:
    import numpy as np

    if len(np.unique(y)) < 2:
        raise StageError(f"training data has only one class in '{schema.target}'; cannot fit a classifier")
    return build_model(settings).fit(x, y)


def training_frame(config: Config, schema: Schema, store: dict[str, Any] | None) -> "pl.DataFrame":
    """finaldata.csv's rows: from the row store when it matches the file (Parquet, no parsing), else the CSV."""
    if store is not None:
        return rowstore.read_rows(config.output_folder, store, [*schema.features, schema.target])
    return read_polars_checked(config.final_data_csv, schema)


def run(config: Config) -> dict[str, Any]:
    """Train on finaldata.csv and write the model and its description; return the description."""
    started = time.perf_counter()
    schema = Schema.from_config(config)
    if not config.final_data_csv.exists():
        raise StageError(f"{config.final_data_csv} does not exist; run ingestion.py first")
    store = rowstore.load(config.output_folder, config.final_data_csv, config.input_folder, schema.columns)
    frame = training_frame(config, schema, store)
    x, y = features_and_target(frame, schema, str(config.model.get("dtype", "float64")))
    model = fit(x, y, schema, config.model)
    blob = pickle.dumps(model, protocol=pickle.HIGHEST_PROTOCOL)
    files = config.ingested_files_txt.read_text().split() if config.ingested_files_txt.exists() else []
    meta = {
        "trained_at": utc_now(),
        "training_rows": len(frame),
        "training_files": files,
        "ingestedfiles_sha256": sha256_file(config.ingested_files_txt) if config.ingested_files_txt.exists() else None,
        "finaldata_sha256": sha256_file(config.final_data_csv),
        "features": list(schema.features),
        "target": schema.target,
        "settings": config.model,
        "model_sha256": sha256_bytes(blob),
        "linear": linear_record(model),
        "seconds": round(time.perf_counter() - started, 4),
    }
    atomic_write_bytes(config.model_pkl, blob)
    atomic_write_json(config.model_meta, meta)
    log.info("trained %s on %d rows from %d file(s); wrote %s", type(model).__name__, len(frame), len(files), config.model_pkl)
    return meta


def linear_record(model: Any) -> dict[str, Any] | None:
    """The model's affine map as JSON (drs.predict.LinearModel), None for other kinds of model."""
    from drs.predict import linear_model_of

    linear = linear_model_of(model)
    return linear.to_record() if linear is not None else None


def read_model_bytes(path: Path) -> bytes:
    """The pickle's bytes, so a caller can check and unpickle the very same bytes."""
    try:
        return Path(path).read_bytes()
    except FileNotFoundError:
        raise StageError(f"{path} does not exist; run training.py first") from None


def main(argv: list[str] | None = None) -> int:
    return run_stage(__doc__, run, argv)


if __name__ == "__main__":
    raise SystemExit(main())
