"""The data schema and the one checked CSV reader every stage uses.

A file is accepted whole or rejected whole: a file with a bad row is a sign of
a broken export, and training on the rest of it would hide that. The error
names the file, the column and the first offending rows, so the sender can
fix it; a fixed file (new sha256) is tried again.
"""
from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pandas is imported lazily: the cron job's cheap path never needs it
    import pandas as pd

MAX_EXAMPLES = 3
MAX_COUNT = 2**53  # above this a float64 no longer holds every whole number, and int64 may overflow


@dataclass(frozen=True)
class Schema:
    id_column: str = "corporation"
    features: tuple[str, ...] = ("lastmonth_activity", "lastyear_activity", "number_of_employees")
    target: str = "exited"

    @property
    def columns(self) -> tuple[str, ...]:
        return (self.id_column, *self.features, self.target)

    @classmethod
    def from_config(cls, config: "object") -> "Schema":
        return cls(id_column=config.id_column, features=tuple(config.features), target=config.target)


class DataError(Exception):
    """Data that cannot be used; str() is a one-line message naming file and problem."""

    def __init__(self, source: str, problem: str, bad_rows: int = 0):
        super().__init__(f"{source}: {problem}")
        self.source = source
        self.problem = problem
        self.bad_rows = bad_rows


def _examples(rows: list[int], values: list[object]) -> str:
    shown = ", ".join(f"row {r} ({v!r})" for r, v in zip(rows[:MAX_EXAMPLES], values[:MAX_EXAMPLES]))
    more = len(rows) - MAX_EXAMPLES
    return shown + (f" and {more} more row(s)" if more > 0 else "")


def decode_csv_bytes(data: bytes, source: str) -> str:
    """UTF-8 (with or without BOM); anything else is refused with the byte offset."""
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise DataError(source, f"is not UTF-8 text (invalid byte 0x{data[exc.start]:02x} at offset {exc.start})") from None


def read_csv_as_written(path: Path, schema: Schema) -> "pd.DataFrame":
    """A CSV this project wrote (finaldata.csv), unchecked, where only an empty cell is missing.

    pandas would read a corporation called "null" or "NA" as missing; here it stays a name.
    """
    import pandas as pd

    return pd.read_csv(path, keep_default_na=False, na_values=[""], dtype={schema.id_column: str})


def check_header(header: list[str], schema: Schema, source: str, require_target: bool) -> None:
    names = [h.strip() for h in header]
    duplicated = sorted({n for n in names if names.count(n) > 1})
    if duplicated:
        raise DataError(source, f"duplicated column(s): {', '.join(duplicated)}")
    required = [c for c in schema.columns if require_target or c != schema.target]
    missing = [c for c in required if c not in names]
    if missing:
        raise DataError(source, f"missing column(s): {', '.join(missing)} (expected {','.join(schema.columns)})")
    allowed = set(schema.columns)
    extra = [n for n in names if n not in allowed]
    if extra:
        raise DataError(source, f"unexpected column(s): {', '.join(extra)} (expected {','.join(schema.columns)})")


def frame_from_text(text: str, schema: Schema, source: str, require_target: bool = True) -> "pd.DataFrame":
    """Parse CSV text and check it; return a frame in schema column order with int64 numbers."""
    import pandas as pd

    if not text.strip():
        raise DataError(source, "file is empty")
    first_line = text.splitlines()[0]
    header = next(csv.reader([first_line]))
    check_header(header, schema, source, require_target)
    try:
        frame = pd.read_csv(io.StringIO(text), dtype=str, keep_default_na=False, skipinitialspace=True)
    except pd.errors.ParserError as exc:
        raise DataError(source, f"is not well-formed CSV: {str(exc).strip()}") from None
    frame.columns = [c.strip() for c in frame.columns]
    if frame.empty:
        raise DataError(source, "has a header but no data rows")
    if (frame == "").to_numpy().any():  # an empty value, or a row cut short: only such files pay for the check
        check_row_lengths(text, len(header), source)
    return validate_frame(frame, schema, source, require_target)


def check_row_lengths(text: str, width: int, source: str) -> None:
    """Name a row with fewer fields than the header: a truncated line, usually a file still being copied."""
    reader = csv.reader(io.StringIO(text), skipinitialspace=True)
    next(reader, None)
    short = [(i, len(row)) for i, row in enumerate((r for r in reader if r), start=1) if len(row) < width]
    if short:
        (row, fields), more = short[0], len(short) - 1
        raise DataError(
            source,
            f"row {row} has {fields} field(s) where the header has {width}"
            + (f" (and {more} more short row(s))" if more else "")
            + " (a truncated line?)",
            len(short),
        )


def validate_frame(frame: "pd.DataFrame", schema: Schema, source: str, require_target: bool = True) -> "pd.DataFrame":
    """Check values of a frame of strings (or numbers); pure: no I/O."""
    import numpy as np
    import pandas as pd

    row_numbers = np.arange(1, len(frame) + 1)
    ids = frame[schema.id_column]
    missing = ids.isna() | (ids.astype(str).str.strip() == "")
    if missing.any():
        raise DataError(source, f"column '{schema.id_column}' is empty in {_examples(list(row_numbers[missing.to_numpy()]), [''] * int(missing.sum()))}", int(missing.sum()))

    numeric_columns = list(schema.features) + ([schema.target] if require_target and schema.target in frame else [])
    out = pd.DataFrame({schema.id_column: ids.astype(str).str.strip()})
    for column in numeric_columns:
        raw = frame[column]
        values = pd.to_numeric(raw, errors="coerce").astype("float64")
        checks = (
            (values.isna(), "has missing or non-numeric value(s) in"),
            (~np.isfinite(values.fillna(0)), "has infinite value(s) in"),
            (values < 0, "has negative value(s) in"),
            ((values.fillna(0) % 1) != 0, "has non-integer value(s) in"),
            (values > MAX_COUNT, f"has value(s) too large to be a count (above {MAX_COUNT}) in"),
        )
        if column == schema.target:
            checks += ((~values.isin([0, 1]) & values.notna(), "must be 0 or 1 but is not in"),)
        for bad, words in checks:
            mask = bad.to_numpy()
            if mask.any():
                raise DataError(
                    source,
                    f"column '{column}' {words} {_examples(list(row_numbers[mask]), list(raw[mask]))}",
                    int(mask.sum()),
                )
        out[column] = values.astype("int64")
    ordered = [c for c in schema.columns if c in out.columns]
    return out[ordered].reset_index(drop=True)


def read_csv_checked(path: Path, schema: Schema, require_target: bool = True, source: str | None = None) -> "pd.DataFrame":
    """Read and check one CSV file; raise DataError naming the file on any problem."""
    source = source or Path(path).name
    path = Path(path)
    if path.is_dir():
        raise DataError(source, "is a directory, not a file")
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise DataError(source, f"cannot be read: {exc.strerror}") from None
    return frame_from_text(decode_csv_bytes(data, source), schema, source, require_target)
