"""Call every endpoint of the running API and keep what it answered, readable and as JSON.

Writes to output_model_path, when every call got a 2xx JSON answer: `layout.API_RETURNS` (one labelled
section per endpoint, the course's file) and `layout.API_RETURNS_JSON` (URL, status code and JSON answer of
each). An attempt with a failed call goes to `layout.API_RETURNS_FAILED` instead, with each failure's cause in
plain words: the course's two files keep the last complete set of answers, never error bodies.
The token is `DRS_TOKEN` when set, else the pipeline's own (drs/users.pipeline_token; docs/security.md), sent as
`Authorization: Bearer`; it is never written to any record.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any, NotRequired, TypedDict
from urllib.parse import urlsplit

import requests

from drs.core import layout
from drs.core.errors import StageError
from drs.core.fileio import atomic_write_json, atomic_write_text
from drs.core.settings import Config
from drs.web import serving, users

log = logging.getLogger("apicalls")
TOKEN_ENV = "DRS_TOKEN"
READABLE_ROWS = 10
MAKE_TOKEN = "python -m drs.users token NAME --role operator"
Call = tuple[str, str, str, dict[str, str] | None]  # label, method, path, JSON body


class Answer(TypedDict):
    """One call and what it answered, as apireturns.json records it (its keys are that file's)."""

    endpoint: str
    method: str
    url: str
    request: dict[str, str] | None  # the JSON body sent
    status: int | None  # None: no answer
    response: Any  # the API's JSON answer as it came (free-form), {"non_json_body": ...}, or None without an answer
    elapsed_seconds: NotRequired[float]
    content_type: NotRequired[str | None]
    json: NotRequired[bool]
    error: NotRequired[str]  # why there is no answer
    unreachable: NotRequired[str]  # no connection at all: the later calls were not tried


@dataclass(frozen=True)
class Credential:
    token: str | None
    source: str  # what a 401 names: TOKEN_ENV, the pipeline's token file, or "" for none


NO_CREDENTIAL = Credential(None, "")


@dataclass(frozen=True)
class Failure:
    """One call that got no 2xx JSON answer: its endpoint, its HTTP status (None: no answer) and why, in plain words."""

    endpoint: str
    status: int | None
    cause: str

    @property
    def short(self) -> str:
        return f"{self.endpoint} {self.status if self.status is not None else 'no answer'}"

    def line(self) -> str:
        return f"{self.endpoint}: {f'HTTP {self.status}' if self.status is not None else 'no answer'}: {self.cause}"


@dataclass(frozen=True)
class Calls:
    base_url: str
    called_at: str
    answers: list[Answer]
    failures: list[Failure]

    def summary(self) -> str:
        """'done', or what failed in one line ('prediction 401, scoring 401'), for the run's record."""
        if not self.failures:
            return "done"
        if self.answers and self.answers[-1].get("unreachable"):
            return f"failed: the API is not reachable at {self.base_url} ({self.answers[-1]['unreachable']})"
        return "failed: " + ", ".join(f.short for f in self.failures)


class Unreachable(Exception):
    """No connection to the API at all: the calls after this one are not tried."""


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


def private_channel(base_url: str) -> bool:
    """Whether a secret may travel to `base_url` unasked: over TLS, or to this machine (the loopback)."""
    parts = urlsplit(base_url)
    return parts.scheme == "https" or serving.is_loopback_bind(parts.hostname or "")


def credential(config: Config, base_url: str, environ: Mapping[str, str] = os.environ) -> Credential:
    """DRS_TOKEN when set, else the pipeline's own token (issued on first need once users exist), else none.

    The pipeline's token goes only over https or to the loopback; DRS_TOKEN goes wherever its setter sends it."""
    if environ.get(TOKEN_ENV):
        return Credential(environ[TOKEN_ENV], TOKEN_ENV)
    if not private_channel(base_url):
        return Credential(None, f"the pipeline's token is sent only over https or to the loopback, not to {base_url}")
    try:
        token = users.pipeline_token(config.users_file)
    except users.UsersError as exc:
        raise StageError(f"no token for the API calls: {exc}") from None
    return Credential(token, f"the pipeline's token ({users.pipeline_token_file(config.users_file)})") if token else NO_CREDENTIAL


def connection_words(exc: requests.ConnectionError, timeout: float) -> str:
    if isinstance(exc, requests.ConnectTimeout):
        return f"no connection within {timeout:g} s"
    text = str(exc)
    if "refused" in text.lower():
        return "connection refused"
    if "resolve" in text or "not known" in text or "getaddrinfo" in text:
        return "the host name could not be resolved"
    return "the connection failed"


def call_one(
    base_url: str, label: str, method: str, path: str, body: dict[str, str] | None, timeout: float, token: str | None = None
) -> Answer:
    """One call and what it answered; Unreachable when no connection could be made (the API is not up)."""
    url = base_url + path
    started = time.perf_counter()
    try:
        response = requests.request(method, url, json=body, timeout=timeout, headers=auth_headers(token))
    except requests.ConnectionError as exc:  # refused, no such host, or no connection within the timeout
        raise Unreachable(connection_words(exc, timeout)) from None
    except requests.Timeout:
        return {
            "endpoint": label,
            "method": method,
            "url": url,
            "request": body,
            "status": None,
            "elapsed_seconds": round(time.perf_counter() - started, 4),
            "error": f"no answer within {timeout:g} s",
            "response": None,
        }
    is_json = True
    try:
        payload: Any = response.json()
    except ValueError:
        payload, is_json = {"non_json_body": response.text[:2000]}, False
    log.info("%s %s -> %d", method, path, response.status_code)
    return {
        "endpoint": label,
        "method": method,
        "url": url,
        "request": body,
        "status": response.status_code,
        "elapsed_seconds": round(time.perf_counter() - started, 4),
        "content_type": response.headers.get("Content-Type"),
        "json": is_json,
        "response": payload,
    }


def call_all(base_url: str, calls: list[Call], timeout: float, token: str | None = None) -> list[Answer]:
    """Call each endpoint in turn; when the API cannot be reached at all, the first call says so and the rest are not tried."""
    answers: list[Answer] = []
    for label, method, path, body in calls:
        try:
            answers.append(call_one(base_url, label, method, path, body, timeout, token))
        except Unreachable as exc:
            rest = ", ".join(c[0] for c in calls[len(answers) + 1 :])
            answers.append(
                {
                    "endpoint": label,
                    "method": method,
                    "url": base_url + path,
                    "request": body,
                    "status": None,
                    "error": f"the API is not reachable at {base_url} ({exc}): is it running? (`make serve`)"
                    + (f"; not tried: {rest}" if rest else ""),
                    "unreachable": str(exc),
                    "response": None,
                }
            )
            break
    return answers


def server_said(response: Any) -> str:
    """The message of the API's JSON error shape, if the answer has one."""
    message = response.get("message") if isinstance(response, dict) else None
    return f": {message}" if isinstance(message, str) and message else ""


def unauthorized_words(cred: Credential) -> str:
    if cred.token is None:
        withheld = f" ({cred.source})" if cred.source else ""
        return f"the API needs a token{withheld}: set {TOKEN_ENV} to an operator's token ({MAKE_TOKEN})"
    if cred.source == TOKEN_ENV:
        return f"the API did not accept the token in {TOKEN_ENV} (not valid, or removed): make a new one with {MAKE_TOKEN}"
    return (
        f"the API did not accept {cred.source}: it was revoked (python -m drs.users remove {users.PIPELINE_TOKEN})"
        f" or the API reads another users file; delete the file to issue a new one, or set {TOKEN_ENV}"
    )


def failure(answer: Answer, cred: Credential = NO_CREDENTIAL) -> Failure | None:
    """Why this call failed, in plain words; None for a 2xx JSON answer."""
    status, label, said = answer["status"], answer["endpoint"], server_said(answer.get("response"))
    if status is None:
        return Failure(label, None, str(answer.get("error") or "no answer"))
    if status == 401:
        return Failure(label, status, unauthorized_words(cred))
    if status == 403:
        return Failure(label, status, f"the token's role may not call this{said}; it needs an operator's token ({MAKE_TOKEN})")
    if status >= 500:
        return Failure(label, status, f"the API failed{said}; see its log")
    if not 200 <= status < 300:
        return Failure(label, status, f"the API refused the request{said}")
    if not answer.get("json", True):
        return Failure(label, status, f"the answer is not JSON ({answer.get('content_type') or 'no content type'}): is the URL the API's?")
    return None


def failures(answers: list[Answer], cred: Credential = NO_CREDENTIAL) -> list[Failure]:
    return [found for found in (failure(a, cred) for a in answers) if found is not None]


def failed_calls(answers: list[Answer]) -> list[str]:
    return [f.endpoint for f in failures(answers)]


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


def format_readable(base_url: str, answers: list[Answer], called_at: str) -> str:
    lines = [f"API returns from {base_url} at {called_at}", ""]
    for answer in answers:
        title = f"{answer['method']} {answer['url']}"
        if answer["request"] is not None:
            title += f"  body: {json.dumps(answer['request'])}"
        status = answer["status"] if answer["status"] is not None else f"no answer ({answer['error']})"
        lines += [f"== {answer['endpoint']} ==", title, f"status: {status}", readable_response(answer["response"]), ""]
    return "\n".join(lines)


def run(config: Config, base_url: str | None = None, environ: Mapping[str, str] = os.environ) -> Calls:
    """Call every endpoint at `base_url` (default: api_url); write the course's records only when every call succeeded.

    Error bodies never replace a good apireturns.txt: a failed attempt is written to API_RETURNS_FAILED (removed
    again by the next complete set), and each failure is logged as one line naming the endpoint, status and cause."""
    base_url = (base_url or config.api_url).rstrip("/")
    called_at = layout.utc_now()
    cred = credential(config, base_url, environ)
    answers = call_all(base_url, endpoint_calls(config), config.api_timeout_seconds, cred.token)
    found = failures(answers, cred)
    record = {
        "base_url": base_url,
        "called_at": called_at,
        "timeout_seconds": config.api_timeout_seconds,
        "failed": [f.endpoint for f in found],
        "answers": answers,
    }
    failed_record = config.model_output(layout.API_RETURNS_FAILED)
    readable = config.model_output(layout.API_RETURNS)
    if found:
        atomic_write_json(failed_record, {**record, "failures": [asdict(f) for f in found]})
        for item in found:
            log.error("%s", item.line())
        log.error(
            "API calls failed: %s and %s are left as they were; this attempt is in %s",
            readable.name,
            layout.API_RETURNS_JSON,
            failed_record,
        )
    else:
        atomic_write_text(readable, format_readable(base_url, answers, called_at))
        atomic_write_json(config.model_output(layout.API_RETURNS_JSON), record)
        failed_record.unlink(missing_ok=True)
        log.info("wrote %s (%d calls)", readable, len(answers))
    return Calls(base_url, called_at, answers, found)
