"""Ingestion: collect every CSV in the input folder, check it, de-duplicate, write the training set.

Writes to `output_folder_path`:
  finaldata.csv        all accepted rows, exact duplicates dropped (first one kept)
  ingestedfiles.txt    one accepted file name per line (the course's record)
  ingestionrecord.json per file: sha256, rows read and rejected, status and reason;
                       duplicates dropped, rows written, seconds taken

A file that fails its checks is named in the log with the reason, skipped and
recorded; the other files still go in. Source files are only ever read. If no
valid data remains, the earlier outputs are left exactly as they were.
"""
from __future__ import annotations

import argparse
import logging
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from drs.cli import StageError, run_main
from drs.config import Config
from drs.fileio import atomic_output, atomic_write_json, atomic_write_text, sha256_bytes
from drs.production import utc_now
from drs.schema import DataError, Schema, decode_csv_bytes, frame_from_text

if TYPE_CHECKING:
    import pandas as pd

log = logging.getLogger("ingestion")


@dataclass
class FileRecord:
    """What happened to one source file."""

    name: str
    status: str  # "accepted" or "rejected"
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
        return [f for f in self.files if f.status == "accepted"]

    @property
    def rejected(self) -> list[FileRecord]:
        return [f for f in self.files if f.status == "rejected"]


def is_candidate(entry: Path) -> bool:
    """A name ending in .csv (any case); everything else, such as a stray `Icon\\r`, is ignored."""
    return entry.name.lower().endswith(".csv") and not entry.name.startswith(".")


def list_source_files(folder: Path) -> list[Path]:
    """Candidate CSV files in name order (name order is also the row order of finaldata.csv)."""
    if not folder.is_dir():
        raise StageError(f"input folder {folder} does not exist")
    return sorted((entry for entry in folder.iterdir() if is_candidate(entry)), key=lambda p: p.name)


def refusal(path: Path, folder: Path) -> str | None:
    """Why an entry is refused without being opened (a link out of the folder, a broken link,
    a directory); None for a file to read. Nothing outside the input folder is ever opened."""
    if path.is_symlink():
        target = path.resolve()
        if not target.is_relative_to(folder.resolve()):
            return "is a symlink pointing outside the input folder"
        if not target.exists():
            return "is a symlink to a file that does not exist"
    if path.is_dir():
        return "is a directory, not a file"
    return None


def read_source_file(path: Path, folder: Path, schema: Schema) -> tuple["pd.DataFrame | None", FileRecord]:
    """Read one source file once (bytes hashed and parsed together) and check it."""
    record = FileRecord(name=path.name, status="rejected")
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
        text = decode_csv_bytes(data, path.name)
        record.rows_read = max(len(text.splitlines()) - 1, 0)
        frame = frame_from_text(text, schema, path.name)
    except DataError as exc:
        record.reason = exc.problem
        record.rows_rejected = exc.bad_rows or record.rows_read
        return None, record
    except OSError as exc:
        record.reason = f"cannot be read: {exc.strerror}"
        return None, record
    record.status = "accepted"
    record.rows_read = len(frame)
    return frame, record


def combine(frames: list["pd.DataFrame"]) -> tuple["pd.DataFrame", int]:
    """Concatenate in file order and drop exact duplicate rows, keeping the first; pure."""
    import pandas as pd

    combined = pd.concat(frames, ignore_index=True)
    deduplicated = combined.drop_duplicates(keep="first", ignore_index=True)
    return deduplicated, len(combined) - len(deduplicated)


def write_outputs(config: Config, frame: "pd.DataFrame", result: IngestionResult) -> None:
    """Each output is replaced atomically; the record is written last, naming what the others hold."""
    with atomic_output(config.final_data_csv) as tmp:
        frame.to_csv(tmp, index=False, lineterminator="\n")
    atomic_write_text(config.ingested_files_txt, "".join(f"{f.name}\n" for f in result.accepted))
    atomic_write_json(config.ingestion_record, {**asdict(result), "input_folder": str(config.input_folder)})


def ingest(config: Config, only: set[str] | None = None) -> IngestionResult:
    """Ingest the input folder (optionally only the named files); raise StageError when nothing valid remains."""
    started = time.perf_counter()
    schema = Schema.from_config(config)
    files = [p for p in list_source_files(config.input_folder) if only is None or p.name in only]
    if not files:
        raise StageError(f"no CSV files in {config.input_folder}; earlier outputs left as they were")
    frames, records = [], []
    for path in files:
        frame, record = read_source_file(path, config.input_folder, schema)
        records.append(record)
        if frame is None:
            log.error("rejected %s: %s", record.name, record.reason)
        else:
            log.info("accepted %s: %d rows (sha256 %s)", record.name, record.rows_read, record.sha256[:12])
            frames.append(frame)
    result = IngestionResult(files=records)
    if not frames:
        raise StageError(
            f"no valid data in {config.input_folder} ({len(records)} file(s) rejected); earlier outputs left as they were"
        )
    frame, result.duplicates_dropped = combine(frames)
    result.rows_before_dedup = sum(f.rows_read for f in result.accepted)
    result.rows_written = len(frame)
    result.seconds = round(time.perf_counter() - started, 4)
    write_outputs(config, frame, result)
    log.info(
        "wrote %s: %d rows from %d file(s), %d duplicate row(s) dropped, %d file(s) rejected",
        config.final_data_csv, result.rows_written, len(result.accepted), result.duplicates_dropped, len(result.rejected),
    )
    return result


def _body(config: Config, args: argparse.Namespace) -> int:
    ingest(config)
    return 0


def main(argv: list[str] | None = None) -> int:
    return run_main(__doc__.splitlines()[0], _body, argv)


if __name__ == "__main__":
    raise SystemExit(main())
