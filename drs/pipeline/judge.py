"""Judging new data against the deployed model: which rows are new, score drift, and data drift per feature.

The checks read the new files, the deployed model and its training data at the edge and return typed results
(drs/history/record.py); `retrain_reason`, the decision whether to retrain, is pure. docs/drift.md has the rest.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, cast

import numpy as np
import polars as pl

from drs.core import layout
from drs.core.errors import StageError
from drs.core.settings import Config
from drs.data.combine import concatenated
from drs.data.intake import FileRecord, read_source_file
from drs.data.readers import Table, labelled, read_polars_checked, to_pandas
from drs.data.rowstore import rows_in
from drs.data.schema import schema_of
from drs.history import runs as history
from drs.history.modelresults import Estimate, LabelledSample, ProductionCalibration
from drs.history.record import RunReport
from drs.history.results import DataDrift, NewData, ScoreDriftCheck
from drs.model import drift, estimate, labelsample
from drs.model.estimator import feature_matrix, predicted_classes
from drs.model.metrics import counts_of, metrics
from drs.model.reference import Reference
from drs.model.reference import read as read_reference
from drs.production import versions as production
from drs.production.versions import Deployment

if TYPE_CHECKING:
    import pandas as pd

log = logging.getLogger("fullprocess")
TrainingData = Reference | Table


def training_data(config: Config, deployed: Deployment) -> Table | None:
    """The copy of the data the deployed model was trained on (checksum verified), or None for a version deployed without one."""
    if deployed.training_data_path is None:
        return None
    production.verify(deployed)
    return read_polars_checked(deployed.training_data_path, schema_of(config), unlabelled=True)


def drift_reference(config: Config, deployed: Deployment) -> TrainingData | None:
    """What the drift checks compare the new rows with: the version's summary of its training data when it has
    a usable one (checksum verified), else the training data itself (`training_data`)."""
    path = deployed.reference_path
    if path is not None:
        production.verify(deployed, skip=(layout.TRAINING_DATA_FILE,))
        schema = schema_of(config)
        summary = read_reference(path, schema.columns, config.features)
        if summary is not None:
            return summary
        log.info(
            "%s/%s was built for other columns or another polars version; reading %s", deployed.label, path.name, layout.TRAINING_DATA_FILE
        )
    return training_data(config, deployed)


def trained_on(reference: TrainingData, frame: pd.DataFrame, columns: list[str]) -> np.ndarray:
    """Which rows of `frame` the deployed model was trained on: by the summary's row hashes, or by value in its training data."""
    return reference.known(frame) if isinstance(reference, Reference) else rows_in(frame, reference, columns)


def new_rows(config: Config, accepted_new: list[FileRecord], reference: TrainingData | None) -> tuple[pd.DataFrame, NewData, np.ndarray]:
    """The rows of the newly accepted files (de-duplicated) that the deployed model was not trained on, and which of
    them come from a file with some labels missing (`NewData.waiting_files`: those rows wait, `score_drift_check`)."""
    schema = schema_of(config)
    frames = []
    for record in accepted_new:
        frame, again = read_source_file(config.input_folder / record.name, config.input_folder, schema)
        if frame is None or again.sha256 != record.sha256:
            raise StageError(f"{record.name} changed during this run; it will be judged on the next run")
        frames.append(frame)
    incomplete = [bool(schema.target in f.columns and f[schema.target].null_count()) for f in frames]
    combined, _, keep = concatenated(frames)
    waits = np.repeat(np.array(incomplete, dtype=bool), [f.height for f in frames])[keep]
    rows = to_pandas(combined.filter(pl.Series(keep)))
    info = NewData(
        files=[r.name for r in accepted_new],
        rows=len(rows),
        waiting_files=[r.name for r, missing in zip(accepted_new, incomplete, strict=True) if missing],
    )
    if reference is not None:
        known = trained_on(reference, rows, list(schema.columns))
        known &= rows[schema.target].notna().to_numpy(dtype=bool)  # a row with no label yet was never trained on
        rows = rows[~known].reset_index(drop=True)
        waits = waits[~known]
        info = replace(info, rows=len(rows), rows_already_trained_on=int(known.sum()))
    return rows, info, waits


