"""A summary of a version's training data, computed once at deployment, so that a drift check reads only the new rows.

`trainingreference.npz` (in the version folder, checksummed like its other files) holds:

- `row_hashes`: the sorted distinct 64-bit hashes of the training rows (drs.data.rowstore's hash), to find
  which new rows the deployed model was trained on. A new row counts as trained on when its hash is in
  the set: no values are compared, so two different rows with equal hashes would be taken for one. The
  chance of any such pair in a run is about new rows x training rows / 2^64 (5e-9 for 10,000 new rows
  against 10 million), and its cost one row left out of a drift check.
- per feature, its distinct values and their counts: the exact empirical distribution, from which the KS
  statistic is exact (drs.model.drift.ks_from_counts). A feature with more than MAX_DISTINCT distinct values
  keeps instead a uniform random sample of SAMPLE_SIZE values (seeded): the statistic then differs from
  the full reference's by about 1.36/sqrt(SAMPLE_SIZE) = 0.003 at most (95%), and the p-value is that of
  a 200,000-value reference, larger (more cautious) than the full reference's would be.
- per feature, the PSI bin edges (deciles of all training values) and the training values' counts per bin:
  PSI is exact whatever the size.

The summary depends on the polars version (its row hash) and on the columns; a summary that does not
match them, or a version deployed before summaries existed, is not used: the drift checks then read
`trainingdata.csv` as before.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypedDict

import numpy as np
import polars as pl

from drs.core.fileio import atomic_output
from drs.data.readers import to_polars
from drs.data.rowstore import HASH_SEED, row_hashes
from drs.history.modelresults import FeatureDriftRow
from drs.model import drift

FORMAT = 1
MAX_DISTINCT = 1_000_000
SAMPLE_SIZE = 200_000
SAMPLE_SEED = 20261125
EXPAND_LIMIT = 200_000  # up to this many training rows KS runs scipy's ks_2samp on the expanded reference


class Identity(TypedDict):
    """What a summary was built with (`identity`): one that does not match the data's is not used."""

    format: int
    polars: str
    seed: int
    columns: list[str]
    features: list[str]


class Meta(Identity):
    """The summary's `meta` (stored as JSON inside the .npz)."""

    rows: int
    ks_reference: dict[str, str]  # per feature: "exact" or "sample of N"


@dataclass(frozen=True)
class Reference:
    meta: Meta
    arrays: dict[str, np.ndarray]

    @property
    def rows(self) -> int:
        return int(self.meta["rows"])

    def known(self, frame: Any) -> np.ndarray:
        """Which rows of `frame` (pandas or polars, checked) the model was trained on, by row hash."""
        table = (frame if isinstance(frame, pl.DataFrame) else to_polars(frame)).select(self.meta["columns"])
        hashes, known = row_hashes(table).to_numpy(), self.arrays["row_hashes"]
        if hashes.size == 0 or known.size == 0:
            return np.zeros(hashes.size, dtype=bool)
        at = np.minimum(np.searchsorted(known, hashes), known.size - 1)
        seen: np.ndarray = known[at] == hashes
        return seen

    def feature_drift(self, current: Any, features: Sequence[str]) -> list[FeatureDriftRow]:
        """drs.model.drift.feature_drift's rows, from the summary instead of the training data."""
        rows: list[FeatureDriftRow] = []
        for name in features:
            a, values = self.arrays, current[name]
            ks = drift.ks_from_counts(a[f"{name}.values"], a[f"{name}.counts"], values, EXPAND_LIMIT)
            index = drift.psi_from_counts(a[f"{name}.psi_counts"], drift.bin_counts(a[f"{name}.psi_edges"], values))
            rows.append({**drift.drift_row(name, self.rows, len(values), ks, index), "ks_reference": self.meta["ks_reference"][name]})
        return rows


def identity(columns: Sequence[str], features: Sequence[str]) -> Identity:
    """What a summary must have been built with to be used."""
    return {"format": FORMAT, "polars": pl.__version__, "seed": HASH_SEED, "columns": list(columns), "features": list(features)}


def build(frame: pl.DataFrame, columns: Sequence[str], features: Sequence[str]) -> Reference:
    """Summarize checked training data (all of it is read once, here)."""
    hashes = np.sort(row_hashes(frame.select(list(columns))).to_numpy())  # np.unique on uint64 takes seconds at 10M (numpy 2.4)
    arrays: dict[str, np.ndarray] = {"row_hashes": hashes[np.concatenate([[True], hashes[1:] != hashes[:-1]])]}
    described: dict[str, str] = {}
    for name in features:
        values = frame[name].cast(pl.Float64).to_numpy()
        distinct, counts = np.unique(values, return_counts=True)
        described[name] = "exact"
        if distinct.size > MAX_DISTINCT:
            sample = np.random.default_rng(SAMPLE_SEED).choice(values, SAMPLE_SIZE, replace=False)
            distinct, counts = np.unique(sample, return_counts=True)
            described[name] = f"sample of {SAMPLE_SIZE}"
        edges = drift.psi_edges(values)
        arrays.update(
            {
                f"{name}.values": distinct,
                f"{name}.counts": counts,
                f"{name}.psi_edges": edges,
                f"{name}.psi_counts": drift.bin_counts(edges, values),
            }
        )
    meta: Meta = {**identity(columns, features), "rows": frame.height, "ks_reference": described}
    return Reference(meta, arrays)


def write(path: Path, summary: Reference) -> None:
    with atomic_output(Path(path)) as tmp, open(tmp, "wb") as handle:
        arrays: dict[str, Any] = {"meta": np.array(json.dumps(summary.meta, sort_keys=True)), **summary.arrays}
        np.savez(handle, **arrays)


def read(path: Path, columns: Sequence[str], features: Sequence[str]) -> Reference | None:
    """The summary at `path`, or None when it was built for other columns, features or another polars version."""
    with np.load(path, allow_pickle=False) as stored:
        meta: dict[str, Any] = json.loads(str(stored["meta"][()]))  # a stored blob, checked against the identity below
        if {k: meta.get(k) for k in ("format", "polars", "seed", "columns", "features")} != identity(columns, features):
            return None
        summary: Meta = {
            "format": meta["format"],
            "polars": meta["polars"],
            "seed": meta["seed"],
            "columns": meta["columns"],
            "features": meta["features"],
            "rows": int(meta["rows"]),
            "ks_reference": dict(meta["ks_reference"]),
        }
        return Reference(summary, {key: stored[key] for key in stored.files if key != "meta"})
