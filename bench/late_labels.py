"""Reading a source file with labels not known yet (an empty exited, docs/data.md): the fast reader's cost.

Measured: drs/schema.checked_frame on one CSV of --rows rows, with every label known and with --unknown of them
empty, best of --runs reads (parsing and checking; the bytes are in memory). The fast polars reader takes both when
the file holds no quote and as many commas as a file of whole rows does; otherwise the careful reader, which was
about 50x slower here (4.8 s against 0.09 s at 1M rows) before that rule.
Usage: python bench/late_labels.py [--rows 1000000] [--unknown 0.9] [--runs 3]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from drs.data.readers import checked_frame  # noqa: E402
from drs.data.schema import Schema  # noqa: E402

HEADER = "corporation,lastmonth_activity,lastyear_activity,number_of_employees,exited\n"


def csv_text(rows: int, unknown: float, seed: int = 0) -> str:
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 2, rows).astype(str).astype(object)
    labels[rng.random(rows) < unknown] = ""
    columns = zip(range(rows), rng.integers(0, 1000, rows), rng.integers(0, 10000, rows), rng.integers(1, 500, rows), labels, strict=True)
    return HEADER + "".join(f"c{i:08d},{a},{b},{c},{y}\n" for i, a, b, c, y in columns)


def best_seconds(data: bytes, runs: int) -> float:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        checked_frame(data, Schema(), "bench.csv", unlabelled=True)
        times.append(time.perf_counter() - started)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--unknown", type=float, default=0.9)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    for name, share in (("every label known", 0.0), (f"{args.unknown:.0%} of the labels not known yet", args.unknown)):
        seconds = best_seconds(csv_text(args.rows, share).encode(), args.runs)
        print(f"{name}: {seconds:.3f} s for {args.rows:,} rows")


if __name__ == "__main__":
    main()
