"""What changed since the last list: each client's movement, and who crossed the 0.5 line; pure.

A ranking is the list of active clients in rank order with their exit probabilities
(rounded as in risklist.csv). The run history keeps the newest `keep_rankings` of them
(drs/reports/rankings.py records them, drs/history/runs.py stores them); this module compares two.

Per client, against the previous ranking:
  previous_rank       its rank then (empty: it was not ranked then)
  rank_change         previous_rank - rank: positive = moved up toward rank 1 (more urgent), negative = moved down
  probability_change  exit probability now - then (6 decimals; positive = more likely to leave)

And for the page and the PDF (`what_changed`):
  new above 0.5   clients above 0.5 now who were not above 0.5 then (or were not ranked)
  risers          the clients whose exit probability rose the most (rank change beside it)
  left            clients above 0.5 then who are not now, with why: their latest row says they exited,
                  their probability fell to 0.5 or below (by how much), or they are no longer in the data

What the page and the PDF show of it: docs/reports.md (What changed since the last list).
"""

from __future__ import annotations

import hashlib
import json
import zlib
from collections.abc import Collection, Mapping, Sequence
from typing import Any, Required, TypedDict, cast

import numpy as np
import polars as pl

from drs.core.formatting import when

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
ID, RANK, PROBABILITY = "corporation", "rank", "probability"  # the columns of a ranking as a frame (`positions`)


# ---- a ranking as stored: clients in rank order, probabilities as in risklist.csv -------------


