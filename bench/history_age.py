"""Goal (issue 12): a run's cost does not grow with the run history's age.

Two copies of one deployed project (the shipped data after `make run`: v0002): one with a fresh run
history, one with two years of 10-minute cron ticks in it (105,120 rows, about one in a hundred a
"no drift" run with its full drift details). Each run copies the same 2,000 new client rows from a
changed world into the input folder, so the full process ingests, finds drift, retrains, deploys
and reports (diagnostics, PDF); then `reporting.py` runs again on its own. The two projects run
interleaved, restored from their snapshots before each run.
Usage: python bench/history_age.py [--runs 3]
"""

from __future__ import annotations

import argparse
import json
import shutil
import sqlite3
import tempfile
from pathlib import Path

import numpy as np
from common import PY, ROOT, copy_outputs, load, median, report, run_measured, shipped_project

from drs.history import db as rundb
from drs.history import runs as history
from drs.history.record import Outcome
from tools.generate_data import CHANGED_WORLD, clients, unique_ids

TICKS = 2 * 52_560  # two years of a run every 10 minutes


def age(db: Path, ticks: int = TICKS) -> int:
    """Fill the history with `ticks` runs like cron's: "no new data", and one "no drift" with its details in a hundred."""
    template = next(r for r in reversed(history.runs(db)) if isinstance(r["details"].get("drift"), dict))
    drift_details = {**template["details"], "timings": template["details"]["timings"]}
    with rundb.opened(db) as conn, conn:
        rows = []
        for i in range(ticks):
            stamp = f"2024-{1 + i // 8760 % 12:02d}-{1 + i // 288 % 28:02d}T{i // 6 % 24:02d}:{i % 6 * 10:02d}:00+00:00"
            if i % 100 == 99:
                details = drift_details
                outcome, message = Outcome.NO_DRIFT, "no drift: v0002 stays deployed (F1 0.7600 >= 0.7500, raw)"
            else:
                details = {"force_deploy": False, "new_files": [], "timings": {"check": 0.004}}
                outcome, message = Outcome.NO_NEW_DATA, "no new data in sourceddata; v0002 stays deployed"
            drift = details.get("drift") or {}
            rows.append(
                (
                    stamp,
                    stamp,
                    "fullprocess",
                    str(outcome),
                    message,
                    2,
                    json.dumps(details),
                    drift.get("model_sha256"),
                    drift.get("new_data_f1"),
                )
            )
        conn.executemany(
            "INSERT INTO runs (started_at, finished_at, kind, outcome, message, deployed_version, details, drift_model_sha256, new_data_f1)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            rows,
        )
    with sqlite3.connect(db) as conn:
        return int(conn.execute("SELECT count(*) FROM runs").fetchone()[0])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    load()
    tmp = Path(tempfile.mkdtemp(prefix="drs-bench-age-"))
    try:
        root = tmp / "project"
        shipped_project(root)
        config = root / "config.json"
        config.write_text(
            json.dumps(
                {**json.loads(config.read_text()), "packages_timeout_seconds": 0, "api_url": "http://127.0.0.1:9", "settle_seconds": 0}
            )
        )
        run_measured([PY, str(ROOT / "fullprocess.py"), "--config", str(config)])  # v0002, as after make run
        new_file = tmp / "clients_2027q1.csv"
        rng = np.random.default_rng(2027)
        clients(rng, unique_ids(rng, 2000), CHANGED_WORLD).to_csv(new_file, index=False)
        snapshots = {"fresh history": tmp / "fresh", "two years of history": tmp / "aged"}
        for snapshot in snapshots.values():
            copy_outputs(root, snapshot)
        rows_in_history = age(snapshots["two years of history"] / "ingesteddata" / "runhistory.sqlite")
        size_mb = (snapshots["two years of history"] / "ingesteddata" / "runhistory.sqlite").stat().st_size / 1e6
        measured: dict[str, dict[str, list[float]]] = {label: {"run": [], "rss": [], "reporting": []} for label in snapshots}
        for _ in range(args.runs):
            for label, snapshot in snapshots.items():
                copy_outputs(snapshot, root)
                (root / "sourceddata" / new_file.name).unlink(missing_ok=True)
                shutil.copy(new_file, root / "sourceddata" / new_file.name)
                wall, rss, err = run_measured([PY, str(ROOT / "fullprocess.py"), "--config", str(config)])
                outcome = history.latest_run(root / "ingesteddata" / "runhistory.sqlite")
                if outcome is None or outcome["outcome"] != Outcome.DEPLOYED:
                    raise RuntimeError(f"expected a deployment, got {outcome and outcome['outcome']}:\n{err[-2000:]}")
                measured[label]["run"].append(wall)
                measured[label]["rss"].append(rss)
                measured[label]["reporting"].append(run_measured([PY, str(ROOT / "reporting.py"), "--config", str(config)])[0])
        rows = [
            [
                label,
                f"{median(m['run']):.2f}",
                f"{median(m['rss']):.0f}",
                f"{median(m['reporting']):.2f}",
                ", ".join(f"{x:.2f}" for x in m["run"]),
            ]
            for label, m in measured.items()
        ]
        fresh, aged = (median(measured[label]["run"]) for label in snapshots)
        report(
            "history_age",
            ["history", "full process with 2,000 new rows, median s", "peak RSS MB", "reporting.py median s", "runs s"],
            rows,
            {
                "runs": args.runs,
                "history rows (aged)": rows_in_history,
                "history size (aged)": f"{size_mb:.1f} MB",
                "aged / fresh": f"{aged / fresh:.3f} (goal <= 1.10)",
            },
        )
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
