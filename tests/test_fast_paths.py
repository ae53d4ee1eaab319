"""The fast paths give the simple implementation's results: ingestion, incremental ingestion, the drift F1, the empty check."""

from __future__ import annotations

import json
import logging
import shutil
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import polars as pl
import pytest

from drs.core import layout
from drs.core.settings import Config
from drs.data import ingest, rowstore, sources
from drs.data.readers import fast_frame, frame_from_text, read_csv_checked
from drs.data.schema import Schema
from drs.history import files as file_store
from drs.history import runs as history
from drs.model.metrics import metrics
from drs.pipeline import run as pipeline
from tests.conftest import HEADER, ROOT
from tools.generate_data import large_set


def simple_final_csv(folder: Path, schema: Schema, order: list[str] | None = None) -> bytes:
    """The simple implementation: the careful reader per file, pandas concat, drop_duplicates, to_csv.

    Files in `order` (their arrival order), else in name order (the shipped files arrived in name order)."""
    frames = []
    rank = {name: i for i, name in enumerate(order or [])}
    for path in sorted(folder.iterdir(), key=lambda p: (rank.get(p.name, -1), p.name)):
        if not sources.is_candidate(path.name):
            continue
        try:
            frames.append(frame_from_text(path.read_bytes().decode("utf-8-sig"), schema, path.name))
        except Exception:
            continue
    combined = pd.concat(frames, ignore_index=True).drop_duplicates(keep="first", ignore_index=True)
    return combined.to_csv(index=False, lineterminator="\n").encode()


def write_frame(frame: pd.DataFrame, path: Path) -> None:
    frame.to_csv(path, index=False, lineterminator="\n")


def generated_arrivals(folder: Path) -> list[str]:
    """Files with duplicates within a file and across files, ids that need quoting, and values the
    fast reader leaves to the careful one (spaces, 3.0, a BOM, CRLF)."""
    folder.mkdir(parents=True, exist_ok=True)
    a, b, c = large_set(3000, seed=1), large_set(2000, seed=2), large_set(1500, seed=3)
    write_frame(pd.concat([a, a.iloc[:200], a.iloc[50:60]], ignore_index=True), folder / "f01.csv")  # within-file duplicates
    write_frame(pd.concat([a.iloc[-300:], b], ignore_index=True), folder / "f02.csv")  # re-sent rows of f01
    odd = b.iloc[:20].copy()
    odd.loc[odd.index[:5], "corporation"] = ["x,y", 'q"uote', "sp ace", "ünï", "=formula"]
    write_frame(pd.concat([odd, c], ignore_index=True), folder / "f03.csv")
    text = (folder / "f03.csv").read_text()
    (folder / "f04.csv").write_bytes(b"\xef\xbb\xbf" + text.replace("\n", "\r\n").encode())  # all duplicates, BOM + CRLF
    careful = c.iloc[:30].astype(str)
    careful["lastmonth_activity"] = careful["lastmonth_activity"] + ".0"
    careful.loc[careful.index[0], "corporation"] = "  padded  "
    write_frame(careful, folder / "f05.csv")
    (folder / "f06.csv").write_text(HEADER + "abcd,1,2,3,9\n")  # rejected
    return sorted(p.name for p in folder.iterdir())


def test_fast_ingestion_equals_the_simple_implementation(practice_config: Config) -> None:
    shutil.rmtree(practice_config.input_folder)
    generated_arrivals(practice_config.input_folder)
    result = ingest.ingest(practice_config)
    expected = simple_final_csv(practice_config.input_folder, Schema())
    assert practice_config.final_data_csv.read_bytes() == expected
    assert [r.name for r in result.rejected] == ["f06.csv"]
    assert result.rows_written == len(expected.splitlines()) - 1
    assert result.duplicates_dropped == result.rows_before_dedup - result.rows_written > 300 + 210


def test_fast_reader_leaves_what_it_is_unsure_of_to_the_careful_one() -> None:
    schema = Schema()
    plain = (HEADER + "abcd,1,2,3,0\n").encode()
    assert fast_frame(plain, schema).rows() == [("abcd", 1, 2, 3, 0)]
    for body in (
        "abcd,1.0,2,3,0\n",
        " abcd,1,2,3,0\n",
        "abcd,1,2,3,0\n\nefgh,1,2,3,1\n",
        "abcd,,2,3,0\n",
        "abcd,1,2,3,2\n",
        "abcd,-1,2,3,0\n",
        "abcd,99999999999999999999,2,3,0\n",
        "abcd,1,2,3\n",
        "\u00a0abcd,1,2,3,0\n",
    ):
        assert fast_frame((HEADER + body).encode(), schema) is None, body


