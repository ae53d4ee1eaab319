"""Seeded generator of the data the project ships (and of larger sets for tests and benchmarks).

Generating process
------------------
Each client is a corporation with a unique 4-letter id. Its size
`number_of_employees` is log-normal (median about 60, 1 to 20,000). Its yearly
activity `lastyear_activity` grows with size (about 35 x employees^0.6, times
log-normal noise), and `lastmonth_activity` is a twelfth of the yearly activity
times a log-normal "engagement" factor. Whether it `exited` is a Bernoulli draw
with probability sigmoid(logit), where the logit is linear in the three raw
features, so the course's logistic regression is the right model class:

    logit = b0 + b_month * lastmonth/100 + b_year * lastyear/1000 + b_emp * employees/100

Two worlds share that process with different coefficients:

* the **older world** (practice data): clients who stopped using the service
  leave (strong negative b_month); size barely matters.
* the **changed world** (sourced data and test data): a competitor now courts
  large clients, so size pushes hard towards exit (b_emp +5.0 instead of
  -0.1), and a quiet month is an even stronger sign of leaving (b_month -6.0
  instead of -1.6). Activity is 20% lower overall, and fewer clients leave
  (about 35% instead of 60%).

Files written (seed 42 by default):

* practicedata/dataset1.csv, dataset2.csv: 300 and 280 rows of the older world,
  sharing 60 identical rows (ingestion drops them);
* sourceddata/clients_q1.csv .. clients_q4.csv: the company's 10,000 clients in
  the changed world, 2,500 a file, with the last 40 rows of each quarter sent
  again at the top of the next one (ingestion drops them);
* testdata/testdata.csv: 1,200 labelled clients of the changed world, other
  corporations than the 10,000, sampled with equal numbers of exits and stays
  (a balanced audit set, so F1 weighs both classes alike).

With `--with-values`, every file also gets `annual_contract_value` (for the config key `value_column`; docs/reports.md,
"What it is worth"): what the client pays a year, growing with its size, about 1,500 x employees^0.7 times log-normal
noise (sigma 0.6), rounded to 100 (median about 26,000, the largest some hundreds of thousands). It is drawn from a random
stream of its own (seed + 1), so the other columns are exactly those of the shipped files, which have no such column.
"""

from __future__ import annotations

import argparse
import logging
import string
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

COLUMNS = ["corporation", "lastmonth_activity", "lastyear_activity", "number_of_employees", "exited"]
log = logging.getLogger("generate_data")


@dataclass(frozen=True)
class World:
    b0: float
    b_month: float
    b_year: float
    b_emp: float
    activity_scale: float = 1.0


OLDER_WORLD = World(b0=1.2, b_month=-1.6, b_year=0.05, b_emp=-0.10, activity_scale=1.0)
CHANGED_WORLD = World(b0=-2.5, b_month=-6.0, b_year=0.0, b_emp=5.0, activity_scale=0.8)


def unique_ids(rng: np.random.Generator, n: int, exclude: set[str] | None = None) -> list[str]:
    """n distinct 4-letter ids, none of them in `exclude`."""
    exclude = exclude or set()
    letters = np.array(list(string.ascii_lowercase))
    ids: list[str] = []
    seen = set(exclude)
    while len(ids) < n:
        batch = ["".join(row) for row in rng.choice(letters, size=(2 * (n - len(ids)) + 16, 4))]
        for value in batch:
            if value not in seen:
                seen.add(value)
                ids.append(value)
                if len(ids) == n:
                    break
    return ids


def clients(rng: np.random.Generator, ids: list[str], world: World) -> pd.DataFrame:
    n = len(ids)
    employees = np.clip(np.round(rng.lognormal(np.log(60), 1.0, n)), 1, 20000).astype(np.int64)
    year = np.round(35 * employees**0.6 * rng.lognormal(0, 0.6, n) * world.activity_scale).astype(np.int64)
    month = np.round(year / 12 * rng.lognormal(0, 0.7, n)).astype(np.int64)
    logit = world.b0 + world.b_month * month / 100 + world.b_year * year / 1000 + world.b_emp * employees / 100
    exited = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(np.int64)
    return pd.DataFrame(
        {
            "corporation": ids,
            "lastmonth_activity": month,
            "lastyear_activity": year,
            "number_of_employees": employees,
            "exited": exited,
        },
        columns=COLUMNS,
    )


