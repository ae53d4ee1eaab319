"""Backtest: replay the input folder's history with labels that arrive late, on a scratch copy (production untouched).

    python backtest.py [--config FILE] [--practice-config FILE] [--label-delay K] [--sample N] [--seed S] [--out DIR] [--scratch DIR]

From the practice pass's model (as `make run` starts), the input folder's files come in the order they arrived;
each batch's labels come K batches later, and N of its clients, drawn at random (seeded), are labelled at once.
Per batch: the deployed version, the label-free estimate of its F1, the labelled sample's F1 and interval, the
alarm, the realized F1 once the labels are in, and what the full process decided on them (drift, retraining,
gate), run for real on the scratch copy. Prints a table; writes backtest.json and backtest.png to the models
folder (--out). The logic is drs/pipeline/backtest.py; docs/drift.md reads the result.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from drs.core.cli import run_main
from drs.core.fileio import atomic_write_json
from drs.core.settings import Config, load_config
from drs.pipeline.backtest import Options, plot, replay, table


def arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--practice-config", help="the practice pass's config (default: practiceconfig.json beside --config)")
    parser.add_argument(
        "--label-delay",
        type=int,
        default=Options.label_delay,
        metavar="K",
        help="batches until a batch's labels come (default %(default)s)",
    )
    parser.add_argument(
        "--sample", type=int, default=Options.sample, metavar="N", help="clients of each batch labelled on arrival (default %(default)s)"
    )
    parser.add_argument("--seed", type=int, default=Options.seed, help="seed of the labelled samples (default %(default)s)")
    parser.add_argument("--out", type=Path, help="folder for backtest.json and backtest.png (default: the config's models folder)")
    parser.add_argument("--scratch", type=Path, help="keep the scratch copy in this new folder (default: a temporary folder, removed)")


def body(config: Config, args: argparse.Namespace) -> int:
    practice = load_config(args.practice_config or config.config_file.with_name("practiceconfig.json"))
    options = Options(args.label_delay, args.sample, args.seed)
    if args.scratch:
        result = replay(config, practice, args.scratch, options)
    else:
        with tempfile.TemporaryDirectory(prefix="drs-backtest-") as folder:
            result = replay(config, practice, Path(folder) / "scratch", options)
    out = args.out or config.output_model_folder
    atomic_write_json(out / "backtest.json", result)
    plot(result, out / "backtest.png")
    print("\n".join(table(result)))
    print(f"wrote {out / 'backtest.json'} and {out / 'backtest.png'} ({result['seconds']:.1f} s)")
    return 0


def main(argv: list[str] | None = None) -> int:
    # writes only its own two files (atomically), never what the pipeline reads: no run lock, cron is not held up
    return run_main(__doc__, body, argv, arguments, writes=False)


if __name__ == "__main__":
    raise SystemExit(main())
