"""Benchmark: our API under gunicorn against a course-style Flask dev server, in the same run.

    .venv/bin/python bench/bench.py [--rounds 3] [--requests 2000] [--concurrency 8] [--readme]

Builds a scratch copy of the project (practice model v0001 deployed, the
production model trained but not deployed), starts our server (gunicorn,
`gunicorn.conf.py`, 2 workers) and the naive server (bench/naive_app.py) on
free 127.0.0.1 ports, and sends both the same bounded requests: per round and
scenario, `--requests` requests at `--concurrency`. Scenarios: GET /health,
POST /prediction with 1 and with 100 JSON records, and with a 100-row CSV file
named by `filepath`. In round 2 of each prediction scenario a real redeploy
(`deployment.py`, a new version) happens while our server is loaded.

The load generator is `hey` where installed (`apt-get install hey`; it sends
exactly the requested count), else `wrk` (which cannot stop at a count, so it
runs WRK_SECONDS per round; bench/wrk_report.lua prints its percentiles),
else a Python client with threads (slower itself, so its numbers are lower
bounds). Results go to bench/results/ (JSON)
and, with --readme, into bench/README.md between the result markers.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import http.client
import json
import math
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

from tools.procs import free_port, stop


def auth_headers() -> dict[str, str]:
    """`Authorization: Bearer $DRS_TOKEN` when DRS_TOKEN is set (a server with users configured; docs/security.md)."""
    token = os.environ.get("DRS_TOKEN")
    return {"Authorization": f"Bearer {token}"} if token else {}


def header_flags() -> list[str]:
    """The same header as hey's and wrk's -H flags."""
    return [flag for name, value in auth_headers().items() for flag in ("-H", f"{name}: {value}")]


ROOT = Path(__file__).resolve().parent.parent

BENCH = ROOT / "bench"
RESULTS = BENCH / "results"
PY = sys.executable
DATA_FOLDERS = ("practicedata", "sourceddata", "testdata")
OUTPUT_FOLDERS = ("ingesteddata", "practicemodels", "models", "production_deployment")
SCENARIOS = ("health", "predict-1", "predict-100", "file-100")
WRK_SECONDS = 3
LOADERS = ("hey", "wrk", "python")
START_MARK, END_MARK = "<!-- bench results: start -->", "<!-- bench results: end -->"


@dataclass
class Run:
    server: str
    scenario: str
    round: int
    client: str
    requests: int
    seconds: float
    rps: float
    p50_ms: float
    p99_ms: float
    errors: int
    cpu_ms_per_request: float = math.nan
    redeploy: str = ""
    notes: dict[str, Any] = field(default_factory=dict)


# ---- the scratch project --------------------------------------------------------------------


def build_project(folder: Path) -> dict[str, bytes]:
    """A copy of the project's data with v0001 deployed and a production model ready; the request bodies."""
    for name in DATA_FOLDERS:
        shutil.copytree(ROOT / name, folder / name)
    for name in OUTPUT_FOLDERS:
        (folder / name).mkdir()
    for name in ("config.json", "practiceconfig.json"):
        settings = json.loads((ROOT / name).read_text())
        settings["packages_timeout_seconds"] = 0
        (folder / name).write_text(json.dumps(settings, indent=2))
    steps = [(s, "practiceconfig.json") for s in ("ingestion", "training", "scoring", "deployment")]
    steps += [(s, "config.json") for s in ("ingestion", "training", "scoring")]
    for script, config in steps:
        subprocess.run([PY, str(ROOT / f"{script}.py"), "--config", str(folder / config)], check=True, capture_output=True, text=True)
    with open(folder / "testdata" / "testdata.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    features = ("lastmonth_activity", "lastyear_activity", "number_of_employees")
    records = [{"corporation": r["corporation"], **{f: int(r[f]) for f in features}} for r in rows[:100]]
    with open(folder / "testdata" / "bench100.csv", "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=["corporation", *features])
        writer.writeheader()
        writer.writerows(records)
    return {
        "health": b"",
        "predict-1": json.dumps({"records": records[:1]}).encode(),
        "predict-100": json.dumps({"records": records}).encode(),
        "file-100": json.dumps({"filepath": "testdata/bench100.csv"}).encode(),
    }


# ---- servers --------------------------------------------------------------------------------


def get_json(port: int, path: str, timeout: float = 5) -> tuple[int, Any]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request("GET", path, headers=auth_headers())
        response = conn.getresponse()
        return response.status, json.loads(response.read())
    finally:
        conn.close()


def tree_cpu_seconds(pid: int) -> float:
    """User and system CPU seconds of a process and all its descendants (gunicorn's master and workers)."""
    tick = os.sysconf("SC_CLK_TCK")
    total, todo = 0.0, [pid]
    while todo:
        current = todo.pop()
        with contextlib.suppress(OSError):
            fields = Path(f"/proc/{current}/stat").read_text().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / tick
            for task in Path(f"/proc/{current}/task").iterdir():
                todo += [int(c) for c in (task / "children").read_text().split()]
    return total


@contextlib.contextmanager
def server(name: str, command: list[str], port: int, env: dict[str, str], log: Path) -> Iterator[int]:
    with open(log, "w") as handle:
        proc = subprocess.Popen(command, cwd=ROOT, env={**os.environ, **env}, stdout=handle, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 60
        while True:
            with contextlib.suppress(OSError, ValueError):
                if get_json(port, "/health", timeout=1)[0] == 200:
                    break
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"{name} did not start; see {log}")
            time.sleep(0.1)
        yield proc.pid
    finally:
        stop(proc)


# ---- load generators ------------------------------------------------------------------------


def hey_load(port: int, path: str, body: bytes, requests: int, concurrency: int, work: Path) -> tuple[int, float, float, float, int]:
    """(answers, seconds, p50 ms, p99 ms, errors) from hey, which sends exactly `requests` requests."""
    command = ["hey", "-n", str(requests), "-c", str(concurrency), "-t", "10", *header_flags()]
    if body:
        body_file = work / "body.json"
        body_file.write_bytes(body)
        command += ["-m", "POST", "-T", "application/json", "-D", str(body_file)]
    done = subprocess.run([*command, f"http://127.0.0.1:{port}{path}"], capture_output=True, text=True, timeout=600)
    text = done.stdout

    def seconds(pattern: str) -> float:
        found = re.search(pattern + r"\s*([\d.]+) secs", text)
        return float(found.group(1)) if found else math.nan  # no latencies when every request failed

    total, p50, p99 = seconds(r"Total:\s+"), seconds(r"50%+ in") * 1e3, seconds(r"99%+ in") * 1e3
    statuses = {int(code): int(n) for code, n in re.findall(r"\[(\d{3})\]\s+(\d+) responses", text)}
    failed = sum(int(n) for n in re.findall(r"^\s+\[(\d+)\](?!\s+\d+ responses)", text, re.M))  # error lines: [count] message
    sent = sum(statuses.values()) + failed
    return sent, total, p50, p99, sent - statuses.get(200, 0)


def wrk_load(port: int, path: str, body: bytes, requests: int, concurrency: int, work: Path) -> tuple[int, float, float, float, int]:
    """The same from wrk, which cannot stop at a count: it runs for WRK_SECONDS instead."""
    threads = min(2, concurrency)
    body_file = work / "body.json"
    body_file.write_bytes(body)
    env = {**os.environ, "BENCH_BODY": str(body_file) if body else ""}
    done = subprocess.run(
        [
            "wrk",
            *header_flags(),
            "-t",
            str(threads),
            "-c",
            str(concurrency),
            "-d",
            f"{WRK_SECONDS}s",
            "--timeout",
            "10s",
            "-s",
            str(BENCH / "wrk_report.lua"),
            f"http://127.0.0.1:{port}{path}",
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=WRK_SECONDS + 60,
    )
    line = next((text for text in done.stdout.splitlines() if text.startswith("BENCH ")), None)
    if line is None:
        raise RuntimeError(f"wrk gave no result: {done.stdout}\n{done.stderr}")
    r = json.loads(line[6:])
    errors = r["connect_errors"] + r["read_errors"] + r["write_errors"] + r["status_errors"] + r["timeouts"]
    return r["requests"], r["duration_us"] / 1e6, r["p50_us"] / 1e3, r["p99_us"] / 1e3, errors


def python_load(port: int, path: str, body: bytes, requests: int, concurrency: int, work: Path) -> tuple[int, float, float, float, int]:
    """The same from threads of http.client (one connection per request, as gunicorn's sync workers closed them)."""
    method = "POST" if body else "GET"
    headers = {**({"Content-Type": "application/json"} if body else {}), **auth_headers()}

    def one(_: int) -> tuple[float, bool]:
        started = time.perf_counter()
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        try:
            conn.request(method, path, body=body or None, headers=headers)
            response = conn.getresponse()
            response.read()
            ok = response.status == 200
        except OSError:
            ok = False
        finally:
            conn.close()
        return (time.perf_counter() - started) * 1e3, ok

    started = time.perf_counter()
    with ThreadPoolExecutor(concurrency) as pool:
        results = list(pool.map(one, range(requests)))
    seconds = time.perf_counter() - started
    latencies = sorted(ms for ms, _ in results)
    errors = sum(1 for _, ok in results if not ok)
    return len(results), seconds, percentile(latencies, 50), percentile(latencies, 99), errors


def percentile(sorted_values: list[float], q: float) -> float:
    index = min(len(sorted_values) - 1, max(0, round(q / 100 * len(sorted_values)) - 1))
    return sorted_values[index]


# ---- the run --------------------------------------------------------------------------------


def redeploy_soon(project: Path, delay: float, outcome: dict[str, str]) -> threading.Thread:
    """Deploy the production model as a new version `delay` seconds from now, in another process."""

    def work() -> None:
        time.sleep(delay)
        done = subprocess.run([PY, str(ROOT / "deployment.py"), "--config", str(project / "config.json")], capture_output=True, text=True)
        outcome["result"] = "ok" if done.returncode == 0 else f"failed: {done.stderr.strip()[-300:]}"
        outcome["at"] = f"{time.monotonic():.3f}"

    thread = threading.Thread(target=work)
    thread.start()
    return thread


def machine() -> dict[str, Any]:
    cpu = next(
        (text.split(":", 1)[1].strip() for text in Path("/proc/cpuinfo").read_text().splitlines() if text.startswith("model name")),
        platform.processor(),
    )
    versions = {
        name: metadata.version(name) for name in ("flask", "werkzeug", "gunicorn", "gevent", "numpy", "scipy", "scikit-learn", "pandas")
    }
    if shutil.which("wrk"):
        out = subprocess.run(["wrk", "--version"], capture_output=True, text=True)
        versions["wrk"] = (out.stdout or out.stderr).split()[1]
    if shutil.which("hey"):
        versions["hey"] = (
            subprocess.run(["dpkg-query", "-W", "-f", "${Version}", "hey"], capture_output=True, text=True).stdout or "installed"
        )
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "os": platform.platform(),
        "versions": versions,
        "load_before": os.getloadavg(),
    }


def run(rounds: int, requests: int, concurrency: int, client: str, workers: int) -> dict[str, Any]:
    if client == "auto":
        client = next(name for name in LOADERS if name == "python" or shutil.which(name))
    load = {"hey": hey_load, "wrk": wrk_load, "python": python_load}[client]
    info = machine()
    runs: list[Run] = []
    RESULTS.mkdir(exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="drs-bench-") as tmp:
        project = Path(tmp) / "project"
        project.mkdir()
        bodies = build_project(project)
        ours_port, naive_port = free_port(), free_port()
        ours_cmd = [str(Path(PY).parent / "gunicorn"), "--config", str(ROOT / "gunicorn.conf.py"), "app:create_app()"]
        ours_env = {"DRS_CONFIG": str(project / "config.json"), "PORT": str(ours_port), "WORKERS": str(workers)}
        naive_cmd = [PY, str(BENCH / "naive_app.py"), "--project", str(project), "--port", str(naive_port)]
        with (
            server("gunicorn", ours_cmd, ours_port, ours_env, RESULTS / "ours.log") as ours_pid,
            server("naive", naive_cmd, naive_port, {}, RESULTS / "naive.log") as naive_pid,
        ):
            used = re.search(r"Using worker: (\S+)", (RESULTS / "ours.log").read_text())
            worker_class = used.group(1) if used else "?"  # as gunicorn.conf.py and the environment chose it
            for scenario in SCENARIOS:  # warm up: imports, first model load, caches
                for port in (ours_port, naive_port):
                    load(
                        port,
                        "/health" if scenario == "health" else "/prediction",
                        bodies[scenario],
                        4 * concurrency,
                        concurrency,
                        Path(tmp),
                    )
            for round_no in range(1, rounds + 1):
                for scenario in SCENARIOS:
                    path = "/health" if scenario == "health" else "/prediction"
                    for name, port, pid in (("ours", ours_port, ours_pid), ("naive", naive_port, naive_pid)):
                        redeploy, outcome, thread = "", {}, None
                        if name == "ours" and round_no == 2 and scenario != "health":
                            before = get_json(port, "/health")[1]["model_version"]
                            thread = redeploy_soon(project, 0.15, outcome)
                        cpu_before = tree_cpu_seconds(pid)
                        count, seconds, p50, p99, errors = load(port, path, bodies[scenario], requests, concurrency, Path(tmp))
                        cpu_ms = (tree_cpu_seconds(pid) - cpu_before) * 1e3 / count
                        if thread is not None:
                            thread.join()
                            after = get_json(port, "/health")[1]["model_version"]
                            redeploy = f"{before} -> {after} ({outcome.get('result')})"
                        runs.append(
                            Run(
                                name,
                                scenario,
                                round_no,
                                client,
                                count,
                                round(seconds, 3),
                                round(count / seconds, 1),
                                round(p50, 3),
                                round(p99, 3),
                                errors,
                                round(cpu_ms, 3),
                                redeploy,
                            )
                        )
                        print(
                            f"round {round_no} {scenario:12} {name:6} {count / seconds:9.1f} req/s  p50 {p50:7.2f} ms  p99 {p99:7.2f} ms"
                            f"  server CPU {cpu_ms:6.3f} ms/req  errors {errors}  {redeploy}",
                            flush=True,
                        )
    info["load_after"] = os.getloadavg()
    return {
        "machine": info,
        "settings": {"rounds": rounds, "requests": requests, "concurrency": concurrency, "workers": workers, "worker_class": worker_class},
        "runs": [asdict(r) for r in runs],
        "finished_at": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()),
    }


def summary(result: dict[str, Any]) -> dict[tuple[str, str], dict[str, float]]:
    """Per server and scenario: median req/s and p50 over the rounds, worst p99, total errors."""
    table = {}
    for server_name in ("ours", "naive"):
        for scenario in SCENARIOS:
            runs = [r for r in result["runs"] if r["server"] == server_name and r["scenario"] == scenario]
            table[(server_name, scenario)] = {
                "rps": statistics.median(r["rps"] for r in runs),
                "p50": statistics.median(r["p50_ms"] for r in runs),
                "p99": max(r["p99_ms"] for r in runs),
                "errors": sum(r["errors"] for r in runs),
                "cpu": statistics.median(r["cpu_ms_per_request"] for r in runs),
                "requests": sum(r["requests"] for r in runs),
            }
    return table


def goals(table: dict[tuple[str, str], dict[str, float]], result: dict[str, Any]) -> list[tuple[str, str, bool]]:
    ours1, naive1, health = table[("ours", "predict-1")], table[("naive", "predict-1")], table[("ours", "health")]
    redeploys = [r for r in result["runs"] if r["redeploy"]]
    return [
        (
            "one-record /prediction >= 10x the naive server's req/s",
            f"{ours1['rps'] / naive1['rps']:.1f}x",
            ours1["rps"] >= 10 * naive1["rps"],
        ),
        (
            "one-record /prediction within 1.5x the /health floor",
            f"/health {health['rps']:.0f} req/s is {health['rps'] / ours1['rps']:.2f}x",
            health["rps"] <= 1.5 * ours1["rps"],
        ),
        ("p99 under 5 ms at concurrency 8 (one record, worst round)", f"{ours1['p99']:.2f} ms", ours1["p99"] < 5),
        (
            "zero errors on our server, redeploys included",
            f"{sum(table[('ours', s)]['errors'] for s in SCENARIOS)} errors, {len(redeploys)} redeploys under load",
            all(table[("ours", s)]["errors"] == 0 for s in SCENARIOS) and all("(ok)" in r["redeploy"] for r in redeploys),
        ),
    ]


def markdown(result: dict[str, Any]) -> str:
    table = summary(result)
    m, s = result["machine"], result["settings"]
    client = result["runs"][0]["client"]
    lines = [
        f"Run {result['finished_at']}: {s['rounds']} rounds x {s['requests']} requests per scenario at concurrency {s['concurrency']}, "
        f"load generator `{client}`, our server gunicorn with {s['workers']} {s.get('worker_class', 'sync')} workers.",
        f"Machine: {m['cpu']}, {m['cores']} cores, Python {m['python']}, {m['os']}; load average before {m['load_before'][0]:.2f}, after {m['load_after'][0]:.2f} (`uptime`, 1 min; the machine is shared).",
        "Versions: " + ", ".join(f"{k} {v}" for k, v in m["versions"].items()) + ".",
        "",
        "| scenario | ours req/s | ours p50 ms | ours p99 ms | ours CPU ms/req | naive req/s | naive p50 ms | naive p99 ms | naive CPU ms/req | ours / naive (req/s) | errors (ours, naive) |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |",
    ]
    for scenario in SCENARIOS:
        o, n = table[("ours", scenario)], table[("naive", scenario)]
        lines.append(
            f"| {scenario} | {o['rps']:.0f} | {o['p50']:.2f} | {o['p99']:.2f} | {o['cpu']:.3f} | {n['rps']:.0f} | {n['p50']:.2f} | {n['p99']:.2f} | {n['cpu']:.3f} | {o['rps'] / n['rps']:.1f}x | {o['errors']}, {n['errors']} |"
        )
    lines += [
        "",
        "req/s, p50 and CPU: median of the rounds; p99: the worst round. CPU ms/req is the server's own user+system"
        " CPU time (gunicorn master and workers; the naive server's process) per answered request, from /proc: it"
        " depends far less on what else the shared machine runs than req/s and latency do.",
        "",
        "| goal | measured | met |",
        "| --- | --- | --- |",
    ]
    lines += [f"| {goal} | {measured} | {'yes' if met else '**no**'} |" for goal, measured, met in goals(table, result)]
    lines += [
        "",
        "Redeploys while loaded: "
        + "; ".join(f"{r['scenario']} round {r['round']}: {r['redeploy']}" for r in result["runs"] if r["redeploy"])
        + ".",
    ]
    return "\n".join(lines)


def write_readme(text: str) -> None:
    readme = BENCH / "README.md"
    current = readme.read_text()
    start, end = current.index(START_MARK) + len(START_MARK), current.index(END_MARK)
    readme.write_text(current[:start] + "\n" + text + "\n" + current[end:])


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument(
        "--requests", type=int, default=2000, help="requests per round and scenario (bounded; hey sends a multiple of --concurrency)"
    )
    p.add_argument("--concurrency", type=int, default=8)
    p.add_argument("--workers", type=int, default=2, help="gunicorn workers of our server")
    p.add_argument(
        "--client", choices=("auto", *LOADERS), default="auto", help="load generator (auto: the first installed of hey, wrk, python)"
    )
    p.add_argument("--readme", action="store_true", help="write the results into bench/README.md")
    args = p.parse_args(argv)
    result = run(args.rounds, args.requests, args.concurrency, args.client, args.workers)
    stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime())
    (RESULTS / f"bench-{stamp}.json").write_text(json.dumps(result, indent=2))
    text = markdown(result)
    print("\n" + text)
    if args.readme:
        write_readme(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
