"""The client managers' day, pure: today's call queue, the value it covers, the holdout split and whether calling helps.

- The queue (`build_queue`): from the current ranking (the risk store the page shows: one truth), the riskiest active
  clients not called in the last `recall_after_days`, `calls_per_day` of them; with a `value_column`, ranked by expected
  value at risk (probability x value) instead of probability alone.
- The holdout (`held_out`): with `holdout_fraction` > 0, a would-be-queued client whose stable hash of (seed, corporation)
  falls below the fraction is kept out of the queue as a control; the same client is held out on every request and worker.
- Coverage (`coverage`): the value the top N covers ranked by value at risk and ranked by probability alone, side by side.
- The comparison (`compare`): the exit rate of called clients against held-out ones, the difference with Newcombe's
  hybrid score interval (from Wilson intervals), a two-sided p-value and the clients per group the difference needs
  to be detected with 80% power at the 5% level. scipy (a dependency) gives the normal quantiles, imported when asked.

Standard library at import time (the web and the cron tick import it cheaply). See docs/reports.md#the-client-managers-day.
"""

from __future__ import annotations

import hashlib
import math
import sqlite3
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

LEVEL = 0.95  # of every interval here
POWER = 0.80  # of the sample-size figure


@dataclass(frozen=True)
class Candidate:
    """An active client of the ranking, as the queue needs it."""

    rank: int
    corporation: str
    probability: float
    reason: str
    rank_change: int | None


@dataclass(frozen=True)
class QueueEntry:
    """A client in today's queue: its place in the queue, its rank in the list, why, and what it is worth."""

    position: int
    rank: int
    corporation: str
    probability: float
    reason: str
    rank_change: int | None
    value: float | None  # None: no value_column configured
    value_at_risk: float | None

    def to_record(self) -> dict[str, object]:
        return {
            "position": self.position,
            "rank": self.rank,
            "corporation": self.corporation,
            "probability": round(self.probability, 6),
            "top_reason": self.reason,
            "rank_change": self.rank_change,
            "value": self.value,
            "value_at_risk": None if self.value_at_risk is None else round(self.value_at_risk, 2),
        }


@dataclass(frozen=True)
class Queue:
    """Today's queue and what was left out of it: held out as controls, called recently, values missing."""

    clients: list[QueueEntry]
    held_out: list[str]  # corporations held out of this queue (controls), in the order they would have been called
    skipped_called: int  # eligible by risk but called within recall_after_days
    ranked_by: str  # "value at risk" or "probability"
    missing_values: int  # active clients without a usable value (counted as 0)


