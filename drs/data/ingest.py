"""Ingestion: collect every CSV in the input folder, check it, de-duplicate, write the training set.

Writes to `output_folder_path`:
  finaldata.csv        all accepted rows, files in arrival order, exact duplicates dropped (first one kept)
  ingestedfiles.txt    one accepted file name per line, in arrival order (the course's record)
  ingestionrecord.json per file: sha256, rows read and rejected, status and reason;
                       duplicates dropped, rows written, seconds taken
  finaldata.store/     the same rows in Parquet with row hashes (drs.data.rowstore), so that the
                       next ingestion reads only new files when they arrived after the ingested
                       ones and the ingested ones are unchanged (the result is the same as a
                       full ingestion: `finaldata.csv` grows by the new rows not seen before)
  sourcecopies/<input folder name>/
                       a copy of each accepted file as it was ingested: the rows of a file
                       removed from the input folder, or being written again, come from here

Files are taken in the order the system first saw them (drs/data/sources.py `arrival_plan`, recorded in
the run history's `arrivals`), whatever their names, so a client's newest row is the one that arrived
last; files first seen together go by modification time, then name. A file that is a copy of another,
or sent again unchanged, and a file whose rows repeat another's, are named in the log with both names.

`finaldata.csv` is what ingesting every file's current content afresh gives: a file
changed after it was ingested has its old rows replaced by its new ones (the result
names it with both checksums; when its only change is labels filled in where `exited` was empty, a label not
known yet, it says "labels arrived" and how many instead, `labels_filled_in`, and the file keeps its place in the
arrival order); a removed file keeps its rows. A file modified less
than `settle_seconds` ago may still be arriving and is left for a later run; names
copy tools write under (`.part`, `~`, a leading dot, ...) are never read.

A file that fails its checks is named in the log with the reason, skipped and
recorded; the other files still go in. Source files are only ever read. If no
valid data remains, the earlier outputs are left exactly as they were.
"""

from __future__ import annotations

import concurrent.futures
import logging
import os
import shutil
import sqlite3
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
import polars as pl

from drs.core.errors import DataError, StageError
from drs.core.fileio import atomic_output, atomic_write_bytes, atomic_write_json, atomic_write_text, sha256_bytes, sha256_file
from drs.core.layout import utc_now
from drs.core.settings import Config
from drs.data import rowstore
from drs.data.readers import checked_frame
from drs.data.schema import Schema
from drs.data.sources import (
    ARRIVING,
    GONE,
    ArrivalPlan,
    Stamp,
    arrival_plan,
    file_notes,
    list_ready_files,
    list_source_files,
    recorded_files,
    refusal,
    repeat_line,
    repeats_to_tell,
    resent_line,
    waiting_line,
)
from drs.history import runs as history

log = logging.getLogger("ingestion")


class Status(StrEnum):
    ACCEPTED = "accepted"
    REJECTED = "rejected"


@dataclass
class FileRecord:
    """What happened to one source file."""

    name: str
    status: Status
    sha256: str | None = None
    size: int | None = None
    mtime_ns: int | None = None
    rows_read: int = 0
    rows_rejected: int = 0
    reason: str | None = None
    kept: str | None = None  # why the rows come from the copy kept at ingestion (the file is gone, or still arriving)
    labels_filled: int | None = None  # changed since its kept copy only by labels filled in: how many (labels_filled_in)


@dataclass
class IngestionResult:
    files: list[FileRecord]
    rows_before_dedup: int = 0
    duplicates_dropped: int = 0
    rows_written: int = 0
    seconds: float = 0.0
    ingested_at: str = field(default_factory=utc_now)
    changed: list[dict[str, Any]] = field(default_factory=list)  # files whose content changed since the last ingestion
    removed: list[str] = field(default_factory=list)  # files that left the input folder since the last ingestion (rows kept)
    waiting: list[str] = field(default_factory=list)  # new files left to settle
    resent: list[dict[str, str]] = field(default_factory=list)  # copies of another file, files sent again unchanged
    repeats: list[dict[str, Any]] = field(default_factory=list)  # files whose rows repeat another file's: {name, of, rows, whole}

    @property
    def accepted(self) -> list[FileRecord]:
        return [f for f in self.files if f.status == Status.ACCEPTED]

    @property
    def rejected(self) -> list[FileRecord]:
        return [f for f in self.files if f.status == Status.REJECTED]

    def notes(self) -> list[str]:
        """What a run's message says about this ingestion's re-sent and repeating files."""
        return file_notes(self.resent, self.repeats)


