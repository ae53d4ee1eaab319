"""The JSON API's endpoints: predictions, scores, summary statistics, diagnostics, the risk list and health.

The `api` blueprint only: each endpoint reads its request through drs/web/requests.py (which also renders every
error, as `ApiError(status, message)` or Werkzeug's, in the one JSON shape) and what it answers from through
`service()` (drs/web/service.py: the config, the schema, the deployed model, the cached reads). Every answer names
the model version that computed it. `GET /risk` ranks nothing: it reads the current ranking reporting wrote, the top
rows and the counts of its indexed store, and says `stale` when they are not the deployed model's ranking of the
current data. `openapi.yaml` describes every answer (tests/web/test_openapi.py checks it); see docs/api.md.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any, NotRequired, TypedDict

import numpy as np
from flask import Blueprint, Response, g, jsonify, request

from drs.core import formatting, layout
from drs.core.errors import DataError
from drs.data.readers import read_csv_checked
from drs.model import explain
from drs.model.estimator import LinearModel
from drs.model.explain import ReferenceDescription
from drs.model.metrics import metrics
from drs.reports import diagnostics, risk
from drs.web.requests import require_final_data, rows_from_request
from drs.web.service import ApiError, LoadedModel, Service, current_ranking, pipeline_health, reasons_of, service, top_clients

if TYPE_CHECKING:  # pandas only when an answer reads a whole file (drs/data/readers.py imports it then)
    import pandas as pd


class PredictionAnswer(TypedDict):
    """POST /prediction's answer (openapi.yaml's PredictionResponse)."""

    model_version: str
    count: int
    predictions: list[dict[str, Any]]  # row, corporation, prediction, exit_probability; with reasons, a field per feature
    reference: NotRequired[ReferenceDescription]  # with reasons: explain.Reference.describe


class SummaryStats(TypedDict):
    rows: int
    statistics: dict[str, dict[str, float]]


class Diagnostics(TypedDict):
    """GET /diagnostics' answer but the model version: missing data now, the rest as diagnostics.py recorded it."""

    missing_data_percent: dict[str, float]
    execution_time_seconds: Any  # these four from diagnostics.json, a stored JSON blob (None when not recorded)
    dependencies: Any
    dependency_check: Any  # formatting.dependency_check of the recorded dependencies
    recorded_at: Any


def prediction_answer(
    loaded: LoadedModel, x: np.ndarray, ids: list[str | None], reasons: tuple[LinearModel, explain.Reference] | None = None
) -> PredictionAnswer:
    """Classes and exit probabilities in input order, computed by one model version; with `reasons`, each row's too."""
    classes, probabilities = loaded.scorer.score(x)
    answer: PredictionAnswer = {
        "model_version": loaded.version,
        "count": len(ids),
        "predictions": [
            {"row": i, "corporation": cid, "prediction": int(c), "exit_probability": round(float(p), 6)}
            for i, (cid, c, p) in enumerate(zip(ids, classes.tolist(), probabilities.tolist(), strict=True), start=1)
        ],
    }
    if reasons is not None:
        model, reference = reasons
        features = reference.features
        explained = explain.explain(model, x, reference, features)
        for i, row in enumerate(answer["predictions"]):
            row.update(explain.as_fields(explained, i, features, risk.PROBABILITY_DECIMALS))
        answer["reference"] = reference.describe(model, features)
    return answer


# ---- endpoints ----------------------------------------------------------------------------

api = Blueprint("api", __name__)


@api.post("/prediction")
def prediction() -> Response:
    svc = service()
    (rows, ids), asked = rows_from_request(svc)
    loaded = svc.models.get()
    reasons = reasons_of(svc, loaded) if asked else None
    if asked and reasons is None:
        raise ApiError(503, f"the deployed model {loaded.version} cannot explain its predictions: no reference for the reasons")
    answer = prediction_answer(loaded, rows, ids, reasons)
    g.rows_scored = answer["count"]  # counted by drs/web/telemetry.py
    return jsonify(answer)


