"""The order of files is the order they arrived, not their names': a client's newest row is the one that arrived last.

A new export `clients_2027_q1.csv` sorts before `clients_q1.csv` but arrived after it, so its rows must win; the
order survives a restart and a re-ingestion from scratch; re-sent copies, touched files and files repeating another
file's rows are named, with both names, in the log and the run's message.
"""

from __future__ import annotations

import logging
import os
import shutil
import sqlite3
import time
from pathlib import Path

import pandas as pd
import pytest

from drs.core import layout
from drs.core.errors import StageError
from drs.core.settings import Config
from drs.data import ingest, sources
from drs.data.schema import Schema
from drs.history import files as file_store
from drs.history import runs as history
from drs.pipeline import run as pipeline
from drs.reports import risk, riskstore, stores
from tests.conftest import HEADER, run_script
from tests.data.test_dbsource import client, db_project, insert, tick

OLD, NEW = "clients_q1.csv", "clients_2027_q1.csv"  # NEW arrives second but sorts first


def write(path: Path, rows: list[str], age_seconds: float) -> None:
    """Write rows under the course header, dated `age_seconds` ago (older than settle_seconds)."""
    path.write_text(HEADER + "".join(f"{row}\n" for row in rows))
    stamp = time.time() - age_seconds
    os.utime(path, (stamp, stamp))


# zeta stayed, then left; eta left, then came back; theta only in the old file
OLD_ROWS = ["zeta,1,2,3,0", "eta,4,5,6,1", "theta,7,8,9,0"]
NEW_ROWS = ["zeta,11,12,13,1", "eta,14,15,16,0"]


def active(config: Config) -> dict[str, tuple[int, ...]]:
    schema = Schema.from_config(config)
    _, frame = risk.read_ingested(config.final_data_csv, schema)
    latest = {row[schema.id_column]: row for row in risk.active_clients(frame, schema).iter_rows(named=True)}
    return {c: tuple(int(latest[c][f]) for f in schema.features) for c in ("zeta", "eta", "theta") if c in latest}


def arrived(config: Config) -> list[str]:
    return [a["name"] for a in file_store.arrivals(config.arrivals_record, str(config.input_folder))]


def ingested_files(config: Config) -> list[str]:
    return config.ingested_files_txt.read_text().splitlines()


def test_a_later_file_whose_name_sorts_first_holds_the_newest_rows(practice_config: Config) -> None:
    config = practice_config
    ingest.ingest(config)  # the practice files first
    write(config.input_folder / OLD, OLD_ROWS, age_seconds=600)
    ingest.ingest(config)
    write(config.input_folder / NEW, NEW_ROWS, age_seconds=900)  # even dated before OLD: it arrived after it
    result = ingest.ingest(config)

    assert active(config) == {"eta": (14, 15, 16), "theta": (7, 8, 9)}  # zeta's newest row says it left
    assert ingested_files(config) == ["dataset1.csv", "dataset2.csv", OLD, NEW]
    assert [f.name for f in result.files] == ingested_files(config)  # the record too
    schema, store = Schema.from_config(config), config.model_output(layout.CLIENT_ROWS)
    stores.write_client_rows(store, stores.source_files(config), schema)  # what each ranking writes for the client views
    with riskstore.opened(store) as con:
        rows = riskstore.client_rows(con, "zeta", schema.features, schema.target)  # the client's rows over time, oldest first
    assert [(r["file"], r["features"]) for r in rows] == [(OLD, [1, 2, 3]), (NEW, [11, 12, 13])]
    assert config.final_data_csv.read_text().splitlines()[-5:] == OLD_ROWS + NEW_ROWS
    assert arrived(config) == ["dataset1.csv", "dataset2.csv", OLD, NEW]


def test_files_written_in_the_same_second_go_by_name_whatever_their_nanoseconds() -> None:
    """A fresh clone writes the shipped files within one second in an order of its own (seen: dataset2.csv a few
    hundred microseconds before dataset1.csv), which must not decide whose rows are newest."""
    second = 1_796_000_000 * sources.NS_PER_SECOND
    files = [
        sources.Stamp(name="dataset2.csv", sha256="b" * 64, size=10, mtime_ns=second + 100),
        sources.Stamp(name="dataset1.csv", sha256="a" * 64, size=10, mtime_ns=second + 900_000),
        sources.Stamp(name="later.csv", sha256="c" * 64, size=10, mtime_ns=second + 2 * sources.NS_PER_SECOND),
    ]
    plan = sources.arrival_plan([], files, set(), now="2026-12-02T00:00:00+00:00")
    assert sorted(plan.order, key=plan.key) == ["dataset1.csv", "dataset2.csv", "later.csv"]


