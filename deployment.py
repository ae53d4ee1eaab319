"""Deployment: put model, score and ingestion record into production as one set.

    python deployment.py             deploy what is in the models folder
    python deployment.py --list      list versions and kept (not promoted) candidates
    python deployment.py --rollback [VERSION]   make an earlier version current

Each deployment is a new immutable version folder under `prod_deployment_path`;
`current` is switched to it in one rename (see drs/deploy.py, drs/production.py).
"""

from __future__ import annotations

import argparse

from drs.cli import run_main
from drs.deploy import deploy_or_roll_back, format_versions
from drs.settings import Config


def arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--list", action="store_true", help="list deployed versions (* marks the current one)")
    group.add_argument(
        "--rollback", nargs="?", const="previous", metavar="VERSION", help="make VERSION (default: the previous one) current"
    )


def body(config: Config, args: argparse.Namespace) -> int:
    if args.list:
        print(format_versions(config))
    else:
        deploy_or_roll_back(config, args.rollback)
    return 0


def main(argv: list[str] | None = None) -> int:
    return run_main(__doc__, body, argv, arguments)


if __name__ == "__main__":
    raise SystemExit(main())
