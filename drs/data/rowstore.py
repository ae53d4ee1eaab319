"""The ingested rows in a columnar form beside finaldata.csv, so that a run's cost follows the new data.

`output_folder_path/finaldata.store/` holds:

  part-<generation>-<n>.parquet  the rows of finaldata.csv, in order, one part per ingestion that
                                 added rows, each row with its 64-bit hash (column `__row_hash`)
                                 and the name of the file it came from (`__file`)
  manifest.json                  which parts make up finaldata.csv, the file records they came from,
                                 and the size and mtime of the finaldata.csv they match;
                                 written last, so it is the commit of an ingestion

It is a cache, never the truth: when anything does not match (finaldata.csv changed by hand, another
input folder, another polars version, an ingested file changed or removed) ingestion rebuilds it from
the source files. De-duplication is exact: hashes only pick the candidate rows, which are then
compared value by value, so a hash collision can never drop a row. The manifest's shape is `Manifest`
(drs/data/ingest.py writes it through `commit`); docs/performance.md#the-row-store tells why the store exists.
"""

from __future__ import annotations

import contextlib
import json
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypedDict, cast

import numpy as np
import polars as pl

from drs.core.fileio import atomic_output, atomic_write_json
from drs.core.layout import ROWSTORE_DIR, ROWSTORE_MANIFEST
from drs.data.readers import to_polars

if TYPE_CHECKING:
    from drs.data.intake import FileEntry

HASH_COLUMN = "__row_hash"
FILE_COLUMN = "__file"
HASH_SEED = 20261125
FORMAT = 2  # 2: each row's file name


class Identity(TypedDict):
    """What a store was built with (`identity`): it is reused only by an ingestion that would build the same."""

    format: int
    polars: str
    seed: int
    input_folder: str
    columns: list[str]


class Part(TypedDict):
    """One Parquet part of the store: its file name in the store's folder and its rows."""

    file: str
    rows: int


class Stamp(TypedDict):
    """A file's size and modification time (`file_stamp`)."""

    size: int
    mtime_ns: int


class Manifest(TypedDict):
    """manifest.json: which parts make up finaldata.csv, the file records they came from, the finaldata.csv they match."""

    identity: Identity
    generation: str
    parts: list[Part]
    rows: int
    files: list[FileEntry]
    finaldata: Stamp | None


def folder(output_folder: Path) -> Path:
    return Path(output_folder) / ROWSTORE_DIR


def row_hashes(frame: pl.DataFrame) -> pl.Series:
    return frame.hash_rows(seed=HASH_SEED).alias(HASH_COLUMN)


def _exact_first(frame: pl.DataFrame, rows: np.ndarray) -> np.ndarray:
    """Of `rows` (ascending positions), those whose values did not occur at an earlier position among them."""
    subset = frame[rows].with_columns(pl.Series("__pos", rows))
    return subset.unique(subset=frame.columns, keep="first", maintain_order=True)["__pos"].to_numpy()


def keep_first(frame: pl.DataFrame, hashes: pl.Series) -> np.ndarray:
    """Boolean mask of the rows to keep: the first of each group of exactly equal rows.

    A row whose hash is unique cannot equal another row; rows sharing a hash
    (duplicates, and any collision) are decided by comparing their values.
    """
    ordered = np.sort(hashes.to_numpy())  # a sort finds repeated hashes faster than a hash table here
    repeated = np.unique(ordered[1:][ordered[1:] == ordered[:-1]])
    shared = hashes.is_in(pl.Series(repeated).implode()).to_numpy() if len(repeated) else np.zeros(len(hashes), bool)
    keep = ~shared
    candidates = np.flatnonzero(shared)
    if len(candidates):
        keep[_exact_first(frame, candidates)] = True
    return keep


def drop_seen(frame: pl.DataFrame, hashes: pl.Series, keep: np.ndarray, parts: Sequence[Path]) -> np.ndarray:
    """Also drop rows equal to a row already in the store; reads only the hash column and the matching rows."""
    if not parts or not keep.any():
        return keep
    wanted = hashes.filter(pl.Series(keep)).unique()
    seen = pl.scan_parquet([str(p) for p in parts]).filter(pl.col(HASH_COLUMN).is_in(wanted.implode())).select(frame.columns).collect()
    if seen.height == 0:
        return keep
    positions = np.flatnonzero(keep)
    candidates = frame[positions].with_columns(pl.Series("__pos", positions))
    repeated = candidates.join(seen.unique(), on=frame.columns, how="semi", nulls_equal=True)["__pos"].to_numpy()
    keep = keep.copy()
    keep[repeated] = False
    return keep


