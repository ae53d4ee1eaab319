"""The command-line contract every script shares: `--config`, `-v`, one clear line and an exit code, never a traceback.

A known failure (drs.errors: bad config, bad data, missing deployment, a stage that cannot go on, a file
that cannot be written) is one line on stderr and exit 1 (2 for the config); anything else is a bug and
keeps its traceback.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import sys
from collections.abc import Callable, Sequence

from drs.errors import ConfigError, DataError, DeploymentError, StageError
from drs.settings import DEFAULT_CONFIG, Config, load_config

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
EXIT_FAILURE = 1
EXIT_CONFIG = 2


def setup_logging(verbose: bool = False) -> None:
    logging.basicConfig(level=logging.DEBUG if verbose else logging.INFO, format=LOG_FORMAT, stream=sys.stderr, force=True)


def run_main(
    doc: str,
    body: Callable[[Config, argparse.Namespace], int | None],
    argv: Sequence[str] | None = None,
    add_arguments: Callable[[argparse.ArgumentParser], None] | None = None,
) -> int:
    """Parse arguments (the description is `doc`'s first line), load the config and run `body`; return the exit code."""
    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    parser.add_argument("--config", default=str(DEFAULT_CONFIG), help="config file (default: config.json beside the scripts)")
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug details")
    if add_arguments:
        add_arguments(parser)
    args = parser.parse_args(argv)
    setup_logging(args.verbose)
    log = logging.getLogger(parser.prog.removesuffix(".py"))
    try:
        config = load_config(args.config)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    try:
        code = body(config, args)
    except (StageError, DataError, DeploymentError, OSError) as exc:
        log.error("%s", exc)
        return EXIT_FAILURE
    return int(code or 0)


def add_settle_argument(parser: argparse.ArgumentParser) -> None:
    """`--settle-seconds`, for the commands that read the input folder (`make run` passes 0: the shipped files are seconds old)."""
    parser.add_argument(
        "--settle-seconds", type=seconds, metavar="S", help="read files modified less than S seconds ago too (default: settle_seconds)"
    )


def seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"must be a number of seconds >= 0, got {text!r}")
    return value


def with_settle(config: Config, args: argparse.Namespace) -> Config:
    return config if args.settle_seconds is None else dataclasses.replace(config, settle_seconds=args.settle_seconds)


def run_stage(doc: str, work: Callable[[Config], object], argv: Sequence[str] | None = None) -> int:
    """The command line of a stage that needs only --config and -v: run `work(config)`, exit 0."""

    def body(config: Config, args: argparse.Namespace) -> int:
        work(config)
        return 0

    return run_main(doc, body, argv)
