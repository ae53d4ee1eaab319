"""The command-line contract every script shares: `--config`, `-v`, one clear line and an exit code, never a traceback.

A known failure (drs.core.errors: bad config, bad data, missing deployment, a stage that cannot go on, a file
that cannot be written) is one line on stderr and exit 1 (2 for the config); anything else is a bug and
keeps its traceback.

A script that writes the ingested data, the models, production or the reports declares it (`writes`), and
runs under the run lock, the one fullprocess.py holds (drs/core/fileio.py run_lock): it waits up to `--wait-seconds`
for the holder, named in the log, then gives up with exit code 75 (EX_TEMPFAIL: try again later) having
changed nothing. The lock is taken here only, never by the stage functions the full process also calls.

More: docs/architecture.md (Principles; the full process) and docs/guarantees.md.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import sys
from collections.abc import Callable, Sequence

from drs.core.errors import ConfigError, DataError, DeploymentError, StageError
from drs.core.fileio import Holder, LockBusy, describe_holder, run_lock
from drs.core.settings import DEFAULT_CONFIG, Config, load_config

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
EXIT_FAILURE = 1
EXIT_CONFIG = 2
EXIT_LOCKED = 75  # sysexits.h EX_TEMPFAIL: the run lock stayed held; nothing was changed, try again later
LOCK_WAIT_SECONDS = 600.0  # one cron interval: a full process that retrains is done well within it
Writes = bool | Callable[[argparse.Namespace], bool]


def setup_logging(verbose: bool = False) -> None:
    logging.basicConfig(level=logging.DEBUG if verbose else logging.INFO, format=LOG_FORMAT, stream=sys.stderr, force=True)


def run_main(
    doc: str,
    body: Callable[[Config, argparse.Namespace], int | None],
    argv: Sequence[str] | None = None,
    add_arguments: Callable[[argparse.ArgumentParser], None] | None = None,
    *,
    writes: Writes,
) -> int:
    """Parse arguments (the description is `doc`'s first line), load the config and run `body`; return the exit code.

    `writes` (or `writes(args)`, for a script whose read-only options need no lock): run `body` under the run lock."""
    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    parser.add_argument("--config", default=str(DEFAULT_CONFIG), help="config file (default: config.json beside the scripts)")
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug details")
    if writes is not False:
        parser.add_argument(
            "--wait-seconds",
            type=seconds,
            default=LOCK_WAIT_SECONDS,
            metavar="S",
            help=f"wait at most S seconds for a full-process run (or another stage) to finish; 0: refuse at once (default {LOCK_WAIT_SECONDS:g})",
        )
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
        if writes is True or (writes is not False and writes(args)):
            code = locked(config, args, body, parser.prog, log)
        else:
            code = body(config, args)
    except LockBusy as busy:
        log.error(
            "%s holds the run lock %s; gave up after waiting %gs (--wait-seconds): nothing was changed, try again when it is done",
            describe_holder(busy.holder),
            busy.path,
            getattr(args, "wait_seconds", 0),
        )
        return EXIT_LOCKED
    except (StageError, DataError, DeploymentError, OSError) as exc:
        log.error("%s", exc)
        return EXIT_FAILURE
    return int(code or 0)


def locked(
    config: Config, args: argparse.Namespace, body: Callable[[Config, argparse.Namespace], int | None], script: str, log: logging.Logger
) -> int | None:
    """Run `body` holding the run lock (LockBusy if it stays held past --wait-seconds); say whom it waits for."""

    def waiting(holder: Holder | None) -> None:
        log.warning("waiting for %s to finish (at most %gs; --wait-seconds changes that)...", describe_holder(holder), args.wait_seconds)

    with run_lock(config.lock_file, args.wait_seconds, script, waiting):
        return body(config, args)


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
    """The command line of a stage that needs only --config, -v and --wait-seconds: run `work(config)` under the run lock, exit 0."""

    def body(config: Config, args: argparse.Namespace) -> int:
        work(config)
        return 0

    return run_main(doc, body, argv, writes=True)
