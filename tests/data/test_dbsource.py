"""New rows from a database (drs/data/dbsource.py): an embedded SQLite database created by the test, ticks of the real job.

Each tick is `pipeline.run` (what fullprocess.py runs): the new rows land as one `db-*.csv` in the input folder, are
ingested in the same tick (no settling for a batch the system wrote), and reach finaldata.csv exactly once.
"""

from __future__ import annotations

import csv
import json
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from drs.core.errors import DataError, StageError
from drs.core.settings import Config, load_config
from drs.data import dbsource, landing
from drs.history import batches as batch_store
from drs.history import runs as history
from drs.history.record import Outcome
from drs.pipeline import run as pipeline
from tests.conftest import ROOT, stage_pass, tree_state, write_config
from tests.faults import run_with_faults

COLUMNS = ("corporation", "lastmonth_activity", "lastyear_activity", "number_of_employees", "exited")
TABLE = """CREATE TABLE clients (corporation TEXT, lastmonth_activity INTEGER, lastyear_activity INTEGER,
    number_of_employees INTEGER, exited INTEGER, updated_at TEXT)"""


def client(n: int, updated_at: str, bump: int = 0) -> tuple[Any, ...]:
    return (f"c{n:03d}", 10 * n + bump, 100 * n + 7, n % 40 + 1, n % 2, updated_at)


def insert(db: Path, rows: list[tuple[Any, ...]]) -> None:
    with sqlite3.connect(db) as conn:
        conn.executemany("INSERT INTO clients VALUES (?, ?, ?, ?, ?, ?)", rows)
    conn.close()


def update(db: Path, n: int, updated_at: str, bump: int) -> None:
    with sqlite3.connect(db) as conn:
        conn.execute(
            "UPDATE clients SET lastmonth_activity = ?, updated_at = ? WHERE corporation = ?", (10 * n + bump, updated_at, f"c{n:03d}")
        )
    conn.close()


def db_project(project: Path, **overrides: object) -> tuple[Config, Path]:
    """The practice model deployed; config.json reads an empty input folder and the SQLite database `clients.db`."""
    stage_pass(load_config(project / "practiceconfig.json"))
    (project / "incoming").mkdir()
    db = project / "clients.db"
    with sqlite3.connect(db) as conn:
        conn.execute(TABLE)
    conn.close()
    settings: dict[str, Any] = {"input_folder_path": "incoming", "source_database_url": "sqlite:///clients.db", "settle_seconds": 600}
    write_config(project, **{**settings, **overrides})
    return load_config(project / "config.json"), db


def final_rows(config: Config) -> list[tuple[str, ...]]:
    with open(config.final_data_csv, newline="") as handle:
        reader = csv.reader(handle)
        assert tuple(next(reader)) == COLUMNS
        return [tuple(row) for row in reader]


def expected(rows: list[tuple[Any, ...]]) -> list[tuple[str, ...]]:
    return [tuple(str(v) for v in row[:5]) for row in rows]


def batches(config: Config) -> list[str]:
    return sorted(p.name for p in config.input_folder.glob("db-*.csv"))


def tick(config: Config) -> dict[str, Any]:
    pipeline.run(config)
    run = history.runs(config.history_db, limit=1)[0]
    return run


def landed_watermark(config: Config) -> Any:
    return landing.watermark(config, dbsource.source_key(config))


