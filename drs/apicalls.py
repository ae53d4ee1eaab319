"""Call every endpoint of the running API and keep what it answered, readable and as JSON.

Writes to output_model_path: `layout.API_RETURNS` (one labelled section per
endpoint) and `layout.API_RETURNS_JSON` (URL, status code and JSON answer of each).
The API token comes from the environment (`DRS_TOKEN`; an operator's, see docs/security.md)
and is sent as `Authorization: Bearer`; it is never written to either record.
"""

from __future__ import annotations

import json
import logging
import os
import time
from typing import Any

import requests

from drs import layout
from drs.errors import StageError
from drs.fileio import atomic_write_json, atomic_write_text
from drs.settings import Config

log = logging.getLogger("apicalls")
TOKEN_ENV = "DRS_TOKEN"
READABLE_ROWS = 10
Call = tuple[str, str, str, dict[str, Any] | None]


def endpoint_calls(config: Config) -> list[Call]:
    """(label, method, path, JSON body) of each call, in the course's order."""
    base = config.config_file.parent
    test_file = config.test_data_csv.relative_to(base) if config.test_data_csv.is_relative_to(base) else config.test_data_csv
    return [
        ("prediction", "POST", "/prediction", {"filepath": str(test_file)}),
        ("scoring", "GET", "/scoring", None),
        ("summarystats", "GET", "/summarystats", None),
        ("diagnostics", "GET", "/diagnostics", None),
        ("health", "GET", "/health", None),
    ]


def auth_headers(token: str | None) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"} if token else {}


def call_one(
    base_url: str, label: str, method: str, path: str, body: dict[str, Any] | None, timeout: float, token: str | None = None
) -> dict[str, Any]:
    """One call and what it answered; a refused connection raises StageError (the API is not up)."""
    url = base_url + path
    answer: dict[str, Any] = {"endpoint": label, "method": method, "url": url, "request": body}
    started = time.perf_counter()
    try:
        response = requests.request(method, url, json=body, timeout=timeout, headers=auth_headers(token))
    except requests.ConnectionError:  # refused, or no connection within the timeout
        raise StageError(f"the API is not reachable at {base_url} (is it running? try `make serve`)") from None
    except requests.Timeout:
        log.error("%s %s: no answer within %g s", method, path, timeout)
        return {
            **answer,
            "status": None,
            "elapsed_seconds": round(time.perf_counter() - started, 4),
            "error": f"no answer within {timeout:g} s",
            "response": None,
        }
    try:
        payload: Any = response.json()
    except ValueError:
        payload = {"non_json_body": response.text[:2000]}
    log.info("%s %s -> %d", method, path, response.status_code)
    if response.status_code == 401:
        log.error(
            "%s %s: the API wants a credential: set %s to an operator's token (python -m drs.users token NAME --role operator)",
            method,
            path,
            TOKEN_ENV,
        )
    return {
        **answer,
        "status": response.status_code,
        "elapsed_seconds": round(time.perf_counter() - started, 4),
        "content_type": response.headers.get("Content-Type"),
        "response": payload,
    }


def call_all(base_url: str, calls: list[Call], timeout: float, token: str | None = None) -> list[dict[str, Any]]:
    """Call each endpoint in turn; raise StageError if the API cannot be reached at all."""
    return [call_one(base_url, label, method, path, body, timeout, token) for label, method, path, body in calls]


def failed_calls(answers: list[dict[str, Any]]) -> list[str]:
    return [a["endpoint"] for a in answers if a["status"] is None or a["status"] >= 400]


def server_failed(answers: list[dict[str, Any]]) -> bool:
    """Whether an endpoint gave no answer or a 5xx: the API, not the request, is broken."""
    return any(a["status"] is None or a["status"] >= 500 for a in answers)


def readable_response(response: Any) -> str:
    """The JSON answer, with a long prediction list cut to its first rows (the JSON file has them all)."""
    predictions = response.get("predictions") if isinstance(response, dict) else None
    if not isinstance(predictions, list) or len(predictions) <= READABLE_ROWS:
        return json.dumps(response, indent=2)
    head = {k: v for k, v in response.items() if k != "predictions"}
    lines = [json.dumps(head, indent=2), f"first {READABLE_ROWS} of {len(predictions)} predictions (all are in {layout.API_RETURNS_JSON}):"]
    lines.append(f"  {'row':>5}  {'corporation':12} {'prediction':>10}  {'exit_probability':>16}")
    for p in predictions[:READABLE_ROWS]:
        lines.append(
            f"  {p.get('row', ''):>5}  {str(p.get('corporation')):12} {p.get('prediction', ''):>10}  {p.get('exit_probability', ''):>16}"
        )
    return "\n".join(lines)


def format_readable(base_url: str, answers: list[dict[str, Any]], called_at: str) -> str:
    lines = [f"API returns from {base_url} at {called_at}", ""]
    for answer in answers:
        title = f"{answer['method']} {answer['url']}"
        if answer["request"] is not None:
            title += f"  body: {json.dumps(answer['request'])}"
        status = answer["status"] if answer["status"] is not None else f"no answer ({answer['error']})"
        lines += [f"== {answer['endpoint']} ==", title, f"status: {status}", readable_response(answer["response"]), ""]
    return "\n".join(lines)


def run(config: Config, base_url: str | None = None) -> list[dict[str, Any]]:
    """Call every endpoint at `base_url` (default: api_url) and write both records; StageError if the API is down."""
    base_url = (base_url or config.api_url).rstrip("/")
    called_at = layout.utc_now()
    answers = call_all(base_url, endpoint_calls(config), config.api_timeout_seconds, os.environ.get(TOKEN_ENV) or None)
    readable = config.model_output(layout.API_RETURNS)
    atomic_write_text(readable, format_readable(base_url, answers, called_at))
    failed = failed_calls(answers)
    atomic_write_json(
        config.model_output(layout.API_RETURNS_JSON),
        {"base_url": base_url, "called_at": called_at, "timeout_seconds": config.api_timeout_seconds, "failed": failed, "answers": answers},
    )
    log.info("wrote %s (%d calls%s)", readable, len(answers), f"; failed: {', '.join(failed)}" if failed else "")
    return answers
