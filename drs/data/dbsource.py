"""New rows from the company's database: each tick, the rows at or past the watermark land as one CSV in the input folder.

The rest of the job then treats the batch exactly like a dropped file (validation, drift, gate, reports).
Order of one fetch, under the run lock (docs/database.md gives the exactly-once reasoning):

1. Settle what a killed fetch left: a `pending` batch whose file is in the input folder (or among the kept
   copies) landed, so the watermark moves to its end; one whose file is not there never landed and is forgotten
   (its rows are fetched again); a half-written temporary `.tmp-db-*` is removed.
2. Run `source_query` with `:watermark` = the landed watermark less `source_watermark_margin_seconds` (NULL the
   first time), read-only where the driver allows it and bounded by `source_timeout_seconds`. The query asks for
   rows `>=` it: rows stamped equal to the watermark but committed after the last fetch come back with those
   already landed, and are told apart by their identity (the watermark value and the row's five values, hashed),
   which the landed record keeps for every row in the window. No rows: done, one round trip.
3. Rows whose watermark is NULL are named (log and run record) and left for a later tick: they land once stamped.
   Every other row is checked against the schema (a missing column, a NULL, text in a numeric column, an id the
   readers refuse (drs/core/ids.py): one line naming the row and column; nothing written, the watermark not moved).
   Rows already landed are dropped.
4. Write `db-<from>-<to>.csv` under a temporary name, fsync, record the batch `pending` (name, sha256, range, the
   new watermark and the identities in its window), rename it into place, then mark it `landed`: the new watermark.

SQLAlchemy and the driver are imported here, inside functions, and this module only when a database is configured:
the tick without one never loads them. The csv module writes the batch: no pandas on this path.
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
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from drs.core import ids as id_rule
from drs.core.errors import DataError, StageError
from drs.core.fileio import fsync_dir, sha256_bytes
from drs.core.layout import TMP_PREFIX
from drs.history import batches as batch_store

if TYPE_CHECKING:
    from sqlalchemy.engine import URL, Engine

    from drs.core.settings import Config

log = logging.getLogger("dbsource")

MAX_COUNT = 2**53  # as drs/data/schema.py (not imported: it loads polars and numpy)
BATCH_PREFIX = "db-"
TMP_BATCH_PREFIX = TMP_PREFIX + BATCH_PREFIX


# ---- the URL, redacted: what logs, errors and the history may show --------------------------------------------


def parsed_url(url: str) -> URL:
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        return make_url(url)
    except (ArgumentError, ValueError):
        raise StageError("source_database_url is not a SQLAlchemy URL (dialect+driver://user:password@host:port/database)") from None


def redacted(url: str) -> str:
    """Scheme, host, port and database only: never the user's password, nor query parameters that may hold one."""
    u = parsed_url(url)
    host = f"{u.host or ''}{f':{u.port}' if u.port else ''}"
    return f"{u.drivername}://{host}/{u.database or ''}"


def source_key(config: Config) -> str:
    """Which database and watermark the recorded batches belong to (a digest: the history holds no URL)."""
    identity = f"{redacted(config.source_database_url or '')}|{config.source_watermark_column}"
    return hashlib.sha256(identity.encode("utf-8")).hexdigest()[:16]


def scrub(text: str, url: str) -> str:
    """One line of a driver's message, the password (if any) replaced."""
    line = " ".join(str(text).split("\n")[0].split())
    password = parsed_url(url).password
    return line.replace(str(password), "***") if password else line


# ---- watermark values: stored as JSON with their type, shown in file names ----------------------------------------


def value_json(value: Any) -> dict[str, Any]:
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


def from_json(obj: dict[str, Any]) -> Any:
    kind, value = next(iter(obj.items()))
    if kind == "datetime":
        return dt.datetime.fromisoformat(value)
    if kind == "date":
        return dt.date.fromisoformat(value)
    if kind == "decimal":
        return decimal.Decimal(value)
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


# ---- step 1: the watermark, after settling a killed fetch ---------------------------------------------------------


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


# ---- step 2: the query ------------------------------------------------------------------------------------------


def engine(config: Config) -> Engine:
    """An engine that opens one connection per fetch (no pool), read-only and bounded by source_timeout_seconds where the driver allows."""
    from sqlalchemy import create_engine
    from sqlalchemy.pool import NullPool

    url = parsed_url(config.source_database_url or "")
    seconds = config.source_timeout_seconds
    connect_args: dict[str, Any] = {}
    if url.get_backend_name() == "sqlite":
        # open the file read-only (a missing file is an error, not a new empty database); `timeout` bounds waiting on a lock
        url = url.set(database=f"file:{url.database}?mode=ro", query={**url.query, "uri": "true"})
        connect_args["timeout"] = seconds
    elif url.get_backend_name() == "postgresql":
        # sent with the connection itself: no extra round trip for read-only or the statement limit
        millis = max(int(seconds * 1000), 1)
        connect_args["connect_timeout"] = max(math.ceil(seconds), 1)
        connect_args["options"] = f"-c default_transaction_read_only=on -c statement_timeout={millis}"
    return create_engine(url, poolclass=NullPool, connect_args=connect_args)


