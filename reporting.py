"""Reporting: the confusion matrix, the ranked list of clients at risk, trends, and the PDF report.

Writes confusionmatrix.png, risklist.csv, riskdistribution.png, trends.png and report.pdf
to `output_model_path`, all with the deployed model (see drs/reports/reporting.py). Every full-process
run that deploys does the same; `--input CSV` ranks the clients of that file (exited column
optional) instead of the latest ingested data.

    python reporting.py [--config FILE] [-v] [--input CSV]

The course's score_model() draws confusionmatrix.png alone and returns its path (drs/course.py).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from drs.core.cli import run_main
from drs.core.settings import Config
from drs.course import confusion_matrix as score_model
from drs.reports.reporting import run

__all__ = ["main", "score_model"]


def _arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--input",
        type=Path,
        metavar="CSV",
        help="rank the clients of this CSV (exited column optional) instead of the latest ingested data",
    )


def _body(config: Config, args: argparse.Namespace) -> int:
    run(config, input_csv=args.input)
    return 0


def main(argv: list[str] | None = None) -> int:
    return run_main(__doc__, _body, argv, _arguments, writes=True)


if __name__ == "__main__":
    raise SystemExit(main())