def _test_data(svc: Service) -> pd.DataFrame:
    """The test data, checked; ApiError 503 when it cannot be used."""
    test_csv = svc.config.test_data_csv
    try:
        return read_csv_checked(test_csv, svc.schema, source=test_csv.name)
    except DataError as exc:
        raise ApiError(503, f"the test data cannot be used: {exc}") from None


@api.get("/scoring")
def scoring_endpoint() -> Response:
    """F1, precision, recall and accuracy on the test data; computed once per model and test file."""
    svc = service()
    loaded = svc.models.get()
    test_csv = svc.config.test_data_csv

    result = svc.cache.get("scoring", (test_csv,), lambda: metrics(loaded.model, _test_data(svc), svc.schema), extra=loaded.signature)
    return jsonify(model_version=loaded.version, test_data=test_csv.name, **result)


@api.get("/summarystats")
def summarystats() -> Response:
    svc = service()
    require_final_data(svc)

    def compute() -> SummaryStats:
        frame = diagnostics.ingested(svc.config)
        return {"rows": len(frame), "statistics": diagnostics.summarize(frame, [*svc.schema.features, svc.schema.target])}

    return jsonify(svc.cache.get("summarystats", (svc.config.final_data_csv,), compute))


@api.get("/diagnostics")
def diagnostics_endpoint() -> Response:
    """Missing data now; stage timings and dependency versions as diagnostics.py recorded them."""
    svc = service()
    require_final_data(svc)
    recorded_path = svc.config.model_output(layout.DIAGNOSTICS)

    def compute() -> Diagnostics:
        recorded = json.loads(recorded_path.read_text()) if recorded_path.exists() else {}
        return {
            "missing_data_percent": diagnostics.missing_data(svc.config),
            "execution_time_seconds": recorded.get("execution_time_seconds"),
            "dependencies": recorded.get("dependencies"),
            "dependency_check": formatting.dependency_check(recorded["dependencies"]) if recorded.get("dependencies") else None,
            "recorded_at": recorded.get("computed_at"),
        }

    result = svc.cache.get("diagnostics", (svc.config.final_data_csv, recorded_path), compute)
    try:
        version: str | None = svc.models.get().version
    except ApiError:
        version = None
    return jsonify(model_version=version, **result)


@api.get("/risk")
def risk_endpoint() -> Response:
    """The active clients most likely to leave: the top of the ranking, with the model and data it was ranked by."""
    svc = service()
    try:
        top = risk.parse_top(request.args.get("top"))
    except ValueError as exc:
        raise ApiError(400, str(exc)) from None
    loaded = svc.models.get()
    current = current_ranking(svc, loaded.deployment)
    meta = current.meta or {}
    data = meta.get("data") or {}
    return jsonify(
        model_version=meta.get("model_version"),
        model_sha256=meta.get("model_sha256"),
        deployed_version=loaded.version,
        data=data.get("name", svc.config.final_data_csv.name),
        data_sha256=data.get("sha256"),
        ranked_at=meta.get("ranked_at"),
        ranked_because=meta.get("reason"),
        stale=bool(current.problems),
        problems=current.problems,
        active_clients=current.summary["active_clients"],
        above_half=current.summary["above_half"],
        top=top,
        clients=top_clients(current, top),
        reference=reasons[1].describe(reasons[0], svc.schema.features) if (reasons := reasons_of(svc, loaded)) else None,
        compared_with=current.changes.get("previous"),
    )


@api.get("/health")
def health() -> Response:
    svc = service()
    loaded = svc.models.get()
    meta = loaded.deployment.meta
    return jsonify(
        status="ok",
        model_version=loaded.version,
        deployed_at=meta.get("deployed_at"),
        f1=meta.get("score", {}).get("f1"),
        **pipeline_health(svc.config),
    )
