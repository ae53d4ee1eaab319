"""The shapes of the model's results that the run's record stores: TypedDicts, so the stored JSON keys stay as they are.

drs/model/ computes them (the score test's verdict and its sampling noise, the data-drift rows, the label-free estimate,
the labelled-sample check, the calibration records); drs/history/record.py keeps them in a run's details, and the page,
the PDF and the alert rules read them back by key. They live here, in the history layer, so that the record (below the
model layer) can name them; a stored row is JSON read back, so a key marked NotRequired may be missing in old rows.
docs/architecture.md has the rest.
"""

from __future__ import annotations

from typing import NotRequired, TypedDict


class Noise(TypedDict):
    """drs/model/drift.py sampling_noise: the seeded bootstrap of F1 against a threshold."""

    level: float
    resamples: int
    seed: int
    rows: int
    low: float
    high: float
    threshold_rows: int | None
    drop: float
    drop_low: float
    drop_high: float
    share_at_or_above: float
    beyond_noise: bool


class ScoreVerdict(TypedDict):
    """drs/model/drift.py score_drift (or not_measured): the score test's verdict and the numbers behind it."""

    requested_test: str
    test: str
    fallback: str | None
    measured: bool
    new_data_f1: float | None
    drift: bool
    reason: NotRequired[str]
    deployed_score: NotRequired[float]
    history: NotRequired[list[float]]
    history_points: NotRequired[int]
    mean: NotRequired[float]
    std: NotRequired[float]
    q1: NotRequired[float]
    q3: NotRequired[float]
    iqr: NotRequired[float]
    threshold: NotRequired[float]
    rule: NotRequired[str]


class FeatureDriftRow(TypedDict):
    """drs/model/drift.py drift_row: one feature's line of the data-drift table."""

    feature: str
    reference_rows: int
    new_rows: int
    ks_statistic: float
    ks_p_value: float
    ks_drift: bool
    psi: float
    psi_drift: bool
    ks_reference: NotRequired[str]  # from a training data summary (drs/model/reference.py): "exact" or a sample


class DataDriftVerdict(TypedDict):
    """drs/model/drift.py data_drift_verdict."""

    drift: bool
    drifted_features: list[str]
    rule: str


class Estimate(TypedDict):
    """drs/model/estimate.py estimate: the label-free (CBPE) estimate, or why there is none (`estimated` false)."""

    method: str
    assumptions: str
    rows: int
    estimated: bool
    calibration: str | None
    reason: NotRequired[str]
    f1: NotRequired[float]
    precision: NotRequired[float]
    recall: NotRequired[float]
    low: NotRequired[float]
    high: NotRequired[float]
    level: NotRequired[float]
    expected_confusion_matrix: NotRequired[list[list[float]]]
    calibration_words: NotRequired[str]


class LabelledSample(TypedDict):
    """drs/model/labelsample.py check: a labelled sample against the estimate and the threshold (drs/pipeline/judge.py
    adds `of`, `test` and `caveat` for a partly labelled batch)."""

    labels: int
    exits: int
    estimated_f1: float | None
    threshold: float
    measured: bool
    f1: float | None
    alarm: bool
    reason: NotRequired[str]
    low: NotRequired[float]
    high: NotRequired[float]
    level: NotRequired[float]
    below_estimate: NotRequired[bool]
    below_threshold: NotRequired[bool]
    against_estimate: NotRequired[Noise | None]
    against_threshold: NotRequired[Noise]
    of: NotRequired[int]
    test: NotRequired[str]
    caveat: NotRequired[str]


class Decile(TypedDict):
    """One row of drs/model/calibration.py's reliability table."""

    decile: int
    rows: int
    mean_predicted: float
    observed_rate: float
    exits: int
    lowest: float
    highest: float


class Reliability(TypedDict):
    """drs/model/calibration.py reliability: the reliability table and the Brier score."""

    method: str
    rows: int
    exits: int
    base_rate: float
    mean_predicted: float
    brier: float
    deciles: list[Decile]


class ReliabilityReport(Reliability):
    """drs/reports/reporting.py reliability_report: the reliability measured now on the test data, and its plot."""

    path: str
    test_data: str


class Judged(TypedDict):
    """drs/model/estimate.py: the calibration error of some probabilities against what sampling alone gives."""

    error: float
    noise_limit: float
    within_noise: bool
    reliability: Reliability


class Isotonic(TypedDict):
    """The knots of an isotonic map (numpy.interp over them)."""

    x: list[float]
    y: list[float]


class ProductionCalibration(TypedDict):
    """drs/model/estimate.py production_calibration: stored in trainedmodel.json and the deployment's metadata."""

    data: str
    rows: int
    exits: int
    isotonic: Isotonic | None
    status: str
    reason: str | None
    out_of_fold: NotRequired[Judged]
    after_isotonic: NotRequired[Judged]
