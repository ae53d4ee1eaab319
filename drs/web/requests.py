"""Reading requests: the rows to score from JSON records, a CSV body or a data file, checked; and the app's error answers.

Everything a caller sends is checked here before a model sees it (drs/web/api.py's endpoints call
`rows_from_request`): JSON records against the schema (types, ranges, ids), a CSV body or a data file by the readers'
rules (drs/data/schema.py, read by drs/data/readers.py), a data file's path only inside the data folders, every body within `max_request_bytes`.
A refusal is an `ApiError`; `register_errors` renders it, and every other error of the app but the page's, in the one
JSON error shape (drs/web/answers.py), and refuses a query parameter given twice. See docs/api.md and openapi.yaml.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
from flask import Flask, Response, jsonify, request
from werkzeug.exceptions import BadRequest, HTTPException

from drs.core import ids as id_rule
from drs.core.errors import DataError
from drs.core.settings import Config
from drs.data.readers import decode_csv_bytes, frame_from_text, read_csv_checked
from drs.data.schema import Schema
from drs.model.estimator import feature_matrix
from drs.web import answers
from drs.web.service import ApiError, Service

SETTING_BYTES = "(setting max_request_bytes)"  # every refusal of a body or data file names the limit and its setting
Rows = tuple[np.ndarray, list[str | None]]


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


def rows_from_request(svc: Service) -> tuple[Rows, bool]:
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


def require_final_data(svc: Service) -> None:
    if not svc.config.final_data_csv.exists():
        raise ApiError(503, "no ingested data yet; run ingestion first")


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
