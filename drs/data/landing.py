"""The database batches' side of the fetch: the watermark (what has landed), and landing new rows exactly once.

A watermark value is stored as JSON with its type and shown in batch file names in an order that sorts like the
values. `Mark` is what has landed: the highest value, and the identities (the watermark value and the row's five
values, hashed) of the rows landed within the margin behind it, so that rows stamped equal to the watermark but
committed after the last fetch are told apart from those already landed (`fresh_rows`). `recover` settles what a
killed fetch left; `land` writes a batch under a temporary name, records it `pending`, renames it into place and
marks it `landed`, so a kill anywhere neither loses nor repeats rows. drs/data/dbsource.py runs the query and calls
these in order; docs/database.md gives the exactly-once reasoning.

Light on purpose (the csv module writes the batch): no pandas, polars or SQLAlchemy on this path.
"""

from __future__ import annotations

import contextlib
import csv
import datetime as dt
import decimal
import hashlib
import io
import json
import logging
import math
import os
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from drs.core.errors import StageError
from drs.core.fileio import fsync_dir, sha256_bytes
from drs.core.layout import TMP_PREFIX
from drs.history import batches as batch_store

if TYPE_CHECKING:
    from drs.core.settings import Config
    from drs.data.schema import Schema

log = logging.getLogger("dbsource")  # the fetch's logger: its lines read as one story

BATCH_PREFIX = "db-"
TMP_BATCH_PREFIX = TMP_PREFIX + BATCH_PREFIX
ValueJSON = dict[str, str | int | float]  # a watermark value with its type: {"datetime": "..."}, {"value": 3}, ...


# ---- watermark values: stored as JSON with their type, shown in file names ----------------------------------------


def value_json(value: Any) -> ValueJSON:
    """A watermark value as a JSON object that `from_json` turns back into the same value (to bind as `:watermark`)."""
    if isinstance(value, dt.datetime):
        return {"datetime": value.isoformat()}
    if isinstance(value, dt.date):
        return {"date": value.isoformat()}
    if isinstance(value, decimal.Decimal):
        return {"decimal": str(value)}
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise StageError(f"the watermark column has a value of type {type(value).__name__}; use a time stamp, a date, a number or text")
    return {"value": value}


def from_json(obj: ValueJSON) -> Any:
    """The value `value_json` stored."""
    kind, value = next(iter(obj.items()))
    if kind == "datetime":
        return dt.datetime.fromisoformat(str(value))
    if kind == "date":
        return dt.date.fromisoformat(str(value))
    if kind == "decimal":
        return decimal.Decimal(str(value))
    return value


def encode(value: Any) -> str:
    return json.dumps(value_json(value))


def name_part(value: Any) -> str:
    """A watermark value as part of a file name, in an order that sorts like the values (fixed-width numbers, compact times)."""
    if isinstance(value, dt.datetime):
        if value.tzinfo is not None:
            value = value.astimezone(dt.UTC)
        return (
            str(value.strftime("%Y%m%dT%H%M%S"))
            + (f".{value.microsecond:06d}" if value.microsecond else "")
            + ("Z" if value.tzinfo else "")
        )
    if isinstance(value, dt.date):
        return value.strftime("%Y%m%d")
    if isinstance(value, int):
        return f"{value:012d}"
    return re.sub(r"[^0-9A-Za-z.]+", "", str(value).replace(" ", "T"))[:40] or "x"


def batch_name(low: Any, high: Any, n: int = 1) -> str:
    return f"{BATCH_PREFIX}{name_part(low)}-{name_part(high)}{f'-{n}' if n > 1 else ''}.csv"


def unique_name(config: Config, low: Any, high: Any) -> str:
    """`db-<from>-<to>.csv`, with `-2`, `-3`... when a batch of that range was written before (rows at one stamp over
    several ticks, late rows within the margin): a batch never replaces another, and a pending one whose file is there landed."""
    taken = batch_store.self_written(config.history_db).keys()
    n = 1
    while (name := batch_name(low, high, n)) in taken or landed_on_disk(config, name):
        n += 1
    return name


