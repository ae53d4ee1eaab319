"""Small helpers for the tests and the benchmark that start servers on the loopback."""

from __future__ import annotations

import contextlib
import socket
import subprocess


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