def test_files_first_seen_together_go_by_modification_time_then_name(practice_config: Config) -> None:
    config = practice_config
    ingest.ingest(config)
    write(config.input_folder / OLD, OLD_ROWS, age_seconds=900)
    write(config.input_folder / NEW, NEW_ROWS, age_seconds=600)
    write(config.input_folder / "b.csv", ["iota,1,1,1,0"], age_seconds=600)
    os.utime(config.input_folder / "b.csv", ns=(os.stat(config.input_folder / NEW).st_mtime_ns,) * 2)  # a tie: by name
    ingest.ingest(config)
    assert ingested_files(config) == ["dataset1.csv", "dataset2.csv", OLD, "b.csv", NEW]
    assert active(config) == {"eta": (14, 15, 16), "theta": (7, 8, 9)}


def test_the_order_survives_a_restart_and_a_reingestion_from_scratch(practice_config: Config, project: Path) -> None:
    config = practice_config
    ingest.ingest(config)
    write(config.input_folder / OLD, OLD_ROWS, age_seconds=600)
    assert run_script("ingestion.py", "--config", str(project / "practiceconfig.json")).returncode == 0
    write(config.input_folder / NEW, NEW_ROWS, age_seconds=900)
    assert run_script("ingestion.py", "--config", str(project / "practiceconfig.json")).returncode == 0  # another process
    first = config.final_data_csv.read_bytes()
    for output in (config.final_data_csv, config.ingested_files_txt, config.ingestion_record):  # from scratch
        output.unlink()
    shutil.rmtree(config.output_folder / "finaldata.store")
    done = run_script("ingestion.py", "--config", str(project / "practiceconfig.json"))
    assert done.returncode == 0, done.stderr
    assert config.final_data_csv.read_bytes() == first
    assert ingested_files(config) == ["dataset1.csv", "dataset2.csv", OLD, NEW]
    assert active(config) == {"eta": (14, 15, 16), "theta": (7, 8, 9)}


def test_a_changed_file_holds_the_newest_rows_and_a_removed_one_keeps_its_place(
    practice_config: Config, caplog: pytest.LogCaptureFixture
) -> None:
    config = practice_config
    ingest.ingest(config)
    write(config.input_folder / OLD, OLD_ROWS, age_seconds=600)
    ingest.ingest(config)
    write(config.input_folder / NEW, NEW_ROWS, age_seconds=600)
    ingest.ingest(config)
    caplog.set_level(logging.INFO)
    write(config.input_folder / OLD, ["zeta,21,22,23,0", "theta,7,8,9,0"], age_seconds=600)  # corrected: now the newest
    ingest.ingest(config)
    assert ingested_files(config) == ["dataset1.csv", "dataset2.csv", NEW, OLD]
    assert active(config) == {"zeta": (21, 22, 23), "eta": (14, 15, 16), "theta": (7, 8, 9)}
    assert f"{OLD} changed after it was ingested" in caplog.text and "now the newest" in caplog.text
    (config.input_folder / NEW).unlink()  # its rows are kept, where they were
    ingest.ingest(config)
    assert ingested_files(config) == ["dataset1.csv", "dataset2.csv", NEW, OLD]
    assert active(config) == {"zeta": (21, 22, 23), "eta": (14, 15, 16), "theta": (7, 8, 9)}


def test_files_ingested_before_the_record_began_are_recorded_once(practice_config: Config, caplog: pytest.LogCaptureFixture) -> None:
    config = practice_config
    ingest.ingest(config)
    with sqlite3.connect(config.history_db) as conn:  # as a history from before the arrivals were recorded
        conn.execute("DELETE FROM arrivals")
    conn.close()
    caplog.set_level(logging.INFO)
    write(config.input_folder / NEW, NEW_ROWS, age_seconds=10**6)  # dated before the practice files, seen after them
    ingest.ingest(config)
    rows = file_store.arrivals(config.arrivals_record, str(config.input_folder))
    assert [(r["name"], r["how"]) for r in rows] == [
        ("dataset1.csv", sources.FOUND),
        ("dataset2.csv", sources.FOUND),
        (NEW, sources.ARRIVED),
    ]
    assert "arrival order recorded for the first time" in caplog.text
    caplog.clear()
    ingest.ingest(config)
    assert "recorded for the first time" not in caplog.text


