"""Deployment: put model, score and ingestion record into production as one set.

    python deployment.py             deploy what is in the models folder (refused if it scores below the deployed model)
    python deployment.py --force     deploy it even so
    python deployment.py --list      list versions and kept (not promoted) candidates
    python deployment.py --current   print the deployed version (nothing when none is)
    python deployment.py --rollback [VERSION]   make an earlier version current

Each deployment is a new immutable version folder under `prod_deployment_path`;
`current` is switched to it in one rename (see drs/pipeline/deploy.py, drs/production/versions.py). Deploying and
rolling back wait for a full-process run in progress (the run lock; --wait-seconds S, 0 refuses at once).
The course's store_model_into_pickle() deploys as `python deployment.py` does (drs/course.py).
"""

from __future__ import annotations

import argparse

from drs.core.cli import run_main
from drs.core.errors import StageError
from drs.core.settings import Config
from drs.course import store_model_into_pickle
from drs.pipeline.deploy import current_label, deploy_or_roll_back, format_versions

__all__ = ["main", "store_model_into_pickle"]


def arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--list", action="store_true", help="list deployed versions (* marks the current one)")
    group.add_argument("--current", action="store_true", help="print the deployed version (nothing when none is deployed)")
    group.add_argument(
        "--rollback", nargs="?", const="previous", metavar="VERSION", help="make VERSION (default: the previous one) current"
    )
    parser.add_argument("--force", action="store_true", help="deploy even if the new set scores below the deployed model")


def body(config: Config, args: argparse.Namespace) -> int:
    if args.force and (args.list or args.current or args.rollback):
        raise StageError("--force applies to deploying only")
    if args.list:
        print(format_versions(config))
    elif args.current:
        label = current_label(config)
        if label:
            print(label)
    else:
        deploy_or_roll_back(config, args.rollback, args.force)
    return 0


def main(argv: list[str] | None = None) -> int:
    return run_main(__doc__, body, argv, arguments, writes=lambda args: not (args.list or args.current))


if __name__ == "__main__":
    raise SystemExit(main())
