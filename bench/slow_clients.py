"""Benchmark: how many idle and slow connections the server survives while GET /health answers within 1 s (issue 21).

    .venv/bin/python bench/slow_clients.py [--max-idle 1000] [--max-slow 200] [--hold 8] [--compare]

Serves a scratch copy of the project (the course's practice pass: v0001 deployed) with gunicorn and
gunicorn.conf.py as they are by default (no WORKER_CLASS, THREADS, KEEPALIVE in the environment), on a
free 127.0.0.1 port. For each kind of connection of tools/slow_clients.py (idle, partial, keepalive,
slow-head, slow-body) and a mix (idle at the level, slow heads and slow bodies at a tenth of it each),
the count ramps up; at each step the crowd holds its connections (reopening any the server drops) for
`--hold` seconds while /health is asked every half second on a new connection. A step passes when
every answer was a 200 within 1 s. The ramp of a kind stops at its first failing step. Recorded: the
largest passing count of each kind, the slowest answer there, how many of the crowd's connections the
server closed. `--compare` also runs the old default (2 sync workers) and gthread with 64 threads.

Bounded: at most --max-idle (1,000) connections of a kind at once, --max-idle x 1.2 in the mix, and
--max-idle and --max-slow at most 3,000; 127.0.0.1 only.
"""

from __future__ import annotations

import argparse
import os
import resource
import tempfile
import time
from pathlib import Path

from common import load, report, shipped_project

from tools.procs import gunicorn_server
from tools.slow_clients import KINDS, SLOW_KINDS, Crowd, probe

ANSWER_WITHIN = 1.0  # seconds
IDLE_STEPS = (10, 50, 100, 200, 500, 1000, 1500, 2000, 2500, 3000)
SLOW_STEPS = (2, 10, 20, 50, 100, 200, 500, 1000, 1500, 2000, 2500, 3000)
SERVERS = {
    "default (gevent, 2 workers)": {},
    "old default (sync, 2 workers)": {"WORKER_CLASS": "sync"},
    "gthread, 2 workers x 64 threads": {"WORKER_CLASS": "gthread", "THREADS": "64"},
}
SERVING_ENV = ("WORKER_CLASS", "THREADS", "KEEPALIVE", "WORKER_CONNECTIONS", "WORKERS")


def steps(limit: int, ladder: tuple[int, ...]) -> list[int]:
    return [n for n in ladder if n < limit] + [limit]


def crowd_of(kind: str, count: int) -> dict[str, int]:
    if kind == "mix":
        return {"idle": count, "slow-head": count // 10, "slow-body": count // 10}
    return {kind: count}


def hold(port: int, counts: dict[str, int], seconds: float) -> dict[str, object]:
    """Hold the crowd `seconds` while probing /health twice a second: whether every answer was a 200 within 1 s."""
    with Crowd(port, counts) as crowd:
        probes: list[tuple[int, float]] = []
        started = time.monotonic()
        while time.monotonic() - started < seconds:
            probes.append(probe(port, timeout=5))
            time.sleep(0.5)
        held = crowd.held()
    worst = max(s for _, s in probes)
    passed = all(status == 200 and s <= ANSWER_WITHIN for status, s in probes)
    return {"passed": passed, "worst": worst, "held": held, "dropped": sum(crowd.dropped.values()), "probes": len(probes)}


def settle(port: int, limit: float = 60) -> bool:
    """Until /health answers again after a crowd left (a held-up server may take its time)."""
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        if probe(port, timeout=2)[0] == 200:
            return True
        time.sleep(0.5)
    return False


def ramp(port: int, kind: str, ladder: list[int], seconds: float) -> list[object]:
    """One row: the kind, the largest count that passed, the slowest answer there, connections dropped, the first failure."""
    best: tuple[int, dict[str, object]] | None = None
    failed = "none up to the limit"
    for count in ladder:
        outcome = hold(port, crowd_of(kind, count), seconds)
        print(f"  {kind:10} {count:5}: {'ok  ' if outcome['passed'] else 'FAIL'} {outcome}", flush=True)
        recovered = settle(port)
        if not outcome["passed"]:
            failed = f"{count} (slowest /health {float(outcome['worst']):.2f} s)" + ("" if recovered else ", not answering 60 s after")
            break
        best = (count, outcome)
    if best is None:
        return [kind, 0, "-", "-", failed]
    count, outcome = best
    label = f"{count} idle + {count // 10} slow-head + {count // 10} slow-body" if kind == "mix" else count
    return [kind, label, f"{float(outcome['worst']) * 1e3:.0f} ms", outcome["dropped"], failed]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--max-idle", type=int, default=1000, help="largest count of idle, partial and keepalive connections")
    parser.add_argument("--max-slow", type=int, default=200, help="largest count of slow-head and slow-body connections")
    parser.add_argument("--hold", type=float, default=8.0, help="seconds each step is held (more than KEEPALIVE, 5)")
    parser.add_argument("--compare", action="store_true", help="also the old default (sync) and gthread with 64 threads")
    parser.add_argument("--kinds", nargs="+", choices=(*KINDS, "mix"), default=(*KINDS, "mix"), help="only these kinds")
    args = parser.parse_args(argv)
    if max(args.max_idle, args.max_slow) > 3000:
        parser.error("at most 3000 connections of a kind")
    if set(SERVING_ENV) & set(os.environ):
        parser.error(f"unset {', '.join(sorted(set(SERVING_ENV) & set(os.environ)))}: this measures the default setup")
    load()
    rows: list[list[object]] = []
    with tempfile.TemporaryDirectory(prefix="drs-bench-slow-") as tmp:
        config = shipped_project(Path(tmp)) / "config.json"
        for server, env in SERVERS.items() if args.compare else list(SERVERS.items())[:1]:
            print(f"{server}:", flush=True)
            with gunicorn_server(config, env=env) as url:
                port = int(url.rsplit(":", 1)[1])
                for kind in args.kinds:
                    ladder = steps(args.max_slow if kind in SLOW_KINDS else args.max_idle, SLOW_STEPS if kind in SLOW_KINDS else IDLE_STEPS)
                    rows.append([server, *ramp(port, kind, ladder, args.hold)])
    header = [
        "server",
        "kind",
        f"largest count with /health within {ANSWER_WITHIN:g} s",
        "slowest /health there",
        "dropped by the server",
        "first failing count",
    ]
    report(
        "slow_clients",
        header,
        rows,
        {
            "hold seconds per step": args.hold,
            "limits": f"{args.max_idle} idle, {args.max_slow} slow",
            "open files limit": resource.getrlimit(resource.RLIMIT_NOFILE)[0],
        },
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
