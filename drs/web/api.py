"""The JSON API: predictions, scores, summary statistics, diagnostics, the risk list and health.

Every answer, errors included, is JSON; `openapi.yaml` describes them all (a
test checks it against this code). Endpoints live on the `api` blueprint and
reach the config, schema and model through `service()`; errors are raised as
`ApiError(status, message)` and rendered by the app-wide handlers of
`register_errors`.

Each worker loads the deployed model once and checks, on every request, where
production's `current` link points (one readlink); when a new version is
deployed or rolled back it loads that one, and answers each request wholly
from one loaded version, which the answer names (`model_version`).

`GET /risk` ranks nothing: it reads the current ranking reporting wrote (drs/reports/standing.py), names the model and
data it was ranked by, and says `stale` when they are not the deployed model and the current data. It reads the
indexed store (risklist.sqlite, drs/reports/riskstore.py): the top rows and the counts, never the whole list, so a worker
answers its first request in milliseconds and holds no list in memory, whatever the number of clients.
"""

from __future__ import annotations

import json
import math
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
from flask import Blueprint, Flask, Response, current_app, g, jsonify, request
from werkzeug.exceptions import BadRequest, HTTPException

from drs.alerts import rules as alerts
from drs.core import formatting, layout
from drs.core import ids as id_rule
from drs.core.errors import DataError, DeploymentError
from drs.core.settings import Config
from drs.data.readers import decode_csv_bytes, frame_from_text, read_csv_checked
from drs.data.schema import Schema
from drs.history import runs as history
from drs.model import explain
from drs.model.estimator import LinearModel, Scorer, feature_matrix, linear_model_of, scorer_for
from drs.model.metrics import metrics
from drs.production import versions as production
from drs.production.versions import Deployment
from drs.reports import diagnostics, risk, riskstore, standing
from drs.web import answers

RETRY_FAILED_LOAD_SECONDS = 5.0
SETTING_BYTES = "(setting max_request_bytes)"  # every refusal of a body or data file names the limit and its setting
SERVICE = "drs"  # the key of the Service in app.extensions
T = TypeVar("T")
Rows = tuple[np.ndarray, list[str | None]]


