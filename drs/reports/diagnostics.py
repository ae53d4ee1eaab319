"""Diagnostics of the deployed model and its data: predictions, summary statistics, missing data, stage timings, dependencies.

Each function works with no arguments (reading config.json beside the scripts), as in the course, or with a Config.
`run` computes them all into output_model_path/diagnostics.json, which the API and the reports read.

What diagnostics.json holds and who reads it: docs/architecture.md (the full process) and docs/api.md (GET /diagnostics).
"""

from __future__ import annotations

import logging
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any, NotRequired, TypedDict

import pandas as pd
import polars as pl

from drs.core import layout
from drs.core.errors import StageError
from drs.core.fileio import atomic_write_json
from drs.core.formatting import DependencyCheck, PackageRow, dependency_check, outdated_line
from drs.core.settings import Config, load_config
from drs.data import ingest, rowstore
from drs.data.readers import read_csv_as_written, read_csv_checked, to_pandas
from drs.data.schema import schema_of
from drs.model import scoring, training
from drs.model.estimator import feature_matrix, predicted_classes
from drs.production import versions as production
from drs.reports.packages import outdated_packages_list

log = logging.getLogger("diagnostics")


def _config(config: Config | None) -> Config:
    return config if config is not None else load_config()


def deployed_model(config: Config) -> tuple[Any, production.Deployment]:
    """The deployed model, unpickled after its checksum is confirmed, and its deployment."""
    deployment = production.current(config.prod_deployment_folder)
    if deployment is None:
        raise StageError(f"no model is deployed in {config.prod_deployment_folder}")
    return production.load_model(deployment), deployment


def model_predictions(df: pd.DataFrame | None = None, config: Config | None = None) -> list[int]:
    """Predicted classes of the deployed model, one per row of `df` (default: the test data)."""
    config = _config(config)
    schema = schema_of(config)
    if df is None:
        df = read_csv_checked(config.test_data_csv, schema, source=str(config.test_data_csv))
    model, _ = deployed_model(config)
    return [int(v) for v in predicted_classes(model, feature_matrix(df, schema))]


def ingested(config: Config) -> pl.DataFrame | pd.DataFrame:
    """The ingested rows: from the row store when it holds exactly finaldata.csv's rows (drs/data/rowstore.py: checked rows,
    in polars), else finaldata.csv as written (pandas; a client named "null" or "NA" is a name, not missing)."""
    if not config.final_data_csv.exists():
        raise StageError(f"{config.final_data_csv} does not exist; run ingestion.py first")
    schema = schema_of(config)
    stored = rowstore.final_rows(config.output_folder, config.final_data_csv, config.input_folder, schema.columns)
    return stored if stored is not None else read_csv_as_written(config.final_data_csv, schema)


def final_data(config: Config) -> pd.DataFrame:
    """The ingested data, as written by ingestion, in pandas (the course's name; `ingested` for the quick read)."""
    rows = ingested(config)
    return to_pandas(rows) if isinstance(rows, pl.DataFrame) else rows


def summarize(frame: Any, columns: list[str]) -> dict[str, dict[str, float]]:
    """Mean, median and standard deviation (n - 1) of each column of a pandas or polars frame; pure."""
    return {c: {"mean": float(frame[c].mean()), "median": float(frame[c].median()), "std": float(frame[c].std())} for c in columns}


def distinct(frame: Any, column: str) -> int:
    """How many distinct values a column of a pandas or polars frame holds; pure."""
    values = frame[column]
    return int(values.nunique() if hasattr(values, "nunique") else values.n_unique())


def dataframe_summary(config: Config | None = None) -> dict[str, dict[str, float]]:
    """Mean, median and std of each numeric column of the ingested data."""
    config = _config(config)
    schema = schema_of(config)
    return summarize(ingested(config), [*schema.features, schema.target])


