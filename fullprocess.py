"""Full process: the job cron runs every 10 minutes (cronjob.txt).

Notices new data, checks drift, retrains, gates, redeploys and reports; the
steps are stated in docs/architecture.md#the-full-process. A tick with nothing new ends in milliseconds.
Alerts go to the config's `notify` targets (docs/alerts.md).

    python fullprocess.py [--config FILE] [--force-deploy] [--api-url URL] [--settle-seconds S] [-v]
    python fullprocess.py --notify-test     send a test alert to every target; say which failed
"""

from __future__ import annotations

import argparse
import dataclasses

from drs.alerts.notify import send_test
from drs.core.cli import add_settle_argument, run_main, with_settle
from drs.core.settings import Config
from drs.pipeline.run import run


def arguments(parser: argparse.ArgumentParser) -> None:
    add_settle_argument(parser)
    parser.add_argument("--api-url", help="base URL of the API for the API calls (default: api_url in the config)")
    parser.add_argument(
        "--force-deploy",
        action="store_true",
        help="deploy a retrained candidate even if the promotion gate refuses it (files whose candidate was refused are judged again)",
    )
    parser.add_argument("--notify-test", action="store_true", help="send a test alert to every target, say which failed, run nothing")


def body(config: Config, args: argparse.Namespace) -> int:
    if args.notify_test:
        return send_test(config)
    if args.api_url:
        config = dataclasses.replace(config, api_url=args.api_url.rstrip("/"))
    return run(with_settle(config, args), args.force_deploy)


def main(argv: list[str] | None = None) -> int:
    return run_main(__doc__, body, argv, arguments, writes=False)  # drs/pipeline/run.py takes the lock, to record `skipped: locked`


if __name__ == "__main__":
    raise SystemExit(main())
