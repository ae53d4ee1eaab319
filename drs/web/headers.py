"""Security headers on every answer of the app, errors and redirects included.

A Content-Security-Policy with no inline script (the page's only script is static/page.js; style
attributes stay allowed for the bars' widths), nothing framed, no MIME sniffing, no referrer sent to other
sites, and `Cache-Control: no-store` on everything but the static CSS and script: the answers hold
client data (the page, /risk, /prediction, the risk list) or say who may see it. The headers themselves are in
drs/web/answers.py, which gunicorn's own error answers use too. See docs/security.md#headers-on-every-answer.
"""

from __future__ import annotations

from flask import Flask, Response, request

from drs.web.answers import HEADERS, NO_STORE

CACHEABLE_ENDPOINTS = ("page_assets.static",)  # the CSS and script: no client data


def secure(response: Response) -> Response:
    response.headers.update(HEADERS)
    if request.endpoint not in CACHEABLE_ENDPOINTS:
        response.headers.update(NO_STORE)
    return response


def install(app: Flask) -> None:
    app.after_request(secure)
