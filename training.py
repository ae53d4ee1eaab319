"""Training: fit the course's logistic regression on the ingested data.

Reads `output_folder_path/finaldata.csv`; writes `output_model_path/trainedmodel.pkl`
and `trainedmodel.json` (see drs/training.py).

    python training.py [--config FILE] [-v]
"""

from __future__ import annotations

from drs.cli import run_stage
from drs.training import train


def main(argv: list[str] | None = None) -> int:
    return run_stage(__doc__, train, argv)


if __name__ == "__main__":
    raise SystemExit(main())
