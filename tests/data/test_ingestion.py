"""Ingestion: every CSV checked, duplicates dropped, bad files named and skipped, sources untouched."""

from __future__ import annotations

import json
import shutil

import pandas as pd
import pytest

from drs.core.errors import DataError, StageError
from drs.core.settings import Config
from drs.data import ingest
from drs.data.schema import Schema
from drs.reports import diagnostics, risk
from tests.conftest import HEADER, run_script, tree_state


def test_practice_data_is_concatenated_and_deduplicated(practice_config: Config) -> None:
    result = ingest.ingest(practice_config)
    final = pd.read_csv(practice_config.final_data_csv)
    raw = pd.concat([pd.read_csv(p) for p in sorted(practice_config.input_folder.glob("*.csv"))], ignore_index=True)
    assert len(raw) == 580
    assert len(final) == 520 == result.rows_written
    assert result.duplicates_dropped == 60
    assert not final.duplicated().any()
    assert list(final.columns) == ["corporation", "lastmonth_activity", "lastyear_activity", "number_of_employees", "exited"]
    pd.testing.assert_frame_equal(final, raw.drop_duplicates(ignore_index=True))
    assert practice_config.ingested_files_txt.read_text() == "dataset1.csv\ndataset2.csv\n"
    record = json.loads(practice_config.ingestion_record.read_text())
    assert [f["name"] for f in record["files"]] == ["dataset1.csv", "dataset2.csv"]
    assert record["files"][0]["rows_read"] == 300 and record["files"][0]["status"] == "accepted"
    assert len(record["files"][0]["sha256"]) == 64
    assert record["rows_written"] == 520 and record["duplicates_dropped"] == 60


def test_non_csv_files_are_ignored(practice_config: Config) -> None:
    (practice_config.input_folder / "Icon\r").write_bytes(b"")
    (practice_config.input_folder / "notes.txt").write_text("not data\n")
    ingest.ingest(practice_config)
    assert practice_config.ingested_files_txt.read_text().split() == ["dataset1.csv", "dataset2.csv"]


BAD_FILES = {
    "missing_column.csv": (
        "corporation,lastmonth_activity,lastyear_activity,exited\nabcd,1,2,0\n",
        "missing column(s): number_of_employees (expected corporation,lastmonth_activity,lastyear_activity,number_of_employees,exited)",
    ),
    "text_in_number.csv": (
        HEADER + "abcd,12,34,5,0\nefgh,twelve,34,5,1\n",
        "column 'lastmonth_activity' is not a number in line 3 ('twelve')",
    ),
    "exited_two.csv": (HEADER + "abcd,12,34,5,2\n", "column 'exited' must be 0 or 1 but is not in line 2 ('2')"),
    "empty.csv": ("", "file is empty"),
    "header_only.csv": (HEADER, "has a header but no data rows"),
    "negative.csv": (HEADER + "abcd,-3,34,5,0\n", "column 'lastmonth_activity' is negative in line 2 ('-3')"),
}


@pytest.mark.parametrize("name", sorted(BAD_FILES))
def test_bad_file_is_named_with_its_reason_and_the_rest_goes_in(
    practice_config: Config, name: str, caplog: pytest.LogCaptureFixture
) -> None:
    content, reason = BAD_FILES[name]
    (practice_config.input_folder / name).write_text(content)
    result = ingest.ingest(practice_config)
    rejected = {r.name: r.reason for r in result.rejected}
    assert rejected == {name: reason}
    assert f"rejected {name}: {reason}" in caplog.text
    assert practice_config.ingested_files_txt.read_text().split() == ["dataset1.csv", "dataset2.csv"]
    assert result.rows_written == 520
    record = json.loads(practice_config.ingestion_record.read_text())
    bad = next(f for f in record["files"] if f["name"] == name)
    assert bad["status"] == "rejected" and bad["reason"] == reason


def test_sources_are_never_changed(practice_config: Config) -> None:
    (practice_config.input_folder / "bad.csv").write_text(HEADER + "x,1,2,3,7\n")
    before = tree_state(practice_config.input_folder)
    ingest.ingest(practice_config)
    assert tree_state(practice_config.input_folder) == before


def test_no_valid_data_leaves_earlier_outputs_and_fails(practice_config: Config) -> None:
    ingest.ingest(practice_config)
    for path in practice_config.input_folder.glob("*.csv"):
        path.unlink()
    shutil.rmtree(practice_config.kept_sources_folder)  # removed files keep their rows unless their copies go too
    before = tree_state(practice_config.output_folder)
    (practice_config.input_folder / "bad.csv").write_text(HEADER + "x,1,2,3,7\n")
    with pytest.raises(StageError, match="no valid data .* earlier outputs left as they were"):
        ingest.ingest(practice_config)
    assert tree_state(practice_config.output_folder) == before


