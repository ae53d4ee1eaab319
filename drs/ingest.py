"""Ingestion: collect every CSV in the input folder, check it, de-duplicate, write the training set.

Writes to `output_folder_path`:
  finaldata.csv        all accepted rows, exact duplicates dropped (first one kept)
  ingestedfiles.txt    one accepted file name per line (the course's record)
  ingestionrecord.json per file: sha256, rows read and rejected, status and reason;
                       duplicates dropped, rows written, seconds taken
  finaldata.store/     the same rows in Parquet with row hashes (drs.rowstore), so that the
                       next ingestion reads only new files when they sort after the ingested
                       ones and the ingested ones are unchanged (the result is the same as a
                       full ingestion: `finaldata.csv` grows by the new rows not seen before)

A file that fails its checks is named in the log with the reason, skipped and
recorded; the other files still go in. Source files are only ever read. If no
valid data remains, the earlier outputs are left exactly as they were.
"""

from __future__ import annotations

import concurrent.futures
import logging
import shutil
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any, BinaryIO

import polars as pl

from drs import rowstore
from drs.errors import DataError, StageError
from drs.fileio import atomic_output, atomic_write_json, atomic_write_text, sha256_bytes, sha256_file
from drs.layout import utc_now
from drs.schema import Schema, checked_frame
from drs.settings import Config
from drs.sources import list_source_files, refusal

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


@dataclass
class IngestionResult:
    files: list[FileRecord]
    rows_before_dedup: int = 0
    duplicates_dropped: int = 0
    rows_written: int = 0
    seconds: float = 0.0
    ingested_at: str = field(default_factory=utc_now)

    @property
    def accepted(self) -> list[FileRecord]:
        return [f for f in self.files if f.status == Status.ACCEPTED]

    @property
    def rejected(self) -> list[FileRecord]:
        return [f for f in self.files if f.status == Status.REJECTED]


def read_source_file(path: Path, folder: Path, schema: Schema) -> tuple[pl.DataFrame | None, FileRecord]:
    """Read one source file once (bytes hashed and parsed together) and check it."""
    record = FileRecord(name=path.name, status=Status.REJECTED)
    try:
        refused = refusal(path, folder)
        if refused:
            raise DataError(path.name, refused)
        before = path.stat()
        data = path.read_bytes()
        after = path.stat()
        if (before.st_size, before.st_mtime_ns) != (after.st_size, after.st_mtime_ns) or after.st_size != len(data):
            # no checksum recorded: what was read is not the file, which is tried again on the next run
            raise DataError(path.name, "changed while it was being read (still being written?); it will be tried again")
        record.sha256, record.size, record.mtime_ns = sha256_bytes(data), len(data), after.st_mtime_ns
        frame = checked_frame(
            data, schema, path.name, on_reject=lambda text: setattr(record, "rows_read", max(len(text.splitlines()) - 1, 0))
        )
    except DataError as exc:
        record.reason = exc.problem
        record.rows_rejected = exc.bad_rows or record.rows_read
        return None, record
    except OSError as exc:
        record.reason = f"cannot be read: {exc.strerror}"
        return None, record
    record.status = Status.ACCEPTED
    record.rows_read = frame.height
    return frame, record


def deduplicate(frames: list[pl.DataFrame]) -> tuple[pl.DataFrame, pl.Series]:
    """Concatenate in file order and drop exact duplicate rows, keeping the first; pure.

    Returns the rows and their hashes (for the store)."""
    combined = pl.concat(frames, how="vertical", rechunk=False)
    hashes = rowstore.row_hashes(combined)
    keep = pl.Series(rowstore.keep_first(combined, hashes))
    return combined.filter(keep), hashes.filter(keep)


def write_csv(frame: pl.DataFrame, handle: Path | BinaryIO, header: bool = True) -> None:
    """The course's CSV: a header, no index, `\n` line ends, quotes only where needed."""
    frame.write_csv(handle, include_header=header, line_terminator="\n")


def write_outputs(config: Config, result: IngestionResult, write_final: Callable[[Path], None] | None) -> None:
    """Each output is replaced atomically; the record is written last, naming what the others hold."""
    if write_final is not None:
        with atomic_output(config.final_data_csv) as tmp:
            write_final(tmp)
    atomic_write_text(config.ingested_files_txt, "".join(f"{f.name}\n" for f in result.accepted))
    atomic_write_json(config.ingestion_record, {**asdict(result), "input_folder": str(config.input_folder)})


def read_files(paths: list[Path], config: Config, schema: Schema) -> tuple[list[pl.DataFrame], list[FileRecord]]:
    frames, records = [], []
    for path in paths:
        frame, record = read_source_file(path, config.input_folder, schema)
        records.append(record)
        if frame is None:
            log.error("rejected %s: %s", record.name, record.reason)
        else:
            log.info("accepted %s: %d rows (sha256 %s)", record.name, record.rows_read, (record.sha256 or "")[:12])
            frames.append(frame)
    return frames, records