def held_out(seed: int, corporation: str, fraction: float) -> bool:
    """Whether the client is in the control group: sha256 of "seed:corporation" read as a number in [0, 1), below the fraction."""
    if fraction <= 0:
        return False
    digest = hashlib.sha256(f"{seed}:{corporation}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64 < fraction


def value_at_risk(probability: float, value: float | None) -> float:
    return probability * (value or 0.0)


def build_queue(
    candidates: Iterable[Candidate],
    called: set[str],
    per_day: int,
    values: Mapping[str, float] | None = None,
    holdout_fraction: float = 0.0,
    seed: int = 0,
) -> Queue:
    """Today's queue from the ranking's `candidates` (rank order). Without `values`, the first `per_day` eligible clients;
    with them, every candidate ranked by probability x value (a client without a value counts 0; ties by rank)."""
    ordered = list(candidates)
    missing = 0
    if values is not None:
        missing = sum(1 for c in ordered if c.corporation not in values)
        ordered.sort(key=lambda c: (-value_at_risk(c.probability, values.get(c.corporation)), c.rank))
    chosen: list[QueueEntry] = []
    held: list[str] = []
    skipped = 0
    for c in ordered:
        if len(chosen) >= per_day:
            break
        if c.corporation in called:
            skipped += 1
            continue
        if held_out(seed, c.corporation, holdout_fraction):
            held.append(c.corporation)
            continue
        value = None if values is None else values.get(c.corporation, 0.0)
        worth = None if values is None else value_at_risk(c.probability, value)
        chosen.append(QueueEntry(len(chosen) + 1, c.rank, c.corporation, c.probability, c.reason, c.rank_change, value, worth))
    return Queue(chosen, held, skipped, "value at risk" if values is not None else "probability", missing)


@dataclass(frozen=True)
class Coverage:
    """The expected value at risk the top `count` clients cover, ranked by value at risk and by probability alone."""

    count: int
    by_value: float
    by_probability: float
    total: float  # of every active client

    @property
    def gain(self) -> float:
        return self.by_value - self.by_probability


def coverage(candidates: Sequence[Candidate], values: Mapping[str, float], count: int) -> Coverage:
    """Side by side: the value at risk of the top `count` by value at risk and of the top `count` by probability."""
    worth = [value_at_risk(c.probability, values.get(c.corporation)) for c in candidates]
    by_probability = [w for _, w in sorted(zip(candidates, worth, strict=True), key=lambda cw: (-cw[0].probability, cw[0].rank))]
    by_value = sorted(worth, reverse=True)
    return Coverage(count, sum(by_value[:count]), sum(by_probability[:count]), sum(worth))


# ---- whether calling helps -------------------------------------------------------------------


def _z(level: float) -> float:
    from scipy.stats import norm

    return float(norm.ppf(level))


def wilson(events: int, total: int, level: float = LEVEL) -> tuple[float, float]:
    """Wilson's score interval for a proportion events/total ((0, 1) for no clients)."""
    if total <= 0:
        return 0.0, 1.0
    z = _z(1 - (1 - level) / 2)
    p = events / total
    centre = (p + z * z / (2 * total)) / (1 + z * z / total)
    half = z / (1 + z * z / total) * math.sqrt(p * (1 - p) / total + z * z / (4 * total * total))
    return max(0.0, centre - half), min(1.0, centre + half)


def newcombe(e1: int, n1: int, e2: int, n2: int, level: float = LEVEL) -> tuple[float, float]:
    """Newcombe's hybrid score interval (his method 10) for p1 - p2, from the two Wilson intervals."""
    p1, p2 = e1 / n1, e2 / n2
    l1, u1 = wilson(e1, n1, level)
    l2, u2 = wilson(e2, n2, level)
    d = p1 - p2
    return d - math.sqrt((p1 - l1) ** 2 + (u2 - p2) ** 2), d + math.sqrt((u1 - p1) ** 2 + (p2 - l2) ** 2)


def sample_size(p1: float, p2: float, level: float = LEVEL, power: float = POWER) -> int | None:
    """Clients per group a two-sided two-proportion z test at 1 - level needs to detect p1 vs p2 with `power`
    (the classic pooled formula); None when the two are equal (no difference to detect)."""
    if p1 == p2:
        return None
    za, zb = _z(1 - (1 - level) / 2), _z(power)
    pbar = (p1 + p2) / 2
    n = (za * math.sqrt(2 * pbar * (1 - pbar)) + zb * math.sqrt(p1 * (1 - p1) + p2 * (1 - p2))) ** 2 / (p1 - p2) ** 2
    return math.ceil(n)


@dataclass(frozen=True)
class Comparison:
    """Exit rates of the called and the held-out clients whose outcome is known, and what their difference means."""

    called: int
    called_exits: int
    held: int
    held_exits: int
    called_rate: float | None
    held_rate: float | None
    called_interval: tuple[float, float] | None
    held_interval: tuple[float, float] | None
    difference: float | None  # called - held: negative when calling keeps clients
    interval: tuple[float, float] | None
    p_value: float | None
    needed_per_group: int | None  # for the observed rates, at 80% power and the 5% level
    enough: bool  # both groups at least needed_per_group

    def to_record(self) -> dict[str, object]:
        return {
            "called": self.called,
            "called_exits": self.called_exits,
            "held_out": self.held,
            "held_out_exits": self.held_exits,
            "called_rate": self.called_rate,
            "held_out_rate": self.held_rate,
            "difference": self.difference,
            "interval": list(self.interval) if self.interval else None,
            "p_value": self.p_value,
            "needed_per_group": self.needed_per_group,
            "enough": self.enough,
        }


def compare(called_exits: int, called: int, held_exits: int, held: int) -> Comparison:
    """The comparison of exit rates, called against held out (counts of clients whose outcome is known)."""
    c_rate = called_exits / called if called else None
    h_rate = held_exits / held if held else None
    if c_rate is None or h_rate is None:
        return Comparison(
            called,
            called_exits,
            held,
            held_exits,
            c_rate,
            h_rate,
            wilson(called_exits, called) if called else None,
            wilson(held_exits, held) if held else None,
            None,
            None,
            None,
            None,
            False,
        )
    pooled = (called_exits + held_exits) / (called + held)
    se = math.sqrt(pooled * (1 - pooled) * (1 / called + 1 / held))
    from scipy.stats import norm

    p_value = float(2 * norm.sf(abs(c_rate - h_rate) / se)) if se > 0 else 1.0
    needed = sample_size(c_rate, h_rate)
    return Comparison(
        called,
        called_exits,
        held,
        held_exits,
        c_rate,
        h_rate,
        wilson(called_exits, called),
        wilson(held_exits, held),
        c_rate - h_rate,
        newcombe(called_exits, called, held_exits, held),
        p_value,
        needed,
        needed is not None and min(called, held) >= needed,
    )


def outcomes(clients: Mapping[str, str | None], later_label: Mapping[str, int | None]) -> tuple[int, int]:
    """(exits, clients with a known outcome) among `clients` (corporation -> the newest file when it was called or held
    out): its outcome is the label of its newest row in a file that came later (`later_label`, read by `labels_after`)."""
    known = exits = 0
    for c in clients:
        label = later_label.get(c)
        if label is None:
            continue
        known += 1
        exits += int(label == 1)
    return exits, known


def labels_after(con: sqlite3.Connection, clients: Mapping[str, str | None], target: str) -> dict[str, int | None]:
    """Each client's newest label from a file that arrived after the one named (clientrows.sqlite, drs/reports/riskstore.py;
    None: no such row or no label yet). A client named with no file (none ingested then) takes any file's label."""
    positions = {name: position for position, name in con.execute("SELECT position, name FROM files")}
    found: dict[str, int | None] = {}
    column = '"' + target.replace('"', '""') + '"'
    for corporation, after in clients.items():
        since = positions.get(after, 0) if after is not None else 0
        row = con.execute(
            f"SELECT {column} FROM client_rows WHERE corporation = ? AND file > ? ORDER BY seq DESC LIMIT 1", (corporation, since)
        ).fetchone()
        found[corporation] = None if row is None or row[0] is None else int(row[0])
    return found


@dataclass(frozen=True)
class Summary:
    """What the PDF shows of the day (drs/reports/pdf.py): the value the top N cover both ways, and the holdout comparison."""

    count: int  # calls_per_day
    value_column: str | None
    coverage: Coverage | None
    missing_values: int
    holdout_fraction: float
    comparison: Comparison | None
