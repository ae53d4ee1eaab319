"""The API: predictions, scores, summary statistics and diagnostics over HTTP.

Serve it with gunicorn (`make serve`), which calls the `create_app()` factory;
the config file comes from the DRS_CONFIG environment variable or config.json
beside this file. Every answer, errors included, is JSON.

Each worker loads the deployed model once and checks, on every request, where
production's `current` link points (one readlink); when a new version is
deployed or rolled back it loads that one, and answers each request wholly
from one loaded version, which the answer names (`model_version`).
"""
from __future__ import annotations

import math
import os
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from flask import Flask, Response, jsonify, request
from werkzeug.exceptions import HTTPException

from drs import production
from drs.config import Config, load_config
from drs.production import Deployment, DeploymentError
from drs.schema import DataError, Schema, decode_csv_bytes, frame_from_text, read_csv_checked

DEFAULT_MAX_RECORDS = 10_000


class ApiError(Exception):
    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass(frozen=True)
class LoadedModel:
    signature: str
    deployment: Deployment
    model: Any

    @property
    def version(self) -> str:
        return self.deployment.label


class ModelCache:
    """The deployed model of this worker, reloaded only when `current` moves."""

    def __init__(self, prod: Path):
        self.prod = prod
        self._lock = threading.Lock()
        self._loaded: LoadedModel | None = None

    def get(self) -> LoadedModel:
        signature = production.current_signature(self.prod)
        loaded = self._loaded
        if loaded is not None and loaded.signature == signature:
            return loaded
        if signature is None:
            raise ApiError(503, f"no model is deployed in {self.prod.name}; run the pipeline (make run) first")
        with self._lock:
            if self._loaded is not None and self._loaded.signature == signature:
                return self._loaded
            try:
                deployment = production.current(self.prod)
                if deployment is None:
                    raise DeploymentError("no model is deployed")
                model = production.load_model(deployment)
            except DeploymentError as exc:
                raise ApiError(503, f"the deployed model cannot be used: {exc}") from None
            except Exception as exc:  # a damaged pickle can raise almost anything
                raise ApiError(503, f"the deployed model does not load: {type(exc).__name__}") from None
            self._loaded = LoadedModel(signature, deployment, model)
            return self._loaded


