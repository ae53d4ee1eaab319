"""The current ranking as indexed stores: what every view reads, a row at a time.

drs/reports/reporting.py writes them at each ranking, beside risklist.csv (which stays, for people and the course), each to
a temporary file renamed over the old one, so a reader opens either the old store or the new one; risklist.json
stamps them like the other files of the ranking (drs/reports/standing.py).

`risklist.sqlite` (`write_ranking`), the ranking:
  ranking      one row per active client in rank order (`rank` is the row id): risklist.csv's columns and values,
               the corporation as ingested (a unique index on it)
  search       rank -> the corporation casefolded: the page's search scans this narrow table
  summary      key -> JSON value: counts (active clients, above the threshold), the columns, the store's version

`clientrows.sqlite` (`write_client_rows`), each client's rows over time:
  files        the accepted source files of the ingestion, in arrival order, and whether each could be read
  client_rows  every row of those files, in order (an index on the corporation)
  summary      as above, with `rows_key`: the ingested files' names, content and where they were read from

The client rows change only with the ingestion, so a ranking that follows a deployment, not new data, leaves
clientrows.sqlite as it is (its `rows_key` still names the files) instead of reading the files again.

Reading is standard library only (sqlite3), so a web worker holds no frame and needs no pandas or polars; each
request opens the files read-only, so a worker never keeps a replaced store open.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import os
import signal
import sqlite3
import subprocess
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from drs.core.fileio import atomic_output

if TYPE_CHECKING:
    import polars as pl

    from drs.data.schema import Schema

VERSION = 1
RANKING, SEARCH, SUMMARY, FILES, CLIENT_ROWS = "ranking", "search", "summary", "files", "client_rows"


class StoreError(Exception):
    """A store is missing, unreadable or of another version; the message says which and what to run."""


def quoted(name: str) -> str:
    """An SQL identifier for a column name from the config."""
    return '"' + name.replace('"', '""') + '"'


# ---- writing (drs/reports/reporting.py, once per ranking) --------------------------------------------


@dataclass(frozen=True)
class SourceFile:
    """An accepted file of the ingestion, where to read it (its kept copy, else the input folder), its recorded sha256."""

    name: str
    path: Path | None
    sha256: str | None
    rows: int = 0  # as the ingestion recorded them (not part of what the rows are made of: a hint of the work)


def rows_key(files: Sequence[SourceFile], schema: Schema) -> str:
    """What the client rows are made of: each file's name, recorded content and where it is read from, and the columns."""
    text = json.dumps([VERSION, list(schema.columns), [[f.name, f.sha256, str(f.path) if f.path else None] for f in files]])
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


@contextlib.contextmanager
def _new_store(path: Path) -> Iterator[sqlite3.Connection]:
    """A connection to a new store that replaces `path` (atomically) when the block ends without error."""
    with atomic_output(path) as tmp:
        con = sqlite3.connect(tmp)
        try:
            con.execute("PRAGMA journal_mode = OFF")  # a temporary file: published whole by the rename, or never
            con.execute("PRAGMA synchronous = OFF")  # atomic_output fsyncs it before the rename
            yield con
            con.commit()
        finally:
            con.close()


def sql_type(dtype: Any) -> str:
    """The SQLite column type that keeps a polars column's values as they are (REAL keeps 1.0 a float, TEXT keeps '007')."""
    if dtype.is_integer():
        return "INTEGER"
    if dtype.is_float():
        return "REAL"
    return "TEXT"


