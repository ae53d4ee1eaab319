"""What every stage script's command line has in common.

`run_main` gives each script the same `--config` option, logging set-up and
error handling: a known failure (bad config, bad data, missing deployment)
becomes one clear line on stderr and a non-zero exit, never a traceback.
"""
from __future__ import annotations

import argparse
import logging
import sys
from typing import Callable, Sequence

from drs.config import DEFAULT_CONFIG, Config, ConfigError, load_config

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
EXIT_FAILURE = 1
EXIT_CONFIG = 2


class StageError(Exception):
    """A stage could not do its work; the message says why, for the user."""


def parser(description: str) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--config", default=str(DEFAULT_CONFIG), help="config file (default: config.json beside the scripts)")
    p.add_argument("-v", "--verbose", action="store_true", help="log debug details")
    return p


def setup_logging(verbose: bool = False) -> None:
    logging.basicConfig(level=logging.DEBUG if verbose else logging.INFO, format=LOG_FORMAT, stream=sys.stderr, force=True)


def run_main(
    description: str,
    body: Callable[[Config, argparse.Namespace], int | None],
    argv: Sequence[str] | None = None,
    add_arguments: Callable[[argparse.ArgumentParser], None] | None = None,
) -> int:
    """Parse arguments, load the config and run `body`; return the exit code."""
    from drs.production import DeploymentError
    from drs.schema import DataError

    p = parser(description)
    if add_arguments:
        add_arguments(p)
    args = p.parse_args(argv)
    setup_logging(args.verbose)
    log = logging.getLogger(p.prog.removesuffix(".py"))
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


def run_stage(doc: str, work: Callable[[Config], object], argv: Sequence[str] | None = None) -> int:
    """The command line of a stage that needs only --config and -v: run `work(config)`, exit 0."""

    def body(config: Config, args: argparse.Namespace) -> int:
        work(config)
        return 0

    return run_main(doc.splitlines()[0], body, argv)
