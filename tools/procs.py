"""Small helpers for the tests and the benchmark that start servers on the loopback."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
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


@contextlib.contextmanager
def gunicorn_server(config_path: Path, workers: int = 2) -> Iterator[str]:
    """A real gunicorn serving create_app() for `config_path` on a free loopback port."""
    gunicorn = Path(sys.executable).parent / "gunicorn"  # a pinned dependency, installed beside this Python
    port = free_port()
    env = {**os.environ, "DRS_CONFIG": str(config_path), "PORT": str(port), "WORKERS": str(workers)}
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
        deadline = time.monotonic() + 30
        while True:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.2):
                break
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"gunicorn did not start:\n{log.read_text()}")
            time.sleep(0.05)
        yield url
    finally:
        stop(proc)
