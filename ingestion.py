"""Ingestion: collect every CSV in the input folder, check it, de-duplicate, write the training set.

Writes finaldata.csv, ingestedfiles.txt and ingestionrecord.json to `output_folder_path`
(see drs/ingest.py). A file that fails its checks is named in the log and skipped; a file
modified less than settle_seconds ago is left for a later run; source files are only ever read.

    python ingestion.py [--config FILE] [--settle-seconds S] [-v]
"""

from __future__ import annotations

import argparse

from drs.cli import add_settle_argument, run_main, with_settle
from drs.ingest import ingest
from drs.settings import Config


def body(config: Config, args: argparse.Namespace) -> int:
    ingest(with_settle(config, args))
    return 0


def main(argv: list[str] | None = None) -> int:
    return run_main(__doc__, body, argv, add_settle_argument)


if __name__ == "__main__":
    raise SystemExit(main())