def lineage_history(config: Config, deployed: Deployment) -> list[float]:
    """The F1 history of the deployed lineage: every deployment of the same trained model (same sha256,
    so a rollback or a re-deploy keeps its history) contributes its deployment score (F1 on the test data),
    then every F1 on new data that earlier full-process runs measured for that model, oldest first."""
    sha = deployed.model_sha256
    points = [d.score() for d in production.list_versions(config.prod_deployment_folder) if d.model_sha256 == sha]
    return points + history.lineage_f1(config.history_db, sha)


PARTIAL_WORDS = (
    "the labelled rows are a fair sample only if they were picked at random: labels that matured first (often the exits,"
    " known when the client leaves, before a stay is known) can be a biased subset, so this verdict warns a person and"
    " the score test waits for every label"
)


def partial_labels(config: Config, deployed: Deployment, labelled_rows: pd.DataFrame, expected_f1: float | None, of: int) -> LabelledSample:
    """Files with only some labels known: their labelled rows are the sample of drs/model/labelsample.py's alarm (of their `of`
    rows), against the estimate and the threshold the score test will apply once every label is in."""
    schema = schema_of(config)
    predicted = predicted_classes(production.load_model(deployed), feature_matrix(labelled_rows, schema))
    counts = [int(c) for c in counts_of(labelled_rows[schema.target].to_numpy(), predicted)]
    verdict = drift.score_drift(config.drift_test, 0.0, deployed.score(), lineage_history(config, deployed), config.drift_min_history)
    sample = labelsample.check(counts, expected_f1, verdict["threshold"], threshold_counts(deployed, verdict["test"]))
    return {**sample, "of": of, "test": verdict["test"], "caveat": PARTIAL_WORDS}


def score_drift_check(
    config: Config, deployed: Deployment, frame: pd.DataFrame, expected_f1: float | None = None, waits: np.ndarray | None = None
) -> ScoreDriftCheck:
    """The configured score test on the deployed model's F1 on the new rows of the files whose labels are complete; not
    run (drift.unmeasurable) when too few of them exited. With the label-free estimate made before (`expected_f1`), also
    whether the labels contradict it beyond sampling noise.

    `waits` marks the rows of files with some labels missing (an empty exited: not known yet; without it, `frame` is one
    file). Those rows never enter the score test, not even their labelled subset (its F1 would enter the lineage's history
    and decide a retrain on a subset that may be biased): their labelled rows are the sample of the concept-drift alarm
    instead (`labelled_sample`), and they are judged again when the file comes back with its labels (a changed file,
    drs/pipeline/run.py). The rows of the complete files that arrived with them are tested now (`waiting_rows` says how many
    waited)."""
    schema = schema_of(config)
    if waits is None:
        waits = np.full(len(frame), bool(frame[schema.target].isna().any()))
    complete = labelled(frame[~waits].reset_index(drop=True), schema)
    partial = frame[waits].reset_index(drop=True)
    partial_known = labelled(partial, schema)
    exits = int((complete[schema.target] == 1).sum())
    sample = partial_labels(config, deployed, partial_known, expected_f1, len(partial)) if len(partial) and len(partial_known) else None
    waiting = len(partial) - len(partial_known)
    waits_words = f"{waiting:,} of the {len(frame):,} new rows have no label yet; the score test waits for every label" + (
        "" if sample is None else f" ({len(partial_known):,} labelled: the labelled-sample alarm judged them)"
    )

    def about(verdict: ScoreDriftCheck, waiting_words: str | None = None) -> ScoreDriftCheck:
        """The verdict with what was judged: the model, the rows, their labels, the sample of the rows that wait."""
        return replace(
            verdict,
            deployed_version=deployed.label,
            model_sha256=deployed.model_sha256,
            new_rows=len(frame),
            labelled_rows=len(complete) + len(partial_known),
            exits=exits,
            waiting_rows=len(partial),
            labelled_sample=sample,
            waiting=waiting_words,
        )

    if len(partial) and not len(complete):
        return about(ScoreDriftCheck.from_verdict(drift.not_measured(config.drift_test, waits_words)))
    waiting_words = None
    if len(partial):
        waiting_words = (
            f"{waits_words}: the {len(partial):,} row(s) of the files with labels missing wait; the score test ran on the"
            f" {len(complete):,} new row(s) of the files whose labels are complete"
        )
    reason = drift.unmeasurable(exits)
    if reason is not None:
        return about(ScoreDriftCheck.from_verdict(drift.not_measured(config.drift_test, reason)), waiting_words)
    measured = metrics(production.load_model(deployed), complete, schema)
    verdict = drift.score_drift(
        config.drift_test, measured["f1"], deployed.score(), lineage_history(config, deployed), config.drift_min_history
    )
    counts = flat_counts(measured["confusion_matrix"])
    noise = drift.sampling_noise(counts, verdict["threshold"], threshold_counts(deployed, verdict["test"]))
    against = None if expected_f1 is None else drift.sampling_noise(counts, expected_f1)  # below it beyond noise: concept drift
    return about(replace(ScoreDriftCheck.from_verdict(verdict), noise=noise, against_estimate=against), waiting_words)