# ---- the watermark, after settling a killed fetch (step 1 of a fetch) ---------------------------------------------------------


def landed_on_disk(config: Config, name: str) -> bool:
    return (config.input_folder / name).exists() or (config.kept_sources_folder / name).exists()


def recover(config: Config, key: str, dry_run: bool = False) -> None:
    """Settle pending batches (landed if their file is there, else forgotten) and remove half-written temporaries."""
    for batch in batch_store.source_batches(config.history_db, key, batch_store.BATCH_PENDING):
        landed = landed_on_disk(config, batch["name"])
        if not dry_run:
            batch_store.settle_batch(config.history_db, batch["id"], landed)
        log.info(
            "batch %s of a killed fetch %s",
            batch["name"],
            "landed: the watermark moves to its end" if landed else "never landed: fetched again",
        )
    if not dry_run and config.input_folder.is_dir():
        for entry in config.input_folder.iterdir():
            if entry.name.startswith(TMP_BATCH_PREFIX):
                with contextlib.suppress(OSError):
                    entry.unlink()


@dataclass(frozen=True)
class Mark:
    """What has landed: the highest watermark value (None before the first batch); the identities of the landed rows
    stamped within the margin behind it, by stamp; and `floor`: every row stamped at or below it landed (a record
    written before identities were kept, when the query asked for rows strictly past the watermark)."""

    value: Any = None
    seen: dict[Any, frozenset[str]] = field(default_factory=dict)
    floor: Any = None

    def landed(self, stamp: Any, identity: str) -> bool:
        return (self.floor is not None and stamp <= self.floor) or identity in self.seen.get(stamp, ())


def encode_mark(mark: Mark) -> str:
    """The batch record's `high`: the new watermark, the window's identities (sorted: the same state, the same text)."""
    seen = [[value_json(stamp), sorted(ids)] for stamp, ids in sorted(mark.seen.items(), key=lambda item: item[0])]
    floor = None if mark.floor is None else value_json(mark.floor)
    return json.dumps({"mark": value_json(mark.value), "seen": seen, "floor": floor}, separators=(",", ":"))


def decode_mark(text: str) -> Mark:
    state = json.loads(text)
    if "mark" not in state:  # a record from before: the bare value, and everything up to it landed
        value = from_json(state)
        return Mark(value, {}, value)
    floor = None if state.get("floor") is None else from_json(state["floor"])
    return Mark(from_json(state["mark"]), {from_json(stamp): frozenset(ids) for stamp, ids in state["seen"]}, floor)


def landed_mark(config: Config, key: str, dry_run: bool = False) -> Mark:
    """The newest landed batch's watermark state; an empty Mark before the first."""
    if dry_run:  # what recover() would decide, without changing anything
        for batch in batch_store.source_batches(config.history_db, key, batch_store.BATCH_PENDING):
            if landed_on_disk(config, batch["name"]):
                return decode_mark(batch["high"])
    landed = batch_store.source_batches(config.history_db, key, batch_store.BATCH_LANDED, limit=1)
    return decode_mark(landed[0]["high"]) if landed else Mark()


def watermark(config: Config, key: str, dry_run: bool = False) -> Any:
    """The highest watermark value landed; None before the first batch."""
    return landed_mark(config, key, dry_run).value


def behind(value: Any, seconds: float) -> Any:
    """`value` less the margin, in the value's own type: what `:watermark` is bound to and where the window starts."""
    if value is None or not seconds:
        return value
    if isinstance(value, dt.datetime):
        return value - dt.timedelta(seconds=seconds)
    if isinstance(value, dt.date):
        return value - dt.timedelta(days=math.ceil(seconds / 86400))
    if isinstance(value, str):  # a time stamp stored as text (SQLite): the same form, so it compares as text does
        with contextlib.suppress(ValueError):
            earlier = dt.datetime.fromisoformat(value) - dt.timedelta(seconds=seconds)
            fraction = "." in value or earlier.microsecond
            return earlier.isoformat(sep="T" if "T" in value else " ", timespec="microseconds" if fraction else "seconds")
    raise StageError(f"source_watermark_margin_seconds needs time stamps or dates in the watermark column, not {value!r}; set it to 0")


