"""Goals 3 and 5: one new file of 10,000 rows arrives after 10 million rows were ingested.

Measured: `fullprocess.py` from its start to its drift decision (the "drift check" log line; the run
is then stopped, and the ingested folder restored for the next run), with the row store (incremental)
and without it (store removed: a full re-ingestion and scoring from finaldata.csv), same run, median
of --runs runs, and the peak RSS of each. The deployed model is trained on the history (lbfgs, scaled).
Usage: python bench/incremental.py [--rows 10000000] [--files 10] [--runs 3] [--keep DIR]
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

from common import PY, ROOT, cron_env, data_parser, history_data, load, median, report, run_measured, scratch_project

from tools.generate_data import large_set, write_csv


def until_decision(config: Path) -> tuple[float, float, str]:
    """Wall seconds to the drift decision, peak RSS MB, the decision line."""
    started = time.perf_counter()
    proc = subprocess.Popen(
        [PY, str(ROOT / "fullprocess.py"), "--config", str(config)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        env=cron_env(),  # bytecode caching on, as run_measured and cron
    )
    line = ""
    for line in proc.stderr:
        if "drift check" in line or "no new data" in line:
            break
    wall = time.perf_counter() - started
    proc.send_signal(signal.SIGKILL)
    _, _, usage = os.wait4(proc.pid, 0)
    if "drift check" not in line:
        raise RuntimeError(f"no drift decision: {line}")
    return wall, usage.ru_maxrss / 1024, line.strip().split(": ", 1)[-1]


def main() -> None:
    parser = data_parser(__doc__)
    parser.add_argument("--new-rows", type=int, default=10_000)
    args = parser.parse_args()
    load()
    tmp = Path(tempfile.mkdtemp(prefix="drs-bench-incr-"))
    source = history_data(args.keep, tmp / "generated", args.files, args.rows)
    data = tmp / "data"
    data.mkdir()
    for path in sorted(source.glob("*.csv"))[: args.files]:
        os.link(path, data / path.name)  # same disk; a symlink out of the input folder would be refused
    history_rows = sum(1 for p in data.glob("*.csv") for _ in open(p, "rb")) - args.files
    config = scratch_project(tmp / "project", data, model={"solver": "lbfgs", "scale": True})
    for stage in ("ingestion.py", "training.py", "scoring.py", "deployment.py"):
        run_measured([PY, str(ROOT / stage), "--config", str(config)])
    run_measured([PY, str(ROOT / "fullprocess.py"), "--config", str(config)])
    ingested = config.parent / "ingesteddata"
    snapshot = tmp / "snapshot"
    shutil.copytree(ingested, snapshot, symlinks=True)
    write_csv(large_set(args.new_rows, seed=424242), tmp / "new.csv")
    results: dict[str, list[tuple[float, float, str]]] = {"incremental (row store)": [], "without the store (full re-ingestion)": []}
    try:
        for _ in range(args.runs):
            for label, results_of in results.items():
                shutil.rmtree(ingested)
                shutil.copytree(snapshot, ingested, symlinks=True)
                if "without" in label:
                    shutil.rmtree(ingested / "finaldata.store")
                shutil.copy(tmp / "new.csv", data / "clients_99999.csv")
                results_of.append(until_decision(config))
                (data / "clients_99999.csv").unlink()
        rows = [
            [label, f"{median([w for w, _, _ in r]):.2f}", f"{max(m for _, m, _ in r):.0f}", ", ".join(f"{w:.2f}" for w, _, _ in r)]
            for label, r in results.items()
        ]
        report(
            f"incremental_{history_rows}",
            ["fullprocess.py to its drift decision", "median wall s", "peak RSS MB", "runs"],
            rows,
            {
                "history": f"{history_rows:,} rows in {args.files} files",
                "new file": f"{args.new_rows:,} rows",
                "decision": results["incremental (row store)"][0][2],
            },
        )
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
