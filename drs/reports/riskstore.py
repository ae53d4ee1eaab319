"""The current ranking as indexed stores: what every view reads, a row at a time.

This module declares their tables and reads them; drs/reports/stores.py writes them at each ranking, beside
risklist.csv (which stays, for people and the course), each to a temporary file renamed over the old one, so a
reader opens either the old store or the new one; risklist.json stamps them like the other files of the ranking
(drs/reports/standing.py).

`risklist.sqlite` (stores.write_ranking), the ranking:
  ranking      one row per active client in rank order (`rank` is the row id): risklist.csv's columns and values,
               the corporation as ingested (a unique index on it)
  search       rank -> the corporation casefolded: the page's search scans this narrow table
  summary      key -> JSON value: counts (active clients, above the threshold), the columns, the store's version

`clientrows.sqlite` (stores.write_client_rows), each client's rows over time:
  files        the accepted source files of the ingestion, in arrival order, and whether each could be read
  client_rows  every row of those files, in order (an index on the corporation)
  summary      as above, with `rows_key`: the ingested files' names, content and where they were read from

The client rows change only with the ingestion, so a ranking that follows a deployment, not new data, leaves
clientrows.sqlite as it is (its `rows_key` still names the files) instead of reading the files again.

Reading is standard library only (sqlite3), so a web worker holds no frame and needs no pandas or polars; each
request opens the files read-only, so a worker never keeps a replaced store open.

More: docs/reports.md (The indexed stores every view reads).
"""

from __future__ import annotations

import contextlib
import json
import math
import sqlite3
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NotRequired, TypedDict, final

VERSION = 1
RANKING, SEARCH, SUMMARY, FILES, CLIENT_ROWS = "ranking", "search", "summary", "files", "client_rows"


class StoreError(Exception):
    """A store is missing, unreadable or of another version; the message says which and what to run."""


class Counts(TypedDict):
    """What a ranking counts, kept in risklist.sqlite's summary (the views show them without reading the rows)."""

    active_clients: int
    above_half: int
    threshold: float


@final
class RankingFacts(Counts):
    """risklist.sqlite's summary, as written: the counts, the store's version, its columns and the first corporation."""

    version: int
    columns: list[str]
    features: list[str]
    id_column: str
    first: str | None


def quoted(name: str) -> str:
    """An SQL identifier for a column name from the config."""
    return '"' + name.replace('"', '""') + '"'


# ---- reading (the views: standard library only) ----------------------------------------------


@contextlib.contextmanager
def opened(path: Path) -> Iterator[sqlite3.Connection]:
    """The store, read-only (StoreError when it is missing, unreadable or of another version)."""
    if not path.is_file():
        raise StoreError(f"no {path.name} yet: reporting.py writes it with the risk list (run it once after upgrading)")
    try:
        con = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    except sqlite3.Error as exc:
        raise StoreError(f"{path.name} cannot be opened: {exc}") from None
    try:
        con.row_factory = sqlite3.Row
        yield con
    except sqlite3.Error as exc:
        raise StoreError(f"{path.name} cannot be read: {exc}") from None
    finally:
        con.close()


def summary(con: sqlite3.Connection) -> dict[str, Any]:
    """The summary table (counts, columns, version); StoreError for a store of another version."""
    found = {key: json.loads(value) for key, value in con.execute(f"SELECT key, value FROM {SUMMARY}")}
    if found.get("version") != VERSION:
        raise StoreError(f"the store is of version {found.get('version')}, not {VERSION}: run reporting.py to write it again")
    return found


def records(con: sqlite3.Connection, where: str = "", args: Sequence[Any] = (), limit: int | None = None) -> list[dict[str, Any]]:
    """Rows of the ranking as dicts (risklist.csv's columns; an empty cell is None), in rank order."""
    sql = f"SELECT * FROM {RANKING} {where} ORDER BY rank" + (" LIMIT ?" if limit is not None else "")
    return [dict(row) for row in con.execute(sql, (*args, *([limit] if limit is not None else [])))]


def top(con: sqlite3.Connection, count: int) -> list[dict[str, Any]]:
    return records(con, limit=count)