def test_rows_added_between_ticks_land_once_and_updated_rows_become_a_new_batch(project: Path) -> None:
    config, db = db_project(project)
    first = [client(n, f"2026-01-01 10:00:{n:02d}") for n in range(1, 21)]
    insert(db, first)

    run = tick(config)  # settle_seconds is 600: a batch the system wrote needs no settling
    assert run["outcome"] != Outcome.FAILED, run["message"]
    assert batches(config) == ["db-20260101T100001-20260101T100020.csv"]
    assert run["details"]["database"] == {
        "batch": batches(config)[0],
        "rows": 20,
        "watermark": "2026-01-01 10:00:20",
        "already_landed": 0,
        "null_watermark": None,
    }
    assert final_rows(config) == expected(first)
    with open(config.input_folder / batches(config)[0], newline="") as handle:
        assert next(csv.reader(handle)) == list(COLUMNS)  # the five schema columns, in order; no watermark column

    run = tick(config)  # an empty poll: nothing written, nothing new
    assert run["outcome"] == Outcome.NO_NEW_DATA
    assert run["details"]["database"]["batch"] is None
    assert len(batches(config)) == 1

    later = [client(n, f"2026-01-02 09:00:{n - 20:02d}") for n in range(21, 24)]
    insert(db, later)
    update(db, 5, "2026-01-02 09:30:00", bump=3)  # a later updated_at: the changed row comes again, in the new batch
    run = tick(config)
    assert run["outcome"] != Outcome.FAILED, run["message"]
    assert batches(config)[1] == "db-20260102T090001-20260102T093000.csv"
    updated = client(5, "2026-01-02 09:30:00", bump=3)
    assert final_rows(config) == expected(first) + expected(later) + expected([updated])
    assert landed_watermark(config) == "2026-01-02 09:30:00"
    assert batch_store.self_written(config.history_db).keys() == set(batches(config))


