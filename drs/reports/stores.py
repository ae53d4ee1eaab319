"""Writing the ranking's two stores (drs/reports/riskstore.py, which also reads them) at each ranking.

clientrows.sqlite needs only the ingestion record, so it starts first; risklist.sqlite follows once the list is
ranked. Each is written to a temporary file renamed over the old one. From PARALLEL_ROWS ingested rows the inserts
run in a helper process (`python -m drs.reports.stores`) on the machine's other core, sent one task a line.
drs/reports/reporting.py uses `Stores` as a context manager around one ranking; see docs/reports.md
(The indexed stores every view reads).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import signal
import sqlite3
import subprocess
import sys
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NotRequired, TypedDict, final

import polars as pl

import drs
from drs.core import layout
from drs.core.errors import DataError
from drs.core.fileio import atomic_output
from drs.core.settings import Config
from drs.data.readers import read_polars_checked
from drs.data.schema import Schema
from drs.data.sources import recorded_files
from drs.reports import risk
from drs.reports.riskstore import (
    CLIENT_ROWS,
    FILES,
    RANKING,
    SEARCH,
    SUMMARY,
    VERSION,
    Counts,
    RankingFacts,
    StoreError,
    opened,
    quoted,
    summary,
)


@final
class RowsFacts(TypedDict):
    """What writing clientrows.sqlite did: its rows_key, whether it was written (else kept), rows read, files unreadable."""

    rows_key: str
    written: bool
    rows: NotRequired[int]
    unreadable: list[str]


class FileTask(TypedDict):
    """A SourceFile as a task names it (JSON to the helper process)."""

    name: str
    path: str | None
    sha256: str | None
    rows: int


class SchemaRecord(TypedDict):
    id_column: str
    features: list[str]
    target: str
    max_id_length: int
    optional_columns: list[str]


class Task(TypedDict):
    """One store to write: `files` (client rows), or `ranked` (a frame, or the path of an Arrow IPC file of it) and `counts`."""

    path: str
    schema: SchemaRecord
    files: NotRequired[list[FileTask]]
    ranked: NotRequired[pl.DataFrame | str]
    counts: NotRequired[Counts]


class Answer(TypedDict, total=False):
    """The helper's line for one task: its facts, or the error that stopped it."""

    facts: RankingFacts | RowsFacts
    error: str


# ---- writing (drs/reports/stores.py, once per ranking) --------------------------------------------


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


def _summary(con: sqlite3.Connection, facts: Mapping[str, object]) -> None:
    con.execute(f"CREATE TABLE {SUMMARY} (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
    con.executemany(f"INSERT INTO {SUMMARY} VALUES (?, ?)", [(k, json.dumps(v)) for k, v in facts.items()])


def write_ranking(path: Path, ranked: pl.DataFrame, schema: Schema, counts: Counts) -> RankingFacts:
    """risklist.sqlite for `ranked` (risklist.csv's columns, in rank order, ranks 1 to n), with `counts`; atomically."""
    columns = list(ranked.columns)
    declared = ", ".join("rank INTEGER PRIMARY KEY" if c == "rank" else f"{quoted(c)} {sql_type(ranked.schema[c])}" for c in columns)
    ids = ranked[schema.id_column].cast(pl.String)
    facts: RankingFacts = {
        **counts,
        "version": VERSION,
        "columns": columns,
        "features": list(schema.features),
        "id_column": schema.id_column,
        "first": ids[0] if len(ids) else None,
    }
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


def write_client_rows(path: Path, files: Sequence[SourceFile], schema: Schema) -> RowsFacts:
    """clientrows.sqlite: every row of each accepted file, in order (the checked reader's values), a file that cannot
    be read marked; left as it is when it already holds the rows of these files. Atomically."""

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


# ---- the helper process (drs/reports/stores.py, for large data) -------------------------------


def file_task(source: SourceFile) -> FileTask:
    return {"name": source.name, "path": str(source.path) if source.path else None, "sha256": source.sha256, "rows": source.rows}


def run_task(task: Task) -> RankingFacts | RowsFacts:
    """Write the store a task names: client rows for `files`, else the ranking (`ranked`: a frame, or the path of an
    Arrow IPC file of it, removed once read)."""
    given = task["schema"]
    schema = Schema(
        id_column=given["id_column"],
        features=tuple(given["features"]),
        target=given["target"],
        max_id_length=given["max_id_length"],
        optional_columns=tuple(given["optional_columns"]),
    )
    path = Path(task["path"])
    if "files" in task:
        files = [SourceFile(f["name"], Path(f["path"]) if f["path"] else None, f["sha256"], f["rows"]) for f in task["files"]]
        return write_client_rows(path, files, schema)
    ranked = task["ranked"]
    if isinstance(ranked, str):
        frame = Path(ranked)
        try:
            ranked = pl.read_ipc(frame)
        finally:
            frame.unlink(missing_ok=True)
    return write_ranking(path, ranked, schema, task["counts"])


class Helper:
    """`python -m drs.reports.stores`: a process of its own (a second core for the SQLite inserts) that runs the tasks it
    is sent, one after the other. Started before its first task, so that its imports are done meanwhile."""

    def __init__(self) -> None:
        root = str(Path(drs.__file__).resolve().parent.parent)  # the same drs as this process's
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in (root, os.environ.get("PYTHONPATH")) if p)}
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "drs.reports.stores"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
            text=True,
        )

    def send(self, task: Task) -> None:
        """One more task (small: the files' names, or the path of the ranked frame), run after those sent before."""
        assert self.proc.stdin is not None
        try:
            self.proc.stdin.write(json.dumps(task) + "\n")
            self.proc.stdin.flush()
        except BrokenPipeError:  # it died: `result` says why
            pass

    def result(self) -> RankingFacts | RowsFacts:
        """The facts of the oldest task not yet answered; StoreError with its reason when it failed."""
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line:
            self.proc.wait()
            said = [t for t in (self.proc.stderr.read() if self.proc.stderr else "").splitlines() if t.strip()]
            raise StoreError(f"the helper writing the stores stopped ({self.proc.returncode}): {said[-1] if said else 'no message'}")
        answer: Answer = json.loads(line)
        if "error" in answer:
            raise StoreError(f"the helper writing the stores failed: {answer['error']}")
        return answer["facts"]

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
    for line in sys.stdin:
        try:
            answer: Answer = {"facts": run_task(json.loads(line))}
        except Exception as exc:  # the parent reports it: one line, the cause
            answer = {"error": f"{type(exc).__name__}: {exc}"}
        print(json.dumps(answer), flush=True)
    return 0


