"""Combining the files one ingestion read: their rows in arrival order, exact duplicates dropped, and the summary.

The accepted files' rows are concatenated in the order the files arrived (drs/data/sources.py `arrival_plan`),
exact duplicate rows dropped, the first kept (drs/data/rowstore.py compares values, so a hash collision never drops
a row); a file whose rows repeat another's is named with both names. `IngestionResult` is what an ingestion
returns and what ingestionrecord.json holds (`to_record`, the keys it always had): the files accepted and rejected,
the files changed, removed, re-sent or repeating, and the rows written. `plan_increment` decides whether the new
files can simply be added. docs/data.md tells the rules.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, TypedDict

import numpy as np
import polars as pl

from drs.core.layout import utc_now
from drs.core.stamps import Arrival
from drs.data import rowstore
from drs.data.intake import FileEntry, FileRecord, Source, Status, still_there
from drs.data.sources import GONE, ArrivalPlan, Stamp, arrival_plan, file_notes
from drs.history.record import Change, Repeat, Resent  # the run record's parts, declared with it


class IngestionRecord(TypedDict):
    """ingestionrecord.json: an `IngestionResult` and the input folder it is of."""

    files: list[FileEntry]
    rows_before_dedup: int
    duplicates_dropped: int
    rows_written: int
    seconds: float
    ingested_at: str
    changed: list[Change]
    removed: list[str]
    waiting: list[str]
    resent: list[Resent]
    repeats: list[Repeat]
    input_folder: str


@dataclass(frozen=True)
class IngestionResult:
    """What one ingestion did (in arrival order): every file's record, the rows read, dropped and written, and the
    files changed, removed, still settling, re-sent and repeating."""

    files: list[FileRecord]
    rows_before_dedup: int = 0
    duplicates_dropped: int = 0
    rows_written: int = 0
    seconds: float = 0.0
    ingested_at: str = field(default_factory=utc_now)
    changed: list[Change] = field(default_factory=list)  # files whose content changed since the last ingestion
    removed: list[str] = field(default_factory=list)  # files that left the input folder since the last ingestion (rows kept)
    waiting: list[str] = field(default_factory=list)  # new files left to settle
    resent: list[Resent] = field(default_factory=list)  # copies of another file, files sent again unchanged
    repeats: list[Repeat] = field(default_factory=list)  # files whose rows repeat another file's: {name, of, rows, whole}

    @property
    def accepted(self) -> list[FileRecord]:
        return [f for f in self.files if f.status == Status.ACCEPTED]

    @property
    def rejected(self) -> list[FileRecord]:
        return [f for f in self.files if f.status == Status.REJECTED]

    def notes(self) -> list[str]:
        """What a run's message says about this ingestion's re-sent and repeating files."""
        return file_notes(self.resent, self.repeats)

    def to_record(self, input_folder: str) -> IngestionRecord:
        """ingestionrecord.json's content: the keys it always had, in their order."""
        return IngestionRecord(
            files=[f.to_record() for f in self.files],
            rows_before_dedup=self.rows_before_dedup,
            duplicates_dropped=self.duplicates_dropped,
            rows_written=self.rows_written,
            seconds=self.seconds,
            ingested_at=self.ingested_at,
            changed=list(self.changed),
            removed=list(self.removed),
            waiting=list(self.waiting),
            resent=list(self.resent),
            repeats=list(self.repeats),
            input_folder=input_folder,
        )


def concatenated(frames: list[pl.DataFrame]) -> tuple[pl.DataFrame, pl.Series, np.ndarray]:
    """The frames concatenated in file order, their row hashes, and which rows to keep (the first of exact duplicates); pure."""
    combined = pl.concat(frames, how="vertical", rechunk=False)
    hashes = rowstore.row_hashes(combined)
    return combined, hashes, rowstore.keep_first(combined, hashes)


def deduplicate(frames: list[pl.DataFrame]) -> tuple[pl.DataFrame, pl.Series]:
    """Concatenate in file order and drop exact duplicate rows, keeping the first; pure.

    Returns the rows and their hashes (for the store)."""
    combined, hashes, keep = concatenated(frames)
    return combined.filter(pl.Series(keep)), hashes.filter(pl.Series(keep))


def file_labels(frames: list[pl.DataFrame], records: list[FileRecord]) -> pl.Series:
    """Each row's file name, for frames concatenated in this order (categorical: 4 bytes a row)."""
    index = np.repeat(np.arange(len(records), dtype=np.uint32), [f.height for f in frames])
    return pl.Series(rowstore.FILE_COLUMN, [r.name for r in records], dtype=pl.Categorical).gather(pl.Series(index))


