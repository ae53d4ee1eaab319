"""Ingestion: collect every CSV in the input folder, check it, de-duplicate, write the training set.

Writes finaldata.csv, ingestedfiles.txt and ingestionrecord.json to `output_folder_path`
(see drs/ingest.py). A file that fails its checks is named in the log and skipped;
source files are only ever read.

    python ingestion.py [--config FILE] [-v]
"""

from __future__ import annotations

from drs.cli import run_stage
from drs.ingest import ingest


def main(argv: list[str] | None = None) -> int:
    return run_stage(__doc__, ingest, argv)


if __name__ == "__main__":
    raise SystemExit(main())