def test_a_hash_collision_never_drops_a_row(practice_config: Config, monkeypatch: pytest.MonkeyPatch) -> None:
    """With every row given the same hash, only exact comparison can decide; the result must not change."""
    monkeypatch.setattr(rowstore, "row_hashes", lambda frame: pl.Series(rowstore.HASH_COLUMN, np.zeros(frame.height, dtype=np.uint64)))
    ingest.ingest(practice_config)
    assert practice_config.final_data_csv.read_bytes() == simple_final_csv(practice_config.input_folder, Schema())
    (practice_config.input_folder / "dataset3.csv").write_text(
        HEADER + (practice_config.input_folder / "dataset1.csv").read_text().splitlines()[5] + "\nnewco,1,2,3,0\n"
    )
    ingest.ingest(practice_config)
    final = practice_config.final_data_csv.read_text().splitlines()
    assert final[-1] == "newco,1,2,3,0" and len(final) == 1 + 521


def comparable(config: Config) -> tuple[bytes, str, list[dict]]:
    record = json.loads(config.ingestion_record.read_text())
    return config.final_data_csv.read_bytes(), config.ingested_files_txt.read_text(), record["files"]


def test_incremental_runs_equal_a_full_reingestion(tmp_path: Path, practice_config: Config, caplog: pytest.LogCaptureFixture) -> None:
    source = tmp_path / "arrivals"
    names = generated_arrivals(source)
    folder = practice_config.input_folder
    shutil.rmtree(folder)
    folder.mkdir()
    full = replace(practice_config, output_folder=tmp_path / "full")
    caplog.set_level(logging.INFO)
    steps = [[n] for n in names] + [["g01.csv"], ["a00.csv"], ["touch f02.csv"], ["fix f06.csv"], ["rm f03.csv"]]
    incremental_runs = 0
    for step in steps:
        for name in step:
            if name in names:
                shutil.copy(source / name, folder / name)
            elif name == "g01.csv":
                write_frame(pd.concat([large_set(100, seed=9), large_set(3000, seed=1).iloc[:10]]), folder / name)
            elif name == "a00.csv":  # sorts before every ingested file: the order rule needs a full pass
                write_frame(large_set(50, seed=10), folder / name)
            elif name.startswith("touch"):
                (folder / name.split()[1]).touch()
            elif name.startswith("fix"):
                (folder / name.split()[1]).write_text(HEADER + "fixd,1,2,3,1\n")
            elif name.startswith("rm"):
                (folder / name.split()[1]).unlink()
        caplog.clear()
        ingest.ingest(practice_config)
        incremental_runs += "(incremental)" in caplog.text
        for entry in full.output_folder.glob("*"):  # a full pass from scratch, but for the copies of removed files
            if entry.name not in (layout.KEPT_SOURCES_DIR, layout.HISTORY_DB):  # and the record of when files arrived
                shutil.rmtree(entry) if entry.is_dir() else entry.unlink()
        ingest.ingest(full)
        mine, theirs = comparable(practice_config), comparable(full)
        assert mine[0] == theirs[0], step
        assert mine[1:] == theirs[1:], step
        expected = tmp_path / "expected"  # the folder's files, and the removed ones as they were ingested
        shutil.rmtree(expected, ignore_errors=True)
        shutil.copytree(folder, expected)
        for copy in practice_config.kept_sources_folder.iterdir():
            if not (expected / copy.name).exists():
                shutil.copy(copy, expected / copy.name)
        arrived = [a["name"] for a in file_store.arrivals(practice_config.history_db, str(folder))]
        assert mine[0] == simple_final_csv(expected, Schema(), arrived), step
    # f02..f06 (f06 rejected), g01, a00 and the fixed f06 (both arrived last, whatever their names), the touch and the
    # removal (its rows kept) go in incrementally; only f01 (the first) needs a full pass
    assert incremental_runs == 10


def test_store_is_rebuilt_when_finaldata_is_changed_by_hand(practice_config: Config, caplog: pytest.LogCaptureFixture) -> None:
    ingest.ingest(practice_config)
    practice_config.final_data_csv.write_text(HEADER + "hand,1,2,3,0\n")
    (practice_config.input_folder / "dataset3.csv").write_text(HEADER + "newco,1,2,3,0\n")
    caplog.clear()
    ingest.ingest(practice_config)
    assert "(incremental)" not in caplog.text
    assert practice_config.final_data_csv.read_bytes() == simple_final_csv(practice_config.input_folder, Schema())


