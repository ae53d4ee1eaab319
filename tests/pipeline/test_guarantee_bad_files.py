"""Promise 5, bad files: a generated corpus of malformed inputs, each with its exact outcome.

Every file is either accepted or rejected whole with a message naming it and its problem; the
good files beside it still go in; when nothing valid arrives production is not touched, and a
rejected file is not tried again until its content changes.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest

from drs.core.settings import Config
from drs.data import ingest
from drs.history import files as file_store
from drs.history import runs as history
from drs.pipeline import run as pipeline
from tests.conftest import HEADER, run_script, tree_state
from tests.faults import run_with_faults

EXPECTED = "(expected corporation,lastmonth_activity,lastyear_activity,number_of_employees,exited)"
GOOD_ROW = "zz{i},{a},{b},{c},{e}\n"
ROW = "abcd,12,340,56,1\n"
TOO_MANY = '(a value too many: a comma inside a name needs "quotes")'


def rows(n: int, start: int = 0) -> str:
    return "".join(GOOD_ROW.format(i=i, a=i % 40, b=400 + i, c=5 + i % 90, e=i % 2) for i in range(start, start + n))


def text(content: str) -> Callable[[Path], None]:
    return lambda path: path.write_bytes(content.encode("utf-8"))


def raw(content: bytes) -> Callable[[Path], None]:
    return lambda path: path.write_bytes(content)


def symlink_outside(path: Path) -> None:
    secret = path.parent.parent.parent / "outside.csv"  # beside the project, never to be opened
    secret.write_text(HEADER + ROW)
    os.symlink(secret, path)


def broken_symlink(path: Path) -> None:
    os.symlink(path.parent / "gone.csv", path)


def directory(path: Path) -> None:
    path.mkdir()
    (path / "inside.csv").write_text(HEADER + ROW)


# name -> (how to write it, "accepted" with the rows it adds, or the exact rejection reason)
REJECTED: dict[str, tuple[Callable[[Path], None], str]] = {
    "empty.csv": (text(""), "file is empty"),
    "blank_lines.csv": (text("\n \n\n"), "file is empty"),
    "header_only.csv": (text(HEADER), "has a header but no data rows"),
    "missing_column.csv": (
        text("corporation,lastmonth_activity,lastyear_activity,exited\nabcd,1,2,0\n"),
        f"missing column(s): number_of_employees {EXPECTED}",
    ),
    "extra_column.csv": (text(HEADER.rstrip() + ",region\n" + ROW.rstrip() + ",north\n"), f"unexpected column(s): region {EXPECTED}"),
    "duplicated_column.csv": (text(HEADER.rstrip() + ",exited\n" + ROW.rstrip() + ",1\n"), "duplicated column(s): exited"),
    "semicolons.csv": (
        text(HEADER.replace(",", ";") + ROW.replace(",", ";")),
        f"fields are separated by ';', not commas: export it comma-separated {EXPECTED}",
    ),
    "text_in_number.csv": (
        text(HEADER + rows(3) + "efgh,twelve,34,5,1\n"),
        "column 'lastmonth_activity' is not a number in line 5 ('twelve')",
    ),
    "negative_count.csv": (text(HEADER + "abcd,12,340,-56,1\n"), "column 'number_of_employees' is negative in line 2 ('-56')"),
    "nan.csv": (
        text(HEADER + rows(2) + "abcd,NaN,340,56,1\n"),
        "column 'lastmonth_activity' is not a number in line 4 ('NaN')",
    ),
    "empty_value.csv": (text(HEADER + "abcd,12,,56,1\n"), "column 'lastyear_activity' is empty in line 2"),
    "infinite.csv": (
        text(HEADER + "abcd,12,inf,56,1\nefgh,1,-inf,2,0\n"),
        "column 'lastyear_activity' is infinite in line 2 ('inf'), line 3 ('-inf')",
    ),
    "fraction.csv": (text(HEADER + "abcd,12.5,340,56,1\n"), "column 'lastmonth_activity' is not a whole number in line 2 ('12.5')"),
    "huge_number.csv": (
        text(HEADER + "abcd,99999999999999999999,340,56,1\n"),
        "column 'lastmonth_activity' is too large to be a count (above 9007199254740992) in line 2 ('99999999999999999999')",
    ),
    "exited_two.csv": (text(HEADER + rows(1) + "abcd,12,340,56,2\n"), "column 'exited' must be 0 or 1 but is not in line 3 ('2')"),
    "exited_minus_one.csv": (text(HEADER + "abcd,12,340,56,-1\n"), "column 'exited' must be 0 or 1 but is not in line 2 ('-1')"),
    "exited_yes.csv": (text(HEADER + "abcd,12,340,56,yes\n"), "column 'exited' must be 0 or 1 but is not in line 2 ('yes')"),
    "no_corporation.csv": (text(HEADER + ",12,340,56,1\n"), "column 'corporation' is empty in line 2"),
    "multiline_name.csv": (  # issue 21: an id is plain text on one line (drs/core/ids.py)
        text(HEADER + '"Acme\nHoldings",12,340,56,1\n'),
        "column 'corporation' holds a control character in line 2 ('Acme\\nHoldings'):"
        " an id must be plain text on one line (no NUL, tab, line break or other control character)",
    ),
    "latin1.csv": (
        raw((HEADER + "caf\xe9,12,340,56,1\n").encode("latin-1")),
        f"is not UTF-8 text (line 2 has the byte 0xe9, at offset {len(HEADER) + 3}: saved as Latin-1 or Windows-1252?):"
        " save it as UTF-8 (in Excel: CSV UTF-8)",
    ),
    "utf16.csv": (raw((HEADER + ROW).encode("utf-16")), "is UTF-16 text: save it as UTF-8 (in Excel: CSV UTF-8)"),
    "utf16be.csv": (raw((HEADER + ROW).encode("utf-16-be")), "is UTF-16 text: save it as UTF-8 (in Excel: CSV UTF-8)"),
    "pandas_index.csv": (text("," + HEADER + "0," + ROW), "the first column has no name: a saved DataFrame index? save with index=False"),
    "capitals.csv": (
        text(HEADER.replace("corporation", "Corporation").replace("exited", "EXITED") + ROW),
        "headers differ only in case: Corporation (expected corporation), EXITED (expected exited)",
    ),
    "tabs.csv": (
        text(HEADER.replace(",", "\t") + ROW.replace(",", "\t")),
        f"fields are separated by tabs, not commas: export it comma-separated {EXPECTED}",
    ),
    "spreadsheet.csv": (
        raw(b"PK\x03\x04\x14\x00\x06\x00\x08\x00\x00\x00!\x00\xb5U0#\xf4"),
        "is a spreadsheet workbook or other zip file, not CSV text: save it as CSV UTF-8",
    ),
    "truncated_last_line.csv": (
        text(HEADER + rows(4) + "abcd,12,3"),
        "line 6 has 3 fields but the header has 5 (2 values missing: a line cut short, or a file still being copied?)",
    ),
    "too_many_fields.csv": (text(HEADER + rows(1) + "abcd,12,340,56,1,7\n"), f"line 3 has 6 fields but the header has 5 {TOO_MANY}"),
    "unterminated_quote.csv": (
        text(HEADER + rows(1) + '"abcd,12,340,56,1\n'),
        'line 3: a quote (") opens a value that is never closed (a " inside a value is written "")',
    ),
    "text_after_quote.csv": (
        text(HEADER + '"Acme" Inc,12,340,56,1\n'),
        'line 2: text after a closing quote (") (a " inside a value is written "")',
    ),
    # every field count but the header's, wherever the row is (issue 20: the first row's extra field shifted every column)
    "clients_q5.csv": (text(HEADER + rows(1) + "acme,10,200,30,0,1\n"), f"line 3 has 6 fields but the header has 5 {TOO_MANY}"),
    "extra_field_first_row.csv": (text(HEADER + "acme,10,200,30,0,1\n" + rows(2)), f"line 2 has 6 fields but the header has 5 {TOO_MANY}"),
    "extra_field_every_row.csv": (
        text(HEADER + "".join(line.rstrip() + ",1\n" for line in rows(3).splitlines())),
        f"line 2 has 6 fields but the header has 5 {TOO_MANY}; 2 more lines like it",
    ),
    "unquoted_comma_in_name.csv": (
        text(HEADER + "Acme, Inc.,12,340,56,1\n"),
        f"line 2 has 6 fields but the header has 5 {TOO_MANY}",
    ),
    "several_too_many.csv": (
        text(HEADER + rows(2) + "Acme, Smith, and Jones,12,340,56,1\n"),
        'line 4 has 7 fields but the header has 5 (2 values too many: a comma inside a name needs "quotes")',
    ),
    "one_fewer_in_the_middle.csv": (
        text(HEADER + rows(2) + "abcd,12,340,1\n" + rows(2, start=5)),
        "line 4 has 4 fields but the header has 5 (a value missing: a line cut short, or a file still being copied?)",
    ),
    "one_field.csv": (
        text(HEADER + "abcd\n"),
        "line 2 has 1 field but the header has 5 (4 values missing: a line cut short, or a file still being copied?)",
    ),
    "trailing_comma_every_row.csv": (
        text(HEADER + "".join(line + ",\n" for line in rows(3).splitlines())),
        "line 2 has 6 fields but the header has 5 (it ends with an extra comma: delete the empty cell(s) after the last column);"
        " 2 more lines like it",
    ),
    "trailing_comma_header_too.csv": (
        text(HEADER.rstrip() + ",\n" + "".join(line + ",\n" for line in rows(3).splitlines())),
        f"column 6 of the header has no name (an extra comma at the end of the header?) {EXPECTED}",
    ),
    "only_commas.csv": (
        text(HEADER + rows(2) + ",,,,\n" + rows(1, start=9)),
        "line 4 has only empty cells (a row of only commas: delete it)",
    ),
    "only_more_commas.csv": (
        text(HEADER + rows(1) + ",,,,,,\n"),
        "line 3 has 7 fields but the header has 5 (a row of only commas: delete it)",
    ),
    "crlf_extra_field.csv": (
        raw((HEADER + rows(2) + "acme,10,200,30,0,1\n").replace("\n", "\r\n").encode()),
        f"line 4 has 6 fields but the header has 5 {TOO_MANY}",
    ),
    "after_a_multiline_name.csv": (
        text(HEADER + '"Acme\nHoldings",1,2,3,0\n' + "acme,10,200,30,0,1\n"),
        f"line 4 has 6 fields but the header has 5 {TOO_MANY}",
    ),
    "after_a_blank_line.csv": (
        text(HEADER + rows(1) + "\n\n" + "acme,10,200,30,0,1\n"),
        f"line 5 has 6 fields but the header has 5 {TOO_MANY}",
    ),
    # the header
    "misspelt_column.csv": (
        text(HEADER.replace("corporation", "corporaton") + ROW),
        f"unknown column name(s) in the header: 'corporaton' (did you mean 'corporation'?) {EXPECTED}",
    ),
    "two_misspelt_columns.csv": (
        text(HEADER.replace("lastyear_activity", "last_year_activity").replace("exited", "exitted") + ROW),
        "unknown column name(s) in the header: 'last_year_activity' (did you mean 'lastyear_activity'?),"
        f" 'exitted' (did you mean 'exited'?) {EXPECTED}",
    ),
    "no_header.csv": (
        text(ROW + rows(2)),
        "the first line holds values, not column names: add the header line"
        " corporation,lastmonth_activity,lastyear_activity,number_of_employees,exited",
    ),
    # values a spreadsheet writes
    "thousands_separator.csv": (
        text(HEADER + rows(1) + 'abcd,"1,200",340,56,1\n'),
        "column 'lastmonth_activity' has a number written with a separator in line 3 ('1,200'):"
        " write whole numbers with no thousands separator or decimal comma (1200, not 1,200)",
    ),
    "decimal_comma.csv": (
        text(HEADER + 'abcd,12,"340,5",56,1\n'),
        "column 'lastyear_activity' has a number written with a separator in line 2 ('340,5'):"
        " write whole numbers with no thousands separator or decimal comma (1200, not 1,200)",
    ),
    "space_in_number.csv": (
        text(HEADER + "abcd,12,340,1 056,1\n"),
        "column 'number_of_employees' has a number written with a separator in line 2 ('1 056'):"
        " write whole numbers with no thousands separator or decimal comma (1200, not 1,200)",
    ),
    "symlink_outside.csv": (symlink_outside, "is a symlink pointing outside the input folder"),
    "broken_symlink.csv": (broken_symlink, "is a symlink to a file that does not exist"),
    "x.csv": (directory, "is a directory, not a file"),
}

ACCEPTED: dict[str, tuple[Callable[[Path], None], list[list[object]]]] = {
    "reordered.csv": (
        text("exited,number_of_employees,corporation,lastyear_activity,lastmonth_activity\n1,56,abcd,340,12\n"),
        [["abcd", 12, 340, 56, 1]],
    ),
    "bom.csv": (raw(b"\xef\xbb\xbf" + (HEADER + ROW).encode()), [["abcd", 12, 340, 56, 1]]),
    "windows.csv": (
        raw((HEADER + ROW + "efgh,1,2,3,0\n").replace("\n", "\r\n").encode()),
        [["abcd", 12, 340, 56, 1], ["efgh", 1, 2, 3, 0]],
    ),
    "quoted_comma.csv": (text(HEADER + '"Acme, Inc.",12,340,56,1\n'), [["Acme, Inc.", 12, 340, 56, 1]]),
    "spaces.csv": (
        text(" corporation , lastmonth_activity,lastyear_activity,number_of_employees,exited\nabcd, 12, 340, 56, 1\n"),
        [["abcd", 12, 340, 56, 1]],
    ),
    "no_final_newline.csv": (text(HEADER + "abcd,12,340,56,1"), [["abcd", 12, 340, 56, 1]]),
    "UPPER.CSV": (text(HEADER + "abcd,12,340,56,1\n"), [["abcd", 12, 340, 56, 1]]),
    "blank_line_in_the_middle.csv": (text(HEADER + ROW + "\n" + "efgh,1,2,3,0\n"), [["abcd", 12, 340, 56, 1], ["efgh", 1, 2, 3, 0]]),
    "blank_lines_at_the_end.csv": (text(HEADER + ROW + "\n\n \n"), [["abcd", 12, 340, 56, 1]]),
    "trailing_spaces.csv": (text(HEADER + "abcd ,12 ,340 ,56 ,1 \n"), [["abcd", 12, 340, 56, 1]]),
    "quoted_everything.csv": (text(HEADER + '"abcd","12","340","56","1"\n'), [["abcd", 12, 340, 56, 1]]),
    "quoted_commas_stay_one_field.csv": (
        text(HEADER + rows(2, start=700) + '"Smith, Jones, and Co",1,2,3,0\n'),
        [["zz700", 20, 1100, 75, 0], ["zz701", 21, 1101, 76, 1], ["Smith, Jones, and Co", 1, 2, 3, 0]],
    ),
}
GOOD = ["dataset1.csv", "dataset2.csv"]


def record_of(config: Config, name: str) -> dict:
    record = json.loads(config.ingestion_record.read_text())
    return next(f for f in record["files"] if f["name"] == name)


def test_the_corpus_is_big_enough() -> None:
    assert len(REJECTED) + len(ACCEPTED) + 2 >= 20  # + the growing file and the 50 MB file below


@pytest.mark.parametrize("name", sorted(REJECTED))
def test_bad_file_is_rejected_whole_and_named_and_the_good_files_go_in(
    practice_config: Config, name: str, caplog: pytest.LogCaptureFixture
) -> None:
    write, reason = REJECTED[name]
    write(practice_config.input_folder / name)
    sources = tree_state(practice_config.input_folder)
    result = ingest.ingest(practice_config)
    assert {r.name: r.reason for r in result.rejected} == {name: reason}
    assert f"rejected {name}: {reason}" in caplog.text
    assert practice_config.ingested_files_txt.read_text().split() == GOOD
    assert result.rows_written == 520
    assert record_of(practice_config, name)["status"] == "rejected" and record_of(practice_config, name)["reason"] == reason
    assert tree_state(practice_config.input_folder) == sources


@pytest.mark.parametrize("name", sorted(ACCEPTED))
def test_acceptable_oddities_are_read_correctly(practice_config: Config, name: str) -> None:
    write, expected = ACCEPTED[name]
    write(practice_config.input_folder / name)
    result = ingest.ingest(practice_config)
    assert result.rejected == []
    assert sorted(practice_config.ingested_files_txt.read_text().split()) == sorted(GOOD + [name])
    final = pd.read_csv(practice_config.final_data_csv)
    added = final[final.corporation.isin([row[0] for row in expected])].values.tolist()
    assert added == expected
    assert result.rows_written == 520 + len(expected)


def test_whole_corpus_in_one_run_leaves_production_untouched_and_is_not_retried(
    deployed_practice: Config, caplog: pytest.LogCaptureFixture
) -> None:
    practice = deployed_practice
    for name, (write, _) in REJECTED.items():
        write(practice.input_folder / name)
    production_before = tree_state(practice.prod_deployment_folder)
    assert pipeline.run(practice) == 0
    run = history.runs(practice.history_db)[-1]
    assert run["outcome"] == "new files rejected"
    assert sorted(run["details"]["new_files"]) == sorted(REJECTED)
    for name, (_, reason) in REJECTED.items():
        assert f"rejected {name}: {reason}" in caplog.text
        assert record_of(practice, name)["reason"] == reason
    seen = {e["name"]: e for e in file_store.seen_files(practice.history_db)}
    assert {name: (seen[name]["verdict"], seen[name]["reason"]) for name in REJECTED} == {
        n: ("rejected", r) for n, (_, r) in REJECTED.items()
    }
    assert tree_state(practice.prod_deployment_folder) == production_before

    outputs_before = tree_state(practice.output_folder, practice.prod_deployment_folder)
    caplog.clear()
    assert pipeline.run(practice) == 0  # nothing changed: nothing is tried again
    assert history.runs(practice.history_db)[-1]["outcome"] == "no new data"
    assert "rejected" not in caplog.text
    assert {k: v for k, v in tree_state(practice.output_folder, practice.prod_deployment_folder).items() if "runhistory" not in k} == {
        k: v for k, v in outputs_before.items() if "runhistory" not in k
    }

    fixed = practice.input_folder / "exited_two.csv"
    fixed.write_text(HEADER + rows(30, start=500))  # new content: tried again, and accepted
    assert pipeline.run(practice) == 0
    run = history.runs(practice.history_db)[-1]
    assert run["details"]["new_files"] == ["exited_two.csv"] and run["outcome"] in {"no drift", "deployed"}


def test_nothing_valid_at_all_fails_and_leaves_every_output_as_it_was(deployed_practice: Config) -> None:
    practice = deployed_practice
    for path in practice.input_folder.iterdir():
        path.unlink()
    shutil.rmtree(practice.kept_sources_folder)  # removed files keep their rows unless their copies go too
    before = tree_state(practice.output_folder, practice.output_model_folder, practice.prod_deployment_folder)
    for name, (write, _) in REJECTED.items():
        write(practice.input_folder / name)
    done = run_script("ingestion.py", "--config", str(practice.config_file))
    assert done.returncode == 1
    assert f"no valid data in {practice.input_folder} ({len(REJECTED)} file(s) rejected); earlier outputs left as they were" in done.stderr
    for name, (_, reason) in REJECTED.items():
        assert f"rejected {name}: {reason}" in done.stderr
    assert "Traceback" not in done.stderr
    assert tree_state(practice.output_folder, practice.output_model_folder, practice.prod_deployment_folder) == before


def test_file_still_being_written_is_rejected_then_accepted_when_complete(deployed_practice: Config) -> None:
    """tests/faultrun.py appends a line to the file each time it is opened for reading, as a
    copy in progress would; the next run, with the copy finished, takes it."""
    practice = deployed_practice
    growing = practice.input_folder / "dataset3.csv"
    growing.write_text(HEADER + rows(50, start=1000))
    done = run_with_faults("fullprocess.py", practice, grow=growing)
    assert done.returncode == 0, done.stderr
    reason = "changed while it was being read (still being written?); it will be tried again"
    assert f"rejected dataset3.csv: {reason}" in done.stderr
    assert history.runs(practice.history_db)[-1]["outcome"] == "new files rejected"
    assert record_of(practice, "dataset3.csv")["sha256"] is None  # what was read is not the file
    assert pipeline.run(practice) == 0
    run = history.runs(practice.history_db)[-1]
    assert run["details"]["new_files"] == ["dataset3.csv"] and run["outcome"] in {"no drift", "deployed"}
    assert record_of(practice, "dataset3.csv")["status"] == "accepted"
    lines = growing.read_text().splitlines()
    assert len(lines) > 51 and lines[-1] == "growing,1,2,3,0"  # it grew while the first run read it
    assert record_of(practice, "dataset3.csv")["rows_read"] == len(lines) - 1  # the whole file, as it is now


@pytest.mark.slow
def test_a_50_mb_file_is_accepted_whole(practice_config: Config) -> None:
    big = practice_config.input_folder / "big.csv"
    name = "Holding {i} of the Very Long Name Corporation of Worldwide Trading Limited Partnership"
    with open(big, "w") as handle:
        handle.write(HEADER)
        i = 0
        while handle.tell() < 50 * 2**20:
            handle.write(f"{name.format(i=i)},{i % 300},{i % 5000},{i % 900},{i % 2}\n")
            i += 1
    result = ingest.ingest(practice_config)
    assert result.rejected == []
    assert record_of(practice_config, "big.csv")["rows_read"] == i
    assert result.rows_written == 520 + i
