"""New rows from a real PostgreSQL server (Debian's package): started by the fixture on a free loopback port in a
temporary folder (initdb, pg_ctl start), stopped after. The same ticks as tests/data/test_dbsource.py, through psycopg.

Skips, saying why, only where PostgreSQL's server binaries are not installed (.ci/run installs them) or cannot be run.
"""

from __future__ import annotations

import contextlib
import csv
import glob
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from drs.core.settings import load_config
from drs.data import dbsource, landing
from drs.history import batches as batch_store
from drs.history import runs as history
from drs.history.record import Outcome
from drs.pipeline import run as pipeline
from tests.conftest import stage_pass, write_config
from tools.procs import free_port

pytestmark = pytest.mark.slow

USER = "drs"
PASSWORD = "s3cret-never-logged"


def server_binaries() -> Path | None:
    """The folder of initdb and pg_ctl: Debian keeps them in /usr/lib/postgresql/<version>/bin (not on PATH)."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"), key=lambda p: int(Path(p).parts[4]) if Path(p).parts[4].isdigit() else 0)
    if found:
        return Path(found[-1]).parent
    on_path = shutil.which("pg_ctl")
    return Path(on_path).resolve().parent if on_path else None


def as_server_user() -> list[str]:
    """PostgreSQL refuses to run as root: as root, run its programs as `nobody`."""
    if os.geteuid() != 0:
        return []
    runuser = shutil.which("runuser")
    if runuser is None:
        pytest.skip("running as root and runuser is missing: PostgreSQL cannot be started as root")
    return [runuser, "-u", "nobody", "--"]


@pytest.fixture
def postgres() -> Iterator[str]:
    """A SQLAlchemy URL (with a password, which trust authentication ignores) of a fresh server with a `crm` database."""
    import psycopg

    binaries = server_binaries()
    if binaries is None:
        pytest.skip("PostgreSQL's server (initdb, pg_ctl) is not installed: apt-get install postgresql (.ci/run does)")
    prefix = as_server_user()
    folder = Path(tempfile.mkdtemp(prefix="drs-pg-"))
    os.chmod(folder, 0o777)  # the server's user (nobody, under root) writes here
    data, port = folder / "data", free_port()
    run = lambda *args: subprocess.run([*prefix, *args], capture_output=True, text=True, timeout=120)  # noqa: E731
    done = run(str(binaries / "initdb"), "-D", str(data), "-U", USER, "-A", "trust", "--no-sync", "-E", "UTF8")
    if done.returncode != 0:
        shutil.rmtree(folder, ignore_errors=True)
        pytest.skip(f"initdb failed here: {done.stderr.strip().splitlines()[-1:]}")
    options = f"-p {port} -h 127.0.0.1 -k {folder} -c fsync=off"
    started = run(str(binaries / "pg_ctl"), "-D", str(data), "-o", options, "-l", str(folder / "server.log"), "-w", "start")
    try:
        assert started.returncode == 0, started.stderr + (folder / "server.log").read_text()
        with psycopg.connect(host="127.0.0.1", port=port, user=USER, dbname="postgres", autocommit=True) as conn:
            conn.execute("CREATE DATABASE crm")
        yield f"postgresql+psycopg://{USER}:{PASSWORD}@127.0.0.1:{port}/crm"
    finally:
        run(str(binaries / "pg_ctl"), "-D", str(data), "-m", "fast", "-w", "stop")
        shutil.rmtree(folder, ignore_errors=True)


def sql(url: str, statement: str, params: list[tuple[Any, ...]] | None = None) -> None:
    import psycopg

    port = int(url.rsplit(":", 1)[1].split("/")[0])
    with psycopg.connect(host="127.0.0.1", port=port, user=USER, dbname="crm", autocommit=True) as conn:
        if params is None:
            conn.execute(statement)
        else:
            conn.cursor().executemany(statement, params)


# PostgreSQL must know the parameter's type where it is only compared with NULL: hence the CAST (docs/database.md).
QUERY = (
    "SELECT corporation, lastmonth_activity, lastyear_activity, number_of_employees, exited, updated_at FROM clients"
    " WHERE CAST(:watermark AS timestamptz) IS NULL OR updated_at IS NULL OR updated_at >= :watermark ORDER BY updated_at"
)
INSERT = "INSERT INTO clients VALUES (%s, %s, %s, %s, %s, %s)"


def client(n: int, stamp: str, bump: int = 0) -> tuple[Any, ...]:
    return (f"c{n:03d}", 10 * n + bump, 100 * n + 7, n % 40 + 1, n % 2, stamp)


def test_ticks_against_a_real_postgresql_server(postgres: str, project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    sql(
        postgres,
        "CREATE TABLE clients (corporation text PRIMARY KEY, lastmonth_activity integer, lastyear_activity integer,"
        " number_of_employees integer, exited smallint, updated_at timestamptz NOT NULL)",
    )
    stage_pass(load_config(project / "practiceconfig.json"))
    (project / "incoming").mkdir()
    write_config(project, input_folder_path="incoming", settle_seconds=600, source_database_url=postgres, source_query=QUERY)
    config = load_config(project / "config.json")
    key = dbsource.source_key(config)
    lines = []

    def tick(note: str) -> dict[str, Any]:
        pipeline.run(config)
        run = history.runs(config.history_db, limit=1)[0]
        with open(config.final_data_csv, newline="") as handle:
            rows = sum(1 for _ in csv.reader(handle)) - 1
        lines.append(f"{note:<44} -> {run['outcome']:<14} batch {run['details']['database']['batch']}  watermark "
                     f"{landing.watermark(config, key)}  finaldata.csv {rows} rows")  # fmt: skip
        return run

    first = [client(n, f"2026-03-01 09:00:{n:02d}+00") for n in range(1, 21)]
    sql(postgres, INSERT, first)
    run = tick("20 rows inserted")
    assert run["details"]["database"]["rows"] == 20
    assert run["outcome"] != Outcome.FAILED
    assert tick("nothing inserted (empty poll)")["outcome"] == Outcome.NO_NEW_DATA
    sql(postgres, INSERT, [client(n, f"2026-03-02 09:00:{n - 20:02d}+00") for n in range(21, 24)])
    sql(postgres, "UPDATE clients SET lastmonth_activity = 53, updated_at = '2026-03-02 09:30:00+00' WHERE corporation = 'c005'")
    run = tick("3 rows inserted, c005 updated")
    assert run["details"]["database"]["rows"] == 4
    assert sorted(p.name for p in config.input_folder.glob("db-*.csv")) == [
        "db-20260301T090001Z-20260301T090020Z.csv",
        "db-20260302T090001Z-20260302T093000Z.csv",
    ]
    with open(config.final_data_csv, newline="") as handle:
        final = list(csv.reader(handle))[1:]
    assert len(final) == 24 and len({tuple(r) for r in final}) == 24
    assert ["c005", "53", "507", "6", "1"] in final and ["c005", "50", "507", "6", "1"] in final

    sql(postgres, "INSERT INTO clients VALUES ('c099', 1, 2, 3, 0, '2026-03-03 00:00:00+00')")
    sql(postgres, "ALTER TABLE clients ALTER COLUMN lastmonth_activity TYPE text")
    sql(postgres, "UPDATE clients SET lastmonth_activity = 'lots' WHERE corporation = 'c099'")
    # the column is text now: c005, read again at the watermark's stamp (>=), is the first row named, c099 the second
    with pytest.raises(Exception, match=r"row 1 \(corporation 'c005'\): column 'lastmonth_activity' has '53' where a whole"):
        tick("the count made text, c099 'lots'")
    lines.append(f"{'the count made text, c099 lots':<44} -> failed: {history.runs(config.history_db, limit=1)[0]['message']}")
    assert landing.watermark(config, key).isoformat() == "2026-03-02T09:30:00+00:00"
    with contextlib.suppress(FileNotFoundError):
        assert PASSWORD.encode() not in config.history_db.read_bytes()
    with capsys.disabled():
        print("\n" + "\n".join(lines))


def test_the_connection_is_read_only(postgres: str, project: Path) -> None:
    sql(postgres, "CREATE TABLE clients (corporation text, updated_at timestamptz)")
    write_config(
        project, source_database_url=postgres, source_query="DELETE FROM clients WHERE CAST(:watermark AS text) IS NULL RETURNING *"
    )
    config = load_config(project / "config.json")
    with pytest.raises(Exception, match="cannot execute DELETE in a read-only transaction"):
        dbsource.fetch(config)


def test_equal_stamps_null_stamps_and_late_rows_against_a_real_server(postgres: str, project: Path) -> None:
    """Issue 20: rows at the watermark's instant committed after a poll, rows with a NULL stamp, a late row in the margin."""
    sql(
        postgres,
        "CREATE TABLE clients (corporation text, lastmonth_activity integer, lastyear_activity integer,"
        " number_of_employees integer, exited smallint, updated_at timestamptz)",
    )
    (project / "incoming").mkdir()
    write_config(
        project, input_folder_path="incoming", source_database_url=postgres, source_query=QUERY, source_watermark_margin_seconds=60
    )
    config = load_config(project / "config.json")

    def landed() -> list[str]:
        out = []
        for name in batch_store.self_written(config.history_db):
            with open(config.input_folder / name, newline="") as handle:
                out += [row[0] for row in list(csv.reader(handle))[1:]]
        return sorted(out)

    sql(postgres, INSERT, [client(n, "2026-03-01 09:00:00+00") for n in range(1, 4)] + [client(4, None)])  # type: ignore[arg-type]
    done = dbsource.fetch(config)
    assert done.rows == 3
    assert done.null_watermark is not None and done.null_watermark.endswith("NULL, not landed until it is set: row 4 (corporation 'c004')")
    # the same instant written in another time zone, committed after the poll; a late row 30 s before the watermark
    sql(postgres, INSERT, [client(5, "2026-03-01 10:00:00+01"), client(6, "2026-03-01 08:59:30+00")])
    done = dbsource.fetch(config)
    assert (done.rows, done.already_landed) == (2, 3)
    assert done.watermark_after.isoformat() == "2026-03-01T09:00:00+00:00"
    sql(postgres, "UPDATE clients SET updated_at = '2026-03-01 09:00:05+00' WHERE corporation = 'c004'")
    done = dbsource.fetch(config)
    assert (done.rows, done.null_watermark) == (1, None)
    assert dbsource.fetch(config).rows == 0
    assert landed() == [f"c{n:03d}" for n in range(1, 7)]
