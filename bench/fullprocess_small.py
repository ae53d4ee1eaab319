"""Goal 4 (last part): the full process redeploying on the shipped 10,000 clients, reports and API calls included.

Measured: after the practice pass (v0001), `fullprocess.py` finds the four quarterly files, detects
drift, retrains, redeploys, writes diagnostics and the confusion matrix, and calls the API (a real
gunicorn on 127.0.0.1); the outputs are restored before each run. Three settings, same run: the
dependency check asking the package index (`packages_timeout_seconds` as shipped, 20) with no
answers cached (the first redeploy of a day), with the day's answers cached, and skipping it (0).
Usage: python bench/fullprocess_small.py [--runs 3]
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
from pathlib import Path

from common import OUTPUTS, PY, ROOT, copy_outputs, load, median, report, run_measured, shipped_project

from drs.history import runs as history
from tools.procs import gunicorn_server  # the tests' real gunicorn on a free loopback port

STAGES = ("check", "ingestion", "drift", "training", "scoring", "deployment", "diagnostics", "reporting", "apicalls")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    load()
    tmp = Path(tempfile.mkdtemp(prefix="drs-bench-small-"))
    root = tmp / "project"
    try:
        shipped_project(root)
        shipped = json.loads((ROOT / "config.json").read_text())
        for name in OUTPUTS:
            (root / name).mkdir(exist_ok=True)
        copy_outputs(root, tmp / "snapshot")
        variants = {
            "index asked (shipped, 20 s limit), nothing cached": 20,
            "index answers cached (the rest of the day)": 20,
            "packages_timeout_seconds 0 (index not asked)": 0,
        }
        cached = tmp / "packageindex.json"
        walls: dict[str, list[float]] = {v: [] for v in variants}
        stages: dict[str, dict[str, list[float]]] = {v: {s: [] for s in STAGES} for v in variants}
        config = root / "config.json"
        with gunicorn_server(config) as url:
            for _ in range(args.runs):
                for label, timeout in variants.items():
                    config.write_text(json.dumps({**shipped, "api_url": url, "packages_timeout_seconds": timeout}))
                    copy_outputs(tmp / "snapshot", root)
                    if label.startswith("index answers cached") and cached.exists():
                        shutil.copy(cached, root / "models" / cached.name)
                    wall, _, err = run_measured([PY, str(ROOT / "fullprocess.py"), "--config", str(config)])
                    run = history.runs(root / "ingesteddata" / "runhistory.sqlite")[-1]
                    if run["outcome"] != "deployed" or run["details"].get("apicalls") != "done":
                        raise RuntimeError(f"unexpected run: {run['outcome']} {run['details'].get('apicalls')}\n{err[-2000:]}")
                    if "nothing cached" in label and (root / "models" / cached.name).exists():
                        shutil.copy(root / "models" / cached.name, cached)
                    walls[label].append(wall)
                    for stage in STAGES:
                        stages[label][stage].append(run["details"]["timings"].get(stage, 0.0))
        rows = [
            [label, f"{median(w):.2f}", ", ".join(f"{x:.2f}" for x in w), ", ".join(f"{s} {median(stages[label][s]):.2f}" for s in STAGES)]
            for label, w in walls.items()
        ]
        report(
            "fullprocess_small", ["fullprocess.py redeploying on 10,000 clients", "median wall s", "runs", "median seconds per stage"], rows
        )
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
