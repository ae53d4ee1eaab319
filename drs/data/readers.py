"""The one checked CSV reader every stage uses: a file's bytes into a frame in schema column order, or a DataError.

Two readers accept the same files with the same values: the fast one (polars, `fast_frame`), which only ever
accepts, and the careful one (the csv module, then pandas, `frame_from_text`), which takes every file the fast one
is unsure about and either accepts it or names the problem (line, column, fix) in drs/data/schema.py's words.
`checked_frame` picks between them; `read_polars_checked` and `read_csv_checked` read a path. `labelled` is the one
place rows without a label yet are left out. docs/data.md gives the rules.

pandas is imported inside the careful reader's functions only: the fast path
(polars), which scoring and most ingestion take, never loads it.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import polars as pl

from drs.core import ids as id_rule
from drs.core.errors import DataError
from drs.data.schema import HINTS, MAX_COUNT, Schema, check_header, csv_problem, examples, field_count_problem, not_utf8, plural

if TYPE_CHECKING:
    import pandas as pd

UTF8_BOM = b"\xef\xbb\xbf"
# An id that starts or ends with a character str.strip() could remove goes to the careful reader,
# which strips it (every str.isspace() character is in Unicode's Z or Cc category).
EDGE_SPACE = r"^[\p{Z}\p{Cc}]|[\p{Z}\p{Cc}]$"
# ... and an id holding a character drs/core/ids.py refuses goes there too, which names it (one pass over the ids for both)
EDGE_SPACE_OR_CONTROL = f"{EDGE_SPACE}|{id_rule.CONTROL_REGEX}"
# Files with counts above MAX_COUNT go to the careful reader, which rejects them with its message.
EXACT_LIMIT = MAX_COUNT


Table = pl.DataFrame  # checked rows as the data layer (this module, drs/data/ingest.py, drs/data/rowstore.py) hands them on


def decode_csv_bytes(data: bytes, source: str) -> str:
    """UTF-8 (with or without BOM); anything else is refused with the cause and the fix."""
    if data.startswith((b"\xff\xfe", b"\xfe\xff")) or (len(data) >= 8 and (not any(data[0:8:2]) or not any(data[1:8:2]))):
        raise DataError(source, "is UTF-16 text: save it as UTF-8 (in Excel: CSV UTF-8)")
    if data.startswith(b"PK\x03\x04"):
        raise DataError(source, "is a spreadsheet workbook or other zip file, not CSV text: save it as CSV UTF-8")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise DataError(source, not_utf8(data, exc.start)) from None


# ---- the careful reader ---------------------------------------------------------------------


@dataclass(frozen=True)
class Parsed:
    """A CSV text split into cells: the header, the data rows (blank lines left out), and each row's line."""

    header: list[str]
    rows: list[list[str]]
    lines: list[int]


def _records(text: str, source: str) -> Iterator[tuple[int, list[str]]]:
    """(line where it starts, cells) of every non-blank record; a quote left open is a DataError naming its line."""
    reader = csv.reader(io.StringIO(text, newline=""), skipinitialspace=True, strict=True)
    start = 1
    try:
        for row in reader:
            if row and (len(row) > 1 or row[0].strip()):
                yield start, row
            start = reader.line_num + 1
    except csv.Error as exc:
        at = reader.line_num if "expected after" in str(exc) else start  # an open quote is named where it opened
        raise DataError(source, csv_problem(at, str(exc))) from None


def _rows_of_width(records: Iterator[tuple[int, list[str]]], width: int, source: str, keep: bool) -> Parsed:
    """The rows after the header and their lines (only counted unless `keep`); DataError at the first row of another width."""
    rows, lines, wrong = [], [], []
    for line, row in records:
        if len(row) != width or not any(cell.strip() for cell in row):
            wrong.append((line, row))
        elif keep:
            rows.append(row)
            lines.append(line)
        else:
            lines.append(line)
    if wrong:
        line, row = wrong[0]
        more = f"; {plural(len(wrong) - 1, 'more line')} like it" if len(wrong) > 1 else ""
        raise DataError(source, field_count_problem(line, row, width) + more, len(wrong))
    return Parsed([], rows, lines)


