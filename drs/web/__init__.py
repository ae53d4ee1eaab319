"""The web app: the JSON API (api.py), the page for client managers (page.py) and GET /metrics (telemetry.py), built by `create_app`.

An app factory, as in Flask's tutorial: gunicorn calls `app:create_app()` once
per worker; tests call it with their own Config.
"""

from __future__ import annotations

import os

from flask import Flask
from flask.json.provider import DefaultJSONProvider

from drs.schema import Schema
from drs.settings import Config, load_config
from drs.web import api, page, telemetry


def create_app(config: Config | str | os.PathLike[str] | None = None) -> Flask:
    """The app for one config (a Config, a path, or DRS_CONFIG / config.json beside the scripts)."""
    if not isinstance(config, Config):
        config = load_config(config or os.environ.get("DRS_CONFIG") or None)
    app = Flask(__name__, static_folder=None)
    app.config["MAX_CONTENT_LENGTH"] = config.max_request_bytes
    if isinstance(app.json, DefaultJSONProvider):
        app.json.sort_keys = False  # answers keep the order of their fields
    svc = api.Service(config=config, schema=Schema.from_config(config), models=api.ModelCache(config.prod_deployment_folder))
    app.extensions[api.SERVICE] = svc
    app.register_blueprint(api.api)  # the JSON endpoints
    app.register_blueprint(page.page)  # the HTML page for client managers (GET /)
    app.register_blueprint(page.assets)  # its CSS and script
    telemetry.install(app, svc)  # counts every request; GET /metrics for Prometheus
    api.register_errors(app, config.max_request_bytes)
    try:  # load the model now, so a worker's first request is as fast as the rest
        svc.models.get()
    except api.ApiError as exc:
        app.logger.warning("%s", exc.message)
    return app