def _summary(con: sqlite3.Connection, facts: dict[str, Any]) -> None:
    con.execute(f"CREATE TABLE {SUMMARY} (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
    con.executemany(f"INSERT INTO {SUMMARY} VALUES (?, ?)", [(k, json.dumps(v)) for k, v in facts.items()])


def write_ranking(path: Path, ranked: pl.DataFrame, schema: Schema, counts: dict[str, Any]) -> dict[str, Any]:
    """risklist.sqlite for `ranked` (risklist.csv's columns, in rank order, ranks 1 to n), with `counts`; atomically."""
    import polars as pl

    columns = list(ranked.columns)
    declared = ", ".join("rank INTEGER PRIMARY KEY" if c == "rank" else f"{quoted(c)} {sql_type(ranked.schema[c])}" for c in columns)
    ids = ranked[schema.id_column].cast(pl.String)
    facts = {**counts, "version": VERSION, "columns": columns, "features": list(schema.features), "id_column": schema.id_column}
    facts["first"] = ids[0] if len(ids) else None
    with _new_store(path) as con:
        con.execute(f"CREATE TABLE {RANKING} ({declared})")
        marks = ", ".join("?" for _ in columns)
        con.executemany(f"INSERT INTO {RANKING} ({', '.join(quoted(c) for c in columns)}) VALUES ({marks})", ranked.iter_rows())
        con.execute(f"CREATE TABLE {SEARCH} (rank INTEGER PRIMARY KEY, folded TEXT NOT NULL)")
        if bool((ids.str.len_bytes() == ids.str.len_chars()).all()):  # ASCII only: casefold is SQLite's lower()
            con.execute(f"INSERT INTO {SEARCH} SELECT rank, lower({quoted(schema.id_column)}) FROM {RANKING} ORDER BY rank")
        else:
            con.executemany(f"INSERT INTO {SEARCH} VALUES (?, ?)", zip(ranked["rank"].to_list(), [c.casefold() for c in ids], strict=True))
        _summary(con, facts)
        con.execute(f"CREATE UNIQUE INDEX ranking_corporation ON {RANKING} ({quoted(schema.id_column)})")
    return facts


def _current_key(path: Path) -> str | None:
    """The rows_key of the client rows store at `path`, if it is one of this version."""
    try:
        with opened(path) as con:
            return str(summary(con).get("rows_key"))
    except StoreError:
        return None


def write_client_rows(path: Path, files: Sequence[SourceFile], schema: Schema) -> dict[str, Any]:
    """clientrows.sqlite: every row of each accepted file, in order (the checked reader's values), a file that cannot
    be read marked; left as it is when it already holds the rows of these files. Atomically."""
    import polars as pl

    from drs.core.errors import DataError
    from drs.data.schema import read_polars_checked

    key = rows_key(files, schema)
    if _current_key(path) == key:
        return {"rows_key": key, "written": False, "unreadable": []}
    columns = (*schema.features, schema.target)
    values = ", ".join(f"{quoted(c)} INTEGER" for c in columns)  # checked counts and 0/1
    insert = f"INSERT INTO {CLIENT_ROWS} (corporation, file, {', '.join(quoted(c) for c in columns)}) VALUES (?, ?, {', '.join('?' for _ in columns)})"
    count, unreadable = 0, []
    with _new_store(path) as con:
        con.execute(f"CREATE TABLE {FILES} (position INTEGER PRIMARY KEY, name TEXT NOT NULL, readable INTEGER NOT NULL)")
        con.execute(f"CREATE TABLE {CLIENT_ROWS} (seq INTEGER PRIMARY KEY, corporation TEXT NOT NULL, file INTEGER NOT NULL, {values})")
        for position, source in enumerate(files, start=1):
            frame = None
            if source.path is not None:
                try:
                    frame = read_polars_checked(source.path, schema, source=source.name, unlabelled=True)
                except (DataError, OSError) as exc:
                    unreadable.append(f"{source.name}: {exc}")
            con.execute(f"INSERT INTO {FILES} VALUES (?, ?, ?)", (position, source.name, int(frame is not None)))
            if frame is not None:
                rows = frame.select(pl.col(schema.id_column).cast(pl.String), pl.lit(position, dtype=pl.Int64), *columns)
                con.executemany(insert, rows.iter_rows())
                count += rows.height
        _summary(con, {"version": VERSION, "rows_key": key, "rows": count, "files": len(files)})
        con.execute(f"CREATE INDEX client_rows_corporation ON {CLIENT_ROWS} (corporation, seq)")
    return {"rows_key": key, "written": True, "rows": count, "unreadable": unreadable}


# ---- the helper process (drs/reports/reporting.py's Stores, for large data) -------------------------------


def file_task(source: SourceFile) -> dict[str, Any]:
    return {"name": source.name, "path": str(source.path) if source.path else None, "sha256": source.sha256, "rows": source.rows}


def run_task(task: dict[str, Any]) -> dict[str, Any]:
    """Write the store a task names: {"path", "schema", and "files" (client rows) or "ranked" and "counts" (the
    ranking; a frame, or the path of an Arrow IPC file of it, removed once read)}."""
    from drs.data.schema import Schema

    given = task["schema"]
    schema = Schema(
        given["id_column"], tuple(given["features"]), given["target"], optional_columns=tuple(given.get("optional_columns", ()))
    )
    path = Path(task["path"])
    if "files" in task:
        files = [SourceFile(f["name"], Path(f["path"]) if f["path"] else None, f["sha256"], f["rows"]) for f in task["files"]]
        return write_client_rows(path, files, schema)
    ranked = task["ranked"]
    if isinstance(ranked, str):
        import polars as pl

        frame = Path(ranked)
        try:
            ranked = pl.read_ipc(frame)
        finally:
            frame.unlink(missing_ok=True)
    return write_ranking(path, ranked, schema, task["counts"])


class Helper:
    """`python -m drs.reports.riskstore`: a process of its own (a second core for the SQLite inserts) that runs the tasks it
    is sent, one after the other. Started before its first task, so that its imports are done meanwhile."""

    def __init__(self) -> None:
        import drs

        root = str(Path(drs.__file__).resolve().parent.parent)  # the same drs as this process's
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in (root, os.environ.get("PYTHONPATH")) if p)}
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "drs.reports.riskstore"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
            text=True,
        )

    def send(self, task: dict[str, Any]) -> None:
        """One more task (small: the files' names, or the path of the ranked frame), run after those sent before."""
        assert self.proc.stdin is not None
        try:
            self.proc.stdin.write(json.dumps(task) + "\n")
            self.proc.stdin.flush()
        except BrokenPipeError:  # it died: `result` says why
            pass

    def result(self) -> dict[str, Any]:
        """The facts of the oldest task not yet answered; StoreError with its reason when it failed."""
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line:
            self.proc.wait()
            said = [t for t in (self.proc.stderr.read() if self.proc.stderr else "").splitlines() if t.strip()]
            raise StoreError(f"the helper writing the stores stopped ({self.proc.returncode}): {said[-1] if said else 'no message'}")
        answer: dict[str, Any] = json.loads(line)
        if "error" in answer:
            raise StoreError(f"the helper writing the stores failed: {answer['error']}")
        facts: dict[str, Any] = answer["facts"]
        return facts

    def stop(self) -> None:
        """End it: at once when it has no task left, else stopped (SIGTERM: a store half written is removed)."""
        if self.proc.stdin is not None and not self.proc.stdin.closed:
            with contextlib.suppress(BrokenPipeError):
                self.proc.stdin.close()
        try:
            self.proc.wait(timeout=0.5)
        except subprocess.TimeoutExpired:
            self.proc.terminate()
            self.proc.wait()
        for stream in (self.proc.stdout, self.proc.stderr):
            if stream is not None:
                stream.close()


