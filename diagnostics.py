"""Diagnostics: predictions, summary statistics, missing data, stage timings, dependencies.

Computes them all with the deployed model and writes `output_model_path/diagnostics.json`,
which the API serves (see drs/diagnostics.py; newest package versions: drs/packages.py).

    python diagnostics.py [--config FILE] [-v]
"""

from __future__ import annotations

from drs.cli import run_stage
from drs.diagnostics import run


def main(argv: list[str] | None = None) -> int:
    return run_stage(__doc__, run, argv)


if __name__ == "__main__":
    raise SystemExit(main())