def production_calibration(config: Config, deployed: Deployment) -> ProductionCalibration | None:
    """How the deployed model's probabilities hold on production-like data (drs/model/estimate.py): as recorded at its
    training; for a version deployed before that was recorded, judged now on its training data; None without one."""
    recorded = deployed.meta.get("production_calibration")
    if isinstance(recorded, dict):
        return cast("ProductionCalibration", recorded)  # as training wrote it
    settings = deployed.meta.get("settings")
    data = training_data(config, deployed) if isinstance(settings, dict) else None
    if data is None or not isinstance(settings, dict):
        return None
    log.info("%s was deployed without a record of its calibration; judging it now on its %s", deployed.label, layout.TRAINING_DATA_FILE)
    return estimate.production_calibration(data, schema_of(config), settings)


def estimate_check(config: Config, deployed: Deployment, frame: pd.DataFrame) -> Estimate:
    """The label-free estimate of the deployed model's F1 on the new rows: from their features alone, before any label."""
    features = feature_matrix(frame, schema_of(config))
    return estimate.of_model(production.load_model(deployed), features, production_calibration(config, deployed))


def flat_counts(matrix: Any) -> list[int]:
    """[tn, fp, fn, tp] of a [[tn, fp], [fn, tp]] confusion matrix."""
    return [int(c) for row in matrix for c in row]


def threshold_counts(deployed: Deployment, test: str) -> list[int] | None:
    """The test data's confusion counts behind the raw threshold (the deployed F1), when the deployment recorded them;
    None for the other tests, whose threshold comes from a history of F1 values, not from one sample."""
    matrix = (deployed.meta.get("score") or {}).get("confusion_matrix")
    if test != drift.RAW or not isinstance(matrix, list):
        return None
    return flat_counts(matrix)


def data_drift_check(config: Config, deployed: Deployment, reference: TrainingData | None, frame: pd.DataFrame) -> DataDrift:
    """KS and PSI per feature between the deployed model's training data (or its summary) and the new rows."""
    if reference is None:
        return DataDrift(measured=False, reason=f"{deployed.label} was deployed without a copy of its training data")
    if frame.empty:
        return DataDrift(measured=False, reason="no new rows")
    summarized = isinstance(reference, Reference)
    if isinstance(reference, Reference):
        rows = reference.feature_drift(frame, config.features)
    else:
        rows = drift.feature_drift(reference, frame, config.features)
    verdict = drift.data_drift_verdict(rows)
    return DataDrift(
        measured=True,
        reference=f"{deployed.label}/{layout.TRAINING_DATA_FILE}",
        features=rows,
        summary=f"{deployed.label}/{layout.REFERENCE_FILE}" if summarized else None,
        drift=bool(verdict["drift"]),
        drifted_features=list(verdict["drifted_features"]),
        rule=str(verdict["rule"]),
    )


