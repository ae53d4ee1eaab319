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

This module holds the connection and the query (steps 2 and 3: the URL, the engine, the rows checked against the
schema of drs/data/schema.py) and `fetch`, which runs the four steps; drs/data/landing.py holds the watermark and the
landing of a batch (steps 1 and 4). SQLAlchemy and the driver are imported here, inside functions, and this module
only when a database is configured: the tick without one never loads them. The csv module writes the batch: no
pandas on this path. docs/database.md has the settings and the reasoning in full.
"""

from __future__ import annotations

import decimal
import hashlib
import logging
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from drs.core import ids as id_rule
from drs.core.errors import DataError, StageError
from drs.core.redact import scrub
from drs.data.landing import Checked, behind, csv_bytes, fresh_rows, land, landed_mark, next_mark, recover, unique_name
from drs.data.schema import MAX_COUNT, Schema, schema_of
from drs.history.record import FetchRecord  # the run record's part, declared with it

if TYPE_CHECKING:
    from sqlalchemy.engine import URL, Engine

    from drs.core.settings import Config

log = logging.getLogger("dbsource")


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


def one_line(text: str, url: str) -> str:
    """The first line of a driver's message, spaces collapsed, every part of the URL that may be secret hidden (drs/core/redact.py)."""
    return scrub(" ".join(str(text).split("\n")[0].split()), url)


# ---- step 2: the query ------------------------------------------------------------------------------------------


def engine(config: Config) -> Engine:
    """An engine that opens one connection per fetch (no pool), read-only and bounded by source_timeout_seconds where the driver allows."""
    from sqlalchemy import create_engine
    from sqlalchemy.pool import NullPool

    url = parsed_url(config.source_database_url or "")
    seconds = config.source_timeout_seconds
    connect_args: dict[str, float | str] = {}
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
            raise StageError(f"source database {shown}: cannot connect: {one_line(str(error.orig), url)}") from None
        with conn:
            try:
                result = conn.execute(text(config.source_query), {"watermark": mark})
                return list(result.keys()), result.fetchall()
            except (exc.DBAPIError, exc.StatementError) as error:
                cause = getattr(error, "orig", None) or error
                raise StageError(f"source database {shown}: the source query failed: {one_line(str(cause), url)}") from None
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


def checked_rows(columns: list[str], rows: Sequence[Sequence[Any]], schema: Schema, mark_column: str, source: str) -> Checked:
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

    def to_record(self) -> FetchRecord:
        return {
            "batch": self.batch,
            "rows": self.rows,
            "watermark": str(self.watermark_after),
            "already_landed": self.already_landed,
            "null_watermark": self.null_watermark,
        }

    def summary(self) -> FetchRecord:
        """`to_record`, by the name the run (drs/pipeline/run.py) calls."""
        return self.to_record()


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
    schema = schema_of(config)
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