@dataclass(frozen=True)
class Limits:
    """The largest source file ingestion takes: in bytes (refused unread), and in rows. A file over either is rejected
    with a line naming the limit and its setting; the other files go in."""

    max_bytes: int
    max_rows: int

    @classmethod
    def of(cls, config: Config) -> Limits:
        return cls(config.max_source_bytes, config.max_source_rows)

    def bytes_problem(self, size: int) -> str | None:
        if size <= self.max_bytes:
            return None
        return (
            f"is {size:,} bytes, more than the limit of {self.max_bytes:,} bytes (setting max_source_bytes): split it, or raise the limit"
        )

    def rows_problem(self, rows: int) -> str | None:
        if rows <= self.max_rows:
            return None
        return f"has {rows:,} rows, more than the limit of {self.max_rows:,} rows (setting max_source_rows): split it, or raise the limit"


def read_source_file(path: Path, folder: Path, schema: Schema) -> tuple[pl.DataFrame | None, FileRecord]:
    """Read one source file once (bytes hashed and parsed together) and check it."""
    frame, record, _ = read_checked(path, folder, schema)
    return frame, record


def read_checked(path: Path, folder: Path, schema: Schema, limits: Limits | None = None) -> tuple[pl.DataFrame | None, FileRecord, bytes]:
    """`read_source_file`, also returning the bytes read (empty when rejected); a file over `limits` is rejected (one
    over the bytes unread: its record has its size and time stamp, no checksum, and holds until the file changes)."""
    record = FileRecord(name=path.name, status=Status.REJECTED)
    data = b""
    try:
        refused = refusal(path, folder)
        if refused:
            raise DataError(path.name, refused)
        before = path.stat()
        too_big = limits.bytes_problem(before.st_size) if limits else None
        if too_big:
            record.size, record.mtime_ns = before.st_size, before.st_mtime_ns
            raise DataError(path.name, too_big)
        data = path.read_bytes()
        after = path.stat()
        if (before.st_size, before.st_mtime_ns) != (after.st_size, after.st_mtime_ns) or after.st_size != len(data):
            # no checksum recorded: what was read is not the file, which is tried again on the next run
            raise DataError(path.name, "changed while it was being read (still being written?); it will be tried again")
        record.sha256, record.size, record.mtime_ns = sha256_bytes(data), len(data), after.st_mtime_ns
        frame = checked_frame(
            data,
            schema,
            path.name,
            on_reject=lambda text: setattr(record, "rows_read", max(len(text.splitlines()) - 1, 0)),
            unlabelled=True,  # an empty exited: label not known yet (docs/data.md)
        )
    except DataError as exc:
        record.reason = exc.problem
        record.rows_rejected = exc.bad_rows or record.rows_read
        return None, record, b""
    except OSError as exc:
        record.reason = f"cannot be read: {exc.strerror}"
        return None, record, b""
    record.rows_read = frame.height
    too_many = limits.rows_problem(frame.height) if limits else None
    if too_many:
        record.reason, record.rows_rejected = too_many, frame.height
        return None, record, b""
    record.status = Status.ACCEPTED
    return frame, record, data


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


def repeat_entries(counts: dict[tuple[str, str], int], records: list[FileRecord]) -> list[dict[str, Any]]:
    """`rowstore.repeats`' counts as {name, of, rows, whole}, in file order."""
    rows = {r.name: r.rows_read for r in records}
    position = {r.name: i for i, r in enumerate(records)}
    ordered = sorted(counts.items(), key=lambda item: (position.get(item[0][0], -1), -item[1]))
    return [{"name": name, "of": of, "rows": n, "whole": n == rows.get(name)} for (name, of), n in ordered]


