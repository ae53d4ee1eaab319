"""Diagnostics: predictions, summary statistics, missing data, stage timings, dependencies.

Computes them all with the deployed model and writes `output_model_path/diagnostics.json`,
which the API serves (see drs/reports/diagnostics.py; newest package versions: drs/reports/packages.py).

    python diagnostics.py [--config FILE] [-v]

The course's functions keep their names here, with no arguments and the course's lists
(DRS_CONFIG or config.json beside the scripts; drs/course.py): model_predictions(),
dataframe_summary(), missing_data(), execution_time(), outdated_packages_list().
"""

from __future__ import annotations

from drs.core.cli import run_stage
from drs.course import dataframe_summary, execution_time, missing_data, model_predictions, outdated_packages_list
from drs.reports.diagnostics import run

__all__ = ["dataframe_summary", "execution_time", "main", "missing_data", "model_predictions", "outdated_packages_list"]


def main(argv: list[str] | None = None) -> int:
    return run_stage(__doc__, run, argv)


if __name__ == "__main__":
    raise SystemExit(main())