def _number(value: Any, row: int, column: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise ApiError(400, f"record {row}: '{column}' must be a number, got {json_repr(value)}")
    try:
        number = float(value)
    except ValueError:
        raise ApiError(400, f"record {row}: '{column}' must be a number, got {json_repr(value)}") from None
    if not math.isfinite(number) or number < 0:
        raise ApiError(400, f"record {row}: '{column}' must be a finite number of at least 0, got {json_repr(value)}")
    return number


def json_repr(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def records_to_matrix(records: Any, schema: Schema, max_records: int) -> tuple[list[list[float]], list[str | None]]:
    """Check JSON records and return feature rows (in config order) and ids; pure."""
    if not isinstance(records, list):
        raise ApiError(400, "'records' must be a list of objects")
    if not records:
        raise ApiError(400, "'records' is empty: send at least one record")
    if len(records) > max_records:
        raise ApiError(413, f"too many records: {len(records)} (at most {max_records} per request)")
    allowed = set(schema.columns)
    rows, ids = [], []
    for i, record in enumerate(records, start=1):
        if not isinstance(record, dict):
            raise ApiError(400, f"record {i} must be an object, got {json_repr(record)}")
        unknown = sorted(set(record) - allowed)
        if unknown:
            raise ApiError(400, f"record {i}: unknown field(s) {', '.join(unknown)} (allowed: {', '.join(schema.columns)})")
        missing = [c for c in schema.features if c not in record]
        if missing:
            raise ApiError(400, f"record {i}: missing field(s) {', '.join(missing)}")
        rows.append([_number(record[c], i, c) for c in schema.features])
        corp = record.get(schema.id_column)
        if corp is not None and not isinstance(corp, (str, int)):
            raise ApiError(400, f"record {i}: '{schema.id_column}' must be a string")
        ids.append(None if corp is None else str(corp))
    return rows, ids


def resolve_data_path(raw: Any, config: Config) -> Path:
    """A caller's path, allowed only if it resolves (symlinks followed) inside a data folder."""
    if not isinstance(raw, str) or not raw.strip():
        raise ApiError(400, "'filepath' must be a non-empty string")
    if "\x00" in raw:
        raise ApiError(400, "'filepath' contains a NUL character")
    base = config.config_file.parent
    candidate = Path(raw)
    resolved = (candidate if candidate.is_absolute() else base / candidate).resolve()
    if not any(resolved.is_relative_to(folder) for folder in config.data_folders):
        names = ", ".join(f.name for f in config.data_folders)
        raise ApiError(403, f"'filepath' must name a file inside the data folders ({names}); {raw!r} does not")
    if resolved.suffix.lower() != ".csv":
        raise ApiError(400, f"'filepath' must name a .csv file; {raw!r} does not")
    if not resolved.is_file():
        raise ApiError(404, f"no such data file: {raw}")
    return resolved


def create_app(config: Config | str | os.PathLike[str] | None = None) -> Flask:
    """Build the API for one config (a Config, a path, or DRS_CONFIG / config.json)."""
    if not isinstance(config, Config):
        config = load_config(config or os.environ.get("DRS_CONFIG") or None)
    app = Flask(__name__)
    app.config["MAX_CONTENT_LENGTH"] = config.max_request_bytes
    app.json.sort_keys = False
    schema = Schema.from_config(config)
    models = ModelCache(config.prod_deployment_folder)
    max_records = int(config.raw.get("max_records", DEFAULT_MAX_RECORDS))
    app.extensions["drs"] = {"config": config, "models": models}

    def predict(rows: list[list[float]], ids: list[str | None]) -> Response:
        import numpy as np

        loaded = models.get()
        x = np.asarray(rows, dtype="float64")
        probabilities = loaded.model.predict_proba(x)[:, 1]
        classes = loaded.model.predict(x)
        return jsonify(
            model_version=loaded.version,
            count=len(rows),
            predictions=[
                {"row": i, "corporation": cid, "prediction": int(c), "exit_probability": round(float(p), 6)}
                for i, (cid, c, p) in enumerate(zip(ids, classes, probabilities), start=1)
            ],
        )

    def frame_rows(frame: Any) -> tuple[list[list[float]], list[str | None]]:
        if len(frame) > max_records:
            raise ApiError(413, f"too many rows: {len(frame)} (at most {max_records} per request)")
        return frame[list(schema.features)].to_numpy(dtype="float64").tolist(), frame[schema.id_column].tolist()

    @app.post("/prediction")
    def prediction() -> Response:
        content_type = (request.mimetype or "").lower()
        if content_type == "text/csv":
            try:
                text = decode_csv_bytes(request.get_data(cache=False), "request body")
                frame = frame_from_text(text, schema, "request body", require_target=False)
            except DataError as exc:
                raise ApiError(400, str(exc)) from None
            return predict(*frame_rows(frame))
        if content_type != "application/json":
            raise ApiError(415, "send JSON ({\"records\": [...]} or {\"filepath\": \"...\"}) or text/csv")
        body = request.get_json(silent=True)
        if not isinstance(body, dict):
            raise ApiError(400, "the body is not a JSON object")
        keys = set(body)
        if keys == {"records"}:
            return predict(*records_to_matrix(body["records"], schema, max_records))
        if keys == {"filepath"}:
            path = resolve_data_path(body["filepath"], config)
            try:
                frame = read_csv_checked(path, schema, require_target=False, source=body["filepath"])
            except DataError as exc:
                raise ApiError(400, str(exc)) from None
            return predict(*frame_rows(frame))
        raise ApiError(400, "the body must have exactly one of the fields 'records' or 'filepath'")

    @app.get("/scoring")
    def scoring_endpoint() -> Response:
        from scoring import metrics

        loaded = models.get()
        try:
            test = read_csv_checked(config.test_data_csv, schema, source=config.test_data_csv.name)
        except DataError as exc:
            raise ApiError(503, f"the test data cannot be used: {exc}") from None
        result = metrics(loaded.model, test, schema)
        return jsonify(model_version=loaded.version, test_data=config.test_data_csv.name, **result)

    def final_data() -> Any:
        import pandas as pd

        if not config.final_data_csv.exists():
            raise ApiError(503, "no ingested data yet; run ingestion first")
        return pd.read_csv(config.final_data_csv)

    @app.get("/summarystats")
    def summarystats() -> Response:
        from diagnostics import summarize

        frame = final_data()
        return jsonify(rows=len(frame), statistics=summarize(frame, [*schema.features, schema.target]))

    @app.get("/diagnostics")
    def diagnostics_endpoint() -> Response:
        import json

        frame = final_data()
        recorded_path = config.output_model_folder / "diagnostics.json"
        recorded = json.loads(recorded_path.read_text()) if recorded_path.exists() else {}
        try:
            version = models.get().version
        except ApiError:
            version = None
        return jsonify(
            model_version=version,
            missing_data_percent={c: round(float(frame[c].isna().mean() * 100), 4) for c in frame.columns},
            execution_time_seconds=recorded.get("execution_time_seconds"),
            dependencies=recorded.get("dependencies"),
            recorded_at=recorded.get("computed_at"),
        )

    @app.get("/risk")
    def risk_endpoint() -> Response:
        """The active clients most likely to leave, as in risklist.csv (drs/risk.py ranks both)."""
        from drs import risk

        try:
            top = risk.parse_top(request.args.get("top"))
        except ValueError as exc:
            raise ApiError(400, str(exc)) from None
        loaded = models.get()
        try:
            _, clients = risk.read_ingested(config.final_data_csv, schema)
        except DataError as exc:
            raise ApiError(503, f"the ingested data cannot be used: {exc}") from None
        ranked = risk.risk_list(loaded.model, clients, schema)
        return jsonify(
            model_version=loaded.version, data=config.final_data_csv.name, active_clients=len(ranked),
            above_half=risk.above(ranked), top=top, clients=risk.as_records(ranked.head(top)),
        )

    @app.get("/health")
    def health() -> Response:
        loaded = models.get()
        return jsonify(
            status="ok",
            model_version=loaded.version,
            deployed_at=loaded.deployment.meta.get("deployed_at"),
            f1=loaded.deployment.meta.get("score", {}).get("f1"),
        )

    @app.errorhandler(ApiError)
    def api_error(exc: ApiError) -> tuple[Response, int]:
        return jsonify(status=exc.status, error=_reason(exc.status), message=exc.message), exc.status

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException) -> tuple[Response, int]:
        status = exc.code or 500
        message = exc.description or _reason(status)
        if status == 413:
            message = f"the request body is larger than the limit of {config.max_request_bytes} bytes"
        return jsonify(status=status, error=_reason(status), message=message), status

    @app.errorhandler(Exception)
    def unexpected(exc: Exception) -> tuple[Response, int]:
        app.logger.exception("unexpected error")
        return jsonify(status=500, error=_reason(500), message="internal error; see the server log"), 500

    return app


def _reason(status: int) -> str:
    from http import HTTPStatus

    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"
