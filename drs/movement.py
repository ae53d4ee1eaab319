"""What changed since the last list: each client's movement, and who crossed the 0.5 line; pure.

A ranking is the list of active clients in rank order with their exit probabilities
(rounded as in risklist.csv). The run history keeps the newest `keep_rankings` of them
(drs/rankings.py records them, drs/history.py stores them); this module compares two.

Per client, against the previous ranking:
  previous_rank       its rank then (empty: it was not ranked then)
  rank_change         previous_rank - rank: positive = moved up toward rank 1 (more urgent), negative = moved down
  probability_change  exit probability now - then (6 decimals; positive = more likely to leave)

And for the page and the PDF (`what_changed`):
  new above 0.5   clients above 0.5 now who were not above 0.5 then (or were not ranked)
  risers          the clients whose exit probability rose the most (rank change beside it)
  left            clients above 0.5 then who are not now, with why: their latest row says they exited,
                  their probability fell to 0.5 or below (by how much), or they are no longer in the data
"""

from __future__ import annotations

import hashlib
import json
import zlib
from collections.abc import Collection, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from drs.formatting import when

if TYPE_CHECKING:
    import pandas as pd

PREVIOUS_RANK = "previous_rank"
RANK_CHANGE = "rank_change"
PROBABILITY_CHANGE = "probability_change"
COLUMNS = (PREVIOUS_RANK, RANK_CHANGE, PROBABILITY_CHANGE)
DECIMALS = 6
LISTED = 50  # of each kind, kept in changes.json (the counts are of all)

EXITED = "exited"
FELL_BELOW = "fell below"
GONE = "no longer in the data"

# corporation -> (rank, exit probability) of one ranking
Positions = dict[str, tuple[int, float]]


# ---- a ranking as stored: clients in rank order, probabilities as in risklist.csv -------------


