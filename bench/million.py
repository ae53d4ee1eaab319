"""Issue 21: a million clients. A redeploying full process, then each view's first request on each worker.

Measured, on a project with `--clients` distinct clients (tools/generate_data.many_clients, about 65% active)
in 4 files, after the course's practice pass (v0001 on the practice data):
  1. `fullprocess.py` finds the files, detects drift, retrains, redeploys, writes diagnostics and reports, and
     calls the API; a real gunicorn (2 workers) serves meanwhile (wall time, peak RSS, seconds per stage);
  2. the first request of each view on each worker after that deployment (the workers served every view
     before it): GET /risk, the page /, a client's view (the top client), an unknown client's view (404),
     /risklist.csv (first byte and whole), /metrics; which worker answered comes from gunicorn's access log;
  3. each worker's memory (VmRSS now, VmHWM its peak) after those requests;
then the same at `--big` clients (default 10 million; 0 skips it): the views must still answer.
`--code DIR` runs another copy of the project's code (e.g. `git archive` of an older commit) on the same data.
Usage: python bench/million.py [--clients 1000000] [--big 10000000] [--runs 1] [--keep DIR] [--code DIR]
"""

from __future__ import annotations

import argparse
import concurrent.futures
import json
import os
import re
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from common import OUTPUTS, PY, RESULTS, ROOT, copy_outputs, cron_env, load, median, report, shipped_project

from tools.procs import free_port, stop, wait_until_answering

FILES = 4
UNKNOWN = "nosuchclient"
STAGES = ("ingestion", "drift", "training", "diagnostics", "reporting", "apicalls")
COUNTER = iter(range(1, 10**9))
LOCK = threading.Lock()


