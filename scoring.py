"""Scoring: F1 of the trained model on the test data.

Writes `output_model_path/latestscore.txt` (the bare F1, as the course has it) and
`latestscore.json` (see drs/model/scoring.py).

    python scoring.py [--config FILE] [-v]

The course's score_model() does the same from Python and returns the F1 (drs/course.py).
"""

from __future__ import annotations

from drs.core.cli import run_stage
from drs.course import score_model
from drs.model.scoring import score

__all__ = ["main", "score_model"]


def main(argv: list[str] | None = None) -> int:
    return run_stage(__doc__, score, argv)


if __name__ == "__main__":
    raise SystemExit(main())
