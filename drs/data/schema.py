"""The data's schema: the declared columns (the id, the features, the target, the longest id) and the rules a
source file's header and cells must keep, worded as the sender reads them.

A file is accepted whole or rejected whole: a file with a bad row (a bad value, or an id drs/core/ids.py refuses:
too long, a control character) is a sign of a broken export, and training on the rest of it would hide that. The
error names the file, the line (as an editor numbers it) and the column, so the sender can fix it; a fixed file (new
sha256) is tried again. drs/data/readers.py reads CSVs into checked frames by these rules; drs/data/dbsource.py
checks a database's rows against the same schema. docs/data.md has the rules in full.

Light on purpose (no numpy, pandas or polars): the database fetch and the cheap tick import it.
"""

from __future__ import annotations

import csv
import difflib
import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from drs.core import ids as id_rule
from drs.core.errors import DataError

if TYPE_CHECKING:
    from drs.core.settings import Config

MAX_EXAMPLES = 3
MAX_COUNT = 2**53  # above this a float64 no longer holds every whole number, and int64 may overflow


@dataclass(frozen=True)
class Schema:
    id_column: str = "corporation"
    features: tuple[str, ...] = ("lastmonth_activity", "lastyear_activity", "number_of_employees")
    target: str = "exited"
    max_id_length: int = id_rule.DEFAULT_MAX_LENGTH
    optional_columns: tuple[str, ...] = ()  # accepted in a header, never read here: value_column (drs/reports/callvalues.py)

    @property
    def columns(self) -> tuple[str, ...]:
        return (self.id_column, *self.features, self.target)

    @classmethod
    def from_config(cls, config: Config) -> Schema:
        """The Schema of `config`'s columns: `schema_of`'s, the one shared Schema of a config."""
        return schema_of(config)


def schema_of(config: Config) -> Schema:
    """The Schema of `config`, built once (for every config declaring the same columns): the one way stages get it."""
    optional = (config.value_column,) if config.value_column else ()
    return _schema(config.id_column, tuple(config.features), config.target, config.max_id_length, optional)


@functools.lru_cache(maxsize=16)
def _schema(id_column: str, features: tuple[str, ...], target: str, max_id_length: int, optional: tuple[str, ...]) -> Schema:
    return Schema(id_column, features, target, max_id_length, optional)


# ---- how a problem is said -----------------------------------------------------------------
# Every rejection of a file's shape or values is worded here, in a spreadsheet user's words:
# what is wrong, where (line as a text editor or spreadsheet numbers it, the header being line 1;
# column), and the usual fix.


def plural(count: int, word: str) -> str:
    return f"{count} {word}{'' if count == 1 else 's'}"


def examples(lines: list[int], values: list[object], show: Callable[[Any], str] = repr) -> str:
    def one(line: int, value: object) -> str:
        return f"line {line}" if isinstance(value, str) and not value.strip() else f"line {line} ({show(value)})"

    shown = ", ".join(one(n, v) for n, v in zip(lines[:MAX_EXAMPLES], values[:MAX_EXAMPLES], strict=True))
    more = len(lines) - MAX_EXAMPLES
    return shown + (f" and {plural(more, 'more line')}" if more > 0 else "")


def field_count_problem(line: int, row: list[str], width: int) -> str:
    """A row whose field count is not the header's, or that holds nothing but commas."""
    count = len(row)
    said = f"line {line} has only empty cells" if count == width else f"line {line} has {plural(count, 'field')} but the header has {width}"
    if not any(cell.strip() for cell in row):
        hint = "a row of only commas: delete it"
    elif count > width and not any(cell.strip() for cell in row[width:]):
        hint = "it ends with an extra comma: delete the empty cell(s) after the last column"
    elif count > width:
        extra = count - width
        hint = f'{"a value" if extra == 1 else f"{extra} values"} too many: a comma inside a name needs "quotes"'
    else:
        short = width - count
        hint = f"{'a value' if short == 1 else f'{short} values'} missing: a line cut short, or a file still being copied?"
    return f"{said} ({hint})"


def csv_problem(line: int, error: str) -> str:
    """What the csv module's complaint means for the person who saved the file."""
    if "unexpected end of data" in error:
        return f'line {line}: a quote (") opens a value that is never closed (a " inside a value is written "")'
    if "expected after" in error:
        return f'line {line}: text after a closing quote (") (a " inside a value is written "")'
    if "field larger than field limit" in error:
        return f'line {line}: a value longer than {csv.field_size_limit()} characters (a quote (") never closed?)'
    return f"line {line} is not well-formed CSV: {error}"


def not_utf8(data: bytes, offset: int) -> str:
    line = data.count(b"\n", 0, offset) + 1
    return (
        f"is not UTF-8 text (line {line} has the byte 0x{data[offset]:02x}, at offset {offset}: saved as Latin-1 or Windows-1252?):"
        " save it as UTF-8 (in Excel: CSV UTF-8)"
    )


def header_mistake(names: list[str], schema: Schema) -> str | None:
    """The usual export mistake behind a header that does not match, with its fix; None when it is none of them."""
    expected = list(schema.columns)
    for separator, word in ((";", "';'"), ("\t", "tabs")):
        if len(names) == 1 and separator in names[0]:
            return f"fields are separated by {word}, not commas: export it comma-separated (expected {','.join(expected)})"
    if names and names[0] == "" and set(names[1:]) >= set(expected) - {schema.target}:
        return "the first column has no name: a saved DataFrame index? save with index=False"
    if not set(names) & set(expected) and any(n.replace(".", "", 1).isdigit() for n in names):
        return f"the first line holds values, not column names: add the header line {','.join(expected)}"
    unnamed = [i for i, n in enumerate(names, start=1) if not n]
    if unnamed:
        last = " (an extra comma at the end of the header?)" if unnamed[-1] == len(names) else ""
        return f"column {unnamed[0]} of the header has no name{last} (expected {','.join(expected)})"
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
    expected = f"(expected {','.join(schema.columns)})"
    required = [c for c in schema.columns if require_target or c != schema.target]
    missing = [c for c in required if c not in names]
    extra = [n for n in names if n not in set(schema.columns) and n not in schema.optional_columns]
    absent = [c for c in schema.columns if c not in names]  # the target too, where it is optional: 'exitted' is still a misspelling
    misspelt = [(n, close[0]) for n in extra if (close := difflib.get_close_matches(n, absent, n=1))]
    if misspelt:
        said = ", ".join(f"'{wrong}' (did you mean '{right}'?)" for wrong, right in misspelt)
        raise DataError(source, f"unknown column name(s) in the header: {said} {expected}")
    if missing:
        raise DataError(source, f"missing column(s): {', '.join(missing)} {expected}")
    if extra:
        raise DataError(source, f"unexpected column(s): {', '.join(extra)} {expected}")


HINTS = {"has a number written with a separator in": ": write whole numbers with no thousands separator or decimal comma (1200, not 1,200)"}