def retrain_reason(score: ScoreDriftCheck, data: DataDrift, data_drift_retrain: bool) -> str | None:
    """Why to retrain after both checks, or None; pure."""
    if score.drift:
        return f"drift ({score.test}): F1 {score.new_data_f1:.4f} < {score.threshold:.4f}"
    if data.drift and data_drift_retrain:
        return f"data drift in {', '.join(data.drifted_features)}"
    return None


@dataclass(frozen=True)
class Judgement:
    """What `judge` decided: why to retrain (None: no reason), and the score-drift check behind it (None: no new rows)."""

    trigger: str | None
    check: ScoreDriftCheck | None


def log_data_drift(data: DataDrift) -> None:
    """The data-drift check in the log, as a person reads it."""
    if data.measured:
        log.info("data drift, %s vs the new rows (drift: KS p < %s; PSI > %s):", data.reference, drift.KS_ALPHA, drift.PSI_THRESHOLD)
        for line in drift.format_feature_table(data.features):
            log.info("  %s", line)
        log.info("data drift (%s in the same feature): %s", data.rule, ", ".join(data.drifted_features) or "none")
    else:
        log.info("data drift not measured: %s", data.reason)


def log_score_drift(deployed: Deployment, score: ScoreDriftCheck) -> None:
    """The score-drift check in the log, as a person reads it."""
    if score.fallback:
        log.warning("drift test %s falls back to raw: %s", score.requested_test, score.fallback)
    log.info("drift check (%s): %s %s", score.test, deployed.label, drift.describe_score_drift(score.to_record()))
    if score.waiting:
        log.info("%s", score.waiting)
    if score.measured and score.noise is not None:
        log.info("sampling noise: %s", drift.describe_noise(score.noise))
    sample = score.labelled_sample
    if sample is not None:
        log.log(
            logging.WARNING if sample["alarm"] else logging.INFO,
            "labelled sample (%s of %s new rows labelled): %s",
            f"{sample['labels']:,}",
            f"{sample['of']:,}",
            labelsample.describe(sample),
        )
    if score.against_estimate is not None:
        log.info("labels vs the estimate: %s", estimate.contradiction_words(score.against_estimate))


def judge(config: Config, report: RunReport, deployed: Deployment, accepted_new: list[FileRecord]) -> Judgement:
    """Run both drift checks on the new rows, log them and keep them in the run's record; return why to retrain, or None."""
    reference = report.timed("reference", lambda: drift_reference(config, deployed))
    frame, info, waits = report.timed("new_data", lambda: new_rows(config, accepted_new, reference))
    report.new_data = info
    log.info(
        "new rows: %d from %s%s",
        info.rows,
        ", ".join(info.files),
        ""
        if info.rows_already_trained_on is None
        else f" ({info.rows_already_trained_on} row(s) the deployed model was trained on left out)",
    )
    data = report.timed("data_drift", lambda: data_drift_check(config, deployed, reference, frame))
    report.data_drift = data
    log_data_drift(data)
    if frame.empty:
        log.info("no drift test: the new files hold only rows %s was trained on", deployed.label)
        return Judgement(None, None)
    expected = report.timed("estimate", lambda: estimate_check(config, deployed, frame))  # before any label is looked at
    log.info("label-free estimate (CBPE) for %s: %s", deployed.label, estimate.describe(expected))
    checked = report.timed("drift", lambda: score_drift_check(config, deployed, frame, expected.get("f1"), waits))
    score = replace(checked, estimate=expected)
    report.drift = score
    log_score_drift(deployed, score)
    trigger = retrain_reason(score, data, config.data_drift_retrain)
    if trigger is None and not score.drift and data.drift:
        log.info("data drift alone does not retrain (data_drift_retrain is off)")
    return Judgement(trigger, score)
