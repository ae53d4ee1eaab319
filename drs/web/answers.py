"""What every answer of the server shares, whether the app or gunicorn itself writes it: the error shape and the security headers.

An error is `{"status": 400, "error": "Bad Request", "message": "..."}` (openapi.yaml's `Error`); the app builds
its errors with `error_body` (drs/web/requests.py), and `answer_gunicorn_errors_in_json` makes the few answers gunicorn
writes before the app sees a request the same JSON: a request line over `limit_request_line` (414), headers over
`limit_request_field_size` or too many of them (431), a request line or header it cannot parse (400). gunicorn
writes those through one function, `gunicorn.util.write_error`, called by every worker class's `handle_error`;
gunicorn.conf.py's `post_worker_init` puts `write_json_error` in its place in each worker, so every worker
answers JSON (tests/web/test_api_description.py checks it through a real gunicorn, so a gunicorn that changed this
would be seen). The standard library and gunicorn's util only: gunicorn's master imports this module. See docs/api.md (answers).
"""

from __future__ import annotations

import json
import socket
from http import HTTPStatus
from typing import TypedDict

from gunicorn import util as gunicorn_util
from gunicorn.http.message import MAX_REQUEST_LINE

CSP = "; ".join(
    (
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "style-src-attr 'unsafe-inline'",
        "img-src 'self' data:",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    )
)
HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
}
NO_STORE = {"Cache-Control": "no-store"}  # every answer but the page's static CSS and script (drs/web/headers.py)


def reason(status: int) -> str:
    """The status's reason phrase, such as Bad Request ("Error" for a status HTTP does not name)."""
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"


class ErrorBody(TypedDict):
    """openapi.yaml's Error."""

    status: int
    error: str
    message: str


def error_body(status: int, message: str) -> ErrorBody:
    """The one error shape: {"status": 400, "error": "Bad Request", "message": "..."}."""
    return {"status": status, "error": reason(status), "message": message}


def gunicorn_message(status: int, detail: str, limit_request_line: int) -> str:
    """What to tell the caller about a request gunicorn refused itself, `detail` being gunicorn's own words."""
    if status == 414:
        most = f"at most {limit_request_line} bytes" if limit_request_line > 0 else "shorter"
        return (
            f"the URL is too long: the request line (method, path, query and HTTP version) may be {most};"
            " send fewer or shorter query parameters, or the data in a POST body"
        )
    if status == 431:
        return f"the request headers are too large or too many ({detail})"
    if status >= 500:
        return "internal error; see the server log"
    return detail or reason(status)


def json_error_bytes(status: int, message: str) -> bytes:
    """A whole HTTP/1.1 error answer, JSON in the one error shape, with the security headers; the connection closes."""
    body = json.dumps(error_body(status, message)).encode()
    head = [f"HTTP/1.1 {status} {reason(status)}", "Connection: close", "Content-Type: application/json", f"Content-Length: {len(body)}"]
    head += [f"{name}: {value}" for name, value in {**HEADERS, **NO_STORE}.items()]
    return ("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + body


def answer_gunicorn_errors_in_json(limit_request_line: int) -> None:
    """Make gunicorn write its own error answers (an over-long URL, ...) as JSON; called in each gunicorn worker.

    `limit_request_line` is gunicorn's setting, read as gunicorn reads it (0: unlimited; above its maximum: the maximum)."""
    limit = MAX_REQUEST_LINE if limit_request_line < 0 or limit_request_line > MAX_REQUEST_LINE else limit_request_line

    def write_json_error(sock: socket.socket, status_int: int, reason_phrase: str, mesg: str) -> None:
        gunicorn_util.write_nonblock(sock, json_error_bytes(status_int, gunicorn_message(status_int, mesg, limit)))

    gunicorn_util.write_error = write_json_error
