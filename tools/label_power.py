"""How many labels the concept-drift alarm needs: a measured power table (pasted into docs/drift.md).

    python tools/label_power.py [--repeats 400] [--seed 0]

The world is the shipped generator's (tools/generate_data.py): 200,000 clients of the changed world, and a model
fitted on 10,000 others of that world, so its probabilities hold and the label-free estimate (drs/model/estimate.py) is
right until the concept drifts. Concept drift of strength a: each client's exit follows the older world's rule with
chance a, the changed world's otherwise; a is set, by bisection, so that the model's F1 on the population falls by
each drop of the table below the estimate (computed exactly, from the true chances). For each drop and number of
labels n, `--repeats` times: n clients drawn at random, their outcomes drawn from the true chances, and
drs/labelsample.check's verdict against the estimate. A cell is the share of repeats that raised the alarm: at drop 0
the false-alarm rate, elsewhere the power. The last column is the fewest labels of the grid with power >= 80%.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from drs.data.schema import Schema  # noqa: E402
from drs.model import estimate, labelsample  # noqa: E402
from drs.model.estimator import feature_matrix, fit  # noqa: E402
from drs.model.metrics import counts_of, f1_from_counts  # noqa: E402
from tools.generate_data import CHANGED_WORLD, OLDER_WORLD, World, clients, large_set, unique_ids  # noqa: E402

DROPS = (0.0, 0.02, 0.05, 0.10, 0.15, 0.20, 0.30)
SIZES = (25, 50, 75, 100, 150, 200, 300, 400, 500, 750, 1000, 1500, 2000, 3000, 5000)
SHOWN = (50, 100, 200, 300, 500, 1000, 2000, 5000)
SETTINGS = {"C": 1.0, "solver": "liblinear", "random_state": 0, "max_iter": 100}
POPULATION = 200_000
POWER = 0.8


def chances(frame: object, world: World) -> np.ndarray:
    """Each client's exit chance under `world`'s rule (tools/generate_data.clients' logit)."""
    f = frame  # pandas frame of clients
    logit = (
        world.b0
        + world.b_month * f["lastmonth_activity"].to_numpy() / 100  # type: ignore[index]
        + world.b_year * f["lastyear_activity"].to_numpy() / 1000  # type: ignore[index]
        + world.b_emp * f["number_of_employees"].to_numpy() / 100  # type: ignore[index]
    )
    return 1 / (1 + np.exp(-logit))


def population_f1(p_true: np.ndarray, flagged: np.ndarray) -> float:
    return f1_from_counts(list(estimate.expected_counts(p_true, flagged)))


def strength_for(drop: float, estimated: float, changed: np.ndarray, older: np.ndarray, flagged: np.ndarray) -> float:
    """The concept-drift strength a at which the population F1 is `estimated - drop` (bisection; F1 falls with a)."""
    low, high = 0.0, 1.0
    for _ in range(40):
        middle = (low + high) / 2
        if population_f1((1 - middle) * changed + middle * older, flagged) > estimated - drop:
            low = middle
        else:
            high = middle
    return (low + high) / 2


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=400)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    rng = np.random.default_rng(args.seed)
    schema = Schema()
    train = large_set(10_000, seed=args.seed + 1)
    model = fit(train, schema, SETTINGS)
    people = clients(rng, unique_ids(rng, POPULATION), CHANGED_WORLD)
    x = feature_matrix(people, schema)
    flagged = model.predict(x) == 1
    calibration = estimate.production_calibration(train, schema, SETTINGS)
    estimated = estimate.of_model(model, x, calibration)["f1"]
    changed, older = chances(people, CHANGED_WORLD), chances(people, OLDER_WORLD)
    print(
        f"model calibration: {calibration['status']}; estimate {estimated:.4f}, F1 on the population without drift {population_f1(changed, flagged):.4f}"
    )
    print(f"exited without drift: {changed.mean():.1%}; repeats per cell: {args.repeats}; seed {args.seed}\n")
    power: dict[tuple[float, int], float] = {}
    for drop in DROPS:
        a = strength_for(drop, estimated, changed, older, flagged) if drop > 0 else 0.0
        p_true = (1 - a) * changed + a * older
        for n in SIZES:
            alarms = 0
            for _ in range(args.repeats):
                chosen = rng.choice(POPULATION, n, replace=False)
                outcomes = rng.random(n) < p_true[chosen]
                counts = [int(c) for c in counts_of(outcomes.astype(int), flagged[chosen].astype(int))]
                alarms += labelsample.check(counts, estimated, threshold=-1.0).get("below_estimate", False)  # no verdict: no alarm
            power[(drop, n)] = alarms / args.repeats
    print("| F1 drop below the estimate | " + " | ".join(f"n={n:,}" for n in SHOWN) + " | labels for 80% power |")
    print("| --- " * (len(SHOWN) + 2) + "|")
    for drop in DROPS:
        needed = next((f"{n:,}" for n in SIZES if power[(drop, n)] >= POWER), f"> {SIZES[-1]:,}")
        cells = " | ".join(f"{power[(drop, n)]:.0%}" for n in SHOWN)
        label = f"{drop:.2f}" if drop else "0 (no concept drift: false alarms)"
        print(f"| {label} | {cells} | {'-' if drop == 0 else needed} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