class ApiError(Exception):
    """An answer other than 200; rendered as {"status", "error", "message"}."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass(frozen=True)
class LoadedModel:
    signature: str
    deployment: Deployment
    model: Any
    scorer: Scorer

    @property
    def version(self) -> str:
        return self.deployment.label


class ModelCache:
    """The deployed model of this worker, reloaded only when `current` moves.

    The check is one readlink per request. The model is loaded from the
    folder that link named, so the version in an answer is always the one
    that computed it. A deployment that fails to load is retried after a
    few seconds (not on every request), and answers 503 meanwhile.
    """

    def __init__(self, prod: Path):
        self.prod = prod
        self._lock = threading.Lock()
        self._loaded: LoadedModel | None = None
        self._failed: tuple[str, float, ApiError] | None = None

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
            failed = self._failed
            if failed and failed[0] == signature and time.monotonic() - failed[1] < RETRY_FAILED_LOAD_SECONDS:
                raise failed[2]
            try:
                self._loaded = self._load(signature)
            except ApiError as exc:
                self._failed = (signature, time.monotonic(), exc)
                raise
            self._failed = None
            return self._loaded

    def _load(self, signature: str) -> LoadedModel:
        try:
            deployment = production.at_link_target(self.prod, signature)
            model = production.load_model(deployment)
        except DeploymentError as exc:
            raise ApiError(503, f"the deployed model cannot be used: {exc}") from None
        return LoadedModel(signature, deployment, model, scorer_for(model))


class FileCache:
    """Results computed from files, kept until a file's inode, size or mtime changes.

    At most `size` results are kept (least recently used go first), so callers
    naming many different data files cannot make a worker grow without bound.
    """

    def __init__(self, size: int = 32) -> None:
        self._entries: OrderedDict[str, tuple[Any, Any]] = OrderedDict()
        self._size = size
        self._lock = threading.Lock()  # for gevent's greenlets (gevent's lock there) and threaded workers

    def get(self, name: str, paths: tuple[Path, ...], compute: Callable[[], T], extra: Any = None) -> T:
        key = (extra, *(_stat_key(p) for p in paths))
        with self._lock:
            hit = self._entries.get(name)
            if hit is not None and hit[0] == key:
                self._entries.move_to_end(name)
                cached: T = hit[1]
                return cached
        value = compute()
        with self._lock:
            self._entries[name] = (key, value)
            self._entries.move_to_end(name)
            while len(self._entries) > self._size:
                self._entries.popitem(last=False)
        return value


def _stat_key(path: Path) -> tuple[int, int, int] | None:
    try:
        st = path.stat()
    except OSError:
        return None
    return st.st_ino, st.st_size, st.st_mtime_ns


@dataclass
class Service:
    """What every endpoint (and the page) needs, built once per worker by create_app."""

    config: Config
    schema: Schema
    models: ModelCache
    cache: FileCache = field(default_factory=FileCache)


def service() -> Service:
    svc: Service = current_app.extensions[SERVICE]
    return svc


# ---- checking inputs (pure) ---------------------------------------------------------------


def json_repr(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _number(value: Any, row: int, column: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise ApiError(400, f"record {row}: '{column}' must be a number, got {json_repr(value)}")
    try:
        number = float(value)
    except ValueError:
        raise ApiError(400, f"record {row}: '{column}' must be a number, got {json_repr(value)}") from None
    except OverflowError:  # an integer beyond float range
        number = math.inf
    if not math.isfinite(number) or number < 0:
        raise ApiError(400, f"record {row}: '{column}' must be a finite number of at least 0, got {json_repr(value)}")
    return number


def records_to_matrix(records: Any, schema: Schema, max_records: int) -> Rows:
    """Check JSON records and return the feature matrix (columns in config order) and ids; pure.

    Plain JSON numbers take a quick path (types and range checked once for
    all rows); otherwise each value goes through `_number`, which names the
    first bad row and column.
    """
    if not isinstance(records, list):
        raise ApiError(400, "'records' must be a list of objects")
    if not records:
        raise ApiError(400, "'records' is empty: send at least one record")
    if len(records) > max_records:
        raise ApiError(413, f"too many records: {len(records)} (at most {max_records} per request; setting max_records)")
    allowed = set(schema.columns)
    features = schema.features
    id_column = schema.id_column
    rows: list[list[Any]] = []
    ids: list[str | None] = []
    for i, record in enumerate(records, start=1):
        if type(record) is not dict:
            raise ApiError(400, f"record {i} must be an object, got {json_repr(record)}")
        if not allowed.issuperset(record):
            unknown = sorted(set(record) - allowed)
            raise ApiError(400, f"record {i}: unknown field(s) {', '.join(unknown)} (allowed: {', '.join(schema.columns)})")
        try:
            rows.append([record[c] for c in features])
        except KeyError:
            missing = [c for c in features if c not in record]
            raise ApiError(400, f"record {i}: missing field(s) {', '.join(missing)}") from None
        corp = record.get(id_column)
        if corp is not None and type(corp) is not str:
            if type(corp) is not int:
                raise ApiError(400, f"record {i}: '{id_column}' must be a string, got {json_repr(corp)}")
            corp = str(corp)
        if corp is not None:  # null or left out: no id
            corp, wrong = id_rule.checked(corp, schema.max_id_length)  # the readers' rule: stripped, not empty, plain
            if wrong:
                raise ApiError(400, f"record {i}: '{id_column}' {wrong}")
        ids.append(corp)
    if not {type(v) for row in rows for v in row} <= {int, float}:  # strings, booleans, null, ...
        rows = [[_number(v, i, c) for v, c in zip(row, features, strict=True)] for i, row in enumerate(rows, start=1)]
    return _checked_matrix(rows, features), ids


def _checked_matrix(rows: list[list[Any]], features: tuple[str, ...]) -> np.ndarray:
    """The rows as a float matrix, every value finite and at least 0; the first bad one is named."""
    cells: Iterable[tuple[int, int]]
    try:
        values = np.asarray(rows, dtype="float64")
    except OverflowError:  # an integer too large for a float: look at every cell
        cells = ((r, c) for r in range(len(rows)) for c in range(len(features)))
    else:
        bad = ~np.isfinite(values) | (values < 0)
        if not bad.any():
            return values
        cells = ((int(r), int(c)) for r, c in np.argwhere(bad))
    for r, c in cells:
        _number(rows[r][c], r + 1, features[c])
    raise AssertionError("unreachable: _number accepted a value the range check refused")


def resolve_data_path(raw: Any, config: Config) -> Path:
    """A caller's path, allowed only if it resolves (symlinks followed) inside a data folder.

    Nothing is opened before the check; the path is taken literally (a JSON
    string is not URL-decoded again).
    """
    if not isinstance(raw, str) or not raw.strip():
        raise ApiError(400, "'filepath' must be a non-empty string")
    if "\x00" in raw:
        raise ApiError(400, "'filepath' contains a NUL character")
    base = config.config_file.parent
    candidate = Path(raw)
    try:
        resolved = (candidate if candidate.is_absolute() else base / candidate).resolve()
        if not any(resolved.is_relative_to(folder) for folder in config.data_folders):
            names = ", ".join(f.name for f in config.data_folders)
            raise ApiError(403, f"'filepath' must name a file inside the data folders ({names}); {json_repr(raw)} does not")
        if resolved.suffix.lower() != ".csv":
            raise ApiError(400, f"'filepath' must name a .csv file; {json_repr(raw)} does not")
        if not resolved.is_file():
            raise ApiError(404, f"no such data file: {raw}")
    except OSError as exc:  # such as a name too long for the file system
        raise ApiError(400, f"'filepath' is not a usable path: {exc.strerror}") from None
    return resolved


# ---- reading requests ---------------------------------------------------------------------


def prediction_answer(
    loaded: LoadedModel, x: np.ndarray, ids: list[str | None], reasons: tuple[LinearModel, explain.Reference] | None = None
) -> dict[str, Any]:
    """Classes and exit probabilities in input order, computed by one model version; with `reasons`, each row's too."""
    classes, probabilities = loaded.scorer.score(x)
    answer: dict[str, Any] = {
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


def reasons_of(svc: Service, loaded: LoadedModel) -> tuple[LinearModel, explain.Reference] | None:
    """The deployed model's linear parts and reference (drs/model/explain.py), found once per version; None when it has none."""

    def compute() -> tuple[LinearModel, explain.Reference] | None:
        model = linear_model_of(loaded.model)
        reference = explain.deployed_reference(loaded.deployment, svc.schema.features)
        return (model, reference) if model is not None and reference is not None else None

    return svc.cache.get("reasons", (), compute, extra=loaded.signature)


def explain_flag(raw: Any, where: str) -> bool:
    """`explain` of a request: true/false in JSON, 1/0 (or true/false) in the query string; ApiError 400 otherwise."""
    if isinstance(raw, bool):
        return raw
    if isinstance(raw, str) and raw.strip().lower() in ("1", "true", "0", "false"):
        return raw.strip().lower() in ("1", "true")
    raise ApiError(400, f"'explain' {where} must be {'true or false' if where == 'in the body' else '1 or 0'}, got {json_repr(raw)}")


def _frame_rows(frame: Any, svc: Service) -> Rows:
    limit = svc.config.max_records
    if len(frame) > limit:
        raise ApiError(413, f"too many rows: {len(frame)} (at most {limit} per request; setting max_records)")
    return feature_matrix(frame, svc.schema), frame[svc.schema.id_column].tolist()


def _rows_from_file(raw: Any, svc: Service) -> Rows:
    path = resolve_data_path(raw, svc.config)
    size = path.stat().st_size
    if size > svc.config.max_request_bytes:
        raise ApiError(413, f"the data file is {size} bytes, more than the limit of {svc.config.max_request_bytes} bytes {SETTING_BYTES}")

    def compute() -> Rows:
        try:
            frame = read_csv_checked(path, svc.schema, require_target=False, source=raw)
        except DataError as exc:
            raise ApiError(400, str(exc)) from None
        return _frame_rows(frame, svc)

    return svc.cache.get(f"file:{path}", (path,), compute)  # re-read only when the file changes


def request_body(limit: int) -> bytes:
    """The whole body, or 413 if it is over `limit` bytes.

    Read straight from the server's stream: a Content-Length over the limit
    is refused unread, and a chunked body (which Werkzeug would silently cut
    at the limit) is read one byte past it, so a cut body is refused instead
    of half-used. A server that does not end chunked streams gets no body.
    """
    environ = request.environ
    length = request.content_length
    if length is None and not environ.get("wsgi.input_terminated"):
        return b""
    if length is not None and length > limit:
        raise ApiError(413, f"the request body is larger than the limit of {limit} bytes {SETTING_BYTES}")
    data: bytes = environ["wsgi.input"].read(limit + 1 if length is None else length)
    if len(data) > limit:
        raise ApiError(413, f"the request body is larger than the limit of {limit} bytes {SETTING_BYTES}")
    return data


def _rows_from_csv_body(svc: Service) -> Rows:
    try:
        text = decode_csv_bytes(request_body(svc.config.max_request_bytes), "request body")
        frame = frame_from_text(text, svc.schema, "request body", require_target=False)
    except DataError as exc:
        raise ApiError(400, str(exc)) from None
    return _frame_rows(frame, svc)


def _rows_from_request(svc: Service) -> tuple[Rows, bool]:
    """The rows to score, and whether the request asks for their reasons (`"explain": true`, or `?explain=1`)."""
    asked = explain_flag(request.args["explain"], "in the query") if "explain" in request.args else False
    content_type = (request.mimetype or "").lower()
    if content_type == "text/csv":
        return _rows_from_csv_body(svc), asked
    if not content_type and not request.content_length and "filepath" in request.args:
        return _rows_from_file(request.args["filepath"], svc), asked  # the course's POST /prediction?filepath=...
    if content_type != "application/json":
        raise ApiError(415, 'send JSON ({"records": [...]} or {"filepath": "..."}) or text/csv')
    try:
        body = json.loads(request_body(svc.config.max_request_bytes))
    except (ValueError, RecursionError):  # not UTF-8, not JSON, or nested deeper than the parser follows
        body = None
    if not isinstance(body, dict):
        raise ApiError(400, "the body is not a JSON object")
    if "explain" in body:
        asked = explain_flag(body.pop("explain"), "in the body") or asked
    keys = set(body)
    if keys == {"records"}:
        return records_to_matrix(body["records"], svc.schema, svc.config.max_records), asked
    if keys == {"filepath"}:
        return _rows_from_file(body["filepath"], svc), asked
    raise ApiError(400, "the body must have exactly one of the fields 'records' or 'filepath' (and optionally 'explain')")


def _require_final_data(svc: Service) -> None:
    if not svc.config.final_data_csv.exists():
        raise ApiError(503, "no ingested data yet; run ingestion first")


# ---- endpoints ----------------------------------------------------------------------------

api = Blueprint("api", __name__)


@api.post("/prediction")
def prediction() -> Response:
    svc = service()
    (rows, ids), asked = _rows_from_request(svc)
    loaded = svc.models.get()
    reasons = reasons_of(svc, loaded) if asked else None
    if asked and reasons is None:
        raise ApiError(503, f"the deployed model {loaded.version} cannot explain its predictions: no reference for the reasons")
    answer = prediction_answer(loaded, rows, ids, reasons)
    g.rows_scored = answer["count"]  # counted by drs/web/telemetry.py
    return jsonify(answer)


@api.get("/scoring")
def scoring_endpoint() -> Response:
    """F1, precision, recall and accuracy on the test data; computed once per model and test file."""
    svc = service()
    loaded = svc.models.get()
    test_csv = svc.config.test_data_csv

    def compute() -> dict[str, Any]:
        try:
            test = read_csv_checked(test_csv, svc.schema, source=test_csv.name)
        except DataError as exc:
            raise ApiError(503, f"the test data cannot be used: {exc}") from None
        return metrics(loaded.model, test, svc.schema)

    result = svc.cache.get("scoring", (test_csv,), compute, extra=loaded.signature)
    return jsonify(model_version=loaded.version, test_data=test_csv.name, **result)


@api.get("/summarystats")
def summarystats() -> Response:
    svc = service()
    _require_final_data(svc)

    def compute() -> dict[str, Any]:

        frame = diagnostics.ingested(svc.config)
        return {"rows": len(frame), "statistics": diagnostics.summarize(frame, [*svc.schema.features, svc.schema.target])}

    return jsonify(svc.cache.get("summarystats", (svc.config.final_data_csv,), compute))


@api.get("/diagnostics")
def diagnostics_endpoint() -> Response:
    """Missing data now; stage timings and dependency versions as diagnostics.py recorded them."""
    svc = service()
    _require_final_data(svc)
    recorded_path = svc.config.model_output(layout.DIAGNOSTICS)

    def compute() -> dict[str, Any]:

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


@dataclass(frozen=True)
class Ranking:
    """The current ranking as reporting wrote it (drs/reports/standing.py): its store's counts, what changed, and which model
    ranked which data; `problems` says why it does not match the deployed model or the current data ([] when it does)."""

    summary: dict[str, Any]
    meta: dict[str, Any] | None
    changes: dict[str, Any]
    problems: list[str]
    store: Path


def read_ranking(config: Config) -> tuple[dict[str, Any], dict[str, Any] | None, dict[str, Any]]:
    """The store's summary (its counts), risklist.json and changes.json; ApiError 503 when the store cannot be read."""
    try:
        with riskstore.opened(config.model_output(layout.RISK_STORE)) as con:
            summary = riskstore.summary(con)
    except riskstore.StoreError as exc:
        raise ApiError(503, str(exc)) from None
    try:
        changes = json.loads(config.model_output(layout.CHANGES).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        changes = {}
    return summary, standing.read(config), changes


def current_ranking(svc: Service, deployment: Deployment) -> Ranking:
    """The ranking every view reads (shared by /risk and /metrics), its small files read again only when one changes;
    nothing is ranked on request. ApiError 503 when no list has been ranked yet."""
    out = svc.config.model_output
    if not out(layout.RISK_LIST).is_file() and not out(layout.RISK_STORE).is_file():
        raise ApiError(503, f"no {layout.RISK_LIST} yet: the pipeline (or reporting.py) ranks the clients after each deployment")
    paths = (out(layout.RISK_STORE), out(layout.RISK_META), out(layout.CHANGES))
    summary, meta, changes = svc.cache.get("risk", paths, lambda: read_ranking(svc.config))
    return Ranking(summary, meta, changes, standing.problems(svc.config, meta, deployment), out(layout.RISK_STORE))


def top_clients(ranking: Ranking, count: int) -> list[dict[str, Any]]:
    """The `count` clients ranked first, as risklist.csv has them (an unknown value None)."""
    try:
        with riskstore.opened(ranking.store) as con:
            return riskstore.top(con, count)
    except riskstore.StoreError as exc:
        raise ApiError(503, str(exc)) from None


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


def pipeline_health(config: Config) -> dict[str, Any]:
    """The newest finished full-process run and whether the pipeline is stale (none for stale_after_minutes); one short query."""
    try:
        finished = history.last_finished_run(config.history_db)
    except Exception:  # a damaged history is the page's to report; /health answers for the model
        finished = None
    last = {"finished_at": finished["finished_at"], "outcome": finished["outcome"]} if finished else None
    stale = alerts.is_stale(last["finished_at"] if last else None, datetime.now(UTC), config.stale_after_minutes)
    return {"stale": stale, "last_finished_run": last}


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


# ---- errors, app-wide ---------------------------------------------------------------------


def error_response(status: int, message: str) -> tuple[Response, int]:
    """The one error shape (drs/web/answers.py): {"status": 400, "error": "Bad Request", "message": "..."}."""
    return jsonify(answers.error_body(status, message)), status


def refuse_repeated_query_parameters() -> None:
    """The before_request hook of the whole app: a query parameter given more than once is a 400 naming it.

    `?top=5&top=10` has no one meaning (Werkzeug would take the first, others the last), so no endpoint guesses;
    this holds for every parameter, documented or not, on every route (the page renders the 400 as a page)."""
    for name, values in request.args.lists():
        if len(values) > 1:
            raise BadRequest(f"the query parameter '{name}' is given {len(values)} times: give it once")


def register_errors(app: Flask, max_request_bytes: int) -> None:
    """JSON errors for everything but the page's own routes (page.py renders those as HTML); the query rule."""

    app.before_request(refuse_repeated_query_parameters)

    @app.errorhandler(ApiError)
    def api_error(exc: ApiError) -> tuple[Response, int]:
        return error_response(exc.status, exc.message)

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException) -> tuple[Response, int]:
        status = exc.code or 500
        if status == 413:
            return error_response(413, f"the request body is larger than the limit of {max_request_bytes} bytes {SETTING_BYTES}")
        if status == 405:
            valid = sorted(getattr(exc, "valid_methods", None) or [])
            allowed = ", ".join(m for m in valid if m not in ("HEAD", "OPTIONS"))
            response, _ = error_response(405, f"{request.method} is not allowed on {request.path} (use {allowed})")
            response.headers["Allow"] = ", ".join(valid)  # RFC 9110: a 405 says what is allowed
            return response, 405
        if status == 404:
            return error_response(404, f"no endpoint {request.path}; see openapi.yaml for the endpoints")
        return error_response(status, exc.description or answers.reason(status))

    @app.errorhandler(Exception)
    def unexpected(exc: Exception) -> tuple[Response, int]:
        app.logger.exception("unexpected error on %s %s", request.method, request.path)
        return error_response(500, "internal error; see the server log")