def write_csv(frame: pl.DataFrame, handle: Path | BinaryIO, header: bool = True) -> None:
    """The course's CSV: a header, no index, `\n` line ends, quotes only where needed."""
    frame.write_csv(handle, include_header=header, line_terminator="\n")


def write_outputs(config: Config, result: IngestionResult, write_final: Callable[[Path], None] | None) -> None:
    """Each output is replaced atomically; the record is written last, naming what the others hold."""
    if write_final is not None:
        with atomic_output(config.final_data_csv) as tmp:
            write_final(tmp)
    atomic_write_text(config.ingested_files_txt, "".join(f"{f.name}\n" for f in result.accepted))  # arrival order
    atomic_write_json(config.ingestion_record, {**asdict(result), "input_folder": str(config.input_folder)})


@dataclass(frozen=True)
class Source:
    """One file to ingest: from the input folder, or (`kept` says why) the copy kept when it was last accepted."""

    path: Path
    kept: str | None = None

    @property
    def name(self) -> str:
        return self.path.name


def labels_filled_in(old: pl.DataFrame, new: pl.DataFrame, schema: Schema) -> int | None:
    """How many rows gained a label when a file changed from `old` to `new` and that is its only change (same rows in the
    same order, every label known before unchanged); None when anything else changed. Pure."""
    target = schema.target
    if old.height != new.height or old.columns != new.columns or target not in old.columns:
        return None
    others = [c for c in old.columns if c != target]
    if not old.select(others).equals(new.select(others)):
        return None
    was, now = old[target], new[target]
    if not (was.is_null() | (was == now).fill_null(False)).all():  # a known label changed or removed: more than labels
        return None
    filled = int((was.is_null() & now.is_not_null()).sum())
    return filled or None


def labels_arrived(config: Config, frame: pl.DataFrame, record: FileRecord, schema: Schema) -> int | None:
    """`labels_filled_in` between the copy kept at the file's last ingestion (of other content: `copy_is_current` said
    no) and its new content; None without such a copy. Read only when a kept file changed, never on a cheap tick."""
    copy = config.kept_sources_folder / record.name
    try:
        if not copy.is_file():
            return None
        old = checked_frame(copy.read_bytes(), schema, record.name, unlabelled=True)
    except (OSError, DataError):
        return None
    return labels_filled_in(old, frame, schema)


def copy_is_current(config: Config, record: FileRecord) -> bool:
    """Whether the copy kept of this file holds its content (size, then sha256)."""
    copy = config.kept_sources_folder / record.name
    try:
        return copy.is_file() and copy.stat().st_size == record.size and sha256_file(copy) == record.sha256
    except OSError:
        return False


def kept_copy(config: Config, data: bytes, record: FileRecord, current: bool) -> None:
    """Keep what was accepted from the input folder, so its rows outlive the file; rewritten only when it changed
    (`current`: `copy_is_current`)."""
    copy = config.kept_sources_folder / record.name
    try:
        if not current:
            copy.parent.mkdir(parents=True, exist_ok=True)
            atomic_write_bytes(copy, data)
        if record.mtime_ns is not None:  # the file's own time stamp, so a record made from the copy equals one made from the file
            os.utime(copy, ns=(record.mtime_ns, record.mtime_ns))
    except OSError as exc:  # the ingestion itself is sound; only a later removal of the file would lose its rows
        log.warning("could not keep a copy of %s in %s: %s", record.name, copy.parent, exc.strerror)


