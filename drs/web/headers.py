"""Security headers on every answer of the app, errors and redirects included.

A Content-Security-Policy with no inline script (the page's only script is static/page.js; style
attributes stay allowed for the bars' widths), nothing framed, no MIME sniffing, no referrer sent to other
sites, and `Cache-Control: no-store` on everything but the static CSS and script: the answers hold
client data (the page, /risk, /prediction, the risk list) or say who may see it.
"""

from __future__ import annotations

from flask import Flask, Response, request

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
CACHEABLE_ENDPOINTS = ("page_assets.static",)  # the CSS and script: no client data


def secure(response: Response) -> Response:
    response.headers.update(HEADERS)
    if request.endpoint not in CACHEABLE_ENDPOINTS:
        response.headers["Cache-Control"] = "no-store"
    return response


def install(app: Flask) -> None:
    app.after_request(secure)
