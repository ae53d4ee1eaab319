"""Clients that hold a server's connections without finishing a request, for the tests and bench/slow_clients.py.

Loopback only, bounded in count and time. Five kinds (a class of attack, issue 21):

- ``idle``: connects and sends nothing;
- ``partial``: sends part of a request line (``GET /hea``) and nothing more;
- ``keepalive``: one whole HTTP/1.1 request, reads the answer, leaves the connection open;
- ``slow-head``: a request head one byte a second, never finished (slowloris);
- ``slow-body``: a whole head announcing a 100,000-byte JSON body, then the body one byte a second.

A `Crowd` keeps its connections open: one dropped by the server is opened again (as an attacker
would) on the next tick, so the count holds for as long as the crowd lives. `probe` asks
``GET /health`` on a connection of its own and says whether, and how fast, it was answered.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from dataclasses import dataclass, field

KINDS = ("idle", "partial", "keepalive", "slow-head", "slow-body")
SLOW_KINDS = ("slow-head", "slow-body")
BODY_BYTES = 100_000
MAX_SECONDS = 600  # a crowd stops by itself after this long, whatever its owner does


def _opening(kind: str) -> bytes:
    host = b"Host: 127.0.0.1\r\n"
    return {
        "idle": b"",
        "partial": b"GET /hea",
        "keepalive": b"GET /health HTTP/1.1\r\n" + host + b"\r\n",
        "slow-head": b"GET /health HTTP/1.1\r\n" + host + b"X-Slow: ",
        "slow-body": b"POST /prediction HTTP/1.1\r\n"
        + host
        + b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n{" % BODY_BYTES,
    }[kind]


@dataclass
class Crowd:
    """`counts[kind]` connections of each kind to 127.0.0.1:`port`, held open (reopened when dropped) by one thread."""

    port: int
    counts: dict[str, int]
    opened: int = 0
    dropped: dict[str, int] = field(default_factory=dict)  # per kind: connections the server closed (or refused)
    _socks: list[tuple[str, socket.socket]] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def _open(self, kind: str) -> socket.socket | None:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.settimeout(5)
        try:
            sock.connect(("127.0.0.1", self.port))
            if opening := _opening(kind):
                sock.sendall(opening)  # a keepalive connection's answer is read (and dropped) by the ticks
        except OSError:
            sock.close()
            self._drop(kind)
            return None
        sock.setblocking(False)
        self.opened += 1
        return sock

    def _drop(self, kind: str) -> None:
        self.dropped[kind] = self.dropped.get(kind, 0) + 1

    def _tick(self) -> None:
        """One byte on each slow connection; every connection the server closed opened again."""
        kept: list[tuple[str, socket.socket]] = []
        for kind, sock in self._socks:
            try:
                if kind in SLOW_KINDS:
                    sock.send(b"a" if kind == "slow-head" else b" ")
                elif sock.recv(65536) == b"":  # readable and empty: the server closed it
                    raise ConnectionError("closed by the server")
                kept.append((kind, sock))
            except BlockingIOError:
                kept.append((kind, sock))  # nothing to read: still open
            except OSError:
                sock.close()
                self._drop(kind)
        self._socks = kept
        wanted = dict(self.counts)
        for kind, _ in kept:
            wanted[kind] -= 1
        for kind, missing in wanted.items():
            for _ in range(missing):
                if self._stop.is_set():
                    return
                if (sock := self._open(kind)) is not None:
                    self._socks.append((kind, sock))

    def _run(self) -> None:
        deadline = time.monotonic() + MAX_SECONDS
        while not self._stop.is_set() and time.monotonic() < deadline:
            self._tick()
            self._stop.wait(1.0)

    def held(self) -> int:
        return len(self._socks)

    def __enter__(self) -> Crowd:
        self._tick()  # the first connections are open when `with` returns
        self._thread = threading.Thread(target=self._run, name="slow-clients", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=60)
        for _, sock in self._socks:
            with contextlib.suppress(OSError):
                sock.close()
        self._socks = []


def probe(port: int, timeout: float = 5.0) -> tuple[int, float]:
    """(status, seconds) of one ``GET /health`` on a new connection; status 0 when no answer came within `timeout`."""
    started = time.monotonic()
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
            sock.sendall(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
            head = b""
            while b"\r\n" not in head:
                sock.settimeout(max(0.001, timeout - (time.monotonic() - started)))
                chunk = sock.recv(4096)
                if not chunk:
                    break
                head += chunk
    except OSError:
        return 0, time.monotonic() - started
    parts = head.split(b" ", 2)
    status = int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else 0
    return status, time.monotonic() - started