def missing_percent(frame: Any) -> dict[str, float]:
    """Percent of missing values per column of a pandas or polars frame (a polars frame of checked rows has none), to 4
    decimals; pure."""
    if not isinstance(frame, pd.DataFrame):
        return {c: round(float(frame[c].is_null().mean() or 0.0) * 100, 4) for c in frame.columns}
    return {c: round(float(frame[c].isna().mean() * 100), 4) for c in frame.columns}


def missing_data(config: Config | None = None) -> dict[str, float]:
    """Percent of missing values per column of the ingested data."""
    return missing_percent(ingested(_config(config)))


REUSED = ("training", "scoring")  # the stages a full process that just deployed has measured on the same data


def execution_time(config: Config | None = None, measured: Mapping[str, float] | None = None) -> list[float]:
    """Seconds for [ingestion, training, scoring], as the course's list with scoring added.

    The stages run for real on the configured input and test data, but write
    into a temporary folder, so no real output or production file changes. The
    folder is inside the output folder with the temporary prefix, so one left
    by a killed run is removed by the next full process, not left in /tmp.
    `measured`: the seconds this process's own training and scoring took on the same data, moments ago (the full
    process after it deployed); with both, those two are not run again (training twice was most of the cost).
    """
    config = _config(config)
    config.output_folder.mkdir(parents=True, exist_ok=True)
    known = {k: float(measured[k]) for k in REUSED} if measured and all(k in measured for k in REUSED) else {}
    with tempfile.TemporaryDirectory(prefix=f"{layout.TMP_PREFIX}timing-", dir=config.output_folder) as tmp:
        scratch = config.with_outputs(Path(tmp))
        timings = []
        for name, stage in (("ingestion", ingest.ingest), ("training", training.train), ("scoring", scoring.score)):
            if name in known:
                timings.append(round(known[name], 4))
                continue
            started = time.perf_counter()
            stage(scratch)
            timings.append(round(time.perf_counter() - started, 4))
    return timings


class ExecutionTimes(TypedDict):
    ingestion: float
    training: float
    scoring: float


class Diagnostics(TypedDict):
    """diagnostics.json, as written for GET /diagnostics and the reports (its keys are what they read)."""

    computed_at: str
    predictions_on_test_data: list[int]
    summary_statistics: dict[str, dict[str, float]]
    missing_data_percent: dict[str, float]
    execution_time_seconds: ExecutionTimes
    execution_time_measured: str
    dependencies: list[PackageRow]  # drs/reports/packages.py's rows, as PyPI and pip describe each package
    dependency_check: NotRequired[DependencyCheck]  # set once the dependencies are looked up


def run(config: Config, measured: Mapping[str, float] | None = None) -> Diagnostics:
    """All diagnostics, written to diagnostics.json for the API and the reports (`measured`: see `execution_time`)."""
    ingestion_s, training_s, scoring_s = execution_time(config, measured)
    reused = bool(measured) and all(k in (measured or {}) for k in REUSED)
    schema, frame = schema_of(config), ingested(config)  # read once for both
    result: Diagnostics = {
        "computed_at": layout.utc_now(),
        "predictions_on_test_data": model_predictions(None, config),
        "summary_statistics": summarize(frame, [*schema.features, schema.target]),
        "missing_data_percent": missing_percent(frame),
        "execution_time_seconds": {"ingestion": ingestion_s, "training": training_s, "scoring": scoring_s},
        "execution_time_measured": "training and scoring as the run that deployed measured them; ingestion timed again"
        if reused
        else "each stage timed again in a scratch folder",
        "dependencies": outdated_packages_list(config),
    }
    result["dependency_check"] = dependency_check(result["dependencies"])
    atomic_write_json(config.model_output(layout.DIAGNOSTICS), result)
    log.info(
        "diagnostics: %d predictions; timings ingestion %.3fs, training %.3fs, scoring %.3fs; outdated packages: %s",
        len(result["predictions_on_test_data"]),
        ingestion_s,
        training_s,
        scoring_s,
        outdated_line(result["dependencies"]),
    )
    return result
