"""The web app's entry point: gunicorn calls `app:create_app()` (gunicorn.conf.py, `make serve`) or `app:app`.

The config file comes from the DRS_CONFIG environment variable or config.json
beside the scripts; the app itself lives in drs/web/. `app` (the course's name) is
made on first use, so importing this stays cheap. `python app.py` serves as the course
does, on 127.0.0.1:8000, but through gunicorn with gunicorn.conf.py, as `make serve`
does (PORT, BIND, WORKERS; refusing to serve open beyond the loopback).
"""

from __future__ import annotations

import functools
import os
import sys
from pathlib import Path

from drs.web.app import create_app

__all__ = ["create_app", "main"]  # and `app`, made on first use (not by `import *`)
HERE = Path(__file__).resolve().parent


@functools.cache
def _app() -> object:
    return create_app()


def __getattr__(name: str) -> object:
    if name == "app":
        return _app()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def main() -> None:
    """Become gunicorn (same pid, so SIGTERM stops it gracefully) serving `app:create_app()` from this folder."""
    os.environ["PYTHONPATH"] = os.pathsep.join([str(HERE), *filter(None, [os.environ.get("PYTHONPATH")])])
    command = ["-m", "gunicorn", "--chdir", str(HERE), "--config", str(HERE / "gunicorn.conf.py"), "app:create_app()"]
    os.execv(sys.executable, [sys.executable, *command])


if __name__ == "__main__":
    main()