def read_files(sources: list[Source], config: Config, schema: Schema) -> tuple[list[pl.DataFrame], list[FileRecord]]:
    """Each source read and checked: the accepted files' frames, and every file's record, in `sources`' order."""
    frames, records = [], []
    for source in sources:
        folder = config.input_folder if source.kept is None else config.kept_sources_folder
        frame, record, data = read_checked(source.path, folder, schema, Limits.of(config))
        record.kept = source.kept
        records.append(record)
        if frame is None:
            log.error("rejected %s: %s", record.name, record.reason)
            continue
        frames.append(frame)
        if source.kept is None:
            log.info("accepted %s: %d rows (sha256 %s)", record.name, record.rows_read, (record.sha256 or "")[:12])
            current = copy_is_current(config, record)
            record.labels_filled = None if current else labels_arrived(config, frame, record, schema)
            kept_copy(config, data, record, current)
        else:
            log.info("%s is %s (%d rows)", record.name, source.kept, record.rows_read)
    return frames, records


def still_there(record: dict[str, Any], source: Source | None) -> FileRecord | None:
    """The record again if its file still has the same content (stat first, sha256 if touched), else None."""
    if source is None or not source.path.is_file():
        return None
    st = source.path.stat()
    same = (st.st_size, st.st_mtime_ns) == (record["size"], record["mtime_ns"]) or (
        st.st_size == record["size"] and sha256_file(source.path) == record["sha256"]
    )
    if not same:
        return None
    if source.kept is not None:  # a copy: the record keeps the stamp of the file it was read from
        return FileRecord(**{**record, "kept": source.kept})
    return FileRecord(**{**record, "mtime_ns": st.st_mtime_ns, "kept": None})


def plan_increment(manifest: dict[str, Any], sources: list[Source]) -> tuple[list[FileRecord], list[Source]] | None:
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


def sources_to_ingest(config: Config, now: float | None = None) -> tuple[list[Source], list[str]]:
    """The input folder's settled files, then the kept copies of accepted files that are gone or still arriving
    (listed by name; they are ingested in arrival order); and the new files left to settle."""
    listing = list_ready_files(config.input_folder, config.settle_seconds, now, config.self_written_record)
    sources = [Source(p) for p in listing.ready]
    ready, waiting = {s.name for s in sources}, set(listing.waiting)
    copies = list_source_files(config.kept_sources_folder) if config.kept_sources_folder.is_dir() else []
    for copy in copies:
        if copy.name not in ready:
            sources.append(Source(copy, ARRIVING if copy.name in waiting else GONE))
    kept = {s.name for s in sources if s.kept}
    return sorted(sources, key=lambda s: s.name), sorted(waiting - kept)


def changes(previous: list[dict[str, Any]], result: IngestionResult) -> list[dict[str, Any]]:
    """Accepted files whose content differs from the last ingestion's: both checksums and row counts."""
    before = {f["name"]: f for f in previous if f.get("status") == Status.ACCEPTED}
    found = []
    for record in result.files:
        old = before.get(record.name)
        if old is not None and record.sha256 != old.get("sha256"):
            found.append(
                {
                    "name": record.name,
                    "old_sha256": old.get("sha256"),
                    "new_sha256": record.sha256,
                    "old_rows": old.get("rows_read"),
                    "new_rows": record.rows_read if record.status == Status.ACCEPTED else 0,
                    "status": str(record.status),
                    "labels_filled": record.labels_filled,
                }
            )
    return found


@dataclass(frozen=True)
class Inputs:
    """What one ingestion starts from: the files to read, the new files left to settle, the last ingestion's records."""

    sources: list[Source]
    waiting: list[str]
    previous: list[dict[str, Any]]
    started: float
    known: list[dict[str, Any]] = field(default_factory=list)  # the folder's recorded arrivals (history.arrivals)

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


def result_of(records: list[FileRecord], rows_written: int, inputs: Inputs, plan: ArrivalPlan) -> IngestionResult:
    result = IngestionResult(files=sorted(records, key=lambda r: plan.key(r.name)), waiting=inputs.waiting, resent=plan.resent)
    result.rows_before_dedup = sum(f.rows_read for f in result.accepted)
    result.rows_written = rows_written
    result.duplicates_dropped = result.rows_before_dedup - rows_written
    result.changed = changes(inputs.previous, result)
    announced = {f.get("name") for f in inputs.previous if f.get("status") == Status.ACCEPTED and not f.get("kept")}
    result.removed = [r.name for r in result.files if r.kept == GONE and r.name in announced]
    result.seconds = round(time.perf_counter() - inputs.started, 4)
    return result