def repeats(
    frame: pl.DataFrame, files: pl.Series, hashes: pl.Series, keep: np.ndarray, parts: Sequence[Path] = ()
) -> dict[tuple[str, str], int]:
    """(file, earlier file) -> how many of `file`'s dropped rows (not `keep`) repeat a row `earlier file` brought:
    one of the kept rows of `frame` (from `files`), or a row already in the store's `parts`. Exact: values decide."""
    dropped = ~keep
    if not dropped.any():
        return {}
    values = list(frame.columns)
    wanted = hashes.filter(pl.Series(dropped)).unique().implode()
    candidates = pl.Series(keep) & hashes.is_in(wanted)  # only kept rows that may equal a dropped one are compared
    kept = frame.filter(candidates).with_columns(files.filter(candidates).cast(pl.String).alias(FILE_COLUMN))
    if parts:
        stored = (
            pl.scan_parquet([str(p) for p in parts])
            .filter(pl.col(HASH_COLUMN).is_in(wanted))
            .select([*values, pl.col(FILE_COLUMN).cast(pl.String)])
            .collect()
        )
        kept = pl.concat([stored, kept.select(stored.columns)], how="vertical")  # the store's rows came first
    origin = kept.unique(subset=values, keep="first", maintain_order=True).rename({FILE_COLUMN: "__of"})
    repeated = frame.filter(pl.Series(dropped)).with_columns(files.filter(pl.Series(dropped)).cast(pl.String).alias(FILE_COLUMN))
    pairs = repeated.join(origin, on=values, how="inner", nulls_equal=True).group_by([FILE_COLUMN, "__of"]).len()
    return {(row[0], row[1]): int(row[2]) for row in pairs.iter_rows() if row[0] != row[1]}


def rows_in(frame: Any, other: Any, columns: Sequence[str]) -> np.ndarray:
    """Which rows of `frame` also appear, whole, in `other` (pandas or polars frames of checked data).

    Hashes find the few rows of `other` that may match; values decide, so it is exact."""
    left = (frame if isinstance(frame, pl.DataFrame) else to_polars(frame)).select(columns)
    right = (other if isinstance(other, pl.DataFrame) else to_polars(other)).select(columns)
    found = np.zeros(left.height, dtype=bool)
    if left.height == 0 or right.height == 0:
        return found
    wanted = row_hashes(left).unique()
    candidates = right.filter(row_hashes(right).is_in(wanted.implode())).unique()
    matched = left.with_row_index("__pos").join(candidates, on=list(columns), how="semi", nulls_equal=True)["__pos"].to_numpy()
    found[matched] = True
    return found


def file_stamp(path: Path) -> Stamp | None:
    try:
        st = Path(path).stat()
    except OSError:
        return None
    return Stamp(size=st.st_size, mtime_ns=st.st_mtime_ns)


def identity(input_folder: Path, columns: Sequence[str]) -> Identity:
    """What a store must have been built with to be reused."""
    return Identity(format=FORMAT, polars=pl.__version__, seed=HASH_SEED, input_folder=str(input_folder), columns=list(columns))


def load(output_folder: Path, final_csv: Path, input_folder: Path, columns: Sequence[str]) -> Manifest | None:
    """The manifest, if the store still describes `final_csv` exactly; otherwise None (rebuild).

    Only a manifest this module wrote (`commit`) for this input folder, columns and polars passes `identity`."""
    path = folder(output_folder) / ROWSTORE_MANIFEST
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(manifest, dict) or manifest.get("identity") != identity(input_folder, columns):
        return None
    if manifest.get("finaldata") != file_stamp(final_csv):
        return None
    if not all((folder(output_folder) / p["file"]).is_file() for p in manifest.get("parts", [])):
        return None
    return cast(Manifest, manifest)


def final_rows(output_folder: Path, final_csv: Path, input_folder: Path, columns: Sequence[str]) -> pl.DataFrame | None:
    """finaldata.csv's rows (checked, in order) read from the store, when it still describes that file exactly; else None."""
    manifest = load(output_folder, final_csv, input_folder, columns)
    return read_rows(output_folder, manifest, columns) if manifest is not None else None


def part_paths(output_folder: Path, manifest: Manifest) -> list[Path]:
    return [folder(output_folder) / p["file"] for p in manifest["parts"]]


def read_rows(output_folder: Path, manifest: Manifest, columns: Sequence[str]) -> pl.DataFrame:
    return pl.read_parquet([str(p) for p in part_paths(output_folder, manifest)], columns=list(columns))


def new_generation() -> str:
    return uuid.uuid4().hex[:12]


def write_part(output_folder: Path, generation: str, index: int, frame: pl.DataFrame, hashes: pl.Series, files: pl.Series) -> Part:
    """Write one immutable part (the rows, their hashes and their files' names); it counts only once a manifest names it."""
    name = f"part-{generation}-{index:05d}.parquet"
    store = folder(output_folder)
    store.mkdir(parents=True, exist_ok=True)
    with atomic_output(store / name) as tmp:
        frame.with_columns(hashes, files.alias(FILE_COLUMN)).write_parquet(tmp, compression="lz4", statistics=False)
    return Part(file=name, rows=frame.height)


def commit(output_folder: Path, manifest: Manifest) -> None:
    """Write the manifest (the commit point), then remove parts and caches it no longer names."""
    store = folder(output_folder)
    atomic_write_json(store / ROWSTORE_MANIFEST, manifest)
    named = {p["file"] for p in manifest["parts"]} | {ROWSTORE_MANIFEST}
    for entry in store.iterdir():
        if entry.name not in named:
            with contextlib.suppress(OSError):
                entry.unlink()


def forget(output_folder: Path) -> None:
    """Invalidate the store (an ingestion that did not go through it rewrote finaldata.csv)."""
    with contextlib.suppress(OSError):
        (folder(output_folder) / ROWSTORE_MANIFEST).unlink()