def main() -> int:
    """The helper: tasks (one JSON object a line) on stdin, each answered by a line on stdout, {"facts": ...} or
    {"error": "..."}; it ends at the end of its input. Stopped (SIGTERM), it removes its temporary file."""
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))
    import polars  # noqa: F401  (before the first task arrives: the parent meanwhile ranks)

    from drs.data import schema  # noqa: F401

    for line in sys.stdin:
        try:
            answer: dict[str, Any] = {"facts": run_task(json.loads(line))}
        except Exception as exc:  # the parent reports it: one line, the cause
            answer = {"error": f"{type(exc).__name__}: {exc}"}
        print(json.dumps(answer), flush=True)
    return 0


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


def client_rows(con: sqlite3.Connection, corporation: str, features: Sequence[str], target: str) -> list[dict[str, Any]]:
    """The client's rows in each accepted file, in ingestion order; a file that could not be read is named, without rows."""
    found: dict[int, list[dict[str, Any]]] = {}
    sql = f"SELECT * FROM {CLIENT_ROWS} WHERE corporation = ? ORDER BY seq"
    for row in con.execute(sql, (corporation,)):
        found.setdefault(row["file"], []).append({"features": [_number(row[f]) for f in features], "exited": _number(row[target])})
    rows: list[dict[str, Any]] = []
    for position, name, readable in con.execute(f"SELECT position, name, readable FROM {FILES} ORDER BY position"):
        if not readable:
            rows.append({"file": name, "missing": True})
        rows += [{"file": name, **r} for r in found.get(position, [])]
    return rows


def _number(value: Any) -> int | float | None:
    if value is None or isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    if isinstance(value, float) and (math.isfinite(value) and value.is_integer()):
        return int(value)
    return value


if __name__ == "__main__":
    raise SystemExit(main())
