"""The web app: the JSON API (api.py), the page for client managers (page.py) and GET /metrics (telemetry.py), built by `create_app`.

An app factory, as in Flask's tutorial: gunicorn calls `app:create_app()` once
per worker; tests call it with their own Config. It builds the worker's Service
(service.py), registers the blueprints, the access rules (auth.py, signin.py), the
security headers and the JSON error handlers (requests.py). See docs/api.md.
"""

from __future__ import annotations

import os

from flask import Flask
from flask.json.provider import DefaultJSONProvider
from werkzeug.middleware.proxy_fix import ProxyFix

from drs.core.errors import ConfigError
from drs.core.settings import Config, load_config
from drs.data.schema import schema_of
from drs.web import api, auditpage, auth, calls, headers, page, requests, serving, signin, telemetry
from drs.web.service import SERVICE, ApiError, ModelCache, Service


def create_app(config: Config | str | os.PathLike[str] | None = None) -> Flask:
    """The app for one config (a Config, a path, or DRS_CONFIG / config.json beside the scripts).

    ConfigError when it must not start: open on an address other than the loopback (DRS_BIND, set by
    gunicorn.conf.py; unset means the loopback, as for Flask's test client), or a users file others may read."""
    if not isinstance(config, Config):
        config = load_config(config or os.environ.get("DRS_CONFIG") or None)
    binds = serving.binds_from_env() or ["127.0.0.1"]
    refused = serving.refusal(config, binds)
    if refused:
        raise ConfigError(refused)
    app = Flask(__name__, static_folder=None)
    if (warning := serving.warning(config)) is not None:
        app.logger.warning("%s", warning)
    if config.proxy_hops:  # X-Forwarded-For/-Proto only from the configured proxies (docs/security.md)
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=config.proxy_hops, x_proto=config.proxy_hops)  # type: ignore[method-assign]
    app.config["MAX_CONTENT_LENGTH"] = config.max_request_bytes
    if isinstance(app.json, DefaultJSONProvider):
        app.json.sort_keys = False  # answers keep the order of their fields
    svc = Service(config=config, schema=schema_of(config), models=ModelCache(config.prod_deployment_folder))
    app.extensions[SERVICE] = svc
    app.register_blueprint(api.api)  # the JSON endpoints
    app.register_blueprint(page.page)  # the HTML page for client managers (GET /)
    app.register_blueprint(page.assets)  # its CSS and script
    app.register_blueprint(auditpage.audit)  # the audit log, for operators
    app.register_blueprint(calls.calls)  # the call queue and the calls (GET/POST /calls, the page's form)
    telemetry.install(app, svc)  # counts every request; GET /metrics for Prometheus
    auth.install(app, config, all(serving.is_loopback_bind(b) for b in binds))  # who may call what (one table)
    signin.install(app, config)  # the page's sign-in form and session cookie
    headers.install(app)  # security headers on every answer
    requests.register_errors(app, config.max_request_bytes)
    try:  # load the model now, so a worker's first request is as fast as the rest
        svc.models.get()
    except ApiError as exc:
        app.logger.warning("%s", exc.message)
    return app