def run_query(config: Config, mark: Any) -> tuple[list[str], Sequence[Sequence[Any]]]:
    """Column names and rows of `source_query` past `mark`; one line naming what failed."""
    from sqlalchemy import exc, text

    url, shown = config.source_database_url or "", redacted(config.source_database_url or "")
    eng = engine(config)
    try:
        try:
            conn = eng.connect()
        except exc.DBAPIError as error:
            raise StageError(f"source database {shown}: cannot connect: {scrub(str(error.orig), url)}") from None
        with conn:
            try:
                result = conn.execute(text(config.source_query), {"watermark": mark})
                return list(result.keys()), result.fetchall()
            except (exc.DBAPIError, exc.StatementError) as error:
                cause = getattr(error, "orig", None) or error
                raise StageError(f"source database {shown}: the source query failed: {scrub(str(cause), url)}") from None
    finally:
        eng.dispose()


# ---- step 3: the rows, checked ----------------------------------------------------------------------------------


def count_value(value: Any) -> int | None:
    """A whole number >= 0 (an int, or a float/Decimal without fraction); None for anything else, text included."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        number = value
    elif isinstance(value, (float, decimal.Decimal)) and math.isfinite(value) and value == int(value):
        number = int(value)
    else:
        return None
    return number if 0 <= number <= MAX_COUNT else None


@dataclass(frozen=True)
class Columns:
    """The schema's columns (drs/data/schema.py's Schema, without loading polars): the id, the features, the target, and
    the longest id accepted (drs/core/ids.py)."""

    id_column: str
    features: tuple[str, ...]
    target: str
    max_id_length: int = id_rule.DEFAULT_MAX_LENGTH

    @property
    def columns(self) -> tuple[str, ...]:
        return (self.id_column, *self.features, self.target)

    @classmethod
    def from_config(cls, config: Config) -> Columns:
        return cls(config.id_column, tuple(config.features), config.target, config.max_id_length)


@dataclass(frozen=True)
class Checked:
    """The stamped rows (the schema's five values) and their stamps; the rows whose watermark is NULL, named."""

    rows: list[list[Any]]
    stamps: list[Any]
    unstamped: list[str]


def checked_rows(columns: list[str], rows: Sequence[Sequence[Any]], schema: Columns, mark_column: str, source: str) -> Checked:
    """The rows as the schema's five columns, in its order; DataError naming the first bad row and column. A NULL target
    is a label not known yet (None, an empty cell in the landed file); a NULL anywhere else is an error.

    A row whose watermark is NULL is set aside, named, and not checked further: no watermark moves past it, so it comes
    back each tick (the query asks for `IS NULL`) and lands once stamped. A bad value blocks the batch instead: a
    watermark moving past its row would lose it."""
    missing = [c for c in (*schema.columns, mark_column) if c not in columns]
    if missing:
        raise DataError(source, f"the source query returns no column {', '.join(map(repr, missing))} (it returns {', '.join(columns)})")
    at = {c: columns.index(c) for c in (*schema.columns, mark_column)}
    out, stamps, unstamped = [], [], []
    for number, row in enumerate(rows, start=1):
        ident = row[at[schema.id_column]]
        where = f"row {number} ({schema.id_column} {id_rule.clipped(ident) if isinstance(ident, str) else repr(ident)})"
        if row[at[mark_column]] is None:
            unstamped.append(where)
            continue
        if ident is None or not str(ident).strip():
            raise DataError(source, f"row {number}: column '{schema.id_column}' is empty (NULL)", 1)
        values: list[Any] = [str(ident).strip()]
        wrong = id_rule.problem(values[0], schema.max_id_length)  # the readers' rule: the batch would be rejected whole
        if wrong:
            raise DataError(source, f"{where}: column '{schema.id_column}' {wrong}", 1)
        for column in (*schema.features, schema.target):
            raw = row[at[column]]
            if raw is None and column == schema.target:  # NULL exited: label not known yet, landed as an empty cell (docs/data.md)
                values.append(None)
                continue
            value = count_value(raw)
            if raw is None:
                raise DataError(source, f"{where}: column '{column}' is empty (NULL)", 1)
            if value is None:
                raise DataError(source, f"{where}: column '{column}' has {raw!r} where a whole number >= 0 is needed", 1)
            if column == schema.target and value not in (0, 1):
                raise DataError(source, f"{where}: column '{column}' must be 0 or 1 but is {raw!r}", 1)
            values.append(value)
        out.append(values)
        stamps.append(row[at[mark_column]])
    return Checked(out, stamps, unstamped)


def unstamped_message(source: str, mark_column: str, unstamped: list[str], shown: int = 20) -> str | None:
    """One line naming the rows whose watermark is NULL (the first `shown` of them)."""
    if not unstamped:
        return None
    more = f" and {len(unstamped) - shown} more" if len(unstamped) > shown else ""
    return (
        f"{source}: {len(unstamped)} row(s) with the watermark column '{mark_column}' NULL, not landed until it is set: "
        f"{', '.join(unstamped[:shown])}{more}"
    )


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


# ---- step 4: the batch, written and recorded ----------------------------------------------------------------------


def csv_bytes(schema: Columns, rows: list[list[Any]]) -> bytes:
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


@dataclass(frozen=True)
class Fetch:
    """What one fetch did: the batch that landed (None: no new rows), its rows, the watermark before and after, the rows
    read again that had landed already, and the line naming rows whose watermark is NULL (None: there are none)."""

    batch: str | None
    rows: int
    watermark_before: Any
    watermark_after: Any
    dry_run: bool = False
    already_landed: int = 0
    null_watermark: str | None = None

    def summary(self) -> dict[str, Any]:
        return {
            "batch": self.batch,
            "rows": self.rows,
            "watermark": str(self.watermark_after),
            "already_landed": self.already_landed,
            "null_watermark": self.null_watermark,
        }


STRICT = re.compile(r">\s*:watermark\b")


def fetch(config: Config, dry_run: bool = False) -> Fetch:
    """One fetch (this module's docstring); `dry_run` only counts the rows that would land."""
    if not config.source_database_url:
        raise StageError("no source database configured (source_database_url or DRS_SOURCE_DATABASE_URL)")
    if not config.input_folder.is_dir():
        raise StageError(f"input folder {config.input_folder} does not exist")
    key, shown = source_key(config), redacted(config.source_database_url)
    source, column, margin = f"source database {shown}", config.source_watermark_column, config.source_watermark_margin_seconds
    if STRICT.search(config.source_query):
        log.warning("%s: source_query asks for rows > :watermark; rows stamped equal to it and committed later are missed (use >=)", source)
    recover(config, key, dry_run)
    mark = landed_mark(config, key, dry_run)
    start = behind(mark.value, margin)
    columns, raw = run_query(config, start)
    if not raw:
        log.info("%s: no rows at or past %s", source, start)
        return Fetch(None, 0, mark.value, mark.value, dry_run)
    schema = Columns.from_config(config)
    checked = checked_rows(columns, raw, schema, column, source)
    nulls = unstamped_message(source, column, checked.unstamped)
    if nulls:
        log.error("%s", nulls)
    fresh = fresh_rows(checked, mark, start, source, column)
    if not fresh.rows:
        log.info("%s: no new rows at or past %s (%d read again had landed)", source, start, fresh.already_landed)
        return Fetch(None, 0, mark.value, mark.value, dry_run, fresh.already_landed, nulls)
    after = next_mark(mark, fresh, margin)
    name = unique_name(config, min(fresh.stamps), max(fresh.stamps))
    done = Fetch(name, len(fresh.rows), mark.value, after.value, dry_run, fresh.already_landed, nulls)
    if dry_run:
        log.info("%s: %d row(s) past watermark %s would land as %s", source, len(fresh.rows), mark.value, name)
        return done
    land(config, key, name, csv_bytes(schema, fresh.rows), len(fresh.rows), min(fresh.stamps), after)
    log.info("%s: %d row(s) landed as %s; watermark %s -> %s", source, len(fresh.rows), name, mark.value, after.value)
    return done


def fetch_by_hand(config: Config, dry_run: bool = False) -> str:
    """`python ingestion.py --from-database [--dry-run]`: one fetch (the caller holds the run lock unless `dry_run`); what it did, in words."""
    done = fetch(config, dry_run)
    nulls = f"\n{done.null_watermark}" if done.null_watermark else ""
    if done.batch is None:
        return f"no new rows past watermark {done.watermark_before}{nulls}"
    if dry_run:
        return f"{done.rows} row(s) past watermark {done.watermark_before} would land as {done.batch} (dry run: nothing written){nulls}"
    return f"{done.rows} row(s) landed as {done.batch}; watermark {done.watermark_before} -> {done.watermark_after}{nulls}"