def ranks(con: sqlite3.Connection, first: int, last: int) -> list[dict[str, Any]]:
    """The clients ranked `first` to `last` (1-based, inclusive)."""
    return records(con, "WHERE rank BETWEEN ? AND ?", (first, last))


def client(con: sqlite3.Connection, corporation: str, id_column: str) -> dict[str, Any] | None:
    found = records(con, f"WHERE {quoted(id_column)} = ?", (corporation,))
    return found[0] if found else None


@dataclass(frozen=True)
class Page:
    """One page of the ranking, or of a search: its rows (rank order, exact matches first), where it is, how many in all."""

    rows: list[dict[str, Any]]
    page: int
    pages: int
    first: int  # 1-based position of the first row shown (0 when none)
    last: int
    total: int


def _matching(con: sqlite3.Connection, needle: str, offset: int, count: int) -> list[int]:
    """The ranks of matches `offset` to `offset + count` of `needle` (casefolded): exact matches first, then the others
    in rank order; the rank order is the search table's, so a page is read without sorting the matches."""
    exact = [r[0] for r in con.execute(f"SELECT rank FROM {SEARCH} WHERE folded = ? ORDER BY rank", (needle,))]
    shown = exact[offset : offset + count]
    if len(shown) < count:
        sql = f"SELECT rank FROM {SEARCH} WHERE instr(folded, ?) > 0 AND folded != ? ORDER BY rank LIMIT ? OFFSET ?"
        shown += [r[0] for r in con.execute(sql, (needle, needle, count - len(shown), max(offset - len(exact), 0)))]
    return shown


def page(con: sqlite3.Connection, query: str, number: int, size: int, total: int) -> Page:
    """Page `number` (1-based; past the end: the last) of the `total` ranked clients, or of those whose corporation
    contains `query` (any case, casefolded: "AB" finds "xab"), exact matches first, each keeping its rank."""
    needle = query.strip().casefold()
    if needle:
        total = con.execute(f"SELECT count(*) FROM {SEARCH} WHERE instr(folded, ?) > 0", (needle,)).fetchone()[0]
    pages = max(1, math.ceil(total / size))
    number = min(max(number, 1), pages)
    start = (number - 1) * size
    if needle:
        shown = _matching(con, needle, start, size)
        found = {r["rank"]: r for r in records(con, f"WHERE rank IN ({', '.join('?' for _ in shown)})", shown)} if shown else {}
        rows = [found[r] for r in shown]
    else:
        rows = ranks(con, start + 1, start + size)
    return Page(rows, number, pages, start + 1 if rows else 0, start + len(rows), total)


class ClientValues(TypedDict):
    """A client's row in a file: its features in the schema's order, and its exit flag (None: empty or not a number)."""

    features: list[int | float | None]
    exited: int | float | None


class ClientRow(TypedDict):
    """A client's row as the page shows it, with its file; a file that could not be read shows as `missing`, without values."""

    file: str
    missing: NotRequired[bool]
    features: NotRequired[list[int | float | None]]
    exited: NotRequired[int | float | None]


def client_rows(con: sqlite3.Connection, corporation: str, features: Sequence[str], target: str) -> list[ClientRow]:
    """The client's rows in each accepted file, in ingestion order; a file that could not be read is named, without rows."""
    found: dict[int, list[ClientValues]] = {}
    sql = f"SELECT * FROM {CLIENT_ROWS} WHERE corporation = ? ORDER BY seq"
    for row in con.execute(sql, (corporation,)):
        found.setdefault(row["file"], []).append({"features": [_number(row[f]) for f in features], "exited": _number(row[target])})
    rows: list[ClientRow] = []
    for position, name, readable in con.execute(f"SELECT position, name, readable FROM {FILES} ORDER BY position"):
        if not readable:
            rows.append({"file": name, "missing": True})
        rows += [{"file": name, "features": r["features"], "exited": r["exited"]} for r in found.get(position, [])]
    return rows


def _number(value: Any) -> int | float | None:
    if value is None or isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    if isinstance(value, float) and (math.isfinite(value) and value.is_integer()):
        return int(value)
    return value
