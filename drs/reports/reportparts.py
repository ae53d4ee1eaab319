"""The parts of the PDF report that drs/reports/reporting.py gathers and drs/reports/pdf.py shows: their shapes.

Light (typing only), so that both modules and their tests name the same parts; what each page shows: docs/reports.md
(The PDF report).
"""

from __future__ import annotations

from typing import Any, NotRequired, TypedDict

from drs.core.formatting import PackageRow
from drs.history.record import RunRecord
from drs.model.metrics import Metrics


class Evaluation(Metrics):
    """The deployed model on the test data now (drs/model/metrics.py's figures) and where its confusion matrix is drawn."""

    version: str  # the deployed model's label
    path: str  # confusionmatrix.png


class ShownEvaluation(Evaluation):
    """The evaluation as the model page shows it: with the test data's name and how many of its clients exited."""

    test_data: str
    exits: int


class RiskPart(TypedDict):
    """The clients-at-risk page: the ranked data, how many are above the threshold, and the top of the list."""

    source: str
    rows: int
    active: int
    above: int
    threshold: float
    features: list[str]
    top: list[dict[str, Any]]  # risk.as_records: a ranked row's columns, one per feature among them
    named: NotRequired[str]  # which model ranked which data (drs/reports/standing.py `words`)


class DataPart(TypedDict):
    """The data page: the latest ingested data, its summary statistics and missing data, and the ingestion record."""

    source: str
    ingestion: dict[str, Any] | None  # ingestionrecord.json as read (drs/core/fileio.read_json)
    rows: NotRequired[int]  # the rest only when the ingested data could be read
    corporations: NotRequired[int]
    summary: NotRequired[dict[str, dict[str, float]]]  # column -> mean, median, std
    missing: NotRequired[dict[str, float]]  # column -> percent missing


class OperationsPart(TypedDict):
    """The operations page: the stage timings of the run that deployed and of diagnostics, and the dependency check."""

    timings: dict[str, float]
    timings_run: RunRecord | None  # the run-history row those timings are of
    execution_time: dict[str, float] | None  # diagnostics.json's measurement
    diagnostics_at: str | None
    dependencies: list[PackageRow] | None
