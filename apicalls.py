"""API calls: call every endpoint of the running API and keep what it answered.

Writes apireturns.txt (readable) and apireturns.json (machine-readable) to
`output_model_path` when every call got a 2xx JSON answer; see drs/web/apicalls.py.
The API's address comes from the config (`api_url`) unless `--url` is given.
The token is DRS_TOKEN, else the pipeline's own (docs/security.md). Exits 1 when
any call failed, with one line per failed call; the two files are then left as
they were and the attempt goes to apireturns.failed.json.
"""

from __future__ import annotations

import argparse

from drs.core.cli import EXIT_FAILURE, run_main
from drs.core.settings import Config
from drs.web import apicalls


def _arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--url", help="base URL of the API (default: api_url in the config)")


def _body(config: Config, args: argparse.Namespace) -> int:
    return EXIT_FAILURE if apicalls.run(config, args.url).failures else 0


def main(argv: list[str] | None = None) -> int:
    return run_main(__doc__, _body, argv, _arguments, writes=True)


if __name__ == "__main__":
    raise SystemExit(main())