def parse_csv(text: str, schema: Schema, source: str, require_target: bool = True) -> Parsed:
    """Split and check the shape: a header the schema accepts, then every row exactly as wide as the header.

    The csv module, not pandas, splits the rows: pandas reads the extra leading fields of a row
    wider than the header as an index and shifts every value into the wrong column."""
    records = _records(text, source)
    first = next(records, None)
    if first is None:
        raise DataError(source, "file is empty")
    header = first[1]
    check_header(header, schema, source, require_target)
    body = _rows_of_width(records, len(header), source, keep=True)
    if not body.rows:
        raise DataError(source, "has a header but no data rows")
    return Parsed(header, body.rows, body.lines)


def check_widths(text: str, source: str) -> None:
    """Every row as wide as the first line (the header); DataError naming the first that is not."""
    records = _records(text, source)
    first = next(records, None)
    if first is not None:
        _rows_of_width(records, len(first[1]), source, keep=False)


def frame_from_text(text: str, schema: Schema, source: str, require_target: bool = True, unlabelled: bool = False) -> pd.DataFrame:
    """Parse CSV text and check it; return a frame in schema column order with int64 numbers (`validate_frame`)."""
    import pandas as pd

    parsed = parse_csv(text, schema, source, require_target)
    frame = pd.DataFrame(parsed.rows, columns=[name.strip() for name in parsed.header], dtype=str)
    return validate_frame(frame, schema, source, require_target, parsed.lines, unlabelled)


def read_csv_as_written(path: Path, schema: Schema) -> pd.DataFrame:
    """A CSV this project wrote (finaldata.csv), where only an empty cell is missing; its shape checked.

    pandas would read a corporation called "null" or "NA" as missing; here it stays a name. A row of
    another width than the header (a hand edit) is refused as in a source file, never shifted.
    """
    import pandas as pd

    source = str(path)
    text = decode_csv_bytes(_read_bytes(Path(path), source), source)
    check_widths(text, source)
    return pd.read_csv(io.StringIO(text), keep_default_na=False, na_values=[""], dtype={schema.id_column: str})


def value_checks(raw: pd.Series, values: pd.Series, is_target: bool) -> list[tuple[Any, str]]:
    """(which cells, what is wrong with them) for one numeric column, in the order they are told.

    Only the cells that are not numbers are looked at as text, so a clean column costs no string work."""
    odd = values.isna().to_numpy()
    empty, separated = np.zeros(len(raw), dtype=bool), np.zeros(len(raw), dtype=bool)
    if odd.any():
        cells = raw[odd]
        text = cells.astype(str).str.strip()
        empty[odd] = (cells.isna() | (text == "")).to_numpy(dtype=bool)
        separated[odd] = text.str.fullmatch(r"[+-]?\d[\d,. ]*").to_numpy(dtype=bool)
    if is_target:  # an empty cell where `unlabelled` allows it (label not known yet) is left out of both by the caller
        return [(empty, "is empty in"), (~values.isin([0, 1]) & ~empty, "must be 0 or 1 but is not in")]
    return [
        (empty, "is empty in"),
        (separated, "has a number written with a separator in"),
        (odd, "is not a number in"),
        (~np.isfinite(values.fillna(0)), "is infinite in"),
        (values < 0, "is negative in"),
        ((values.fillna(0) % 1) != 0, "is not a whole number in"),
        (values > MAX_COUNT, f"is too large to be a count (above {MAX_COUNT}) in"),
    ]


def id_checks(ids: pd.Series, max_length: int) -> list[tuple[np.ndarray, str, str]]:
    """(which ids, what is wrong with them, the rule) for the stripped ids, in drs/core/ids.py's words, in the order they are told."""
    return [
        (ids.str.contains(id_rule.CONTROL).to_numpy(dtype=bool), id_rule.CONTROL_WORDS, f": {id_rule.PLAIN_TEXT}"),
        ((ids.str.len() > max_length).to_numpy(dtype=bool), id_rule.too_long_words(max_length), ""),
    ]


