"""gunicorn's access log with no credential in it (gunicorn.conf.py's `logger_class`).

The app refuses a token in the query string (drs/web/auth.py), but gunicorn logs the request line before the
app answers, so a refused `/risk?token=...` would still write the token wherever ACCESS_LOG points. This logger
redacts, in every atom of the log format: the values of query parameters whose name looks like a credential
(token, key, password, secret, session, auth...) in the request line, the query string and the Referer, and
every header or environ value whose name does (Authorization, Cookie, Set-Cookie, X-Api-Key...). See docs/security.md#logs.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import unquote_plus

from gunicorn import glogging

REDACTED = "[redacted]"
SECRET_NAME = re.compile(r"token|key|pass|secret|session|auth|cookie|signature|credential", re.IGNORECASE)
URL_ATOMS = ("q", "f", "{referer}i", "{http_referer}e", "{query_string}e", "{raw_uri}e")


def redact_query(query: str) -> str:
    """`query` with the value of every credential-like parameter replaced (names are matched percent-decoded)."""
    pieces = re.split(r"([&;])", query)
    for i, piece in enumerate(pieces):
        name, eq, _ = piece.partition("=")
        if eq and SECRET_NAME.search(unquote_plus(name)):
            pieces[i] = f"{name}={REDACTED}"
    return "".join(pieces)


def redact_url(url: str) -> str:
    """A URL (or path) with its query redacted; without a `?` it is the query itself only for the `q` atom."""
    head, mark, rest = url.partition("?")
    if not mark:
        return url
    query, hash_mark, fragment = rest.partition("#")
    return head + mark + redact_query(query) + hash_mark + fragment


def redact_request_line(line: str) -> str:
    method, _, rest = line.partition(" ")
    uri, space, protocol = rest.rpartition(" ")
    return f"{method} {redact_url(uri)}{space}{protocol}" if space else f"{method} {redact_url(rest)}"


def redact_atoms(atoms: dict[str, Any]) -> dict[str, Any]:
    """gunicorn's access-log atoms with no credential left in them."""
    clean = dict(atoms)
    for key, value in atoms.items():
        if not isinstance(value, str):
            continue
        if key.startswith("{") and SECRET_NAME.search(key):
            clean[key] = REDACTED
        elif key == "r":
            clean[key] = redact_request_line(value)
        elif key in ("q", "{query_string}e"):
            clean[key] = redact_query(value)
        elif key in URL_ATOMS:
            clean[key] = redact_url(value)
    return clean


class RedactingLogger(glogging.Logger):  # type: ignore[misc]  # gunicorn has no type hints
    """gunicorn's logger, its access log redacted (redact_atoms)."""

    def atoms(self, resp: Any, req: Any, environ: Any, request_time: Any) -> dict[str, Any]:
        return redact_atoms(super().atoms(resp, req, environ, request_time))
