"""New rows from the company's database: each tick, the rows past the watermark land as one CSV in the input folder.

The rest of the job then treats the batch exactly like a dropped file (validation, drift, gate, reports).
Order of one fetch, under the run lock (docs/database.md gives the exactly-once reasoning):

1. Settle what a killed fetch left: a `pending` batch whose file is in the input folder (or among the kept
   copies) landed, so the watermark moves to its end; one whose file is not there never landed and is forgotten
   (its rows are fetched again); a half-written temporary `.tmp-db-*` is removed.
2. Run `source_query` with `:watermark` = the newest landed batch's highest watermark value (NULL the first time),
   read-only where the driver allows it and bounded by `source_timeout_seconds`. No rows: done, one round trip.
3. Check every row against the schema (a missing column, a NULL, text in a numeric column: one line naming the
   row and column; nothing written, the watermark not moved).
4. Write `db-<from>-<to>.csv` under a temporary name, fsync, record the batch `pending` (name, sha256, range),
   rename it into place, then mark it `landed`: the new watermark.

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
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from drs import history
from drs.errors import DataError, StageError
from drs.fileio import LockBusy, fsync_dir, run_lock, sha256_bytes
from drs.layout import TMP_PREFIX

if TYPE_CHECKING:
    from sqlalchemy.engine import URL, Engine

    from drs.settings import Config

log = logging.getLogger("dbsource")

MAX_COUNT = 2**53  # as drs/schema.py (not imported: it loads polars and numpy)
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


def encode(value: Any) -> str:
    """A watermark value as JSON that `decode` turns back into the same value (to bind as `:watermark`)."""
    if isinstance(value, dt.datetime):
        return json.dumps({"datetime": value.isoformat()})
    if isinstance(value, dt.date):
        return json.dumps({"date": value.isoformat()})
    if isinstance(value, decimal.Decimal):
        return json.dumps({"decimal": str(value)})
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise StageError(f"the watermark column has a value of type {type(value).__name__}; use a time stamp, a date, a number or text")
    return json.dumps({"value": value})


def decode(text: str) -> Any:
    kind, value = next(iter(json.loads(text).items()))
    if kind == "datetime":
        return dt.datetime.fromisoformat(value)
    if kind == "date":
        return dt.date.fromisoformat(value)
    if kind == "decimal":
        return decimal.Decimal(value)
    return value


def name_part(value: Any) -> str:
    """A watermark value as part of a file name, in an order that sorts like the values (fixed-width numbers, compact times)."""
    if isinstance(value, dt.datetime):
        if value.tzinfo is not None:
            value = value.astimezone(dt.UTC)
        return value.strftime("%Y%m%dT%H%M%S") + (f".{value.microsecond:06d}" if value.microsecond else "") + ("Z" if value.tzinfo else "")
    if isinstance(value, dt.date):
        return value.strftime("%Y%m%d")
    if isinstance(value, int):
        return f"{value:012d}"
    return re.sub(r"[^0-9A-Za-z.]+", "", str(value).replace(" ", "T"))[:40] or "x"


def batch_name(low: Any, high: Any) -> str:
    return f"{BATCH_PREFIX}{name_part(low)}-{name_part(high)}.csv"


# ---- step 1: the watermark, after settling a killed fetch ---------------------------------------------------------


def landed_on_disk(config: Config, name: str) -> bool:
    return (config.input_folder / name).exists() or (config.kept_sources_folder / name).exists()


def recover(config: Config, key: str, dry_run: bool = False) -> None:
    """Settle pending batches (landed if their file is there, else forgotten) and remove half-written temporaries."""
    for batch in history.source_batches(config.history_db, key, history.BATCH_PENDING):
        landed = landed_on_disk(config, batch["name"])
        if not dry_run:
            history.settle_batch(config.history_db, batch["id"], landed)
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


def watermark(config: Config, key: str, dry_run: bool = False) -> Any:
    """The highest watermark value of the newest landed batch; None before the first."""
    if dry_run:  # what recover() would decide, without changing anything
        for batch in history.source_batches(config.history_db, key, history.BATCH_PENDING):
            if landed_on_disk(config, batch["name"]):
                return decode(batch["high"])
    landed = history.source_batches(config.history_db, key, history.BATCH_LANDED, limit=1)
    return decode(landed[0]["high"]) if landed else None


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
    """The schema's columns (drs/schema.py's Schema, without loading polars): the id, the features, the target."""

    id_column: str
    features: tuple[str, ...]
    target: str

    @property
    def columns(self) -> tuple[str, ...]:
        return (self.id_column, *self.features, self.target)

    @classmethod
    def from_config(cls, config: Config) -> Columns:
        return cls(config.id_column, tuple(config.features), config.target)


def checked_rows(columns: list[str], rows: Sequence[Sequence[Any]], schema: Columns, mark_column: str, source: str) -> list[list[Any]]:
    """The rows as the schema's five columns, in its order; DataError naming the first bad row and column."""
    missing = [c for c in (*schema.columns, mark_column) if c not in columns]
    if missing:
        raise DataError(source, f"the source query returns no column {', '.join(map(repr, missing))} (it returns {', '.join(columns)})")
    at = {c: columns.index(c) for c in (*schema.columns, mark_column)}
    out = []
    for number, row in enumerate(rows, start=1):
        ident = row[at[schema.id_column]]
        where = f"row {number} ({schema.id_column} {ident!r})"
        if ident is None or not str(ident).strip():
            raise DataError(source, f"row {number}: column '{schema.id_column}' is empty (NULL)", 1)
        if row[at[mark_column]] is None:
            raise DataError(source, f"{where}: the watermark column '{mark_column}' is NULL", 1)
        values: list[Any] = [str(ident).strip()]
        for column in (*schema.features, schema.target):
            raw = row[at[column]]
            value = count_value(raw)
            if raw is None:
                raise DataError(source, f"{where}: column '{column}' is empty (NULL)", 1)
            if value is None:
                raise DataError(source, f"{where}: column '{column}' has {raw!r} where a whole number >= 0 is needed", 1)
            if column == schema.target and value not in (0, 1):
                raise DataError(source, f"{where}: column '{column}' must be 0 or 1 but is {raw!r}", 1)
            values.append(value)
        out.append(values)
    return out


