"""Issue 16: the cost of an empty poll of the source database, beside the empty-folder tick.

Measured in one interleaved loop (median of --runs each), on the shipped data with v0002 deployed:
`fullprocess.py` with no database (the empty-folder tick); with a SQLite database whose rows all landed
already (an empty poll); and, given --postgres-url, with a PostgreSQL database likewise. Also the poll alone
in-process (drs.data.dbsource.fetch, time.perf_counter), which leaves out the interpreter's start-up.
Usage: python bench/empty_poll.py [--runs 20] [--postgres-url postgresql+psycopg://user@127.0.0.1:port/db]
"""

from __future__ import annotations

import argparse
import json
import shutil
import sqlite3
import tempfile
import time
from pathlib import Path

from common import PY, ROOT, load, median, report, run_measured
from empty_check import deployed_project

from drs.core.settings import load_config
from drs.data import dbsource

ROWS = [(f"p{n:03d}", n, 10 * n, n % 30 + 1, n % 2, f"2026-01-01 00:00:{n:02d}") for n in range(1, 21)]
TABLE = "CREATE TABLE clients (corporation TEXT, lastmonth_activity INTEGER, lastyear_activity INTEGER, number_of_employees INTEGER, exited INTEGER, updated_at {})"


def with_database(config: Path, name: str, url: str, query: str | None = None) -> Path:
    """A config beside `config` reading `url`; one tick lands the database's rows, so later ticks poll and find nothing."""
    settings = json.loads(config.read_text())
    settings["source_database_url"] = url
    if query:
        settings["source_query"] = query
    path = config.parent / name
    path.write_text(json.dumps(settings))
    run_measured([PY, str(ROOT / "fullprocess.py"), "--config", str(path)])
    return path


def poll_seconds(config: Path, runs: int) -> list[float]:
    loaded = load_config(config)
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        assert dbsource.fetch(loaded).batch is None
        times.append(time.perf_counter() - started)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--postgres-url", help="a PostgreSQL database with a `clients` table (the rows are added here)")
    args = parser.parse_args()
    load()
    tmp = Path(tempfile.mkdtemp(prefix="drs-bench-poll-"))
    try:
        config = deployed_project(tmp)
        with sqlite3.connect(tmp / "clients.db") as conn:
            conn.execute(TABLE.format("TEXT"))
            conn.executemany("INSERT INTO clients VALUES (?, ?, ?, ?, ?, ?)", ROWS)
        conn.close()
        configs = {"fullprocess.py, no database, no new data": config}
        configs["fullprocess.py, SQLite empty poll"] = with_database(config, "sqlite.json", f"sqlite:///{tmp / 'clients.db'}")
        if args.postgres_url:
            import psycopg
            from sqlalchemy.engine import make_url

            u = make_url(args.postgres_url)
            with psycopg.connect(host=u.host, port=u.port, user=u.username, dbname=u.database, autocommit=True) as pg:
                pg.execute("DROP TABLE IF EXISTS clients")
                pg.execute(TABLE.format("timestamptz"))
                pg.cursor().executemany("INSERT INTO clients VALUES (%s, %s, %s, %s, %s, %s)", ROWS)
            query = "SELECT * FROM clients WHERE CAST(:watermark AS timestamptz) IS NULL OR updated_at IS NULL OR updated_at >= :watermark ORDER BY updated_at"
            configs["fullprocess.py, PostgreSQL empty poll"] = with_database(config, "postgres.json", args.postgres_url, query)
        commands = {label: [PY, str(ROOT / "fullprocess.py"), "--config", str(path)] for label, path in configs.items()}
        for cmd in commands.values():
            run_measured(cmd)  # warm-up
        times: dict[str, list[float]] = {label: [] for label in commands}
        for _ in range(args.runs):
            for label, cmd in commands.items():
                wall, _, err = run_measured(cmd)
                if "no new data" not in err:
                    raise RuntimeError(err)
                times[label].append(wall)
        for label, path in configs.items():
            if "poll" in label:
                times[label.replace("fullprocess.py, ", "dbsource.fetch in-process, ")] = poll_seconds(path, args.runs)
        rows = [[label, f"{median(t) * 1000:.1f}", f"{min(t) * 1000:.1f}", f"{max(t) * 1000:.1f}"] for label, t in times.items()]
        report("empty_poll", ["command", "median ms", "min ms", "max ms"], rows, {"runs": args.runs})
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
