"""Goal 4: training on 10 million rows and scoring F1 on 1 million, reading included.

Measured: `training.py` after a full ingestion of --rows rows (so it reads the row store; one run with the
store removed shows reading finaldata.csv instead), once per model setting; `scoring.py` with a test
file of --score-rows rows against the plain pandas read_csv + predict + f1_score, same run.
Usage: python bench/train_score.py [--rows 10000000] [--score-rows 1000000] [--runs 3] [--keep DIR]
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path

from common import PY, ROOT, data_parser, history_data, load, median, report, run_measured, scratch_project

from tools.generate_data import large_set, write_csv

SETTINGS = {
    "liblinear (course default)": {},
    "newton-cholesky": {"solver": "newton-cholesky"},
    "newton-cholesky, float32": {"solver": "newton-cholesky", "dtype": "float32"},
    "lbfgs, scaled": {"solver": "lbfgs", "scale": True},
    "lbfgs, scaled, float32": {"solver": "lbfgs", "scale": True, "dtype": "float32"},
}
PLAIN_SCORING = """
import pickle, sys, pandas as pd
from sklearn.metrics import f1_score
model = pickle.load(open(sys.argv[1], "rb"))
test = pd.read_csv(sys.argv[2])
f1_score(test["exited"], model.predict(test[["lastmonth_activity", "lastyear_activity", "number_of_employees"]].to_numpy()))
"""


def set_model(config: Path, settings: dict[str, object]) -> None:
    raw = json.loads(config.read_text())
    raw["model"] = settings
    config.write_text(json.dumps(raw, indent=2))


def main() -> None:
    parser = data_parser(__doc__)
    parser.add_argument("--score-rows", type=int, default=1_000_000)
    parser.add_argument("--liblinear-runs", type=int, default=1)
    args = parser.parse_args()
    load()
    tmp = Path(tempfile.mkdtemp(prefix="drs-bench-train-"))
    data = history_data(args.keep, tmp, args.files, args.rows)
    config = scratch_project(tmp / "project", data)
    write_csv(large_set(args.score_rows, seed=777), config.parent / "testdata" / "big.csv")
    try:
        run_measured([PY, str(ROOT / "ingestion.py"), "--config", str(config)])
        rows = []
        for label, settings in SETTINGS.items():
            set_model(config, settings)
            runs = [
                run_measured([PY, str(ROOT / "training.py"), "--config", str(config)])[:2]
                for _ in range(args.liblinear_runs if not settings else args.runs)
            ]
            rows.append(
                [
                    f"training.py, {label}",
                    f"{median([w for w, _ in runs]):.2f}",
                    f"{max(m for _, m in runs):.0f}",
                    ", ".join(f"{w:.2f}" for w, _ in runs),
                ]
            )
        set_model(config, SETTINGS["newton-cholesky, float32"])
        store = config.parent / "ingesteddata" / "finaldata.store"
        shutil.move(store, tmp / "store")
        wall, mem, _ = run_measured([PY, str(ROOT / "training.py"), "--config", str(config)])
        rows.append(["training.py, newton-cholesky float32, reading finaldata.csv (no store)", f"{wall:.2f}", f"{mem:.0f}", f"{wall:.2f}"])
        raw = json.loads(config.read_text())
        raw["test_data_file"] = "big.csv"
        config.write_text(json.dumps(raw, indent=2))
        ours, plain = [], []
        for _ in range(args.runs):
            ours.append(run_measured([PY, str(ROOT / "scoring.py"), "--config", str(config)])[:2])
            plain.append(
                run_measured(
                    [
                        PY,
                        "-c",
                        PLAIN_SCORING,
                        str(config.parent / "models" / "trainedmodel.pkl"),
                        str(config.parent / "testdata" / "big.csv"),
                    ]
                )[:2]
            )
        for label, runs in ((f"scoring.py on {args.score_rows:,} rows", ours), ("plain pandas read_csv + predict + f1_score", plain)):
            rows.append(
                [label, f"{median([w for w, _ in runs]):.2f}", f"{max(m for _, m in runs):.0f}", ", ".join(f"{w:.2f}" for w, _ in runs)]
            )
        report(
            "train_score",
            ["command", "median wall s", "peak RSS MB", "runs"],
            rows,
            {
                "training data": f"{args.rows:,} rows (full ingestion of {args.files} files)",
                "OMP/BLAS threads": os.environ.get("OMP_NUM_THREADS", "default"),
            },
        )
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
