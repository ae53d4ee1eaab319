"""The course's function names, for users coming from a course solution (its tests, its fullprocess.py, its habits).

Each one takes no arguments, as in the course: it reads the config when called (DRS_CONFIG, else config.json
beside the scripts, as the app does), does what the course's script did through the library, and returns what
course solutions return. One that writes takes the run lock as the scripts do (drs/core/cli.py: waiting up to
LOCK_WAIT_SECONDS for a run in progress, then LockBusy), or runs within it when this process holds it already
(called from inside a locked script): flock is not reentrant. The pipeline never calls these: they are an outer edge.
Imports are inside the functions, so importing a script stays cheap.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from drs.core.cli import LOCK_WAIT_SECONDS
from drs.core.fileio import LockBusy, describe_holder, run_lock
from drs.core.formatting import PackageRow
from drs.core.settings import Config, load_config

if TYPE_CHECKING:
    import pandas as pd

    from drs.data.combine import IngestionResult
    from drs.model.training import TrainedModel
    from drs.production.versions import Deployment

CONFIG_ENV = "DRS_CONFIG"
log = logging.getLogger(__name__)


def course_config() -> Config:
    """The config the course's functions use: DRS_CONFIG, else config.json beside the scripts."""
    return load_config(os.environ.get(CONFIG_ENV) or None)


@contextlib.contextmanager
def locked(config: Config, name: str) -> Iterator[None]:
    """Hold the run lock for the block as `name`, or go on within it when this very process holds it already."""
    with contextlib.ExitStack() as stack:
        try:
            stack.enter_context(run_lock(config.lock_file, 0, name))
        except LockBusy as busy:
            if not (busy.holder and busy.holder.get("pid") == os.getpid()):
                log.warning("waiting for %s to finish (at most %gs)...", describe_holder(busy.holder), LOCK_WAIT_SECONDS)
                stack.enter_context(run_lock(config.lock_file, LOCK_WAIT_SECONDS, name))
        yield


def ingest_by_hand(config: Config) -> IngestionResult:
    """What `python ingestion.py` does: ingest, then rank the new data with the deployed model for every view."""
    from drs.data.ingest import ingest
    from drs.reports.rankings import INGESTION_BY_HAND
    from drs.reports.reporting import refresh

    result = ingest(config)
    refresh(config, INGESTION_BY_HAND, fail=False)
    return result


def merge_multiple_dataframe() -> pd.DataFrame:
    """ingestion.py: ingest the configured input folder (finaldata.csv, ingestedfiles.txt); return the de-duplicated data."""
    from drs.reports.diagnostics import final_data

    config = course_config()
    with locked(config, "merge_multiple_dataframe"):
        ingest_by_hand(config)
        return final_data(config)


def train_model() -> TrainedModel:
    """training.py: fit the model on finaldata.csv and write trainedmodel.pkl; return its description (trainedmodel.json)."""
    from drs.model.training import train

    config = course_config()
    with locked(config, "train_model"):
        return train(config)


def score_model() -> float:
    """scoring.py: F1 of trainedmodel.pkl on the test data, written to latestscore.txt; return the F1."""
    from drs.model.scoring import score

    config = course_config()
    with locked(config, "score_model"):
        return float(score(config)["f1"])


def store_model_into_pickle(model: object = None) -> Deployment:
    """deployment.py: deploy the model, its score and the ingestion record as one new production version.

    `model` is accepted for course solutions that pass the trained model, and ignored: what is deployed is the
    set train_model() and score_model() wrote (trainedmodel.pkl with its score), so the score matches the model.
    Refused (DeploymentError) when it scores below the deployed model, as `python deployment.py` is."""
    from drs.pipeline.deploy import deploy_or_roll_back

    config = course_config()
    with locked(config, "store_model_into_pickle"):
        return deploy_or_roll_back(config, None)


def model_predictions(dataset: pd.DataFrame | None = None) -> list[int]:
    """diagnostics.py: the deployed model's predicted classes, one per row of `dataset` (default: the test data)."""
    from drs.reports import diagnostics

    return diagnostics.model_predictions(dataset, course_config())


def dataframe_summary() -> list[list[Any]]:
    """diagnostics.py: [column, mean, median, std] of each numeric column of finaldata.csv (features, then target)."""
    from drs.reports import diagnostics

    summary = diagnostics.dataframe_summary(course_config())
    return [[column, s["mean"], s["median"], s["std"]] for column, s in summary.items()]


def missing_data() -> list[list[Any]]:
    """diagnostics.py: [column, percent of missing values] of each column of finaldata.csv."""
    from drs.reports import diagnostics

    return [[column, percent] for column, percent in diagnostics.missing_data(course_config()).items()]


def execution_time() -> list[float]:
    """diagnostics.py: seconds of [ingestion, training], run for real into a temporary folder (no output changes)."""
    from drs.reports import diagnostics

    return diagnostics.execution_time(course_config())[:2]


def outdated_packages_list() -> list[PackageRow]:
    """diagnostics.py: each requirement with its installed and newest version."""
    from drs.reports.packages import outdated_packages_list as outdated

    return outdated(course_config())


def confusion_matrix() -> Path:
    """reporting.py's score_model: draw the deployed model's confusion matrix on the test data; return confusionmatrix.png."""
    from drs.reports.reporting import confusion_matrix_report

    config = course_config()
    with locked(config, "score_model"):
        return Path(confusion_matrix_report(config)["path"])