def still_there(record: dict[str, Any], path: Path | None) -> FileRecord | None:
    """The record again if its file still has the same content (stat first, sha256 if touched), else None."""
    if path is None or not path.is_file():
        return None
    st = path.stat()
    same = (st.st_size, st.st_mtime_ns) == (record["size"], record["mtime_ns"]) or (
        st.st_size == record["size"] and sha256_file(path) == record["sha256"]
    )
    return FileRecord(**{**record, "mtime_ns": st.st_mtime_ns}) if same else None


def plan_increment(manifest: dict[str, Any], files: list[Path]) -> tuple[list[FileRecord], list[Path]] | None:
    """(records carried over, files to read), or None when only a full ingestion gives the right result."""
    present = {p.name: p for p in files}
    carried = []
    for record in manifest["files"]:
        same = still_there(record, present.get(record["name"]))
        if record["status"] == Status.ACCEPTED and same is None:
            return None  # an ingested file changed or went away: its rows must leave finaldata.csv
        if same is not None:
            carried.append(same)
    names = {r.name for r in carried}
    return carried, [p for p in files if p.name not in names]


def result_of(records: list[FileRecord], rows_written: int, started: float) -> IngestionResult:
    result = IngestionResult(files=sorted(records, key=lambda r: r.name))
    result.rows_before_dedup = sum(f.rows_read for f in result.accepted)
    result.rows_written = rows_written
    result.duplicates_dropped = result.rows_before_dedup - rows_written
    result.seconds = round(time.perf_counter() - started, 4)
    return result


def no_valid_data(config: Config, count: int) -> StageError:
    return StageError(f"no valid data in {config.input_folder} ({count} file(s) rejected); earlier outputs left as they were")


def ingest_increment(config: Config, schema: Schema, manifest: dict[str, Any], files: list[Path], started: float) -> IngestionResult | None:
    """Add only the new files' unseen rows; None when a full ingestion is needed (a new file sorts first)."""
    plan = plan_increment(manifest, files)
    if plan is None:
        return None
    carried, new_paths = plan
    last_ingested = max((r.name for r in carried if r.status == Status.ACCEPTED), default="")
    frames, records = read_files(new_paths, config, schema)
    if any(r.status == Status.ACCEPTED and r.name < last_ingested for r in records):
        log.info("a new file sorts before %s: re-ingesting every file to keep the row order", last_ingested)
        return None
    if not frames and not any(r.status == Status.ACCEPTED for r in carried):
        raise no_valid_data(config, len(carried) + len(records))
    out = config.output_folder
    part = None
    if frames:
        new = pl.concat(frames, how="vertical", rechunk=False)
        hashes = rowstore.row_hashes(new)
        keep = rowstore.drop_seen(new, hashes, rowstore.keep_first(new, hashes), rowstore.part_paths(out, manifest))
        rows, hashes = new.filter(pl.Series(keep)), hashes.filter(pl.Series(keep))
        if rows.height:
            part = rowstore.write_part(out, manifest["generation"], len(manifest["parts"]) + 1, rows, hashes)
    written = manifest["rows"] + (part["rows"] if part else 0)
    result = result_of(carried + records, written, started)

    def append(tmp: Path) -> None:
        shutil.copyfile(config.final_data_csv, tmp)
        with open(tmp, "ab") as handle:
            write_csv(rows, handle, header=False)

    write_outputs(config, result, append if part else None)
    parts = manifest["parts"] + ([part] if part else [])
    commit_store(config, manifest["generation"], parts, written, result)
    return result


def ingest_all(config: Config, schema: Schema, files: list[Path], started: float, use_store: bool) -> IngestionResult:
    frames, records = read_files(files, config, schema)
    if not frames:
        raise no_valid_data(config, len(records))
    rows, hashes = deduplicate(frames)
    result = result_of(records, rows.height, started)
    if not use_store:
        rowstore.forget(config.output_folder)
        write_outputs(config, result, lambda tmp: write_csv(rows, tmp))
        return result
    generation = rowstore.new_generation()
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:  # Parquet and CSV written side by side
        part = pool.submit(rowstore.write_part, config.output_folder, generation, 1, rows, hashes)
        write_outputs(config, result, lambda tmp: write_csv(rows, tmp))
        commit_store(config, generation, [part.result()], rows.height, result)
    return result


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


def ingest(config: Config, only: set[str] | None = None) -> IngestionResult:
    """Ingest the input folder (optionally only the named files); raise StageError when nothing valid remains."""
    started = time.perf_counter()
    schema = Schema.from_config(config)
    files = [p for p in list_source_files(config.input_folder) if only is None or p.name in only]
    if not files:
        raise StageError(f"no CSV files in {config.input_folder}; earlier outputs left as they were")
    manifest = None
    if only is None:
        manifest = rowstore.load(config.output_folder, config.final_data_csv, config.input_folder, schema.columns)
    incremental = ingest_increment(config, schema, manifest, files, started) if manifest else None
    result = incremental or ingest_all(config, schema, files, started, use_store=only is None)
    log.info(
        "wrote %s: %d rows from %d file(s), %d duplicate row(s) dropped, %d file(s) rejected%s",
        config.final_data_csv,
        result.rows_written,
        len(result.accepted),
        result.duplicates_dropped,
        len(result.rejected),
        " (incremental)" if incremental else "",
    )
    return result