def validate_frame(
    frame: pd.DataFrame,
    schema: Schema,
    source: str,
    require_target: bool = True,
    lines: list[int] | None = None,
    unlabelled: bool = False,
) -> pd.DataFrame:
    """Check values of a frame of strings (or numbers); pure: no I/O.

    `lines` are the rows' lines in the file; by default those of a file with no blank lines (row 1 on line 2).
    With `unlabelled`, an empty target cell means "label not known yet" (docs/data.md): the row is kept and its target
    is missing (pandas' nullable Int64; int64 as before when every label is known)."""
    import pandas as pd

    line_numbers = np.asarray(lines if lines is not None else range(2, len(frame) + 2))
    ids = frame[schema.id_column]
    missing = ids.isna() | (ids.astype(str).str.strip() == "")
    if missing.any():
        raise DataError(
            source,
            f"column '{schema.id_column}' is empty in {examples(list(line_numbers[missing.to_numpy()]), [''] * int(missing.sum()))}",
            int(missing.sum()),
        )

    stripped = ids.astype(str).str.strip()  # spaces around an id are not part of it
    for bad, words, hint in id_checks(stripped, schema.max_id_length):
        if bad.any():
            raise DataError(
                source,
                f"column '{schema.id_column}' {words} in {examples(list(line_numbers[bad]), list(stripped[bad]), id_rule.clipped)}{hint}",
                int(bad.sum()),
            )

    numeric_columns = list(schema.features) + ([schema.target] if require_target and schema.target in frame else [])
    out = pd.DataFrame({schema.id_column: stripped})
    for column in numeric_columns:
        raw = frame[column]
        values = pd.to_numeric(raw, errors="coerce").astype("float64")
        checks = value_checks(raw, values, column == schema.target)
        unknown = np.asarray(checks[0][0], dtype=bool) if column == schema.target and unlabelled else None
        for bad, words in checks[1:] if unknown is not None else checks:
            mask = np.asarray(bad, dtype=bool)
            if mask.any():
                raise DataError(
                    source,
                    f"column '{column}' {words} {examples(list(line_numbers[mask]), list(raw[mask]))}{HINTS.get(words, '')}",
                    int(mask.sum()),
                )
        out[column] = values.astype("Int64" if unknown is not None and unknown.any() else "int64")
    ordered = [c for c in schema.columns if c in out.columns]
    return out[ordered].reset_index(drop=True)


def fast_frame(data: bytes, schema: Schema, require_target: bool = True, unlabelled: bool = False) -> pl.DataFrame | None:
    """The common case at native speed: polars parses the numbers as int64 and checks the rules.

    It only ever accepts: any file it is unsure about (a parse error, a blank
    line, a value such as `3.0`, an id with spaces to strip, an id drs/core/ids.py refuses) returns None and
    goes to `frame_from_text`, which accepts it or names the problem exactly
    as before. So both readers accept the same files with the same values. With `unlabelled`, an empty target cell
    (a label not known yet) is null here; so is the last cell of a row cut short, which polars fills with nulls. So a
    file with such nulls is taken here only when it holds no quote and exactly (rows + 1) * (columns - 1) commas: every
    row is as wide as the header (a wider one is a parse error). Any other goes to the careful reader, which counts
    the fields row by row.
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
        # a row of another width is an error (truncate_ragged_lines=False), a short one has nulls: both go to the careful reader
        frame = pl.read_csv(data, has_header=False, skip_rows=1, new_columns=names, schema=types, truncate_ragged_lines=False)
    except pl.exceptions.PolarsError:  # any parse problem: let the careful reader decide and name it
        return None
    if frame.height == 0:
        return None
    ids = pl.col(schema.id_column)
    unknown = unlabelled and require_target and frame[schema.target].null_count() > 0
    if unknown and (b'"' in data or data.count(b",") != (frame.height + 1) * (len(names) - 1)):
        return None
    rules = [
        pl.all_horizontal(pl.all().exclude([*([schema.target] if unknown else []), *schema.optional_columns]).is_not_null().all()),
        (ids.str.len_bytes() > 0).all(),
        ~ids.str.contains(EDGE_SPACE_OR_CONTROL).any(),
        (ids.str.len_chars() <= schema.max_id_length).all(),
        *[((pl.col(c) >= 0) & (pl.col(c) <= EXACT_LIMIT)).all() for c in checked],
    ]
    if require_target:
        rules.append((pl.col(schema.target).is_in([0, 1]) | pl.col(schema.target).is_null()).all())
    rules = [rule.alias(f"rule{i}") for i, rule in enumerate(rules)]
    if not all(frame.select(rules).row(0)):
        return None
    return frame.select([c for c in schema.columns if c in checked or c == schema.id_column])


def _to_polars_column(column: pd.Series) -> Any:
    if str(column.dtype) == "Int64":  # a target with labels not known yet: nulls in polars
        return pl.Series(column.to_numpy(dtype="float64", na_value=np.nan), nan_to_null=True).cast(pl.Int64)
    return column.tolist() if column.dtype.kind not in "iu" else column.to_numpy()


def to_polars(frame: pd.DataFrame) -> pl.DataFrame:
    return pl.DataFrame({c: _to_polars_column(frame[c]) for c in frame.columns})


def _to_pandas_column(column: pl.Series) -> pd.Series:
    import pandas as pd

    if column.dtype == pl.String:
        return pd.Series(column.to_numpy(), dtype="str")
    if column.null_count():  # a target with labels not known yet, as `validate_frame` gives it
        return pd.Series(column.cast(pl.Float64).to_numpy(), dtype="float64").astype("Int64")
    return pd.Series(column.to_numpy(), dtype="int64")


def to_pandas(frame: pl.DataFrame) -> pd.DataFrame:
    """The same frame `frame_from_text` returns: str ids, int64 numbers (no pyarrow needed); a target with labels not known
    yet as pandas' nullable Int64."""
    import pandas as pd

    return pd.DataFrame({c: _to_pandas_column(frame[c]) for c in frame.columns})