def generated_project(root: Path, clients: int, keep: Path | None) -> Path:
    """The shipped project after the practice pass, its input folder holding `clients` distinct clients in FILES files."""
    import polars as pl

    from tools.generate_data import many_clients

    shipped_project(root)
    for name in OUTPUTS:
        (root / name).mkdir(exist_ok=True)
    source = root / "sourceddata"
    shutil.rmtree(source)
    data = keep / f"clients-{clients}" if keep else root / "generated"
    if not (data.is_dir() and len(list(data.glob("*.csv"))) == FILES):
        data.mkdir(parents=True, exist_ok=True)
        made = many_clients(clients, seed=2121)
        frame = pl.DataFrame({c: made[c].to_numpy() if made[c].dtype.kind in "iuf" else made[c].tolist() for c in made.columns})
        del made
        step = -(-clients // FILES)
        for i in range(FILES):
            frame.slice(i * step, step).write_csv(data / f"clients_{i + 1:02d}.csv", line_terminator="\n")
    source.mkdir()
    for path in sorted(data.glob("*.csv")):
        os.link(path, source / path.name)  # same disk: no copy of a gigabyte
    config = json.loads((ROOT / "config.json").read_text())
    config.update(packages_timeout_seconds=0, settle_seconds=0)
    (root / "config.json").write_text(json.dumps(config, indent=2))
    return root / "config.json"


class Server:
    """gunicorn (the project's gunicorn.conf.py, 2 sync workers) on a free loopback port, its access log naming each worker."""

    def __init__(self, config: Path, code: Path, workers: int = 2):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.access = config.parent / f"access-{self.port}.log"
        self.log = config.parent / f"gunicorn-{self.port}.log"
        env = {**cron_env(), "DRS_CONFIG": str(config), "PORT": str(self.port), "WORKERS": str(workers), "ACCESS_LOG": str(self.access)}
        env["PYTHONPATH"] = str(code)
        with open(self.log, "w") as handle:
            self.proc = subprocess.Popen(
                [str(Path(PY).parent / "gunicorn"), "--config", str(code / "gunicorn.conf.py"), "--chdir", str(code)]
                + ["--access-logformat", "%(p)s %(r)s %(s)s", "app:create_app()"],
                cwd=code,
                env=env,
                stdout=handle,
                stderr=subprocess.STDOUT,
            )
        wait_until_answering(self.proc, self.url, self.log, limit=300)

    def workers(self) -> list[int]:
        children = Path(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children")
        return sorted(int(p) for p in children.read_text().split())

    def served_by(self) -> dict[str, int]:
        """tag -> the pid of the worker that answered, from the access log."""
        found = {}
        for line in self.access.read_text().splitlines():
            match = re.match(r"<?(\d+)>? \S+ \S*[?&]bench=(\d+)", line)
            if match:
                found.setdefault(match.group(2), int(match.group(1)))
        return found

    def close(self, keep: Path | None = None) -> None:
        """Stop it; keep its log (bench/results/ is git-ignored) to read what a worker said about a 500."""
        stop(self.proc)
        if keep is not None:
            keep.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(self.log, keep)


def fetch(url: str, timeout: float) -> dict[str, Any]:
    """One GET: status, seconds to the first byte of the body and to its end, bytes; or what went wrong."""
    started = time.perf_counter()
    try:
        with urllib.request.urlopen(url, timeout=timeout) as answer:
            first = answer.read(1)
            ttfb = time.perf_counter() - started
            size = len(first) + len(answer.read())
            status = answer.status
    except urllib.error.HTTPError as exc:
        ttfb = time.perf_counter() - started
        size, status = len(exc.read()), exc.code
    except OSError as exc:
        return {"status": None, "error": f"{type(exc).__name__}: {exc}"[:120], "total": time.perf_counter() - started}
    return {"status": status, "first_byte": ttfb, "total": time.perf_counter() - started, "bytes": size}


def cpu_measured(cmd: list[str], env: dict[str, str]) -> tuple[float, float, float, str]:
    """(wall s, peak RSS MB, CPU s of the process and every helper it waited for, stderr); raises if it fails.
    The CPU time does not depend on what else the shared machine runs: on 2 free cores the wall time is at least half."""
    with tempfile.TemporaryFile("w+") as log:  # a file, not a pipe: a long log never blocks the run
        started = time.perf_counter()
        proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=log, text=True)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - started
        log.seek(0)
        err = log.read()
    if os.waitstatus_to_exitcode(status) != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{err[-3000:]}")
    return wall, usage.ru_maxrss / 1024, usage.ru_utime + usage.ru_stime, err


def tagged(path: str) -> tuple[str, str]:
    with LOCK:
        tag = str(next(COUNTER))
    return tag, f"{path}{'&' if '?' in path else '?'}bench={tag}"


def first_per_worker(server: Server, path: str, timeout: float, tries: int = 12) -> dict[int, dict[str, Any]]:
    """Pairs of concurrent requests of `path` until each worker has answered one; each worker's first answer."""
    pids = server.workers()
    firsts: dict[int, dict[str, Any]] = {}
    with concurrent.futures.ThreadPoolExecutor(max_workers=len(pids)) as pool:
        for _ in range(tries):
            batch = [tagged(path) for _ in pids]
            results = dict(
                zip([t for t, _ in batch], pool.map(lambda p: fetch(server.url + p, timeout), [p for _, p in batch]), strict=True)
            )
            time.sleep(0.2)  # the access log line is written after the answer
            served = server.served_by()
            for tag, result in results.items():
                pid = served.get(tag)
                if pid is None:  # no answer: the worker was killed (timeout) before logging
                    firsts.setdefault(-len(firsts) - 1, result)
                elif pid not in firsts:
                    firsts[pid] = result
            if all(p in firsts for p in server.workers()) or len(firsts) >= len(pids):
                break
    return firsts


def views(config: Path) -> list[tuple[str, str]]:
    """(label, path) of each view measured; the client is the top of the risk list, the search its first 3 letters."""
    models = config.parent / "models"
    top, active = "x", 1
    if (models / "risklist.csv").exists():
        with open(models / "risklist.csv", encoding="utf-8") as handle:
            next(handle)
            top = next(handle).split(",")[1]
        store = models / "risklist.sqlite"
        if store.exists():
            with sqlite3.connect(f"file:{store}?mode=ro", uri=True) as con:
                active = json.loads(con.execute("SELECT value FROM summary WHERE key = 'active_clients'").fetchone()[0])
        else:  # the code before the store
            with open(models / "risklist.csv", "rb") as handle:
                active = sum(chunk.count(b"\n") for chunk in iter(lambda: handle.read(1 << 20), b"")) - 1
    return [
        ("GET /risk", "/risk"),
        ("page /", "/"),
        (f"page, search {top[:3]!r}", f"/?q={top[:3]}"),
        ("page, the last page", f"/?page={-(-active // 25)}"),
        ("client view (the top client)", f"/clients/{top}"),
        ("unknown client (404)", f"/clients/{UNKNOWN}"),
        ("/risklist.csv", "/risklist.csv"),
        ("GET /metrics", "/metrics"),
    ]


def memory(pid: int) -> tuple[float, float]:
    """(VmRSS, VmHWM) of a process in MB."""
    fields = dict(line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines() if ":" in line)
    return int(fields["VmRSS"].split()[0]) / 1024, int(fields["VmHWM"].split()[0]) / 1024


def said(result: dict[str, Any], first_byte: bool = False) -> str:
    if result.get("status") is None:
        return f"no answer after {result['total']:.0f} s ({result.get('error')})"
    ms = result["first_byte" if first_byte else "total"] * 1000
    return f"{ms:,.0f} ms ({result['status']})"


def measure(config: Path, code: Path, snapshot: Path, runs: int, timeout: float, label: str, name: str) -> dict[str, Any]:
    """The full process `runs` times (outputs restored, then a fresh server, before each: the server's metric files live
    in the output folder), then every view's first request per worker after the last one."""
    from drs.history import runs as history

    root = config.parent
    walls, peaks, cpus, stages = [], [], [], {s: [] for s in STAGES}
    firsts: dict[str, dict[int, dict[str, Any]]] = {}
    mem: dict[int, tuple[float, float]] = {}
    for run_number in range(runs):
        copy_outputs(snapshot, root)
        server = Server(config, code)
        try:
            cfg = json.loads(config.read_text())
            config.write_text(json.dumps({**cfg, "api_url": server.url}, indent=2))
            for _, path in views(config):  # the workers served every view before the deployment
                first_per_worker(server, path, timeout)
            print(f"[{label}] full process ...", file=sys.stderr, flush=True)
            env = {**cron_env(), "PYTHONPATH": str(code)}
            wall, peak, cpu, err = cpu_measured([PY, str(code / "fullprocess.py"), "--config", str(config)], env)
            run = history.runs(root / "ingesteddata" / "runhistory.sqlite")[-1]
            if run["outcome"] != "deployed":
                raise RuntimeError(f"unexpected run: {run['outcome']}: {run.get('message')}\n{err[-2000:]}")
            walls.append(wall)
            peaks.append(peak)
            cpus.append(cpu)
            for stage in STAGES:
                stages[stage].append(run["details"]["timings"].get(stage, 0.0))
            print(f"[{label}] full process {wall:.2f} s, API calls {run['details'].get('apicalls')}", file=sys.stderr, flush=True)
            if run_number == runs - 1:
                for view, path in views(config):
                    firsts[view] = first_per_worker(server, path, timeout)
                    print(f"[{label}] {view}: {[said(r) for r in firsts[view].values()]}", file=sys.stderr, flush=True)
                mem = {pid: memory(pid) for pid in server.workers()}
        finally:
            server.close(RESULTS / f"{name}-{label.split()[0].replace(',', '')}-gunicorn.log")
    return {"walls": walls, "peaks": peaks, "cpus": cpus, "stages": stages, "firsts": firsts, "memory": mem}


def rows_of(label: str, result: dict[str, Any]) -> list[list[str]]:
    walls = result["walls"]
    stages = ", ".join(f"{s} {median(v):.2f}" for s, v in result["stages"].items() if v)
    rows = [
        [
            label,
            "redeploying full process",
            f"{median(walls):.2f} s (runs {', '.join(f'{w:.2f}' for w in walls)}; CPU s, helpers included: "
            f"{', '.join(f'{c:.1f}' for c in result['cpus'])}); peak {max(result['peaks']):.0f} MB; {stages}",
        ]
    ]
    for name, firsts in result["firsts"].items():
        shown = [said(r, first_byte=name == "/risklist.csv") for r in firsts.values()]
        if name == "/risklist.csv":
            shown = [f"{s}, whole {r['total']:.2f} s" if r.get("status") else s for s, r in zip(shown, firsts.values(), strict=True)]
        rows.append([label, f"first {name} per worker", "; ".join(shown) + ("" if name != "/risklist.csv" else " (first byte)")])
    rows.append(
        [label, "memory per worker (now, peak)", "; ".join(f"{now:.0f} MB, {peak:.0f} MB" for now, peak in result["memory"].values())]
    )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=1_000_000)
    parser.add_argument("--big", type=int, default=10_000_000, help="clients of the second project (0: none)")
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument("--timeout", type=float, default=120, help="seconds a request may take before it counts as no answer")
    parser.add_argument("--keep", type=Path, help="keep/reuse the generated data in this folder")
    parser.add_argument("--code", type=Path, default=ROOT, help="the project code to run (default: this checkout)")
    parser.add_argument("--name", default="million", help="the results file, bench/results/NAME.json")
    args = parser.parse_args()
    load()
    code = args.code.resolve()
    tmp = Path(tempfile.mkdtemp(prefix="drs-bench-million-"))
    rows: list[list[str]] = []
    results = {}
    try:
        for clients, runs in ((args.clients, args.runs), (args.big, 1)):
            if not clients:
                continue
            label = f"{clients:,} clients"
            root = tmp / f"project-{clients}"
            config = generated_project(root, clients, args.keep)
            snapshot = tmp / f"snapshot-{clients}"
            copy_outputs(root, snapshot)
            results[label] = measure(config, code, snapshot, runs, args.timeout, label, args.name)
            rows += rows_of(label, results[label])
            shutil.rmtree(root, ignore_errors=True)
            shutil.rmtree(snapshot, ignore_errors=True)
        report(args.name, ["data", "measured", "result"], rows, {"code": str(code)})
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