def identity(stamp: Any, values: list[Any]) -> str:
    """What tells a row from another at the same stamp: its watermark value and five values (the same instant in any
    time zone is the same stamp). A changed row at an unchanged stamp is a new identity, so it lands again."""
    if isinstance(stamp, dt.datetime) and stamp.tzinfo is not None:
        stamp = stamp.astimezone(dt.UTC)
    return hashlib.sha256(json.dumps([value_json(stamp), values]).encode("utf-8")).hexdigest()[:16]


@dataclass(frozen=True)
class Checked:
    """The stamped rows (the schema's five values) and their stamps; the rows whose watermark is NULL, named."""

    rows: list[list[Any]]
    stamps: list[Any]
    unstamped: list[str]


@dataclass(frozen=True)
class Fresh:
    """The rows of one fetch not landed before, their stamps and identities; how many had landed already."""

    rows: list[list[Any]]
    stamps: list[Any]
    identities: list[str]
    already_landed: int


def fresh_rows(checked: Checked, mark: Mark, start: Any, source: str, mark_column: str) -> Fresh:
    """Drop the rows landed before (and repeats within the fetch); StageError for rows stamped before `:watermark`."""
    rows, stamps, identities, taken = [], [], [], set()
    already = below = 0
    try:
        for values, stamp in zip(checked.rows, checked.stamps, strict=True):
            if start is not None and stamp < start:
                below += 1
                continue
            ident = identity(stamp, values)
            if ident in taken or mark.landed(stamp, ident):
                already += 1
                continue
            taken.add(ident)
            rows.append(values)
            stamps.append(stamp)
            identities.append(ident)
    except TypeError:
        raise StageError(f"{source}: the watermark column '{mark_column}' mixes types") from None
    if below:
        raise StageError(
            f"{source}: the source query returned {below} row(s) stamped before :watermark {start}, which may have landed "
            f"already (filter with {mark_column} >= :watermark)"
        )
    return Fresh(rows, stamps, identities, already)


def next_mark(mark: Mark, fresh: Fresh, margin: float) -> Mark:
    """The watermark after `fresh` lands: the highest stamp, and the identities of every landed row within the margin."""
    value = max(fresh.stamps) if mark.value is None else max(mark.value, *fresh.stamps)
    start = behind(value, margin)
    seen: dict[Any, set[str]] = {stamp: set(ids) for stamp, ids in mark.seen.items() if stamp >= start}
    for stamp, ident in zip(fresh.stamps, fresh.identities, strict=True):
        if stamp >= start:
            seen.setdefault(stamp, set()).add(ident)
    floor = mark.floor if mark.floor is not None and mark.floor >= start else None
    return Mark(value, {stamp: frozenset(ids) for stamp, ids in seen.items()}, floor)


# ---- the batch, written and recorded (step 4) ----------------------------------------------------------------------


def csv_bytes(schema: Schema, rows: list[list[Any]]) -> bytes:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(schema.columns)
    writer.writerows(rows)
    return buffer.getvalue().encode("utf-8")


def land(config: Config, key: str, name: str, data: bytes, rows: int, low: Any, mark: Mark) -> None:
    """Temporary file, fsync, `pending` record, rename into place, `landed` record: a kill anywhere neither loses nor repeats rows.

    The record holds the new watermark and the window's identities, so they take effect exactly when the file does."""
    folder = config.input_folder
    tmp = folder / f"{TMP_PREFIX}{name}"
    with open(tmp, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    try:
        batch_id = batch_store.add_batch(
            config.history_db, source=key, name=name, sha256=sha256_bytes(data), rows=rows, low=encode(low), high=encode_mark(mark)
        )
        os.replace(tmp, folder / name)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    fsync_dir(folder)
    batch_store.settle_batch(config.history_db, batch_id, landed=True)