def canonical(corporations: Sequence[str], probabilities: Sequence[float]) -> bytes:
    """The ranking as JSON text: [[corporation, probability], ...] in rank order, probabilities rounded."""
    pairs = [[str(c), round(float(p), DECIMALS)] for c, p in zip(corporations, probabilities, strict=True)]
    return json.dumps(pairs, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def digest(text: bytes) -> str:
    """What tells two rankings apart: equal lists (same clients, order and probabilities) have equal digests."""
    return hashlib.sha256(text).hexdigest()


def pack(text: bytes) -> bytes:
    return zlib.compress(text, 6)


def unpack(blob: bytes) -> Positions:
    pairs = json.loads(zlib.decompress(blob).decode("utf-8"))
    return {str(c): (rank, float(p)) for rank, (c, p) in enumerate(pairs, start=1)}


# ---- per client --------------------------------------------------------------------------


def movement(corporation: str, rank: int, probability: float, previous: Mapping[str, tuple[int, float]]) -> tuple[Any, Any, Any]:
    """(previous_rank, rank_change, probability_change) of one client; (None, None, None) when it was not ranked."""
    before = previous.get(corporation)
    if before is None:
        return None, None, None
    return before[0], before[0] - rank, round(round(probability, DECIMALS) - before[1], DECIMALS) + 0.0  # + 0.0: never -0.0


def with_movement(ranked: pd.DataFrame, id_column: str, probability: str, previous: Positions | None) -> pd.DataFrame:
    """`ranked` (a `rank` column, ids, probabilities) with the three movement columns appended; empty cells for a client
    not ranked before, every cell empty without a previous ranking."""
    known = previous or {}
    moves = [
        movement(str(c), int(r), float(p), known)
        for c, r, p in zip(ranked[id_column].tolist(), ranked["rank"].tolist(), ranked[probability].tolist(), strict=True)
    ]
    out = ranked.copy()
    for i, name in enumerate(COLUMNS):
        values = [m[i] for m in moves]
        out[name] = values
        out[name] = out[name].astype("Float64" if name == PROBABILITY_CHANGE else "Int64")
    return out


# ---- the summary for the page and the PDF ------------------------------------------------


def what_changed(
    current: Positions,
    previous: Positions,
    exited: Collection[str],
    in_data: Collection[str],
    threshold: float = 0.5,
    listed: int = LISTED,
) -> dict[str, Any]:
    """New above `threshold`, the biggest risers, and who left (was above `threshold`, is not now) with why.

    `exited`: corporations whose latest row in the data says they exited; `in_data`: every corporation in the data."""
    new_above: list[dict[str, Any]] = [
        {
            "corporation": c,
            "rank": r,
            "probability": p,
            "previous_rank": previous[c][0] if c in previous else None,
            "previous_probability": previous[c][1] if c in previous else None,
        }
        for c, (r, p) in current.items()
        if p > threshold and not (c in previous and previous[c][1] > threshold)
    ]
    new_above.sort(key=lambda row: row["rank"])
    risen = [(c, r, p, round(p - previous[c][1], DECIMALS)) for c, (r, p) in current.items() if c in previous and p > previous[c][1]]
    risen.sort(key=lambda x: (-x[3], x[1]))
    risers = [
        {
            "corporation": c,
            "rank": r,
            "probability": p,
            "previous_rank": previous[c][0],
            "rank_change": previous[c][0] - r,
            "probability_change": d,
        }
        for c, r, p, d in risen[:listed]
    ]
    left = [
        _left(c, r, p, current, exited, in_data)
        for c, (r, p) in previous.items()
        if p > threshold and not current.get(c, (0, 0.0))[1] > threshold
    ]
    left.sort(key=lambda row: row["previous_rank"])
    reasons = {why: sum(1 for row in left if row["why"] == why) for why in (EXITED, FELL_BELOW, GONE)}
    return {
        "threshold": threshold,
        "new_above": new_above[:listed],
        "new_above_total": len(new_above),
        "new_above_unranked": sum(1 for row in new_above if row["previous_rank"] is None),
        "risers": risers,
        "risers_total": len(risen),
        "left": left[:listed],
        "left_total": len(left),
        "left_reasons": reasons,
    }


def _left(
    corporation: str, rank: int, probability: float, current: Positions, exited: Collection[str], in_data: Collection[str]
) -> dict[str, Any]:
    now = current.get(corporation)
    row: dict[str, Any] = {"corporation": corporation, "previous_rank": rank, "previous_probability": probability}
    if now is not None:
        return {
            **row,
            "why": FELL_BELOW,
            "rank": now[0],
            "probability": now[1],
            "probability_change": round(now[1] - probability, DECIMALS),
        }
    return {**row, "why": EXITED if corporation in exited else GONE, "rank": None, "probability": None, "probability_change": None}


def reason_words(row: dict[str, Any], threshold: float = 0.5) -> str:
    """Why a client left the list, in words: 'exited (its latest row says exited 1)', 'fell to 0.5 or below: 0.620 -> 0.410 (-0.210)'."""
    if row["why"] == FELL_BELOW:
        return f"fell to {threshold:g} or below: {row['previous_probability']:.3f} -> {row['probability']:.3f} ({row['probability_change']:+.3f})"
    if row["why"] == EXITED:
        return "exited (its latest row says exited 1)"
    return "no longer in the data"


def since_words(changes: dict[str, Any]) -> str:
    """What the list is compared with, in one sentence (changes.json's `previous`, or its absence)."""
    previous = changes.get("previous")
    if not previous:
        return "No earlier ranking is kept, so there is nothing to compare with yet: the next list will show what changed."
    kinds = {"deployment": "after deploying", "reporting": "by reporting.py with", "ingestion": "on new data by"}
    how = kinds.get(str(previous.get("kind")), "with")
    return (
        f"Compared with the list of {when(previous.get('at'))}, ranked {how} model {previous.get('model_version')} "
        f"({previous.get('clients', 0):,} active clients then)."
    )