def balanced_sample(rng: np.random.Generator, world: World, n: int, exclude: set[str]) -> pd.DataFrame:
    """n clients, half exited, drawn from `world` by rejection (keeps the world's feature/label relation)."""
    pool = clients(rng, unique_ids(rng, 8 * n, exclude), world)
    half = n // 2
    exits = pool[pool.exited == 1].head(half)
    stays = pool[pool.exited == 0].head(n - half)
    if len(exits) < half or len(stays) < n - half:
        raise RuntimeError("pool too small for a balanced sample")
    return pd.concat([exits, stays]).sample(frac=1, random_state=int(rng.integers(1 << 31))).reset_index(drop=True)


def write_csv(frame: pd.DataFrame, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    frame.to_csv(path, index=False, lineterminator="\n")
    log.info("wrote %s (%d rows)", path, len(frame))


def shipped_data(seed: int = 42) -> dict[str, pd.DataFrame]:
    """The shipped data sets, keyed by path relative to the project."""
    rng = np.random.default_rng(seed)
    source_ids = unique_ids(rng, 10_000)
    population = clients(rng, source_ids, CHANGED_WORLD)
    quarters = [population.iloc[i * 2500 : (i + 1) * 2500] for i in range(4)]
    out: dict[str, pd.DataFrame] = {}
    for i, quarter in enumerate(quarters):
        resent = quarters[i - 1].tail(40) if i > 0 else quarter.iloc[0:0]
        out[f"sourceddata/clients_q{i + 1}.csv"] = pd.concat([resent, quarter]).reset_index(drop=True)

    older = clients(rng, list(rng.permutation(source_ids)[:520]), OLDER_WORLD)
    shared = older.iloc[:60]
    out["practicedata/dataset1.csv"] = pd.concat([older.iloc[60:300], shared]).reset_index(drop=True)
    out["practicedata/dataset2.csv"] = pd.concat([shared, older.iloc[300:520]]).reset_index(drop=True)

    out["testdata/testdata.csv"] = balanced_sample(rng, CHANGED_WORLD, 1200, set(source_ids))
    return out


VALUE_COLUMN = "annual_contract_value"


def with_contract_values(frames: dict[str, pd.DataFrame], seed: int) -> dict[str, pd.DataFrame]:
    """Each frame with an annual_contract_value column after `exited`, one value per corporation across the files."""
    rng = np.random.default_rng(seed + 1)
    values: dict[str, float] = {}
    out = {}
    for relative, frame in frames.items():
        for corporation, employees in zip(frame["corporation"], frame["number_of_employees"], strict=True):
            if corporation not in values:
                values[corporation] = float(np.round(1500 * employees**0.7 * rng.lognormal(0, 0.6), -2))
        out[relative] = frame.assign(**{VALUE_COLUMN: frame["corporation"].map(values).astype("int64")})
    return out


def large_set(rows: int, seed: int, world: World = CHANGED_WORLD) -> pd.DataFrame:
    """A large set for benchmarks; ids repeat (there are only 26**4 of them), rows are what matter."""
    rng = np.random.default_rng(seed)
    letters = np.array(list(string.ascii_lowercase))
    ids = ["".join(r) for r in rng.choice(letters, size=(rows, 4))]
    return clients(rng, ids, world)


def distinct_ids(rng: np.random.Generator, n: int, letters: int = 6) -> list[str]:
    """n distinct ids of `letters` lowercase letters, drawn at once (unique_ids' loop is slow for millions)."""
    codes = rng.choice(26**letters, size=n, replace=False)
    digits = (codes[:, None] // (26 ** np.arange(letters - 1, -1, -1))) % 26
    alphabet = np.array(list(string.ascii_lowercase), dtype="U1")
    return alphabet[digits].view(f"U{letters}").ravel().tolist()


def many_clients(count: int, seed: int, world: World = CHANGED_WORLD) -> pd.DataFrame:
    """`count` distinct corporations of `world` (6-letter ids), one row each: a company of a million clients or more."""
    rng = np.random.default_rng(seed)
    return clients(rng, distinct_ids(rng, count), world)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent.parent, help="project folder to write into")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--large", type=int, metavar="ROWS", help="instead, write ROWS rows of the changed world to --file")
    parser.add_argument("--file", type=Path, help="output file for --large")
    parser.add_argument("--with-values", action="store_true", help=f"add {VALUE_COLUMN} to every file (for value_column)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    if args.large:
        if not args.file:
            parser.error("--large needs --file")
        write_csv(large_set(args.large, args.seed), args.file)
        return 0
    frames = shipped_data(args.seed)
    for relative, frame in (with_contract_values(frames, args.seed) if args.with_values else frames).items():
        write_csv(frame, args.out / relative)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
