"""What each client is worth: the optional `value_column` of the source data, kept in `clientvalues.sqlite` for the views.

The model never reads the column (drs/data/schema.py accepts it in a header and drops it); reporting writes this store
at each ranking (drs/reports/reporting.py) from the accepted files of the ingestion (their kept copies), each client
keeping its value from the newest file that has one. A value must be a number >= 0: an empty, non-numeric or negative
cell is not a value, and the client counts 0 in the value at risk; how many clients have none is recorded and said on the
page and in the PDF. A file without the column still works (its clients keep their values from other files, or none).
Writing imports polars (only when value_column is set); reading is standard library only (sqlite3).
See docs/reports.md#what-it-is-worth.
"""

from __future__ import annotations

import json
import math
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass

from drs.core.fileio import atomic_output
from drs.core.settings import Config
from drs.reports.stores import SourceFile

STORE = "clientvalues.sqlite"


@dataclass(frozen=True)
class Values:
    """The clients' values and what is known about them."""

    column: str
    values: dict[str, float]
    invalid: int  # cells that were not a number >= 0 (in the newest file of their client)
    files_without: list[str]  # accepted files that have no such column


def number(text: str | None) -> float | None:
    """A value cell as a number >= 0, or None (empty, not a number, negative, infinite)."""
    try:
        value = float((text or "").strip())
    except ValueError:
        return None
    return value if math.isfinite(value) and value >= 0 else None


def read_values(files: Sequence[SourceFile], id_column: str, column: str) -> Values:
    """The newest value of each client across `files` (arrival order; a later file's cell replaces an earlier one)."""
    import polars as pl

    values: dict[str, float] = {}
    bad: set[str] = set()
    without = []
    for source in files:
        if source.path is None:
            continue
        try:
            header = pl.read_csv(source.path, n_rows=0, infer_schema=False).columns
        except (pl.exceptions.PolarsError, OSError):
            continue
        names = {h.strip(): h for h in header}
        if column not in names or id_column not in names:
            without.append(source.name)
            continue
        frame = pl.read_csv(source.path, columns=[names[id_column], names[column]], infer_schema=False)
        for corporation, cell in frame.iter_rows():
            if corporation is None:
                continue
            key = str(corporation).strip()
            value = number(cell)
            if value is None:
                values.pop(key, None)
                bad.add(key)
            else:
                values[key] = value
                bad.discard(key)
    return Values(column, values, len(bad), without)


def write(config: Config, files: Sequence[SourceFile]) -> Values | None:
    """clientvalues.sqlite for the configured value_column (atomically); None (and no store) when none is configured."""
    path = config.model_output(STORE)
    if config.value_column is None:
        path.unlink(missing_ok=True)
        return None
    found = read_values(files, config.id_column, config.value_column)
    with atomic_output(path) as tmp:
        con = sqlite3.connect(tmp)
        try:
            con.execute("CREATE TABLE client_values (corporation TEXT PRIMARY KEY, value REAL NOT NULL)")
            con.executemany("INSERT INTO client_values VALUES (?, ?)", found.values.items())
            facts = {"column": found.column, "invalid": found.invalid, "files_without": found.files_without}
            con.execute("CREATE TABLE summary (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
            con.executemany("INSERT INTO summary VALUES (?, ?)", [(k, json.dumps(v)) for k, v in facts.items()])
            con.commit()
        finally:
            con.close()
    return found


def read(config: Config) -> Values | None:
    """The values reporting wrote for the configured column; None when none is configured or written yet."""
    path = config.model_output(STORE)
    if config.value_column is None or not path.is_file():
        return None
    con = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        facts = {k: json.loads(v) for k, v in con.execute("SELECT key, value FROM summary")}
        if facts.get("column") != config.value_column:  # written for another column: as good as none
            return None
        values = {str(c): float(v) for c, v in con.execute("SELECT corporation, value FROM client_values")}
    except sqlite3.Error:
        return None
    finally:
        con.close()
    return Values(config.value_column, values, int(facts.get("invalid", 0)), list(facts.get("files_without", [])))