def no_valid_data(config: Config, count: int) -> StageError:
    return StageError(f"no valid data in {config.input_folder} ({count} file(s) rejected); earlier outputs left as they were")


def ingest_increment(
    config: Config, schema: Schema, manifest: dict[str, Any], inputs: Inputs
) -> tuple[IngestionResult, ArrivalPlan] | None:
    """Add only the new files' unseen rows; None when a full ingestion is needed (the files' order is not the ingested one)."""
    plan = plan_increment(manifest, inputs.sources)
    if plan is None:
        return None
    carried, new_paths = plan
    frames, records = read_files(new_paths, config, schema)
    order = inputs.plan(carried + records)
    ingested = [order.key(r.name) for r in carried if r.status == Status.ACCEPTED]
    last = max(ingested, default=(0, ""))
    if ingested != sorted(ingested) or any(r.status == Status.ACCEPTED and order.key(r.name) < last for r in records):
        log.info("the files' arrival order is not the order finaldata.csv holds: re-ingesting every file in arrival order")
        return None
    if not frames and not any(r.status == Status.ACCEPTED for r in carried):
        raise no_valid_data(config, len(carried) + len(records))
    out = config.output_folder
    part, repeated = None, {}
    if frames:
        frames, accepted = in_arrival_order(frames, records, order)
        new, hashes, first = concatenated(frames)
        files, parts = file_labels(frames, accepted), rowstore.part_paths(out, manifest)
        keep = rowstore.drop_seen(new, hashes, first, parts)
        repeated = rowstore.repeats(new, files, hashes, keep, parts)
        rows, hashes, files = new.filter(pl.Series(keep)), hashes.filter(pl.Series(keep)), files.filter(pl.Series(keep))
        if rows.height:
            part = rowstore.write_part(out, manifest["generation"], len(manifest["parts"]) + 1, rows, hashes, files)
    written = manifest["rows"] + (part["rows"] if part else 0)
    result = result_of(carried + records, written, inputs, order)
    result.repeats = repeat_entries(repeated, result.accepted)

    def append(tmp: Path) -> None:
        shutil.copyfile(config.final_data_csv, tmp)
        with open(tmp, "ab") as handle:
            write_csv(rows, handle, header=False)

    remember_arrivals(config, order)
    write_outputs(config, result, append if part else None)
    parts = manifest["parts"] + ([part] if part else [])
    commit_store(config, manifest["generation"], parts, written, result)
    return result, order


def ingest_all(config: Config, schema: Schema, inputs: Inputs) -> tuple[IngestionResult, ArrivalPlan]:
    frames, records = read_files(inputs.sources, config, schema)
    if not frames:
        raise no_valid_data(config, len(records))
    order = inputs.plan(records)
    frames, accepted = in_arrival_order(frames, records, order)
    combined, hashes, keep = concatenated(frames)
    files, mask = file_labels(frames, accepted), pl.Series(keep)
    rows, kept_hashes, kept_files = combined.filter(mask), hashes.filter(mask), files.filter(mask)
    result = result_of(records, rows.height, inputs, order)
    result.repeats = repeat_entries(rowstore.repeats(combined, files, hashes, keep), result.accepted)
    generation = rowstore.new_generation()
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:  # Parquet and CSV written side by side
        part = pool.submit(rowstore.write_part, config.output_folder, generation, 1, rows, kept_hashes, kept_files)
        remember_arrivals(config, order)
        write_outputs(config, result, lambda tmp: write_csv(rows, tmp))
        commit_store(config, generation, [part.result()], rows.height, result)
    return result, order


def arrivals_of(config: Config) -> list[dict[str, Any]]:
    """The input folder's recorded arrivals; StageError naming the record when it cannot be read."""
    try:
        return history.arrivals(config.arrivals_record, str(config.input_folder))
    except sqlite3.Error as exc:
        raise StageError(
            f"cannot read the files' arrival order in {config.arrivals_record}: {exc}; earlier outputs left as they were"
        ) from None