def repeat_entries(counts: dict[tuple[str, str], int], records: list[FileRecord]) -> list[Repeat]:
    """`rowstore.repeats`' counts as {name, of, rows, whole}, in file order."""
    rows = {r.name: r.rows_read for r in records}
    position = {r.name: i for i, r in enumerate(records)}
    ordered = sorted(counts.items(), key=lambda item: (position.get(item[0][0], -1), -item[1]))
    return [Repeat(name=name, of=of, rows=n, whole=n == rows.get(name)) for (name, of), n in ordered]


def plan_increment(manifest: rowstore.Manifest, sources: list[Source]) -> tuple[list[FileRecord], list[Source]] | None:
    """(records carried over, files to read), or None when only a full ingestion gives the right result."""
    present = {s.name: s for s in sources}
    carried = []
    for record in manifest["files"]:
        same = still_there(record, present.get(record["name"]))
        if record["status"] == Status.ACCEPTED and same is None:
            return None  # an ingested file changed: its old rows must leave finaldata.csv
        if same is not None:
            carried.append(same)
    names = {r.name for r in carried}
    return carried, [s for s in sources if s.name not in names]


def changes(previous: list[dict[str, Any]], files: list[FileRecord]) -> list[Change]:
    """Accepted files whose content differs from the last ingestion's (`previous`: its records, parsed JSON)."""
    before = {f["name"]: f for f in previous if f.get("status") == Status.ACCEPTED}
    found = []
    for record in files:
        old = before.get(record.name)
        if old is not None and record.sha256 != old.get("sha256"):
            found.append(
                Change(
                    name=record.name,
                    old_sha256=old.get("sha256"),
                    new_sha256=record.sha256,
                    old_rows=old.get("rows_read"),
                    new_rows=record.rows_read if record.status == Status.ACCEPTED else 0,
                    status=str(record.status),
                    labels_filled=record.labels_filled,
                )
            )
    return found


@dataclass(frozen=True)
class Inputs:
    """What one ingestion starts from: the files to read, the new files left to settle, the last ingestion's records
    (parsed JSON: ingestionrecord.json), when it started, and the folder's recorded arrivals (history rows)."""

    sources: list[Source]
    waiting: list[str]
    previous: list[dict[str, Any]]
    started: float
    known: list[Arrival] = field(default_factory=list)  # the folder's recorded arrivals (drs/history/files.py `arrivals`)

    def plan(self, records: list[FileRecord]) -> ArrivalPlan:
        """The arrival order of these files (those read whole; a file never read has no place to keep)."""
        stamps = [Stamp(r.name, r.sha256, r.size or 0, r.mtime_ns or 0) for r in records if r.sha256]
        ingested = {f.get("name", "") for f in self.previous if f.get("status") == Status.ACCEPTED}
        labels_only = frozenset(r.name for r in records if r.labels_filled)
        return arrival_plan(self.known, stamps, ingested, labels_only=labels_only)


def in_arrival_order(
    frames: list[pl.DataFrame], records: list[FileRecord], plan: ArrivalPlan
) -> tuple[list[pl.DataFrame], list[FileRecord]]:
    """The accepted files' frames (`read_files`' order) with their records, sorted by arrival."""
    accepted = [r for r in records if r.status == Status.ACCEPTED]
    pairs = sorted(zip(frames, accepted, strict=True), key=lambda pair: plan.key(pair[1].name))
    return [f for f, _ in pairs], [r for _, r in pairs]


def result_of(
    records: list[FileRecord], rows_written: int, inputs: Inputs, plan: ArrivalPlan, repeated: dict[tuple[str, str], int]
) -> IngestionResult:
    """The summary of an ingestion that wrote `rows_written` rows; `repeated`: `rowstore.repeats`' counts."""
    files = sorted(records, key=lambda r: plan.key(r.name))
    accepted = [f for f in files if f.status == Status.ACCEPTED]
    rows_before_dedup = sum(f.rows_read for f in accepted)
    announced = {f.get("name") for f in inputs.previous if f.get("status") == Status.ACCEPTED and not f.get("kept")}
    return IngestionResult(
        files=files,
        rows_before_dedup=rows_before_dedup,
        duplicates_dropped=rows_before_dedup - rows_written,
        rows_written=rows_written,
        seconds=round(time.perf_counter() - inputs.started, 4),
        changed=changes(inputs.previous, files),
        removed=[r.name for r in files if r.kept == GONE and r.name in announced],
        waiting=inputs.waiting,
        resent=plan.resent,
        repeats=repeat_entries(repeated, accepted),
    )