# ---- step 4: the batch, written and recorded ----------------------------------------------------------------------


def csv_bytes(schema: Columns, rows: list[list[Any]]) -> bytes:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(schema.columns)
    writer.writerows(rows)
    return buffer.getvalue().encode("utf-8")


def land(config: Config, key: str, name: str, data: bytes, rows: int, low: Any, high: Any) -> None:
    """Temporary file, fsync, `pending` record, rename into place, `landed` record: a kill anywhere neither loses nor repeats rows."""
    folder = config.input_folder
    tmp = folder / f"{TMP_PREFIX}{name}"
    with open(tmp, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    try:
        batch_id = history.add_batch(
            config.history_db, source=key, name=name, sha256=sha256_bytes(data), rows=rows, low=encode(low), high=encode(high)
        )
        os.replace(tmp, folder / name)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    fsync_dir(folder)
    history.settle_batch(config.history_db, batch_id, landed=True)


@dataclass(frozen=True)
class Fetch:
    """What one fetch did: the batch that landed (None: no new rows), its rows, and the watermark before and after."""

    batch: str | None
    rows: int
    watermark_before: Any
    watermark_after: Any
    dry_run: bool = False

    def summary(self) -> dict[str, Any]:
        return {"batch": self.batch, "rows": self.rows, "watermark": str(self.watermark_after)}


def fetch(config: Config, dry_run: bool = False) -> Fetch:
    """One fetch (this module's docstring); `dry_run` only counts the rows that would land."""
    if not config.source_database_url:
        raise StageError("no source database configured (source_database_url or DRS_SOURCE_DATABASE_URL)")
    if not config.input_folder.is_dir():
        raise StageError(f"input folder {config.input_folder} does not exist")
    key, shown = source_key(config), redacted(config.source_database_url)
    recover(config, key, dry_run)
    mark = watermark(config, key, dry_run)
    columns, raw = run_query(config, mark)
    if not raw:
        log.info("source database %s: no rows past watermark %s", shown, mark)
        return Fetch(None, 0, mark, mark, dry_run)
    schema = Columns.from_config(config)
    rows = checked_rows(columns, raw, schema, config.source_watermark_column, f"source database {shown}")
    marks = [row[columns.index(config.source_watermark_column)] for row in raw]
    try:
        low, high = min(marks), max(marks)
    except TypeError:
        raise StageError(f"source database {shown}: the watermark column '{config.source_watermark_column}' mixes types") from None
    if mark is not None and not high > mark:
        raise StageError(f"source database {shown}: the source query returned rows not past the watermark {mark} (filter on :watermark)")
    name = batch_name(low, high)
    if dry_run:
        log.info("source database %s: %d row(s) past watermark %s would land as %s", shown, len(rows), mark, name)
        return Fetch(name, len(rows), mark, high, dry_run)
    land(config, key, name, csv_bytes(schema, rows), len(rows), low, high)
    log.info("source database %s: %d row(s) landed as %s; watermark %s -> %s", shown, len(rows), name, mark, high)
    return Fetch(name, len(rows), mark, high)


def fetch_by_hand(config: Config, dry_run: bool = False) -> str:
    """`python ingestion.py --from-database [--dry-run]`: one fetch under the run lock (never beside a cron tick); what it did, in words."""
    try:
        with run_lock(config.lock_file):
            done = fetch(config, dry_run)
    except LockBusy:
        raise StageError(f"a full-process run holds the lock {config.lock_file}; try again when it is done") from None
    if done.batch is None:
        return f"no new rows past watermark {done.watermark_before}"
    if dry_run:
        return f"{done.rows} row(s) past watermark {done.watermark_before} would land as {done.batch} (dry run: nothing written)"
    return f"{done.rows} row(s) landed as {done.batch}; watermark {done.watermark_before} -> {done.watermark_after}"