def test_a_copy_under_another_name_a_touched_file_and_repeated_rows_are_named(
    practice_config: Config, caplog: pytest.LogCaptureFixture
) -> None:
    config = practice_config
    ingest.ingest(config)
    write(config.input_folder / OLD, OLD_ROWS, age_seconds=600)
    ingest.ingest(config)
    caplog.set_level(logging.INFO)
    shutil.copy(config.input_folder / OLD, config.input_folder / "resent.csv")
    write(config.input_folder / "partly.csv", [OLD_ROWS[2], "kappa,1,1,1,0"], age_seconds=600)
    os.utime(config.input_folder / "dataset1.csv")  # touched, same content
    result = ingest.ingest(config)
    assert "resent.csv is a copy of clients_q1.csv (same content); it adds no rows" in caplog.text
    assert "dataset1.csv was sent again unchanged (same content, new time stamp); its rows keep their place" in caplog.text
    assert "partly.csv repeats 1 row(s) of clients_q1.csv" in caplog.text
    assert {(r["name"], r["of"], r["rows"], r["whole"]) for r in result.repeats} >= {
        ("resent.csv", OLD, 3, True),
        ("partly.csv", OLD, 1, False),
    }
    assert result.notes() == [
        "dataset1.csv was sent again unchanged (same content, new time stamp); its rows keep their place",
        "resent.csv is a copy of clients_q1.csv (same content); it adds no rows",
    ]
    caplog.clear()
    ingest.ingest(config)  # each is told once
    assert "sent again" not in caplog.text and "is a copy" not in caplog.text


def test_fullprocess_ticks_take_files_in_arrival_order_and_name_a_resent_copy(
    deployed_practice: Config, caplog: pytest.LogCaptureFixture
) -> None:
    config = deployed_practice
    write(config.input_folder / OLD, OLD_ROWS, age_seconds=600)
    assert pipeline.run(config) == 0  # tick 1: file A
    write(config.input_folder / NEW, NEW_ROWS, age_seconds=900)
    assert pipeline.run(config) == 0  # tick 2: file B
    assert history.runs(config.history_db)[-1]["outcome"] != "failed"
    assert ingested_files(config) == ["dataset1.csv", "dataset2.csv", OLD, NEW]
    assert active(config) == {"eta": (14, 15, 16), "theta": (7, 8, 9)}

    shutil.copy(config.input_folder / NEW, config.input_folder / "clients_2027_q1 (2).csv")
    assert pipeline.run(config) == 0  # tick 3: a re-sent copy
    run = history.runs(config.history_db)[-1]
    assert "clients_2027_q1 (2).csv is a copy of clients_2027_q1.csv (same content); it adds no rows" in run["message"]
    assert run["details"]["resent"] == [{"name": "clients_2027_q1 (2).csv", "of": NEW, "how": "copy"}]
    assert active(config) == {"eta": (14, 15, 16), "theta": (7, 8, 9)}

    caplog.set_level(logging.INFO)
    os.utime(config.input_folder / OLD)  # tick 4: touched, same content: nothing new, but said
    assert pipeline.run(config) == 0
    run = history.runs(config.history_db)[-1]
    assert run["outcome"] == "no new data"
    assert f"{OLD} was sent again unchanged (same content, new time stamp); its rows keep their place" in run["message"]
    assert pipeline.run(config) == 0  # told once
    assert "sent again" not in history.runs(config.history_db)[-1]["message"]


def test_database_batches_keep_arrival_order_after_a_file_whose_name_sorts_later(project: Path) -> None:
    config, db = db_project(project)
    manual = [f"c{n:03d},{n},{n * 10},{n % 7 + 1},{n % 2}" for n in range(5, 45)]
    write(config.input_folder / "manual.csv", manual, age_seconds=900)
    run = tick(config)
    assert run["outcome"] != "failed", run["message"]
    insert(db, [client(5, "2026-01-01 10:00:05", bump=3)])  # c005's newer row, from the database
    run = tick(config)
    assert run["outcome"] != "failed", run["message"]
    batch = next(config.input_folder.glob("db-*.csv")).name
    assert batch < "manual.csv" and ingested_files(config) == ["manual.csv", batch]
    final = pd.read_csv(config.final_data_csv)
    newest = final.drop_duplicates("corporation", keep="last").set_index("corporation")
    assert int(newest.loc["c005", "lastmonth_activity"]) == 10 * 5 + 3


def test_a_record_that_cannot_be_opened_stops_ingestion_before_any_output_changes(practice_config: Config) -> None:
    config = practice_config
    ingest.ingest(config)
    before = {p: p.read_bytes() for p in (config.final_data_csv, config.ingested_files_txt, config.ingestion_record)}
    write(config.input_folder / NEW, NEW_ROWS, age_seconds=600)
    config.history_db.unlink()
    config.history_db.mkdir()  # not a database
    with pytest.raises(StageError, match=f"cannot read the files' arrival order in {config.history_db}: unable to open"):
        ingest.ingest(config)
    assert {p: p.read_bytes() for p in before} == before