def canonical(corporations: Sequence[str], probabilities: Sequence[float]) -> bytes:
    """The ranking as JSON text: [[corporation, probability], ...] in rank order, probabilities rounded."""
    rounded = np.round(np.asarray(probabilities, dtype="float64"), DECIMALS).tolist()  # idempotent: the list comes rounded
    pairs = list(zip(map(str, corporations), rounded, strict=True))  # tuples are JSON arrays
    return json.dumps(pairs, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def digest(text: bytes) -> str:
    """What tells two rankings apart: equal lists (same clients, order and probabilities) have equal digests."""
    return hashlib.sha256(text).hexdigest()


def pack(text: bytes) -> bytes:
    return zlib.compress(text, 1)  # level 1: a quarter of level 6's time for 16% more bytes (a million clients: 0.1 s, 5 MB)


def _pairs(blob: bytes) -> list[list[Any]]:
    found: list[list[Any]] = json.loads(zlib.decompress(blob).decode("utf-8"))
    return found


def unpack(blob: bytes) -> Positions:
    return {str(c): (rank, float(p)) for rank, (c, p) in enumerate(_pairs(blob), start=1)}


def positions(ranking: bytes | pl.DataFrame | Mapping[str, tuple[int, float]]) -> pl.DataFrame:
    """A ranking (packed, as Positions, or already a frame) as a frame: corporation, rank, probability, in rank order."""
    ids: list[str]
    ranks: Sequence[int]
    probabilities: list[float]
    if isinstance(ranking, pl.DataFrame):
        return ranking
    if isinstance(ranking, (bytes, bytearray)):
        pairs = _pairs(bytes(ranking))
        ids, ranks, probabilities = [str(c) for c, _ in pairs], range(1, len(pairs) + 1), [float(p) for _, p in pairs]
    else:
        ordered = sorted(ranking.items(), key=lambda item: item[1][0])
        ids, ranks, probabilities = [c for c, _ in ordered], [r for _, (r, _) in ordered], [p for _, (_, p) in ordered]
    return pl.DataFrame(
        {
            ID: pl.Series(ids, dtype=pl.String),
            RANK: pl.Series(ranks, dtype=pl.Int64),
            PROBABILITY: pl.Series(probabilities, dtype=pl.Float64),
        }
    )


class Header(TypedDict):
    """A kept ranking as answers and files name it (changes.json's `previous`; drs/reports/rankings.py `header`)."""

    id: int
    at: str
    kind: str
    model_version: str
    source: str
    clients: int


class NewAbove(TypedDict):
    """A client above the threshold now that was not then (`previous_rank` None: not ranked then)."""

    corporation: str
    rank: int
    probability: float
    previous_rank: int | None
    previous_probability: float | None


class Riser(TypedDict):
    """A client whose exit probability rose."""

    corporation: str
    rank: int
    probability: float
    previous_rank: int
    rank_change: int
    probability_change: float


class Left(TypedDict):
    """A client above the threshold then and not now, with why (`rank` None: not ranked now)."""

    corporation: str
    previous_rank: int
    previous_probability: float
    why: str
    rank: int | None
    probability: float | None
    probability_change: float | None


class Movement(TypedDict, total=False):
    """What changed since the previous ranking (`what_changed` gives every key; a list without one has none)."""

    threshold: float
    new_above: list[NewAbove]
    new_above_total: int
    new_above_unranked: int
    risers: list[Riser]
    risers_total: int
    left: list[Left]
    left_total: int
    left_reasons: dict[str, int]  # why -> how many


class Changes(Movement, total=False):
    """changes.json: the ranking compared with (None: none kept), what changed, and which ranking this is."""

    previous: Required[Header | None]
    ranking_id: int | None
    ranked_at: str
    kind: str
    source: str
    model_version: str


# ---- per client --------------------------------------------------------------------------


def with_movement(
    ranked: pl.DataFrame, id_column: str, probability: str, previous: pl.DataFrame | Mapping[str, tuple[int, float]] | None
) -> pl.DataFrame:
    """`ranked` (a `rank` column, ids, probabilities) with the three movement columns appended: the client's rank then,
    previous rank - rank (positive: moved up), and probability now - then (rounded; never -0.0); empty cells for a client
    not ranked before, every cell empty without a previous ranking."""
    before = positions(previous if previous is not None else {})
    before = before.select(pl.col(ID).alias(id_column), pl.col(RANK).alias("__rank"), pl.col(PROBABILITY).alias("__probability"))
    joined = ranked.join(before, on=id_column, how="left", maintain_order="left")
    return joined.with_columns(
        pl.col("__rank").alias(PREVIOUS_RANK),
        (pl.col("__rank") - pl.col("rank")).alias(RANK_CHANGE),
        ((pl.col(probability).round(DECIMALS) - pl.col("__probability")).round(DECIMALS) + 0.0).alias(PROBABILITY_CHANGE),
    ).drop("__rank", "__probability")


# ---- the summary for the page and the PDF ------------------------------------------------


def _ids(found: Collection[str] | pl.Series) -> pl.Series:
    return found.cast(pl.String) if isinstance(found, pl.Series) else pl.Series(list(found), dtype=pl.String)


def what_changed(
    current: pl.DataFrame | Mapping[str, tuple[int, float]],
    previous: pl.DataFrame | Mapping[str, tuple[int, float]],
    exited: Collection[str] | pl.Series,
    threshold: float = 0.5,
    listed: int = LISTED,
) -> Movement:
    """New above `threshold`, the biggest risers, and who left (was above `threshold`, is not now) with why.

    `current`, `previous`: rankings (`positions` frames, or Positions); `exited`: corporations whose latest row in the
    data says they exited (one that left the list, is not ranked and did not exit is no longer in the data)."""
    now = current if isinstance(current, pl.DataFrame) else positions(current)
    then = previous if isinstance(previous, pl.DataFrame) else positions(previous)
    then = then.rename({RANK: "previous_rank", PROBABILITY: "previous_probability"})
    both = now.join(then, on=ID, how="left", maintain_order="left")
    above_then = pl.col("previous_probability").fill_null(-1.0) > threshold
    new_above = both.filter((pl.col(PROBABILITY) > threshold) & ~above_then).sort(RANK)
    risen = (
        both.filter(pl.col("previous_probability").is_not_null() & (pl.col(PROBABILITY) > pl.col("previous_probability")))
        .with_columns(
            (pl.col("previous_rank") - pl.col(RANK)).alias("rank_change"),
            (pl.col(PROBABILITY) - pl.col("previous_probability")).round(DECIMALS).alias("probability_change"),
        )
        .sort(["probability_change", RANK], descending=[True, False])
    )
    was_above = then.filter(pl.col("previous_probability") > threshold)
    left = (
        was_above.join(now, on=ID, how="left", maintain_order="left")
        .filter(~(pl.col(PROBABILITY).fill_null(-1.0) > threshold))
        .with_columns(
            pl.when(pl.col(RANK).is_not_null())
            .then(pl.lit(FELL_BELOW))
            .when(pl.col(ID).is_in(_ids(exited).implode()))
            .then(pl.lit(EXITED))
            .otherwise(pl.lit(GONE))
            .alias("why"),
            (pl.col(PROBABILITY) - pl.col("previous_probability")).round(DECIMALS).alias("probability_change"),
        )
        .sort("previous_rank")
    )
    reasons = dict.fromkeys((EXITED, FELL_BELOW, GONE), 0) | dict(left.group_by("why").len().iter_rows())
    new_rows = new_above.select(ID, RANK, PROBABILITY, "previous_rank", "previous_probability").head(listed)
    riser_columns = (ID, RANK, PROBABILITY, "previous_rank", "rank_change", "probability_change")
    left_columns = (ID, "previous_rank", "previous_probability", "why", RANK, PROBABILITY, "probability_change")
    return {
        "threshold": threshold,
        "new_above": cast(list[NewAbove], new_rows.to_dicts()),  # the columns selected above
        "new_above_total": new_above.height,
        "new_above_unranked": int(new_above["previous_rank"].is_null().sum()),
        "risers": cast(list[Riser], risen.select(riser_columns).head(listed).to_dicts()),
        "risers_total": risen.height,
        "left": cast(list[Left], left.select(left_columns).head(listed).to_dicts()),
        "left_total": left.height,
        "left_reasons": reasons,
    }


def reason_words(row: Left, threshold: float = 0.5) -> str:
    """Why a client left the list, in words: 'exited (its latest row says exited 1)', 'fell to 0.5 or below: 0.620 -> 0.410 (-0.210)'."""
    if row["why"] == FELL_BELOW:
        return f"fell to {threshold:g} or below: {row['previous_probability']:.3f} -> {row['probability']:.3f} ({row['probability_change']:+.3f})"
    if row["why"] == EXITED:
        return "exited (its latest row says exited 1)"
    return "no longer in the data"


def since_words(changes: Changes) -> str:
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
