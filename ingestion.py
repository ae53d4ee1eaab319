"""Ingestion: collect every CSV in the input folder, check it, de-duplicate, write the training set.

Writes finaldata.csv, ingestedfiles.txt and ingestionrecord.json to `output_folder_path`
(see drs/data/ingest.py). A file that fails its checks is named in the log and skipped; a file
modified less than settle_seconds ago is left for a later run; source files are only ever read.

With --from-database: only fetch the source database's new rows into the input folder as one
CSV (drs/data/dbsource.py), as each cron tick does first; --dry-run says how many rows would land.

    python ingestion.py [--config FILE] [--settle-seconds S] [--from-database [--dry-run]] [--wait-seconds S] [-v]

It runs under the full process's lock (waiting for a run in progress; docs/stages.md), but for --dry-run.
The course's merge_multiple_dataframe() does the same from Python, returning the data (drs/course.py).
"""

from __future__ import annotations

import argparse

from drs.core.cli import add_settle_argument, run_main, with_settle
from drs.core.errors import StageError
from drs.core.settings import Config
from drs.course import ingest_by_hand, merge_multiple_dataframe
from drs.data.dbsource import fetch_by_hand

__all__ = ["main", "merge_multiple_dataframe"]


def arguments(parser: argparse.ArgumentParser) -> None:
    add_settle_argument(parser)
    parser.add_argument("--from-database", action="store_true", help="fetch the source database's new rows into the input folder")
    parser.add_argument("--dry-run", action="store_true", help="with --from-database: say how many rows would land, write nothing")


def writes(args: argparse.Namespace) -> bool:
    return not (args.from_database and args.dry_run)


def body(config: Config, args: argparse.Namespace) -> int:
    if args.dry_run and not args.from_database:
        raise StageError("--dry-run applies to --from-database only")
    if args.from_database:
        print(fetch_by_hand(config, args.dry_run))
        return 0
    ingest_by_hand(with_settle(config, args))  # then the deployed model ranks the new data: every view shows that list
    return 0


def main(argv: list[str] | None = None) -> int:
    return run_main(__doc__, body, argv, arguments, writes=writes)


if __name__ == "__main__":
    raise SystemExit(main())
