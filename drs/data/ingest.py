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

This module runs an ingestion and writes its outputs: drs/data/intake.py reads and checks the files (one
`FileRecord` each), drs/data/combine.py puts their rows in arrival order without duplicates and sums it up
(`IngestionResult`), drs/data/rowstore.py keeps the store. docs/data.md has the rules in full.
"""

from __future__ import annotations

import concurrent.futures
import logging
import shutil
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

import polars as pl

from drs.core.errors import StageError
from drs.core.fileio import atomic_output, atomic_write_json, atomic_write_text
from drs.core.settings import Config
from drs.core.stamps import Arrival
from drs.data import rowstore
from drs.data.combine import IngestionResult, Inputs, concatenated, file_labels, in_arrival_order, plan_increment, result_of
from drs.data.intake import Status, read_files, sources_to_ingest
from drs.data.schema import Schema, schema_of
from drs.data.sources import ArrivalPlan, recorded_files, repeat_line, repeats_to_tell, resent_line, waiting_line
from drs.history import files as file_store
from drs.history.record import Change

log = logging.getLogger("ingestion")


def write_csv(frame: pl.DataFrame, handle: Path | BinaryIO, header: bool = True) -> None:
    """The course's CSV: a header, no index, `\n` line ends, quotes only where needed."""
    frame.write_csv(handle, include_header=header, line_terminator="\n")


def write_outputs(config: Config, result: IngestionResult, write_final: Callable[[Path], None] | None) -> None:
    """Each output is replaced atomically; the record is written last, naming what the others hold."""
    if write_final is not None:
        with atomic_output(config.final_data_csv) as tmp:
            write_final(tmp)
    atomic_write_text(config.ingested_files_txt, "".join(f"{f.name}\n" for f in result.accepted))  # arrival order
    atomic_write_json(config.ingestion_record, result.to_record(str(config.input_folder)))


def no_valid_data(config: Config, count: int) -> StageError:
    return StageError(f"no valid data in {config.input_folder} ({count} file(s) rejected); earlier outputs left as they were")


def ingest_increment(
    config: Config, schema: Schema, manifest: rowstore.Manifest, inputs: Inputs
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
    part: rowstore.Part | None = None
    repeated: dict[tuple[str, str], int] = {}
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
    result = result_of(carried + records, written, inputs, order, repeated)

    def append(tmp: Path) -> None:
        shutil.copyfile(config.final_data_csv, tmp)
        with open(tmp, "ab") as handle:
            write_csv(rows, handle, header=False)

    remember_arrivals(config, order)
    write_outputs(config, result, append if part else None)
    stored = manifest["parts"] + ([part] if part else [])
    commit_store(config, manifest["generation"], stored, written, result)
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
    result = result_of(records, rows.height, inputs, order, rowstore.repeats(combined, files, hashes, keep))
    generation = rowstore.new_generation()
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:  # Parquet and CSV written side by side
        part = pool.submit(rowstore.write_part, config.output_folder, generation, 1, rows, kept_hashes, kept_files)
        remember_arrivals(config, order)
        write_outputs(config, result, lambda tmp: write_csv(rows, tmp))
        commit_store(config, generation, [part.result()], rows.height, result)
    return result, order


def arrivals_of(config: Config) -> list[Arrival]:
    """The input folder's recorded arrivals; StageError naming the record when it cannot be read."""
    try:
        return file_store.arrivals(config.arrivals_record, str(config.input_folder))
    except sqlite3.Error as exc:
        raise StageError(
            f"cannot read the files' arrival order in {config.arrivals_record}: {exc}; earlier outputs left as they were"
        ) from None


def remember_arrivals(config: Config, order: ArrivalPlan) -> None:
    """Record the files' arrivals before any output changes, so finaldata.csv never holds an order the record lacks."""
    try:
        file_store.record_arrivals(config.arrivals_record, str(config.input_folder), order.record)
    except sqlite3.Error as exc:
        raise StageError(
            f"cannot record the files' arrival order in {config.arrivals_record}: {exc}; earlier outputs left as they were"
        ) from None


def commit_store(config: Config, generation: str, parts: list[rowstore.Part], rows: int, result: IngestionResult) -> None:
    """The store's manifest written last: the commit of this ingestion (drs/data/rowstore.py)."""
    manifest = rowstore.Manifest(
        identity=rowstore.identity(config.input_folder, schema_of(config).columns),
        generation=generation,
        parts=parts,
        rows=rows,
        files=[f.to_record() for f in result.files],
        finaldata=rowstore.file_stamp(config.final_data_csv),
    )
    rowstore.commit(config.output_folder, manifest)


def ingest(config: Config, now: float | None = None) -> IngestionResult:
    """Ingest the input folder as it is at `now` (default: now); raise StageError when nothing valid remains."""
    started = time.perf_counter()
    schema = schema_of(config)
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


def labels_line(change: Change) -> str:
    """The plain line for a file whose only change is labels filled in (drs/data/intake.py `labels_filled_in`)."""
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
    for again in result.resent:
        log.warning("%s", resent_line(again))
    for repeat in repeats_to_tell(result.resent, result.repeats):
        log.log(logging.WARNING if repeat["whole"] else logging.INFO, "%s", repeat_line(repeat))
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