def labelled(frame: Any, schema: Schema) -> Any:
    """The rows of a checked frame (pandas or polars) whose label is known, the target as int64; pure.

    An empty target cell in a source file means the label is not known yet (docs/data.md): such a row is scored and
    ranked like any other but never trained on nor counted in a realized F1. Every such use goes through here."""
    if schema.target not in frame.columns:
        return frame
    if isinstance(frame, pl.DataFrame):
        return frame.filter(pl.col(schema.target).is_not_null()) if frame[schema.target].null_count() else frame
    known = frame[schema.target].notna()
    if known.all() and frame[schema.target].dtype.kind in "iu":
        return frame
    out = frame[known.to_numpy()].reset_index(drop=True)
    return out.astype({schema.target: "int64"})


def unlabelled_rows(frame: Any, schema: Schema) -> int:
    """How many rows of a checked frame have no label yet."""
    if schema.target not in frame.columns:
        return 0
    if isinstance(frame, pl.DataFrame):
        return int(frame[schema.target].null_count())
    return int(frame[schema.target].isna().sum())


def checked_frame(
    data: bytes,
    schema: Schema,
    source: str,
    require_target: bool = True,
    on_reject: Callable[[str], None] | None = None,
    unlabelled: bool = False,
) -> pl.DataFrame:
    """Check the bytes of one CSV file: the fast reader when it is sure, else the careful one.

    `on_reject` sees the decoded text of a file the careful reader rejects (to count its lines); `unlabelled`: an empty
    target cell is a label not known yet (source files, finaldata.csv, a version's training data; never the test data)."""
    frame = fast_frame(data, schema, require_target, unlabelled)
    if frame is None:
        text = decode_csv_bytes(data, source)
        try:
            frame = to_polars(frame_from_text(text, schema, source, require_target, unlabelled))
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


def read_polars_checked(
    path: Path, schema: Schema, require_target: bool = True, source: str | None = None, unlabelled: bool = False
) -> pl.DataFrame:
    """Read and check one CSV file into polars; raise DataError naming the file on any problem."""
    source = source or Path(path).name
    return checked_frame(_read_bytes(Path(path), source), schema, source, require_target, unlabelled=unlabelled)


def read_csv_checked(
    path: Path, schema: Schema, require_target: bool = True, source: str | None = None, unlabelled: bool = False
) -> pd.DataFrame:
    """Read and check one CSV file; raise DataError naming the file on any problem."""
    return to_pandas(read_polars_checked(path, schema, require_target, source, unlabelled))
