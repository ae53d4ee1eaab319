"""What a message may say about a URL that may hold secrets: the one scrub rule (docs/security.md).

A target of the alerts (drs/alerts/notify.py) and the source database's URL (drs/data/dbsource.py) may hold a
password, a token or a user name, in its user info, its path or its query. A driver's or a library's message that
quotes any part of it is shown, logged or recorded only after `scrub`: every part of the URL but its scheme (each
also percent-decoded; the password however short, any other part from three characters), longest first, becomes `***`.
"""

from __future__ import annotations

from urllib.parse import parse_qsl, unquote, urlsplit

HIDDEN = "***"


def secrets_of(url: str) -> list[str]:
    """The parts of a URL that may be secret (all but its scheme), longest first, to scrub from a message."""
    try:
        parts = urlsplit(url)
        pieces = [url, parts.netloc, parts.path, parts.query, parts.username or "", parts.password or "", parts.hostname or ""]
        pieces += [p for p in parts.path.split("/")] + [v for _, v in parse_qsl(parts.query)]
        password = parts.password or ""
    except ValueError:
        pieces, password = [url], ""
    pieces += [unquote(p) for p in pieces]
    keep = {password, unquote(password)} - {""}  # the password however short; any other part from 3 characters
    return sorted({p for p in pieces if len(p) >= 3} | keep, key=len, reverse=True)


def scrub(text: str, url: str) -> str:
    """`text` with every part of `url` that may be secret replaced by `***`."""
    for secret in secrets_of(url):
        text = text.replace(secret, HIDDEN)
    return text
