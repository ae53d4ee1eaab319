"""The ranking's indexed stores (issue 21): written once per ranking, the same list as risklist.csv, and what every view
reads, so that a view costs one index lookup or one page, whatever the number of clients."""

from __future__ import annotations

import csv
import json
import os
import sqlite3
import subprocess
import sys
from html import unescape
from pathlib import Path

import polars as pl
import pytest

from drs.core import layout
from drs.core.errors import StageError
from drs.core.settings import Config
from drs.data.ingest import ingest
from drs.data.schema import Schema
from drs.reports import riskstore, stores
from drs.reports.reporting import refresh
from drs.web.app import create_app
from tests.conftest import HEADER, ROOT


def csv_rows(config: Config) -> list[dict[str, str]]:
    with open(config.model_output(layout.RISK_LIST), newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def store_rows(config: Config) -> list[dict[str, object]]:
    with riskstore.opened(config.model_output(layout.RISK_STORE)) as con:
        return riskstore.records(con)


def as_stored(row: dict[str, str], like: dict[str, object]) -> dict[str, object]:
    """A row of risklist.csv with the types of the store's row `like` (an empty cell is None)."""
    return {k: None if v == "" else type(like[k])(v) if like[k] is not None else v for k, v in row.items()}


def test_the_store_holds_the_csv_ranking_row_for_row(deployed_practice: Config) -> None:
    config = deployed_practice
    refresh(config, "reporting")
    written, stored = csv_rows(config), store_rows(config)
    assert len(stored) == len(written) > 100
    assert [list(r) for r in stored[:1]] == [list(written[0])]  # the same columns, in the same order
    assert [as_stored(w, r) for w, r in zip(written, stored, strict=True)] == stored  # same order, same values
    assert {type(v) for r in stored for k, v in r.items() if k.endswith("_contribution")} == {float}
    assert {(type(r["rank"]), type(r["lastmonth_activity"]), type(r["top_reason"])) for r in stored} == {(int, int, str)}
    with riskstore.opened(config.model_output(layout.RISK_STORE)) as con:
        summary = riskstore.summary(con)
    assert summary["active_clients"] == len(written)
    assert summary["above_half"] == sum(float(r["exit_probability"]) > 0.5 for r in written) > 0
    assert summary["first"] == written[0]["corporation"]
    meta = json.loads(config.model_output(layout.RISK_META).read_text())
    for name in (layout.RISK_STORE, layout.CLIENT_ROWS):  # stamped like the other files of the ranking
        stat = config.model_output(name).stat()
        assert meta["files"][name] == {"size": stat.st_size, "mtime_ns": stat.st_mtime_ns}


def test_a_store_written_apart_from_the_ranking_makes_every_view_say_stale(deployed_practice: Config) -> None:
    """Fails before issue 21: the store was no file of the ranking, so a store changed by hand went unsaid."""
    config = deployed_practice
    refresh(config, "reporting")
    client = create_app(config).test_client()
    assert client.get("/risk").get_json()["stale"] is False
    for name in (layout.RISK_STORE, layout.CLIENT_ROWS):
        path = config.model_output(name)
        later = path.stat().st_mtime_ns + 5_000_000_000
        os.utime(path, ns=(later, later))  # a copy put there by hand, or a refresh in progress
        body = client.get("/risk").get_json()
        problem = f"{name} was written apart from risklist.json (a refresh in progress, or a copy by hand)"
        assert body["stale"] is True and problem in body["problems"]
        assert problem in unescape(client.get("/").get_data(as_text=True))
    refresh(config, "reporting")
    assert client.get("/risk").get_json()["stale"] is False


def read_bytes() -> int:
    """Bytes this process has read through read(2) so far (the page cache included): every file any library opened."""
    return int(dict(line.split(": ") for line in Path("/proc/self/io").read_text().splitlines())["rchar"])


def test_an_unknown_client_is_a_404_read_from_the_index_not_the_source_files(deployed_practice: Config) -> None:
    """Fails before issue 21: a client view for a name in no file read every accepted source file again (one per
    worker and name), a million rows each time."""
    config = deployed_practice
    refresh(config, "reporting")
    big = 0
    for copy in config.kept_sources_folder.iterdir():  # the files the client views used to read, made large
        with open(copy, "a", encoding="utf-8") as handle:
            handle.write("".join(f"zz{i:07d},1,2,3,0\n" for i in range(300_000)))
        big += copy.stat().st_size
    assert big > 8_000_000
    client = create_app(config).test_client()
    assert client.get("/clients/nosuchclient1").status_code == 404  # the templates and the stores opened once
    before = read_bytes()
    answer = client.get("/clients/nosuchclient2")
    assert answer.status_code == 404 and "no client 'nosuchclient2' in the risk list or the ingested files" in unescape(
        answer.get_data(as_text=True)
    )
    assert read_bytes() - before < 1_000_000  # a few pages of the index, not the files
    known = csv_rows(config)[0]["corporation"]
    assert client.get(f"/clients/{known}").status_code == 200


def test_the_views_hold_no_list_and_import_nothing_heavy(deployed_practice: Config) -> None:
    """Fails before issue 21: each worker read the whole list (a pandas frame for /risk and /metrics, a list of every
    row for the page) and kept it, 1.2 GB per worker at a million clients. Now no frame or list of rows stays, and a
    first request imports no pandas, matplotlib or reportlab that the worker's start did not."""
    config = deployed_practice
    refresh(config, "reporting")
    top = csv_rows(config)[0]["corporation"]
    code = f"""
import gc, sys
from drs.web.app import create_app
client = create_app({str(config.config_file)!r}).test_client()
booted = set(sys.modules)
for path in ("/risk", "/", "/?q=a&page=2", "/clients/{top}", "/clients/nosuchclient", "/metrics", "/risklist.csv"):
    assert client.get(path).status_code in (200, 404), path
gc.collect()
def rows(o):
    if type(o).__name__ == "DataFrame":
        return len(o)
    if type(o) is list and o and isinstance(o[0], dict) and "corporation" in o[0]:
        return len(o)
    return 0
held = max((rows(o) for o in gc.get_objects()), default=0)
heavy = sorted(m for m in set(sys.modules) - booted if m.split(".")[0] in ("pandas", "matplotlib", "reportlab", "seaborn"))
print(held, heavy)
"""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    held, heavy = done.stdout.strip().split(" ", 1)
    assert int(held) < 25 and heavy == "[]"  # at most one page of rows, while it was shown


def ranked_frame(ids: list[str]) -> pl.DataFrame:
    schema = Schema()
    n = len(ids)
    columns = {
        "rank": list(range(1, n + 1)),
        "corporation": ids,
        "exit_probability": [round(0.9 - i / 100, 6) for i in range(n)],
        **{f: [i] * n for i, f in enumerate(schema.features)},
        "top_reason": ["" for _ in ids],
        **{f"{f}_contribution": [None] * n for f in schema.features},
        "previous_rank": [None] * n,
        "rank_change": [None] * n,
        "probability_change": [None] * n,
    }
    types = {f"{f}_contribution": pl.Float64 for f in schema.features} | {"corporation": pl.String, "top_reason": pl.String}
    return pl.DataFrame(
        columns, schema_overrides=types | {"previous_rank": pl.Int64, "rank_change": pl.Int64, "probability_change": pl.Float64}
    )


def test_search_finds_any_case_exact_match_first_and_pages_by_rank(tmp_path: Path) -> None:
    for ids in (["abx", "ab", "zab", "q", "XAB", "b"], ["abx", "ab", "zab", "q", "XAB", "Äb"]):  # ASCII, and not
        path = tmp_path / f"{len(ids[-1].encode())}.sqlite"
        stores.write_ranking(path, ranked_frame(ids), Schema(), {"active_clients": len(ids)})
        with riskstore.opened(path) as con:
            found = riskstore.page(con, " AB ", 1, 3, len(ids))
            assert [r["corporation"] for r in found.rows] == ["ab", "abx", "zab"] and (found.total, found.pages) == (4, 2)
            assert [r["rank"] for r in found.rows] == [2, 1, 3]  # each keeps its rank
            last = riskstore.page(con, "ab", 9, 3, len(ids))  # past the end: the last page
            assert [r["corporation"] for r in last.rows] == ["XAB"] and (last.page, last.first, last.last) == (2, 4, 4)
            everyone = riskstore.page(con, "", 2, 4, len(ids))
            assert [r["rank"] for r in everyone.rows] == [5, 6] and (everyone.first, everyone.last, everyone.total) == (5, 6, 6)
            assert riskstore.page(con, "nothing", 1, 3, len(ids)).rows == []
            assert riskstore.page(con, "äb", 1, 3, len(ids)).total == (1 if ids[-1] == "Äb" else 0)
    empty = tmp_path / "empty.sqlite"
    stores.write_ranking(empty, ranked_frame([]), Schema(), {"active_clients": 0})
    with riskstore.opened(empty) as con:
        nothing = riskstore.page(con, "", 1, 25, 0)
        assert (nothing.first, nothing.pages, nothing.rows) == (0, 1, [])


def test_client_rows_are_read_again_only_when_the_ingested_files_change(deployed_practice: Config) -> None:
    config = deployed_practice
    refresh(config, "reporting")
    rows_store, ranking = config.model_output(layout.CLIENT_ROWS), config.model_output(layout.RISK_STORE)
    before = (rows_store.stat().st_ino, rows_store.stat().st_mtime_ns)
    ranked_before = ranking.stat().st_ino
    refresh(config, "deployment by hand")  # the same data: the rows stay, the ranking is written again
    assert (rows_store.stat().st_ino, rows_store.stat().st_mtime_ns) == before
    assert ranking.stat().st_ino != ranked_before
    (config.input_folder / "late.csv").write_text(HEADER + "newcomer,1,2,3,0\n")
    ingest(config)
    refresh(config, "ingestion by hand")
    assert rows_store.stat().st_ino != before[0]
    with riskstore.opened(rows_store) as con:
        assert riskstore.client_rows(con, "newcomer", Schema().features, "exited") == [
            {"file": "late.csv", "features": [1, 2, 3], "exited": 0}
        ]
    html = unescape(create_app(config).test_client().get("/clients/newcomer").get_data(as_text=True))
    assert "late.csv" in html


def test_a_source_file_no_longer_readable_is_named_in_the_client_view(deployed_practice: Config) -> None:
    config = deployed_practice
    files = stores.source_files(config)
    for source in files:
        assert source.path is not None
        source.path.unlink()  # the kept copy; the input folder's file stays
    (config.input_folder / files[0].name).unlink()
    refresh(config, "reporting")
    with riskstore.opened(config.model_output(layout.CLIENT_ROWS)) as con:
        names = [(r[0], r[1]) for r in con.execute("SELECT name, readable FROM files ORDER BY position")]
    assert names == [(files[0].name, 0), *((f.name, 1) for f in files[1:])]
    top = csv_rows(config)[0]["corporation"]
    html = unescape(create_app(config).test_client().get(f"/clients/{top}").get_data(as_text=True))
    assert f"{files[0].name}</td><td colspan" in html and "the file can no longer be read" in html


def test_a_store_of_another_version_is_refused_with_what_to_run(tmp_path: Path) -> None:
    path = tmp_path / layout.RISK_STORE
    stores.write_ranking(path, ranked_frame(["a"]), Schema(), {"active_clients": 1})
    with sqlite3.connect(path) as con:
        con.execute("UPDATE summary SET value = '0' WHERE key = 'version'")
    try:
        with riskstore.opened(path) as con:
            riskstore.summary(con)
    except riskstore.StoreError as exc:
        assert str(exc) == "the store is of version 0, not 1: run reporting.py to write it again"
    else:
        raise AssertionError("a store of another version was read")


def test_the_helper_process_writes_the_same_stores(deployed_practice: Config, monkeypatch: pytest.MonkeyPatch) -> None:
    """Large data: the stores are written by a `python -m drs.reports.stores` process while the rest of the ranking goes on."""
    config = deployed_practice
    refresh(config, "reporting")
    here = store_rows(config)
    with riskstore.opened(config.model_output(layout.CLIENT_ROWS)) as con:
        rows_here = [tuple(r) for r in con.execute("SELECT * FROM client_rows ORDER BY seq")]
    config.model_output(layout.CLIENT_ROWS).unlink()
    monkeypatch.setattr(stores, "PARALLEL_ROWS", 0)
    refresh(config, "reporting")
    assert store_rows(config) == here
    with riskstore.opened(config.model_output(layout.CLIENT_ROWS)) as con:
        assert [tuple(r) for r in con.execute("SELECT * FROM client_rows ORDER BY seq")] == rows_here
    assert not [p.name for p in config.output_model_folder.iterdir() if p.name.startswith(layout.TMP_PREFIX)]
    client = create_app(config).test_client()
    assert client.get("/risk").get_json()["stale"] is False


def test_a_helper_that_fails_fails_the_refresh_with_its_reason(deployed_practice: Config, monkeypatch: pytest.MonkeyPatch) -> None:
    config = deployed_practice
    monkeypatch.setattr(stores, "PARALLEL_ROWS", 0)
    (config.output_model_folder / layout.CLIENT_ROWS).mkdir()  # a folder where the store goes: it cannot be replaced
    with pytest.raises(StageError, match=r"the helper writing the stores failed: WriteError: cannot write .*clientrows\.sqlite"):
        refresh(config, "reporting")
    assert not config.model_output(layout.RISK_META).exists()  # nothing names a ranking whose stores are not written
