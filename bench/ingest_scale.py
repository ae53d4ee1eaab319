"""Goal 2: ingest 10 files of 10 million rows in all (validate, concatenate, de-duplicate, write).

Measured: `ingestion.py` on a fresh output folder (a full ingestion) against the plain pandas
read_csv / concat / drop_duplicates / to_csv, in the same run; median of --runs runs each, peak RSS.
The baseline reads with keep_default_na=False, as the project does: otherwise pandas turns
generated ids such as "null" into missing values and the outputs differ for that reason alone.
Usage: python bench/ingest_scale.py [--rows 10000000] [--files 10] [--runs 3] [--keep DIR]
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from common import PY, ROOT, data_parser, history_data, load, median, report, run_measured, scratch_project

PLAIN_PANDAS = """
import sys, glob, pandas as pd
files = sorted(glob.glob(sys.argv[1] + "/*.csv"))
frame = pd.concat([pd.read_csv(f, keep_default_na=False) for f in files], ignore_index=True).drop_duplicates(ignore_index=True)
frame.to_csv(sys.argv[2], index=False, lineterminator="\\n")
"""


def main() -> None:
    parser = data_parser(__doc__)
    args = parser.parse_args()
    load()
    tmp = Path(tempfile.mkdtemp(prefix="drs-bench-ingest-"))
    data = history_data(args.keep, tmp, args.files, args.rows)
    size_mb = sum(p.stat().st_size for p in data.glob("*.csv")) / 1e6
    config = scratch_project(tmp / "project", data)
    out = config.parent / "ingesteddata"
    ours, plain = [], []
    try:
        for _ in range(args.runs):
            shutil.rmtree(out, ignore_errors=True)
            ours.append(run_measured([PY, str(ROOT / "ingestion.py"), "--config", str(config)])[:2])
            plain.append(run_measured([PY, "-c", PLAIN_PANDAS, str(data), str(tmp / "plain.csv")])[:2])
        same = (out / "finaldata.csv").read_bytes() == (tmp / "plain.csv").read_bytes()
        rows = [
            [
                "ingestion.py (full ingestion)",
                f"{median([w for w, _ in ours]):.2f}",
                f"{max(m for _, m in ours):.0f}",
                ", ".join(f"{w:.2f}" for w, _ in ours),
            ],
            [
                "plain pandas baseline",
                f"{median([w for w, _ in plain]):.2f}",
                f"{max(m for _, m in plain):.0f}",
                ", ".join(f"{w:.2f}" for w, _ in plain),
            ],
        ]
        report(
            "ingest_scale",
            ["command", "median wall s", "peak RSS MB", "runs"],
            rows,
            {"data": f"{args.files} files, {args.rows:,} rows, {size_mb:.0f} MB", "finaldata.csv identical to the baseline's": same},
        )
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