log = logging.getLogger("reporting")


def source_files(config: Config) -> list[SourceFile]:
    """The ingestion record's accepted files in arrival order, each with where to read it (its kept copy, else the
    input folder; None when neither is there) and its recorded sha256: the client views' rows over time."""
    found = []
    for entry in recorded_files(config.ingestion_record, config.input_folder):
        if entry.get("status") != "accepted":
            continue
        name = str(entry.get("name"))
        candidates = (config.kept_sources_folder / name, config.input_folder / name)
        path = next((p for p in candidates if p.is_file()), None)
        found.append(SourceFile(name, path, entry.get("sha256"), int(entry.get("rows_read") or 0)))
    return found


PARALLEL_ROWS = 200_000  # from this many ingested rows, the stores are written by helper processes


class Stores:
    """Writes the two stores (drs/reports/riskstore.py): by a helper process (`python -m drs.reports.stores`) on the machine's
    other core when the data is large (their SQLite inserts were half of a refresh at a million clients, in one
    thread), else here and now. clientrows.sqlite starts at once (it needs only the ingestion); `ranking` adds
    risklist.sqlite; `finish` waits for both and raises what failed; leaving the block ends the helper."""

    def __init__(self, config: Config, schema: Schema):
        self.config, self.schema = config, schema
        files = source_files(config)
        self.helper = Helper() if sum(f.rows for f in files) >= PARALLEL_ROWS else None
        self.pending: list[tuple[str, RankingFacts | RowsFacts | None]] = []  # None: the helper's answer, still to read
        self._start(layout.CLIENT_ROWS, {**self._where(layout.CLIENT_ROWS), "files": [file_task(f) for f in files]})

    def _where(self, name: str) -> Task:
        """The part every task has: the store's path and the schema."""
        schema = self.schema
        return {
            "path": str(self.config.model_output(name)),
            "schema": {
                "id_column": schema.id_column,
                "features": list(schema.features),
                "target": schema.target,
                "max_id_length": schema.max_id_length,
                "optional_columns": list(schema.optional_columns),
            },
        }

    def _start(self, name: str, task: Task) -> None:
        if self.helper is None:
            self.pending.append((name, run_task(task)))
            return
        self.helper.send(task)
        self.pending.append((name, None))

    def ranking(self, ranked: pl.DataFrame) -> None:
        counts: Counts = {"active_clients": ranked.height, "above_half": risk.above(ranked), "threshold": risk.THRESHOLD}
        if self.helper is None:
            self._start(layout.RISK_STORE, {**self._where(layout.RISK_STORE), "ranked": ranked, "counts": counts})
            return
        frame = self.config.model_output(f"{layout.TMP_PREFIX}ranked.arrow")  # removed by the helper, or by the next run
        ranked.write_ipc(frame)
        self._start(layout.RISK_STORE, {**self._where(layout.RISK_STORE), "ranked": str(frame), "counts": counts})

    def finish(self) -> None:
        """Wait until both stores are written (before risklist.json names them); raise what failed."""
        for name, facts in self.pending:
            self.tell(name, facts if facts is not None else self._answer())
        self.pending = []

    def _answer(self) -> RankingFacts | RowsFacts:
        assert self.helper is not None
        return self.helper.result()

    def __enter__(self) -> Stores:
        return self

    def __exit__(self, *failed: object) -> None:
        if self.helper is not None:  # after a failure, one still writing is stopped (it removes its temporary file)
            self.helper.stop()

    def tell(self, name: str, facts: RankingFacts | RowsFacts) -> None:
        path = self.config.model_output(name)
        if "active_clients" in facts:  # risklist.sqlite
            log.info("wrote %s: %d ranked clients", path, facts["active_clients"])
            return
        for problem in facts["unreadable"]:
            log.warning("the client views show a file as unreadable: %s", problem)
        if facts["written"]:
            log.info("wrote %s: %d client rows read from the ingested files", path, facts.get("rows", 0))
        else:
            log.info("%s kept: it holds the rows of the same ingested files", path)


if __name__ == "__main__":
    raise SystemExit(main())
