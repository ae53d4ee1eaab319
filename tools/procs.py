"""Small helpers for the tests and the benchmark that start servers on the loopback."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with contextlib.closing(socket.socket()) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def stop(proc: subprocess.Popen, timeout: float = 15) -> None:
    """Ask a server to stop (SIGTERM: gunicorn finishes its requests), kill it if it does not."""
    proc.terminate()
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def wait_until_answering(proc: subprocess.Popen, url: str, log: Path, limit: float = 90) -> None:
    """Until GET /health answers: the master listens at once, but a worker may take seconds to boot on a loaded machine."""
    deadline = time.monotonic() + limit
    while True:
        try:
            with urllib.request.urlopen(url + "/health", timeout=5):
                return
        except urllib.error.HTTPError:  # an answer all the same (503 before a first deployment)
            return
        except OSError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"gunicorn did not answer within {limit:g}s:\n{log.read_text()}")
        time.sleep(0.1)


@contextlib.contextmanager
def gunicorn_server(config_path: Path, workers: int = 2, env: dict[str, str] | None = None) -> Iterator[str]:
    """A real gunicorn serving create_app() for `config_path` on a free loopback port (`env`: more variables for it)."""
    gunicorn = Path(sys.executable).parent / "gunicorn"  # a pinned dependency, installed beside this Python
    port = free_port()
    env = {**os.environ, "DRS_CONFIG": str(config_path), "PORT": str(port), "WORKERS": str(workers), **(env or {})}
    log = config_path.parent / f"gunicorn-{port}.log"
    with open(log, "w") as handle:
        proc = subprocess.Popen(
            [str(gunicorn), "--config", str(ROOT / "gunicorn.conf.py"), "--chdir", str(ROOT), "app:create_app()"],
            cwd=ROOT,
            env=env,
            stdout=handle,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_answering(proc, url, log)
        yield url
    finally:
        stop(proc)
