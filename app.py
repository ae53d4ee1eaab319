"""The web app's entry point: gunicorn calls `app:create_app()` (gunicorn.conf.py, `make serve`).

The config file comes from the DRS_CONFIG environment variable or config.json
beside the scripts; the app itself lives in drs/web/.
"""

from drs.web import create_app

__all__ = ["create_app"]
