"""What the benchmarks share: data made with the project's generator, a scratch project, timing with peak memory.

Every benchmark writes only under a temporary folder (or bench/results/, which git ignores).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PY = sys.executable
RESULTS = ROOT / "bench" / "results"
LOAD_AT_START: list[str] = []


def large_files(folder: Path, files: int, rows_per_file: int, seed: int = 1000, resend: float = 0.01) -> int:
    """`files` CSV files of exactly `rows_per_file` rows from tools/generate_data.large_set; each re-sends
    the last `resend` share of the previous file and repeats 0.1% of its own rows (duplicates across and
    within files). Returns the total number of rows."""
    import pandas as pd

    from tools.generate_data import large_set, write_csv

    folder.mkdir(parents=True, exist_ok=True)
    previous = None
    for i in range(files):
        fresh = large_set(rows_per_file, seed=seed + i)
        again = int(rows_per_file * resend) if previous is not None else 0
        within = rows_per_file // 1000
        parts = ([previous.tail(again)] if again else []) + [fresh.iloc[: rows_per_file - again - within], fresh.iloc[:within]]
        write_csv(pd.concat(parts, ignore_index=True), folder / f"clients_{seed + i:05d}.csv")
        previous = fresh
    return files * rows_per_file


def data_parser(doc: str) -> argparse.ArgumentParser:
    """The options every benchmark over generated history data shares (--rows, --files, --runs, --keep)."""
    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--files", type=int, default=10)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--keep", type=Path, help="reuse/keep the generated data in this folder")
    return parser


def history_data(keep: Path | None, tmp: Path, files: int, rows: int) -> Path:
    """The folder of generated history files: `keep` when it already holds them (generating takes ~20 s
    for 10 million rows), else freshly generated into `keep` or `tmp/data`."""
    data = keep or tmp / "data"
    if not (data.exists() and any(data.glob("*.csv"))):
        large_files(data, files, rows // files)
    return data


OUTPUTS = ("ingesteddata", "practicemodels", "models", "production_deployment")


def copy_outputs(source: Path, target: Path) -> None:
    """Replace the project outputs (OUTPUTS) under `target` with those under `source`: a snapshot taken or restored."""
    for name in OUTPUTS:
        shutil.rmtree(target / name, ignore_errors=True)
        shutil.copytree(source / name, target / name, symlinks=True)


def shipped_project(root: Path) -> Path:
    """A copy of the shipped data and configs after the course's practice pass (v0001 deployed)."""
    for name in ("practicedata", "sourceddata", "testdata", "config.json", "practiceconfig.json"):
        source = ROOT / name
        shutil.copytree(source, root / name) if source.is_dir() else shutil.copy(source, root / name)
    for stage in ("ingestion.py", "training.py", "scoring.py", "deployment.py"):
        run_measured([PY, str(ROOT / stage), "--config", str(root / "practiceconfig.json")])
    return root


def scratch_project(root: Path, input_folder: Path | None = None, **settings: object) -> Path:
    """A project folder (config.json, test data copy, empty outputs) whose input folder is `input_folder`."""
    root.mkdir(parents=True, exist_ok=True)
    shutil.copytree(ROOT / "testdata", root / "testdata", dirs_exist_ok=True)
    config = {
        "input_folder_path": str(input_folder or (root / "sourceddata")),
        "output_folder_path": "ingesteddata",
        "test_data_path": "testdata",
        "output_model_path": "models",
        "prod_deployment_path": "production_deployment",
        "api_url": "http://127.0.0.1:9",
        "packages_timeout_seconds": 0,
        **settings,
    }
    (root / "config.json").write_text(json.dumps(config, indent=2))
    return root / "config.json"


def cron_env() -> dict[str, str]:
    """This environment with bytecode caching on, as under cron (PYTHONDONTWRITEBYTECODE dropped)."""
    return {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}


def run_measured(cmd: Sequence[str], cwd: Path | None = None, env: dict[str, str] | None = None) -> tuple[float, float, str]:
    """(wall seconds, peak RSS in MB of the process, stderr) of one run; raises if it fails.

    Bytecode caching is on, as under cron (this environment's PYTHONDONTWRITEBYTECODE is dropped), so no
    measured run pays for compiling the project's modules: the first run of a command writes the cache."""
    if env is None:
        env = cron_env()
    started = time.perf_counter()
    proc = subprocess.Popen(list(cmd), cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - started
    err = proc.stderr.read() if proc.stderr else ""
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({proc.returncode}):\n{err[-3000:]}")
    return wall, usage.ru_maxrss / 1024, err


def median(values: Sequence[float]) -> float:
    return statistics.median(values)


def load() -> str:
    """The 1, 5 and 15 minute load averages (the first call is kept as the load at the start)."""
    now = " ".join(f"{v:.2f}" for v in os.getloadavg())
    if not LOAD_AT_START:
        LOAD_AT_START.append(now)
    return now


def machine() -> dict[str, str]:
    import numpy
    import pandas
    import polars
    import sklearn

    cpu = next(
        (line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines() if line.startswith("model name")), "?"
    )
    mem = next((line.split()[1] for line in Path("/proc/meminfo").read_text().splitlines() if line.startswith("MemTotal")), "0")
    return {
        "cpu": f"{os.cpu_count()} x {cpu}",
        "memory": f"{int(mem) / 1024 / 1024:.0f} GB",
        "python": platform.python_version(),
        "versions": f"pandas {pandas.__version__}, numpy {numpy.__version__}, scikit-learn {sklearn.__version__}, polars {polars.__version__}",
        "load at start": LOAD_AT_START[0] if LOAD_AT_START else "?",
    }


def report(name: str, header: Sequence[str], rows: list[Sequence[object]], extra: dict[str, object] | None = None) -> None:
    """Print a markdown table with the machine and load, and keep it in bench/results/NAME.json."""
    info = {**machine(), "load at end": load(), **(extra or {})}
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    print("\n".join(lines))
    for key, value in info.items():
        print(f"- {key}: {value}")
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"{name}.json").write_text(json.dumps({"header": list(header), "rows": [list(map(str, r)) for r in rows], **info}, indent=2))