def test_read_csv_checked_returns_the_careful_readers_frame() -> None:
    for path in (ROOT / "testdata" / "testdata.csv", ROOT / "practicedata" / "dataset1.csv"):
        pd.testing.assert_frame_equal(read_csv_checked(path, Schema()), frame_from_text(path.read_text(), Schema(), path.name))


HEAVY = {"pandas", "numpy", "scipy", "sklearn", "polars", "matplotlib", "pyarrow"}


def cron_tick_imports(config: Config) -> tuple[str, set[str]]:
    """fullprocess.py as cron runs it (from /, as a script): its log and the top-level packages it imported."""
    done = subprocess.run(
        [sys.executable, "-X", "importtime", str(ROOT / "fullprocess.py"), "--config", str(config.config_file)],
        cwd="/",
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    imported = {line.split("|")[-1].strip().split(".")[0] for line in done.stderr.splitlines() if line.startswith("import time:")}
    return done.stderr, imported


def test_the_empty_check_imports_nothing_heavy(deployed_practice: Config, config: Config) -> None:
    """With nothing new, none of the heavy libraries is imported."""
    assert pipeline.run(config) == 0  # production data in, v0002 deployed
    log, imported = cron_tick_imports(config)
    assert "no new data in sourceddata; v0002 stays deployed" in log
    assert "drs" in imported and sorted(HEAVY & imported) == []
    assert history.runs(config.history_db)[-1]["outcome"] == "no new data"


def test_a_run_that_deploys_nothing_loads_no_report_libraries(deployed_practice: Config, config: Config) -> None:
    """A rejected file that leaves finaldata.csv as it was ends before step 7 and ranks nothing (the list is current):
    matplotlib, seaborn, reportlab and requests stay unloaded. (A run that keeps new data ranks it: drs/pipeline/followup.py.)"""
    assert pipeline.run(config) == 0
    (config.input_folder / "clients_q5.csv").write_text(HEADER + "abcd,1,x,3,0\n")
    log, imported = cron_tick_imports(config)
    assert "new file(s) rejected: clients_q5.csv; v0002 stays deployed" in log
    assert "polars" in imported and sorted({"matplotlib", "seaborn", "reportlab", "requests"} & imported) == []


def test_metrics_from_one_count_equal_scikit_learns() -> None:
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import accuracy_score, confusion_matrix, f1_score, precision_score, recall_score

    frame = large_set(5000, seed=5)
    x, y = frame[list(Schema().features)].to_numpy(dtype=float), frame["exited"].to_numpy()
    for model in (LogisticRegression(solver="liblinear").fit(x, y), LogisticRegression(solver="liblinear").fit(x, 1 - y)):
        got, pred = metrics(model, frame, Schema()), model.predict(x)
        assert got["f1"] == f1_score(y, pred, zero_division=0)
        assert got["precision"] == precision_score(y, pred, zero_division=0)
        assert got["recall"] == recall_score(y, pred, zero_division=0)
        assert got["accuracy"] == accuracy_score(y, pred)
        assert got["confusion_matrix"] == confusion_matrix(y, pred, labels=[0, 1]).tolist()


def test_rows_in_equals_a_pandas_merge(monkeypatch: pytest.MonkeyPatch) -> None:
    """Which new rows the deployed model was trained on: the same answer as the merge it replaces, collisions included."""
    columns = list(Schema().columns)
    other = large_set(3000, seed=11)
    frame = pd.concat([other.iloc[100:150], large_set(200, seed=12), other.iloc[:5]], ignore_index=True)
    frame.loc[0, "exited"] = 1 - frame.loc[0, "exited"]  # same row but for one value: not in `other`
    marked = frame.merge(other[columns].drop_duplicates(), how="left", on=columns, indicator=True)
    expected = marked["_merge"].to_numpy() == "both"
    assert expected.sum() == 54
    assert (rowstore.rows_in(frame, other, columns) == expected).all()
    assert (rowstore.rows_in(frame, pl.DataFrame({c: other[c].tolist() for c in columns}), columns) == expected).all()
    monkeypatch.setattr(rowstore, "row_hashes", lambda f: pl.Series(rowstore.HASH_COLUMN, np.zeros(f.height, dtype=np.uint64)))
    assert (rowstore.rows_in(frame, other, columns) == expected).all()