def test_an_empty_poll_loads_neither_sqlalchemy_pandas_nor_polars_beyond_the_query(project: Path) -> None:
    config, db = db_project(project)
    code = (
        "import sys; from drs.data import dbsource; from drs.core.settings import load_config;"
        f"done = dbsource.fetch(load_config({str(config.config_file)!r}));"
        "heavy = [m for m in ('pandas', 'polars', 'numpy', 'sklearn') if m in sys.modules];"
        "print(done.batch, done.rows, heavy)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT).stdout
    assert out.strip() == "None 0 []"
    assert list(config.input_folder.iterdir()) == []


def assert_failed_untouched(config: Config, before: dict[str, tuple[str, int]], mark: Any, words: str) -> None:
    run = history.runs(config.history_db, limit=1)[0]
    assert run["outcome"] == Outcome.FAILED
    assert words in run["message"]
    assert tree_state(config.input_folder) == before
    assert landed_watermark(config) == mark


def test_a_query_error_fails_the_run_and_moves_nothing(project: Path) -> None:
    config, db = db_project(project, source_query="SELECT * FROM no_such_table WHERE :watermark IS NULL")
    with pytest.raises(StageError, match="the source query failed: no such table: no_such_table"):
        pipeline.run(config)
    assert_failed_untouched(config, {}, None, "source database sqlite:///")


def test_an_unreachable_database_fails_in_one_line(project: Path) -> None:
    config, _ = db_project(project, source_database_url="sqlite:///missing.db")
    with pytest.raises(StageError, match="cannot connect: unable to open database file") as caught:
        pipeline.run(config)
    assert "\n" not in str(caught.value)
    assert not (project / "missing.db").exists()  # opened read-only: never created


def test_text_in_a_numeric_column_names_row_and_column_and_moves_nothing(project: Path) -> None:
    config, db = db_project(project)
    insert(db, [client(n, f"2026-01-01 10:00:{n:02d}") for n in range(1, 4)])
    tick(config)
    before, mark = tree_state(config.input_folder), landed_watermark(config)
    insert(db, [client(4, "2026-01-03 00:00:00"), ("c005", "n/a", 3, 4, 0, "2026-01-03 00:00:01")])
    # row 3 of the query's result: c003, at the watermark, is read again (>=) before c004 and c005
    with pytest.raises(DataError, match=r"row 3 \(corporation 'c005'\): column 'lastmonth_activity' has 'n/a' where a whole number"):
        pipeline.run(config)
    assert_failed_untouched(config, before, mark, "column 'lastmonth_activity'")
    assert mark == "2026-01-01 10:00:03"


@pytest.mark.parametrize(
    ("query", "words"),
    [
        ("SELECT corporation, lastmonth_activity, updated_at FROM clients", "returns no column 'lastyear_activity'"),
        ("SELECT corporation, NULL AS lastmonth_activity, lastyear_activity, number_of_employees, exited, updated_at FROM clients",
         "row 1 (corporation 'c001'): column 'lastmonth_activity' is empty (NULL)"),
        ("SELECT corporation, lastmonth_activity, lastyear_activity, number_of_employees, 2 AS exited, updated_at FROM clients",
         "column 'exited' must be 0 or 1 but is 2"),
    ],
)  # fmt: skip
def test_rows_breaking_the_schema_are_named(project: Path, query: str, words: str) -> None:
    config, db = db_project(project, source_query=query)
    insert(db, [client(1, "2026-01-01")])
    with pytest.raises(DataError) as caught:
        dbsource.fetch(config)
    assert words in str(caught.value)
    assert list(config.input_folder.iterdir()) == []


def test_dry_run_counts_and_writes_nothing(project: Path) -> None:
    config, db = db_project(project)
    insert(db, [client(n, f"2026-01-01 10:00:{n:02d}") for n in range(1, 6)])
    out = subprocess.run(
        [sys.executable, str(ROOT / "ingestion.py"), "--config", str(config.config_file), "--from-database", "--dry-run"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert out.strip() == "5 row(s) past watermark None would land as db-20260101T100001-20260101T100005.csv (dry run: nothing written)"
    assert list(config.input_folder.iterdir()) == []
    out = subprocess.run(
        [sys.executable, str(ROOT / "ingestion.py"), "--config", str(config.config_file), "--from-database"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "5 row(s) landed as db-20260101T100001-20260101T100005.csv; watermark None -> 2026-01-01 10:00:05" in out


def test_the_environment_variable_overrides_the_url_and_errors_never_show_it(project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config, _ = db_project(project)
    monkeypatch.setenv("DRS_SOURCE_DATABASE_URL", "postgresql+psycopg://drs:s3cret@127.0.0.1:9/crm")
    config = load_config(config.config_file)
    assert config.source_database_url == "postgresql+psycopg://drs:s3cret@127.0.0.1:9/crm"
    assert dbsource.redacted(config.source_database_url) == "postgresql+psycopg://127.0.0.1:9/crm"
    with pytest.raises(StageError, match=r"source database postgresql\+psycopg://127.0.0.1:9/crm: cannot connect") as caught:
        pipeline.run(config)
    assert "s3cret" not in str(caught.value)
    assert b"s3cret" not in config.history_db.read_bytes()
    monkeypatch.setenv("DRS_SOURCE_DATABASE_URL", "not a url")
    with pytest.raises(Exception, match="DRS_SOURCE_DATABASE_URL"):
        load_config(config.config_file)


def test_a_failed_rename_lands_nothing_and_the_next_tick_fetches_the_rows_again(project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config, db = db_project(project)
    rows = [client(n, f"2026-01-01 10:00:{n:02d}") for n in range(1, 21)]
    insert(db, rows)

    def fail(src: object, dst: object) -> None:
        raise OSError(28, "No space left on device")

    with monkeypatch.context() as patch:
        patch.setattr(landing.os, "replace", fail)
        with pytest.raises(OSError):
            pipeline.run(config)
    assert list(config.input_folder.iterdir()) == []
    assert landed_watermark(config) is None
    tick(config)
    assert final_rows(config) == expected(rows)


@pytest.mark.slow
@pytest.mark.parametrize("where", ["before the rename", "between the rename and the recorded watermark"])
def test_a_kill_while_landing_a_batch_loses_and_repeats_nothing(project: Path, where: str, tmp_path: Path) -> None:
    config, db = db_project(project)
    rows = [client(n, f"2026-01-01 10:00:{n:02d}") for n in range(1, 21)]
    insert(db, rows)
    log = tmp_path / "events.log"
    reference = project.parent / "reference"
    subprocess.run(["cp", "-a", str(project), str(reference)], check=True)
    ref_config = load_config(reference / "config.json")
    done = run_with_faults("ingestion.py", ref_config, "--from-database", log=log)
    assert done.returncode == 0, done.stderr
    events = [line.split("\t") for line in log.read_text().splitlines()]  # count, event, path
    rename = next(i for i, (_, event, path) in enumerate(events) if event == "os.rename" and "/incoming/.tmp-db-" in path)
    assert events[rename + 1][1] == "sqlite3.connect", events[rename:]  # the history, to record the batch landed
    # SIGKILL just before the rename, or just before the history connection that records the batch landed
    kill_at = int(events[rename][0]) if where == "before the rename" else int(events[rename + 1][0])

    killed = run_with_faults("ingestion.py", config, "--from-database", kill_at=kill_at)
    assert killed.returncode == -9
    on_disk = batches(config)
    assert on_disk == ([] if where == "before the rename" else ["db-20260101T100001-20260101T100020.csv"])
    assert landed_watermark(config) is None  # nothing recorded as landed yet

    tick(config)
    assert final_rows(config) == expected(rows)
    assert len(batches(config)) == 1
    assert not [p.name for p in config.input_folder.iterdir() if p.name.startswith(".tmp-")]
    assert landed_watermark(config) == "2026-01-01 10:00:20"
    tick(config)
    assert final_rows(config) == expected(rows)
    assert json.loads(json.dumps(history.runs(config.history_db, limit=1)[0]["details"]["database"]))["batch"] is None


# ---- the watermark's boundary: equal stamps, NULL stamps, late rows within the margin (issue 20) ------------------


def landed_rows(config: Config) -> list[tuple[str, ...]]:
    """Every row of every batch file, in the order the batches were recorded."""
    out: list[tuple[str, ...]] = []
    for name in batch_store.self_written(config.history_db):
        with open(config.input_folder / name, newline="") as handle:
            reader = csv.reader(handle)
            assert tuple(next(reader)) == COLUMNS
            out += [tuple(row) for row in reader]
    return out


def set_stamp(db: Path, n: int, updated_at: str | None) -> None:
    with sqlite3.connect(db) as conn:
        conn.execute("UPDATE clients SET updated_at = ? WHERE corporation = ?", (updated_at, f"c{n:03d}"))
    conn.close()


def test_rows_committed_later_at_the_watermark_stamp_land_exactly_once(project: Path) -> None:
    config, db = db_project(project)
    stamp = "2026-01-01 10:00:00"
    first = [client(n, stamp) for n in range(1, 4)]
    insert(db, first)
    assert dbsource.fetch(config).rows == 3
    later = [client(n, stamp) for n in range(4, 6)]  # the same stamp, committed after the poll
    insert(db, later)
    done = dbsource.fetch(config)
    assert (done.batch, done.rows, done.already_landed) == ("db-20260101T100000-20260101T100000-2.csv", 2, 3)
    assert dbsource.fetch(config).batch is None  # read again, all landed: nothing written
    assert landed_rows(config) == expected(first) + expected(later)
    assert batches(config) == ["db-20260101T100000-20260101T100000-2.csv", "db-20260101T100000-20260101T100000.csv"]


def test_many_rows_at_one_stamp_over_several_polls_land_exactly_once(project: Path) -> None:
    config, db = db_project(project)
    stamps = ["2026-01-01 10:00:00", "2026-01-01 10:00:00", "2026-01-01 10:00:00", "2026-01-01 10:00:05", "2026-01-01 10:00:05"]
    inserted: list[tuple[Any, ...]] = []
    for poll, stamp in enumerate(stamps):
        rows = [client(100 * poll + n, stamp) for n in range(40)]
        insert(db, rows)
        inserted += rows
        done = dbsource.fetch(config)
        assert done.rows == 40, (poll, done)
        assert dbsource.fetch(config).rows == 0
    assert sorted(landed_rows(config)) == sorted(expected(inserted))
    assert len(set(batches(config))) == 5
    mark = landing.landed_mark(config, dbsource.source_key(config))
    assert mark.value == "2026-01-01 10:00:05" and set(mark.seen) == {"2026-01-01 10:00:05"} and len(mark.seen[mark.value]) == 80


def test_a_row_changed_in_place_at_the_same_stamp_is_a_new_version(project: Path) -> None:
    config, db = db_project(project)
    insert(db, [client(1, "2026-01-01 10:00:00")])
    dbsource.fetch(config)
    update(db, 1, "2026-01-01 10:00:00", bump=5)  # new values, the stamp unchanged (a trigger with one-second resolution)
    assert dbsource.fetch(config).rows == 1
    assert landed_rows(config) == expected([client(1, "2026-01-01 10:00:00"), client(1, "2026-01-01 10:00:00", bump=5)])


def test_rows_with_a_null_watermark_are_named_each_tick_and_the_rest_lands(project: Path, caplog: pytest.LogCaptureFixture) -> None:
    config, db = db_project(project)
    insert(db, [client(1, "2026-01-01 10:00:01"), client(2, None), client(3, "2026-01-01 10:00:03")])  # type: ignore[arg-type]
    run = tick(config)
    assert run["outcome"] != Outcome.FAILED, run["message"]
    words = "1 row(s) with the watermark column 'updated_at' NULL, not landed until it is set: row 1 (corporation 'c002')"
    assert words in run["details"]["database"]["null_watermark"]  # NULLs sort first: row 1
    assert words in caplog.text
    assert final_rows(config) == expected([client(1, ""), client(3, "")])

    insert(db, [client(4, None)])  # type: ignore[arg-type]  # NULL after the first poll: reported too, never skipped
    done = dbsource.fetch(config)
    assert done.batch is None
    assert done.null_watermark is not None
    assert done.null_watermark.endswith("2 row(s) with the watermark column 'updated_at' NULL, not landed until it is set: "
                                        "row 1 (corporation 'c002'), row 2 (corporation 'c004')")  # fmt: skip

    set_stamp(db, 2, "2026-01-01 10:00:09")  # fixed: it lands once, and is reported no more
    set_stamp(db, 4, "2026-01-01 10:00:09")
    done = dbsource.fetch(config)
    assert (done.rows, done.null_watermark) == (2, None)
    assert landed_rows(config) == expected([client(n, "") for n in (1, 3, 2, 4)])


def test_a_late_row_within_the_margin_lands_once_and_one_beyond_it_is_missed(project: Path) -> None:
    config, db = db_project(project, source_watermark_margin_seconds=60)
    first = [client(n, f"2026-01-01 10:00:{n:02d}") for n in range(1, 21)]
    insert(db, first)
    assert dbsource.fetch(config).rows == 20
    late = client(21, "2026-01-01 10:00:10")  # stamped before the watermark 10:00:20, committed after the poll
    insert(db, [late])
    done = dbsource.fetch(config)
    assert (done.batch, done.rows, done.already_landed) == ("db-20260101T100010-20260101T100010.csv", 1, 20)
    assert done.watermark_after == "2026-01-01 10:00:20"  # never moves back
    assert dbsource.fetch(config).rows == 0
    insert(db, [client(22, "2026-01-01 09:59:00")])  # later than the margin: what a margin cannot catch
    assert dbsource.fetch(config).rows == 0
    assert landed_rows(config) == expected([*first, late])
    insert(db, [client(23, "2026-01-01 10:02:00")])
    dbsource.fetch(config)
    mark = landing.landed_mark(config, dbsource.source_key(config))
    assert sorted(mark.seen) == ["2026-01-01 10:02:00"]  # the record keeps the window's identities only


def test_a_record_from_before_identities_lands_nothing_at_or_below_its_watermark_again(project: Path) -> None:
    config, db = db_project(project)
    insert(db, [client(n, f"2026-01-01 10:00:{n:02d}") for n in range(1, 4)])
    dbsource.fetch(config)
    with sqlite3.connect(config.history_db) as conn:  # as the previous version recorded it: the bare value
        conn.execute("UPDATE source_batches SET high = ?", (landing.encode("2026-01-01 10:00:03"),))
    conn.close()
    insert(db, [client(4, "2026-01-01 10:00:04")])
    done = dbsource.fetch(config)
    assert (done.rows, done.already_landed) == (1, 1)
    assert dbsource.fetch(config).rows == 0
    assert landed_rows(config) == expected([client(n, "") for n in range(1, 5)])


def test_a_query_returning_rows_before_the_watermark_is_refused(project: Path) -> None:
    config, db = db_project(project, source_query="SELECT * FROM clients")
    insert(db, [client(n, f"2026-01-01 10:00:{n:02d}") for n in range(1, 4)])
    dbsource.fetch(config)
    before = tree_state(config.input_folder)
    with pytest.raises(StageError, match=r"returned 2 row\(s\) stamped before :watermark 2026-01-01 10:00:03.*updated_at >= :watermark"):
        dbsource.fetch(config)
    assert tree_state(config.input_folder) == before


KILL_POINTS = ["before the temporary file", "before the pending record", "before the rename", "before the landed record"]


@pytest.mark.slow
@pytest.mark.parametrize("where", KILL_POINTS)
def test_a_kill_landing_rows_at_the_watermark_stamp_loses_and_repeats_nothing(project: Path, where: str, tmp_path: Path) -> None:
    config, db = db_project(project, source_watermark_margin_seconds=30)
    stamp = "2026-01-01 10:00:00"
    first = [client(n, stamp) for n in range(1, 6)]
    insert(db, first)
    dbsource.fetch(config)  # landed: the watermark is `stamp`, its five identities recorded
    later = [client(n, stamp) for n in range(6, 9)] + [client(9, "2026-01-01 09:59:50"), client(10, "2026-01-01 10:00:01")]
    insert(db, later)  # at the watermark's stamp, late within the margin, and past it
    log = tmp_path / "events.log"
    reference = project.parent / "reference"
    subprocess.run(["cp", "-a", str(project), str(reference)], check=True)
    done = run_with_faults("ingestion.py", load_config(reference / "config.json"), "--from-database", log=log)
    assert done.returncode == 0, done.stderr
    events = [line.split("\t") for line in log.read_text().splitlines()]  # count, event, path
    write = next(i for i, (_, _, path) in enumerate(events) if "/incoming/.tmp-db-" in path)
    pending = next(i for i in range(write, len(events)) if events[i][1] == "sqlite3.connect")
    rename = next(i for i, (_, event, path) in enumerate(events) if event == "os.rename" and "/incoming/.tmp-db-" in path)
    at = {"before the temporary file": write, "before the pending record": pending, "before the rename": rename}
    kill_at = int(events[at.get(where, rename + 1)][0])

    killed = run_with_faults("ingestion.py", config, "--from-database", kill_at=kill_at)
    assert killed.returncode == -9
    assert len(batches(config)) == (2 if where == "before the landed record" else 1)
    assert landed_watermark(config) == stamp  # nothing new recorded as landed yet

    assert dbsource.fetch(config).rows == (0 if where == "before the landed record" else 5)
    assert dbsource.fetch(config).rows == 0
    assert sorted(landed_rows(config)) == sorted(expected(first + later))
    assert len(batches(config)) == 2
    assert not [p.name for p in config.input_folder.iterdir() if p.name.startswith(".tmp-")]
    assert landed_watermark(config) == "2026-01-01 10:00:01"


def test_the_margin_keeps_the_values_type_and_refuses_what_is_no_time(project: Path, caplog: pytest.LogCaptureFixture) -> None:
    import datetime as dt

    stamp = dt.datetime(2026, 1, 1, 10, 0, tzinfo=dt.UTC)
    assert landing.behind(stamp, 90) == dt.datetime(2026, 1, 1, 9, 58, 30, tzinfo=dt.UTC)
    assert landing.behind(dt.date(2026, 1, 1), 60) == dt.date(2025, 12, 31)
    assert landing.behind("2026-01-01 10:00:00", 0.5) == "2026-01-01 09:59:59.500000"
    assert landing.behind("2026-01-01T10:00:00+00:00", 60) == "2026-01-01T09:59:00+00:00"
    assert landing.behind(41, 0) == 41
    with pytest.raises(StageError, match="source_watermark_margin_seconds needs time stamps or dates in the watermark column, not 41"):
        landing.behind(41, 60)

    config, db = db_project(project, source_query="SELECT * FROM clients WHERE :watermark IS NULL OR updated_at > :watermark")
    insert(db, [client(1, "2026-01-01 10:00:00")])
    dbsource.fetch(config)
    assert "source_query asks for rows > :watermark; rows stamped equal to it and committed later are missed (use >=)" in caplog.text
