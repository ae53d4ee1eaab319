"""Training: fit the course's logistic regression on the ingested data.

Reads `output_folder_path/finaldata.csv`; writes `output_model_path/trainedmodel.pkl`
and `trainedmodel.json` (see drs/model/training.py).

    python training.py [--config FILE] [-v]

The course's train_model() does the same from Python (drs/course.py).
"""

from __future__ import annotations

from drs.core.cli import run_stage
from drs.course import train_model
from drs.model.training import train

__all__ = ["main", "train_model"]


def main(argv: list[str] | None = None) -> int:
    return run_stage(__doc__, train, argv)


if __name__ == "__main__":
    raise SystemExit(main())
