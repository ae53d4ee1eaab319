"""Reading the source files: which files one ingestion reads, each read once and checked, one record a file.

A file is read from the input folder, or (when it is gone, or being written again) from the copy kept when it was
last accepted (`sourcecopies/<input folder name>/`), so its rows outlive it. Each read gives a `FileRecord`:
its checksum, size and time stamp, rows read and rejected, and why it was rejected; `Limits` refuses a file too big
to take. A file changed since its kept copy only by labels filled in where `exited` was empty is told apart
(`labels_filled_in`). drs/data/ingest.py combines what this module reads; docs/data.md has the rules.
"""

from __future__ import annotations

import dataclasses
import logging
import os
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import TypedDict

import polars as pl

from drs.core.errors import DataError
from drs.core.fileio import atomic_write_bytes, sha256_bytes, sha256_file
from drs.core.settings import Config
from drs.data.readers import checked_frame
from drs.data.schema import Schema
from drs.data.sources import ARRIVING, GONE, list_ready_files, list_source_files, refusal

log = logging.getLogger("ingestion")


class Status(StrEnum):
    ACCEPTED = "accepted"
    REJECTED = "rejected"


class FileEntry(TypedDict):
    """A `FileRecord` as ingestionrecord.json and the store's manifest hold it."""

    name: str
    status: Status
    sha256: str | None
    size: int | None
    mtime_ns: int | None
    rows_read: int
    rows_rejected: int
    reason: str | None
    kept: str | None
    labels_filled: int | None


@dataclass(frozen=True)
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

    def to_record(self) -> FileEntry:
        return FileEntry(
            name=self.name,
            status=self.status,
            sha256=self.sha256,
            size=self.size,
            mtime_ns=self.mtime_ns,
            rows_read=self.rows_read,
            rows_rejected=self.rows_rejected,
            reason=self.reason,
            kept=self.kept,
            labels_filled=self.labels_filled,
        )

    @classmethod
    def from_record(cls, entry: FileEntry) -> FileRecord:
        """The record of an entry of the store's manifest (`to_record` wrote it; `labels_filled` is missing in older ones)."""
        return cls(
            name=entry["name"],
            status=Status(entry["status"]),
            sha256=entry["sha256"],
            size=entry["size"],
            mtime_ns=entry["mtime_ns"],
            rows_read=entry["rows_read"],
            rows_rejected=entry["rows_rejected"],
            reason=entry["reason"],
            kept=entry["kept"],
            labels_filled=entry.get("labels_filled"),
        )


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
    rejected = FileRecord(name=path.name, status=Status.REJECTED)
    lines_read = [0]  # the lines of a file the careful reader rejects, counted as it rejects it
    try:
        refused = refusal(path, folder)
        if refused:
            raise DataError(path.name, refused)
        before = path.stat()
        too_big = limits.bytes_problem(before.st_size) if limits else None
        if too_big:
            rejected = dataclasses.replace(rejected, size=before.st_size, mtime_ns=before.st_mtime_ns)
            raise DataError(path.name, too_big)
        data = path.read_bytes()
        after = path.stat()
        if (before.st_size, before.st_mtime_ns) != (after.st_size, after.st_mtime_ns) or after.st_size != len(data):
            # no checksum recorded: what was read is not the file, which is tried again on the next run
            raise DataError(path.name, "changed while it was being read (still being written?); it will be tried again")
        rejected = dataclasses.replace(rejected, sha256=sha256_bytes(data), size=len(data), mtime_ns=after.st_mtime_ns)
        frame = checked_frame(
            data,
            schema,
            path.name,
            on_reject=lambda text: lines_read.__setitem__(0, max(len(text.splitlines()) - 1, 0)),
            unlabelled=True,  # an empty exited: label not known yet (docs/data.md)
        )
    except DataError as exc:
        read = lines_read[0]
        return None, dataclasses.replace(rejected, rows_read=read, reason=exc.problem, rows_rejected=exc.bad_rows or read), b""
    except OSError as exc:
        return None, dataclasses.replace(rejected, rows_read=lines_read[0], reason=f"cannot be read: {exc.strerror}"), b""
    too_many = limits.rows_problem(frame.height) if limits else None
    if too_many:
        return None, dataclasses.replace(rejected, rows_read=frame.height, reason=too_many, rows_rejected=frame.height), b""
    return frame, dataclasses.replace(rejected, status=Status.ACCEPTED, rows_read=frame.height), data


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
        record = dataclasses.replace(record, kept=source.kept)
        if frame is None:
            records.append(record)
            log.error("rejected %s: %s", record.name, record.reason)
            continue
        frames.append(frame)
        if source.kept is None:
            log.info("accepted %s: %d rows (sha256 %s)", record.name, record.rows_read, (record.sha256 or "")[:12])
            current = copy_is_current(config, record)
            record = dataclasses.replace(record, labels_filled=None if current else labels_arrived(config, frame, record, schema))
            kept_copy(config, data, record, current)
        else:
            log.info("%s is %s (%d rows)", record.name, source.kept, record.rows_read)
        records.append(record)
    return frames, records


def still_there(record: FileEntry, source: Source | None) -> FileRecord | None:
    """The record (an entry of the store's manifest) again if its file still has the same content (stat first, sha256
    if touched), else None."""
    if source is None or not source.path.is_file():
        return None
    st = source.path.stat()
    same = (st.st_size, st.st_mtime_ns) == (record["size"], record["mtime_ns"]) or (
        st.st_size == record["size"] and sha256_file(source.path) == record["sha256"]
    )
    if not same:
        return None
    if source.kept is not None:  # a copy: the record keeps the stamp of the file it was read from
        return dataclasses.replace(FileRecord.from_record(record), kept=source.kept)
    return dataclasses.replace(FileRecord.from_record(record), mtime_ns=st.st_mtime_ns, kept=None)


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
