"""The data schema and the one checked CSV reader every stage uses.

A file is accepted whole or rejected whole: a file with a bad row is a sign of
a broken export, and training on the rest of it would hide that. The error
names the file, the column and the first offending rows, so the sender can
fix it; a fixed file (new sha256) is tried again.

pandas is imported inside the careful reader's functions only: the fast path
(polars), which scoring and most ingestion take, never loads it.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import polars as pl

from drs.errors import DataError

if TYPE_CHECKING:
    import pandas as pd

    from drs.settings import Config

MAX_EXAMPLES = 3
MAX_COUNT = 2**53  # above this a float64 no longer holds every whole number, and int64 may overflow
UTF8_BOM = b"\xef\xbb\xbf"
# An id that starts or ends with a character str.strip() could remove goes to the careful reader,
# which strips it (every str.isspace() character is in Unicode's Z or Cc category).
EDGE_SPACE = r"^[\p{Z}\p{Cc}]|[\p{Z}\p{Cc}]$"
# Files with counts above MAX_COUNT go to the careful reader, which rejects them with its message.
EXACT_LIMIT = MAX_COUNT


Table = pl.DataFrame  # checked rows as the data layer (this module, drs/ingest.py, drs/rowstore.py) hands them on


@dataclass(frozen=True)
class Schema:
    id_column: str = "corporation"
    features: tuple[str, ...] = ("lastmonth_activity", "lastyear_activity", "number_of_employees")
    target: str = "exited"

    @property
    def columns(self) -> tuple[str, ...]:
        return (self.id_column, *self.features, self.target)

    @classmethod
    def from_config(cls, config: Config) -> Schema:
        return cls(id_column=config.id_column, features=tuple(config.features), target=config.target)


def _examples(rows: list[int], values: list[object]) -> str:
    shown = ", ".join(f"row {r} ({v!r})" for r, v in zip(rows[:MAX_EXAMPLES], values[:MAX_EXAMPLES], strict=True))
    more = len(rows) - MAX_EXAMPLES
    return shown + (f" and {more} more row(s)" if more > 0 else "")


def decode_csv_bytes(data: bytes, source: str) -> str:
    """UTF-8 (with or without BOM); anything else is refused with the cause and the fix."""
    if data.startswith((b"\xff\xfe", b"\xfe\xff")) or (len(data) >= 8 and (not any(data[0:8:2]) or not any(data[1:8:2]))):
        raise DataError(source, "is UTF-16 text: save it as UTF-8 (in Excel: CSV UTF-8)")
    if data.startswith(b"PK\x03\x04"):
        raise DataError(source, "is a spreadsheet workbook or other zip file, not CSV text: save it as CSV UTF-8")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise DataError(
            source, f"is not UTF-8 text (invalid byte 0x{data[exc.start]:02x} at offset {exc.start}): save it as UTF-8"
        ) from None


def read_csv_as_written(path: Path, schema: Schema) -> pd.DataFrame:
    """A CSV this project wrote (finaldata.csv), unchecked, where only an empty cell is missing.

    pandas would read a corporation called "null" or "NA" as missing; here it stays a name.
    """
    import pandas as pd

    return pd.read_csv(path, keep_default_na=False, na_values=[""], dtype={schema.id_column: str})


def header_mistake(names: list[str], schema: Schema) -> str | None:
    """The usual export mistake behind a header that does not match, with its fix; None when it is none of them."""
    expected = list(schema.columns)
    for separator, word in ((";", "';'"), ("\t", "tabs")):
        if len(names) == 1 and separator in names[0]:
            return f"fields are separated by {word}, not commas: export it comma-separated (expected {','.join(expected)})"
    if names and names[0] == "" and set(names[1:]) >= set(expected) - {schema.target}:
        return "the first column has no name: a saved DataFrame index? save with index=False"
    by_case = {n.casefold(): n for n in names}
    differ = [f"{by_case[c.casefold()]} (expected {c})" for c in expected if c not in names and c.casefold() in by_case]
    if differ:
        return f"headers differ only in case: {', '.join(differ)}"
    return None


def check_header(header: list[str], schema: Schema, source: str, require_target: bool) -> None:
    names = [h.strip() for h in header]
    mistake = header_mistake(names, schema)
    if mistake:
        raise DataError(source, mistake)
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


def frame_from_text(text: str, schema: Schema, source: str, require_target: bool = True) -> pd.DataFrame:
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


def validate_frame(frame: pd.DataFrame, schema: Schema, source: str, require_target: bool = True) -> pd.DataFrame:
    """Check values of a frame of strings (or numbers); pure: no I/O."""
    import pandas as pd

    row_numbers = np.arange(1, len(frame) + 1)
    ids = frame[schema.id_column]
    missing = ids.isna() | (ids.astype(str).str.strip() == "")
    if missing.any():
        raise DataError(
            source,
            f"column '{schema.id_column}' is empty in {_examples(list(row_numbers[missing.to_numpy()]), [''] * int(missing.sum()))}",
            int(missing.sum()),
        )

    numeric_columns = list(schema.features) + ([schema.target] if require_target and schema.target in frame else [])
    out = pd.DataFrame({schema.id_column: ids.astype(str).str.strip()})
    for column in numeric_columns:
        raw = frame[column]
        values = pd.to_numeric(raw, errors="coerce").astype("float64")
        checks: tuple[tuple[Any, str], ...] = (
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


def fast_frame(data: bytes, schema: Schema, require_target: bool = True) -> pl.DataFrame | None:
    """The common case at native speed: polars parses the numbers as int64 and checks the rules.

    It only ever accepts: any file it is unsure about (a parse error, a blank
    line, a value such as `3.0`, an id with spaces to strip) returns None and
    goes to `frame_from_text`, which accepts it or names the problem exactly
    as before. So both readers accept the same files with the same values.
    """
    if data.startswith(UTF8_BOM):
        data = data[len(UTF8_BOM) :]
    end = data.find(b"\n")
    if end < 0 or b'"' in data[:end]:
        return None
    try:
        names = [h.strip() for h in next(csv.reader([data[:end].decode("utf-8").rstrip("\r")]))]
        check_header(names, schema, "", require_target)
    except (UnicodeDecodeError, DataError, StopIteration):
        return None
    checked = [c for c in schema.features] + ([schema.target] if require_target else [])
    types = {n: pl.Int64 if n in checked else pl.String for n in names}
    try:
        frame = pl.read_csv(data, has_header=False, skip_rows=1, new_columns=names, schema=types)
    except pl.exceptions.PolarsError:  # any parse problem: let the careful reader decide and name it
        return None
    if frame.height == 0:
        return None
    ids = pl.col(schema.id_column)
    rules = [
        pl.all_horizontal(pl.all().is_not_null().all()),
        (ids.str.len_bytes() > 0).all(),
        ~ids.str.contains(EDGE_SPACE).any(),
        *[((pl.col(c) >= 0) & (pl.col(c) <= EXACT_LIMIT)).all() for c in checked],
    ]
    if require_target:
        rules.append(pl.col(schema.target).is_in([0, 1]).all())
    rules = [rule.alias(f"rule{i}") for i, rule in enumerate(rules)]
    if not all(frame.select(rules).row(0)):
        return None
    return frame.select([c for c in schema.columns if c in checked or c == schema.id_column])


def to_polars(frame: pd.DataFrame) -> pl.DataFrame:
    return pl.DataFrame({c: frame[c].tolist() if frame[c].dtype.kind not in "iu" else frame[c].to_numpy() for c in frame.columns})


def to_pandas(frame: pl.DataFrame) -> pd.DataFrame:
    """The same frame `frame_from_text` returns: str ids, int64 numbers (no pyarrow needed)."""
    import pandas as pd

    return pd.DataFrame({c: pd.Series(frame[c].to_numpy(), dtype="str" if frame[c].dtype == pl.String else "int64") for c in frame.columns})


def checked_frame(
    data: bytes, schema: Schema, source: str, require_target: bool = True, on_reject: Callable[[str], None] | None = None
) -> pl.DataFrame:
    """Check the bytes of one CSV file: the fast reader when it is sure, else the careful one.

    `on_reject` sees the decoded text of a file the careful reader rejects (to count its lines)."""
    frame = fast_frame(data, schema, require_target)
    if frame is None:
        text = decode_csv_bytes(data, source)
        try:
            frame = to_polars(frame_from_text(text, schema, source, require_target))
        except DataError:
            if on_reject:
                on_reject(text)
            raise
    return frame


def _read_bytes(path: Path, source: str) -> bytes:
    if path.is_dir():
        raise DataError(source, "is a directory, not a file")
    try:
        return path.read_bytes()
    except OSError as exc:
        raise DataError(source, f"cannot be read: {exc.strerror}") from None


def read_polars_checked(path: Path, schema: Schema, require_target: bool = True, source: str | None = None) -> pl.DataFrame:
    """Read and check one CSV file into polars; raise DataError naming the file on any problem."""
    source = source or Path(path).name
    return checked_frame(_read_bytes(Path(path), source), schema, source, require_target)


def read_csv_checked(path: Path, schema: Schema, require_target: bool = True, source: str | None = None) -> pd.DataFrame:
    """Read and check one CSV file; raise DataError naming the file on any problem."""
    return to_pandas(read_polars_checked(path, schema, require_target, source))