def remember_arrivals(config: Config, order: ArrivalPlan) -> None:
    """Record the files' arrivals before any output changes, so finaldata.csv never holds an order the record lacks."""
    try:
        history.record_arrivals(config.arrivals_record, str(config.input_folder), order.record)
    except sqlite3.Error as exc:
        raise StageError(
            f"cannot record the files' arrival order in {config.arrivals_record}: {exc}; earlier outputs left as they were"
        ) from None


def commit_store(config: Config, generation: str, parts: list[dict[str, Any]], rows: int, result: IngestionResult) -> None:
    manifest = {
        "identity": rowstore.identity(config.input_folder, Schema.from_config(config).columns),
        "generation": generation,
        "parts": parts,
        "rows": rows,
        "files": [asdict(f) for f in result.files],
        "finaldata": rowstore.file_stamp(config.final_data_csv),
    }
    rowstore.commit(config.output_folder, manifest)


def ingest(config: Config, now: float | None = None) -> IngestionResult:
    """Ingest the input folder as it is at `now` (default: now); raise StageError when nothing valid remains."""
    started = time.perf_counter()
    schema = Schema.from_config(config)
    files, waiting = sources_to_ingest(config, now)
    for name in waiting:
        log.info("%s", waiting_line(name, config.settle_seconds))
    if not files:
        settling = f" ({len(waiting)} still settling)" if waiting else ""
        raise StageError(f"no CSV files to ingest in {config.input_folder}{settling}; earlier outputs left as they were")
    known = arrivals_of(config)
    inputs = Inputs(files, waiting, recorded_files(config.ingestion_record, config.input_folder), started, known)
    manifest = rowstore.load(config.output_folder, config.final_data_csv, config.input_folder, schema.columns)
    incremental = ingest_increment(config, schema, manifest, inputs) if manifest else None
    result, order = incremental or ingest_all(config, schema, inputs)
    tell(config, result, order, incremental is not None)
    return result


def labels_line(change: dict[str, Any]) -> str:
    """The plain line for a file whose only change is labels filled in (`labels_filled_in`)."""
    return (
        f"labels arrived for {change['labels_filled']:,} row(s) of {change['name']} (its only change); its rows are judged again"
        " with their labels"
    )


def tell(config: Config, result: IngestionResult, order: ArrivalPlan, incremental: bool) -> None:
    """The ingestion's log lines: the order, removed, changed, re-sent and repeating files, and what was written."""
    if order.first_record and order.record:
        log.info(
            "arrival order recorded for the first time for %s: %s (by modification time, then name)",
            config.input_folder,
            ", ".join(r["name"] for r in order.record),
        )
    for name in result.removed:
        log.warning("%s was removed from %s; the rows ingested from it are kept", name, config.input_folder)
    for change in result.changed:
        if change.get("labels_filled"):
            log.info("%s", labels_line(change))
            continue
        log.warning(
            "%s changed after it was ingested (sha256 %s -> %s): its %s old row(s) replaced by %d, now the newest",
            change["name"],
            (change["old_sha256"] or "?")[:12],
            (change["new_sha256"] or "?")[:12],
            change["old_rows"],
            change["new_rows"],
        )
    for entry in result.resent:
        log.warning("%s", resent_line(entry))
    for entry in repeats_to_tell(result.resent, result.repeats):
        log.log(logging.WARNING if entry["whole"] else logging.INFO, "%s", repeat_line(entry))
    log.info(
        "wrote %s: %d rows from %d file(s) in arrival order (%s), %d duplicate row(s) dropped, %d file(s) rejected%s",
        config.final_data_csv,
        result.rows_written,
        len(result.accepted),
        ", ".join(f.name for f in result.accepted[:10]) + (", ..." if len(result.accepted) > 10 else ""),
        result.duplicates_dropped,
        len(result.rejected),
        " (incremental)" if incremental else "",
    )