def test_script_exit_code_says_nothing_valid_arrived(practice_config: Config) -> None:
    for path in practice_config.input_folder.glob("*.csv"):
        path.unlink()
    (practice_config.input_folder / "empty.csv").write_text("")
    done = run_script("ingestion.py", "--config", str(practice_config.config_file))
    assert done.returncode == 1
    assert "rejected empty.csv: file is empty" in done.stderr
    assert "no valid data" in done.stderr and "Traceback" not in done.stderr
    assert not practice_config.final_data_csv.exists()


def test_columns_in_another_order_and_crlf_are_accepted(practice_config: Config) -> None:
    text = "exited,corporation,number_of_employees,lastyear_activity,lastmonth_activity\r\n1,zzzz,7,70,5\r\n"
    (practice_config.input_folder / "reordered.csv").write_bytes(text.encode())
    ingest.ingest(practice_config)
    final = pd.read_csv(practice_config.final_data_csv)
    row = final[final.corporation == "zzzz"].iloc[0]
    assert (row.lastmonth_activity, row.lastyear_activity, row.number_of_employees, row.exited) == (5, 70, 7, 1)


# ---- a row of another width than the header: the file is refused whole, nothing shifts (issue 20) ----

TOO_MANY = '(a value too many: a comma inside a name needs "quotes")'
WIDTHS = {
    "one more": ("acme,10,200,30,0,1\n", f"line 3 has 6 fields but the header has 5 {TOO_MANY}"),
    "three more": (
        "acme,x,y,10,200,30,0,1\n",
        'line 3 has 8 fields but the header has 5 (3 values too many: a comma inside a name needs "quotes")',
    ),
    "one fewer": (
        "acme,10,200,0\n",
        "line 3 has 4 fields but the header has 5 (a value missing: a line cut short, or a file still being copied?)",
    ),
    "trailing comma": (
        "acme,10,200,30,0,\n",
        "line 3 has 6 fields but the header has 5 (it ends with an extra comma: delete the empty cell(s) after the last column)",
    ),
    "only commas": (",,,,,\n", "line 3 has 6 fields but the header has 5 (a row of only commas: delete it)"),
}


@pytest.mark.parametrize("case", sorted(WIDTHS))
def test_a_new_file_with_a_row_of_another_width_leaves_finaldata_unchanged(
    practice_config: Config, case: str, caplog: pytest.LogCaptureFixture
) -> None:
    ingest.ingest(practice_config)
    before = practice_config.final_data_csv.read_bytes()
    row, reason = WIDTHS[case]
    (practice_config.input_folder / "clients_q5.csv").write_text(HEADER + "good,1,2,3,0\n" + row + "late,4,5,6,1\n")
    (practice_config.input_folder / "dataset3.csv").write_text(HEADER + "newco,7,8,9,0\n")
    result = ingest.ingest(practice_config)
    assert {r.name: r.reason for r in result.rejected} == {"clients_q5.csv": reason}
    assert f"rejected clients_q5.csv: {reason}" in caplog.text
    assert practice_config.final_data_csv.read_bytes() == before + b"newco,7,8,9,0\n"  # the good new file, nothing of the bad one
    assert practice_config.ingested_files_txt.read_text().split() == ["dataset1.csv", "dataset2.csv", "dataset3.csv"]


@pytest.mark.parametrize("case", sorted(WIDTHS))
def test_scoring_refuses_test_data_with_a_row_of_another_width(deployed_practice: Config, case: str) -> None:
    row, reason = WIDTHS[case]
    test_csv = deployed_practice.test_data_csv
    lines = test_csv.read_text().splitlines(keepends=True)
    test_csv.write_text("".join([lines[0], lines[1], row, *lines[2:]]))
    before = tree_state(deployed_practice.output_model_folder)
    done = run_script("scoring.py", "--config", str(deployed_practice.config_file))
    assert done.returncode == 1
    assert f"{test_csv}: {reason}" in done.stderr and "Traceback" not in done.stderr
    assert tree_state(deployed_practice.output_model_folder) == before


@pytest.mark.parametrize("case", sorted(WIDTHS))
def test_finaldata_read_back_with_a_row_of_another_width_is_refused_not_shifted(practice_config: Config, case: str) -> None:
    ingest.ingest(practice_config)
    final = practice_config.final_data_csv
    lines = final.read_text().splitlines(keepends=True)
    final.write_text("".join([lines[0], lines[1], row_of(case), *lines[2:]]))
    with pytest.raises(DataError) as info:
        diagnostics.final_data(practice_config)
    assert str(info.value) == f"{final}: {WIDTHS[case][1]}"
    with pytest.raises(DataError) as info:
        risk.read_ingested(final, Schema())
    assert str(info.value) == f"{final}: {WIDTHS[case][1]}"


def row_of(case: str) -> str:
    return WIDTHS[case][0]
