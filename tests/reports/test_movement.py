"""What changed since the last list: rankings kept in the run history, movement columns, the page's and the PDF's section."""

from __future__ import annotations

import json
import random
import re
import sqlite3
from pathlib import Path

import numpy as np
import pandas as pd
import polars as pl
import pytest
from pypdf import PdfReader

from drs.core.settings import Config, load_config
from drs.history import db as rundb
from drs.history import rankings as ranking_store
from drs.history import runs as history
from drs.pipeline import run as pipeline
from drs.production import versions as production
from drs.reports import movement, rankings, reporting
from drs.web.app import create_app
from tests.conftest import HEADER, write_config
from tests.pipeline.test_fullprocess import older_world_file
from tests.web.test_openapi import _validator

MOVEMENT = ["previous_rank", "rank_change", "probability_change"]


def risk_list(folder: Path) -> pd.DataFrame:
    return pd.read_csv(folder / "risklist.csv", keep_default_na=False, dtype={"corporation": str})


@pytest.fixture
def two_lists(deployed_practice: Config, config: Config) -> tuple[pd.DataFrame, Config]:
    """reporting.py ranks the practice data with v0001; the full process then finds drift in sourceddata and deploys v0002."""
    reporting.run(deployed_practice)
    first = risk_list(deployed_practice.output_model_folder)
    assert pipeline.run(config) == 0
    assert production.current(config.prod_deployment_folder).version == 2
    return first, config


def test_movement_is_the_difference_of_the_two_rankings(two_lists: tuple[pd.DataFrame, Config]) -> None:
    first, config = two_lists
    second = risk_list(config.output_model_folder)
    assert list(second.columns)[-3:] == MOVEMENT
    assert all(first[c].eq("").all() for c in MOVEMENT)  # nothing ranked before the first list

    before = first.set_index("corporation")
    both = second[second.corporation.isin(before.index)]
    assert len(both) == 150  # practice clients still active in sourceddata
    was = before.loc[both.corporation]
    assert (both.previous_rank.astype(int).to_numpy() == was["rank"].to_numpy()).all()
    assert (both.rank_change.astype(int).to_numpy() == was["rank"].to_numpy() - both["rank"].to_numpy()).all()
    change = both.probability_change.astype(float).to_numpy()
    np.testing.assert_allclose(change, both.exit_probability.to_numpy() - was.exit_probability.to_numpy(), atol=1e-9)

    # one client, spelled out: vkfx was 136th (0.499263) and is 25th (0.923758) under v0002
    vkfx = second.set_index("corporation").loc["vkfx"]
    assert (before.loc["vkfx", "rank"], before.loc["vkfx", "exit_probability"]) == (136, 0.499263)
    assert (vkfx["rank"], vkfx.exit_probability) == (25, 0.923758)
    assert (vkfx.previous_rank, vkfx.rank_change, vkfx.probability_change) == ("136", "111", "0.424495")

    new = second[~second.corporation.isin(before.index)]
    assert len(new) == len(second) - 150 and (new[MOVEMENT] == "").all().all()  # not ranked before: empty cells


def test_each_ranking_is_kept_with_its_run_and_model(two_lists: tuple[pd.DataFrame, Config]) -> None:
    _, config = two_lists
    kept = ranking_store.rankings(config.history_db)
    assert [(r["kind"], r["model_version"], r["source"], r["clients"]) for r in kept] == [
        ("reporting", "v0001", "finaldata.csv", 210),
        ("deployment", "v0002", "finaldata.csv", 6555),
    ]
    run = history.runs(config.history_db)[-1]
    assert run["outcome"] == "deployed" and kept[1]["run_started_at"] == run["started_at"] and kept[0]["run_started_at"] is None
    assert run["details"]["ranking"] == {"id": kept[1]["id"], "kind": "deployment", "previous": kept[0]["id"]}


def test_risk_endpoint_answers_the_movement_of_the_list(two_lists: tuple[pd.DataFrame, Config]) -> None:
    _, config = two_lists
    second = risk_list(config.output_model_folder)
    answer = create_app(config).test_client().get("/risk?top=30")
    assert answer.status_code == 200
    body = answer.get_json()
    _validator(yaml_spec(), "/components/schemas/RiskAnswer").validate(body)
    kept = ranking_store.rankings(config.history_db)
    assert body["compared_with"] == {k: kept[0][k] for k in ("id", "at", "kind", "model_version", "source", "clients")}
    for client, row in zip(body["clients"], second.head(30).itertuples(), strict=True):
        expected = [None if v == "" else float(v) for v in (row.previous_rank, row.rank_change, row.probability_change)]
        assert [client[c] for c in MOVEMENT] == expected, client["corporation"]
    vkfx = next(c for c in body["clients"] if c["corporation"] == "vkfx")
    assert (vkfx["previous_rank"], vkfx["rank_change"], vkfx["probability_change"]) == (136, 111, 0.424495)
    assert body["clients"][0]["previous_rank"] is None  # fqdh: not in the practice data


def yaml_spec() -> dict:
    import yaml

    from tests.conftest import ROOT

    return yaml.safe_load((ROOT / "openapi.yaml").read_text())


def test_what_changed_lists_new_above_risers_and_who_left_with_why(two_lists: tuple[pd.DataFrame, Config]) -> None:
    first, config = two_lists
    second = risk_list(config.output_model_folder).set_index("corporation")
    before = first.set_index("corporation")
    changes = json.loads((config.output_model_folder / "changes.json").read_text())
    assert changes["previous"]["model_version"] == "v0001" and changes["model_version"] == "v0002"

    was_above = set(before.index[before.exit_probability > 0.5])
    now_above = set(second.index[second.exit_probability > 0.5])
    assert changes["new_above_total"] == len(now_above - was_above) == 428
    assert changes["new_above_unranked"] == len(now_above - set(before.index)) == 421
    assert [r["corporation"] for r in changes["new_above"][:3]] == second.index[:3].tolist()  # in rank order

    left = was_above - now_above
    assert changes["left_total"] == len(left) == 131
    final = pd.read_csv(config.final_data_csv, keep_default_na=False, dtype={"corporation": str}).drop_duplicates(
        "corporation", keep="last"
    )
    exited = set(final.corporation[final.exited == 1])
    assert changes["left_reasons"] == {"exited": len(left & exited), "fell below": len(left - exited), "no longer in the data": 0}
    assert changes["left_reasons"]["exited"] == 35
    for row in changes["left"]:
        assert row["previous_probability"] == before.loc[row["corporation"], "exit_probability"]
        if row["why"] == "exited":
            assert row["corporation"] in exited and row["corporation"] not in second.index
        else:
            assert row["why"] == "fell below"
            assert row["probability"] == second.loc[row["corporation"], "exit_probability"] <= 0.5
            assert row["probability_change"] == pytest.approx(row["probability"] - row["previous_probability"], abs=1e-9)

    risen = second[second.probability_change != ""].probability_change.astype(float)
    assert changes["risers_total"] == int((risen > 0).sum())
    assert [r["corporation"] for r in changes["risers"][:5]] == risen.sort_values(ascending=False, kind="mergesort").index[:5].tolist()

    html = create_app(config).test_client().get("/").get_data(as_text=True)
    section = html[html.index('id="changes"') :]
    section = re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", section[: section.index("</section>")]))
    assert "What changed since the last list" in section and "ranked by reporting.py with model v0001 (210 active clients then)" in section
    assert "New above 50% 428" in section and "Biggest risers 19" in section and "Left the list 131" in section
    assert "Above 50% before, not now: 35 exited, 96 fell below." in section
    top_left = changes["left"][0]  # lvjb, the practice list's first: exited since
    assert top_left["corporation"] == "lvjb" and top_left["why"] == "exited"
    assert "lvjb 76.4% exited (latest row: exited 1)" in section
    kgzn = next(r for r in changes["left"] if r["corporation"] == "kgzn")
    assert f"kgzn 76.0% fell to 18.0% ( {kgzn['probability_change'] * 100:+.1f} pt )" in section
    assert "vkfx 25 ▲111 92.4% +42.4 pt" in section
    assert "fqdh 1 98.9% not ranked" in section
    table = html[html.index('class="risk"') :]
    assert '<span class="move new" title="not ranked in the last list">new</span>' in table.split("</tr>")[1]  # fqdh


def test_the_pdf_has_a_short_what_changed_page(two_lists: tuple[pd.DataFrame, Config]) -> None:
    _, config = two_lists
    pages = [re.sub(r"\s+", " ", p.extract_text()) for p in PdfReader(config.output_model_folder / "report.pdf").pages]
    page = pages[2]
    assert page.startswith("What changed since the last list") or "What changed since the last list" in page
    assert "ranked by reporting.py with model v0001 (210 active clients then)" in page
    assert "New above 0.5 (428)" in page and "Biggest risers (19)" in page and "Left the list (were above 0.5) (131)" in page
    assert "1 lvjb 0.764 exited (its latest row says exited 1)" in page
    assert "vkfx 0.924 +0.424 136" in page
    assert "page 3 of 6" in page


def test_a_first_list_has_empty_movement_and_says_there_is_nothing_to_compare(deployed_practice: Config) -> None:
    reporting.run(deployed_practice)
    ranked = risk_list(deployed_practice.output_model_folder)
    assert (ranked[MOVEMENT] == "").all().all()
    changes = json.loads((deployed_practice.output_model_folder / "changes.json").read_text())
    assert changes["previous"] is None and changes["ranking_id"] == 1
    html = create_app(deployed_practice).test_client().get("/").get_data(as_text=True)
    assert "No earlier ranking is kept, so there is nothing to compare with yet" in html
    body = create_app(deployed_practice).test_client().get("/risk?top=2").get_json()
    assert body["compared_with"] is None  # the only kept ranking is this very list
    assert [c["previous_rank"] for c in body["clients"]] == [None, None]


def test_new_data_without_drift_is_a_ranking_and_a_repeat_is_not_a_change(deployed_practice: Config) -> None:
    """A no-drift run keeps the deployed model's ranking of the new data; reporting.py then ranks the same list again,
    which is kept but compared with the last list that differs."""
    practice = deployed_practice
    reporting.run(practice)
    first = risk_list(practice.output_model_folder).set_index("corporation")
    older_world_file(practice.input_folder / "dataset3.csv", 400, seed=7)
    assert pipeline.run(practice) == 0
    run = history.runs(practice.history_db)[-1]
    assert run["outcome"] == "no drift"
    kept = ranking_store.rankings(practice.history_db)
    assert [(r["kind"], r["model_version"]) for r in kept] == [("reporting", "v0001"), ("ingestion", "v0001")]
    assert kept[1]["clients"] > kept[0]["clients"] and kept[1]["run_started_at"] == run["started_at"]
    assert run["details"]["ranking"] == {"id": kept[1]["id"], "kind": "ingestion", "previous": kept[0]["id"]}

    reporting.run(practice)
    kept = ranking_store.rankings(practice.history_db)
    assert [r["kind"] for r in kept] == ["reporting", "ingestion", "reporting"] and kept[2]["digest"] == kept[1]["digest"]
    changes = json.loads((practice.output_model_folder / "changes.json").read_text())
    assert changes["previous"]["id"] == kept[0]["id"]  # not the identical ingestion ranking
    now = risk_list(practice.output_model_folder)
    old = now[now.corporation.isin(first.index)]
    assert (old.previous_rank.astype(int).to_numpy() == first.loc[old.corporation, "rank"].to_numpy()).all()
    assert (now[~now.corporation.isin(first.index)][MOVEMENT] == "").all().all()
    assert len(now) - len(old) == kept[1]["clients"] - kept[0]["clients"]  # the 400 new clients that are active

    assert pipeline.run(practice) == 0  # nothing new: no ranking
    assert len(ranking_store.rankings(practice.history_db)) == 3


def test_a_client_no_longer_in_the_data_left_the_list(deployed_practice: Config, tmp_path: Path) -> None:
    """reporting.py --input: the previous list is that of the same file name; a client missing from the new file is gone."""
    practice = deployed_practice
    reporting.run(practice)
    top = risk_list(practice.output_model_folder).head(3)
    features = "{0.lastmonth_activity},{0.lastyear_activity},{0.number_of_employees}"
    rows = [f"{name}," + features.format(r) for name, r in zip(["a", "b", "c"], top.itertuples(), strict=True)]
    clients = tmp_path / "clients.csv"
    clients.write_text(HEADER + "".join(f"{row},0\n" for row in rows))
    reporting.run(practice, input_csv=clients)
    clients.write_text(HEADER + f"{rows[0]},1\n" + "b,9999,99999,9999,0\n")  # a exited, b is far from risk, c is gone
    reporting.run(practice, input_csv=clients)
    changes = json.loads((practice.output_model_folder / "changes.json").read_text())
    assert changes["source"] == "clients.csv" and changes["previous"]["source"] == "clients.csv"
    assert [(r["corporation"], r["why"]) for r in changes["left"]] == [("a", "exited"), ("b", "fell below"), ("c", "no longer in the data")]
    b = changes["left"][1]
    assert b["probability"] < 0.5 and b["probability_change"] == pytest.approx(b["probability"] - top.exit_probability[1], abs=1e-9)
    assert movement.reason_words(changes["left"][2]) == "no longer in the data"
    ranked = risk_list(practice.output_model_folder)
    assert (
        ranked.corporation.tolist() == ["b"]
        and ranked.previous_rank.astype(int).tolist() == [2]
        and ranked.rank_change.astype(int).tolist() == [1]
    )


def test_only_the_newest_keep_rankings_are_kept(project: Path, practice_config: Config) -> None:
    from tests.conftest import stage_pass

    stage_pass(practice_config)
    small = load_config(
        write_config(project, "keep3.json", input_folder_path="practicedata", output_model_path="practicemodels", keep_rankings=3)
    )
    for _ in range(5):
        reporting.run(small)
    kept = ranking_store.rankings(small.history_db)
    assert [r["id"] for r in kept] == [3, 4, 5]
    with sqlite3.connect(small.history_db) as conn:
        assert conn.execute("SELECT COUNT(*) FROM rankings").fetchone()[0] == 3


def test_sixty_rankings_of_ten_thousand_clients_stay_small(tmp_path: Path) -> None:
    """The storage choice (docs/reports.md): one compressed row per ranking; 61 recorded, 60 kept, a few MB."""
    db = tmp_path / "runhistory.sqlite"
    rng = random.Random(5)
    names = [f"c{i:05d}" for i in range(10_000)]
    for i in range(61):
        probabilities = sorted((rng.random() for _ in names), reverse=True)
        rng.shuffle(names)
        text = movement.canonical(names, probabilities)
        ranking_store.record_ranking(
            db,
            at=f"t{i}",
            kind="reporting",
            run_started_at=None,
            model_version="v0001",
            source="finaldata.csv",
            clients=len(names),
            digest=movement.digest(text),
            rows=movement.pack(text),
            keep=60,
        )
    kept = ranking_store.rankings(db)
    assert len(kept) == 60 and kept[0]["at"] == "t1"
    assert db.stat().st_size < 10_000_000  # measured: about 6 MB (random probabilities compress worst)
    newest = ranking_store.previous_ranking(db, "finaldata.csv", "another list")
    positions = movement.unpack(newest["rows"])
    assert len(positions) == 10_000 and positions[names[0]][0] == 1 and newest["at"] == "t60"


VERSION_2 = rundb.SCHEMA + ";".join(rundb.MIGRATIONS[:2])


def version_2_history(path: Path) -> None:
    with sqlite3.connect(path) as conn:
        for statement in VERSION_2.split(";"):
            if statement.strip():
                conn.execute(statement)
        conn.execute("PRAGMA user_version = 2")
        conn.execute(
            "INSERT INTO runs (started_at, finished_at, kind, outcome, message, deployed_version, details) "
            "VALUES ('2026-01-01T00:00:00+00:00', 'f', 'fullprocess', 'deployed', 'm', 1, '{}')"
        )


def test_a_version_2_history_gains_the_rankings_table(tmp_path: Path) -> None:
    db = tmp_path / "runhistory.sqlite"
    version_2_history(db)
    assert ranking_store.rankings(db) == []  # the first connection upgrades it
    with sqlite3.connect(db) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == rundb.SCHEMA_VERSION
        assert [row[1] for row in conn.execute("PRAGMA table_info(rankings)")] == [
            "id", "at", "kind", "run_started_at", "model_version", "source", "clients", "digest", "rows",
        ]  # fmt: skip
        plan = " ".join(
            str(r[-1]) for r in conn.execute("EXPLAIN QUERY PLAN SELECT id FROM rankings WHERE source = 'x' AND id < 5 ORDER BY id DESC")
        )
    assert "USING" in plan and "INDEX" in plan, plan
    assert [r["outcome"] for r in history.runs(db)] == ["deployed"]
    text = movement.canonical(["a", "b"], [0.9, 0.1])
    ranking_store.record_ranking(
        db,
        at="t",
        kind="reporting",
        run_started_at=None,
        model_version="v0001",
        source="s",
        clients=2,
        digest="d",
        rows=movement.pack(text),
        keep=60,
    )
    assert movement.unpack(ranking_store.previous_ranking(db, "s", "other")["rows"]) == {"a": (1, 0.9), "b": (2, 0.1)}


def test_a_reader_that_may_not_write_reads_a_version_2_history_without_rankings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    db = tmp_path / "runhistory.sqlite"
    version_2_history(db)
    connect = sqlite3.connect
    monkeypatch.setattr(rundb.sqlite3, "connect", lambda path, **kw: connect(f"file:{path}?mode=ro", uri=True, **kw))
    monkeypatch.setattr(rundb.os, "access", lambda path, mode: False)
    assert ranking_store.rankings(db) == [] and ranking_store.previous_ranking(db, "finaldata.csv", "x") is None
    assert ranking_store.newest_ranking(db, "finaldata.csv") is None
    monkeypatch.undo()
    with sqlite3.connect(db) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == 2


# ---- pure -------------------------------------------------------------------------------------


def test_what_changed_by_hand() -> None:
    previous = {"a": (1, 0.9), "b": (2, 0.8), "c": (3, 0.7), "d": (4, 0.4), "e": (5, 0.3)}
    current = {"d": (1, 0.95), "a": (2, 0.85), "f": (3, 0.6), "b": (4, 0.2), "e": (5, 0.35)}
    changes = movement.what_changed(current, previous, exited={"c"})
    assert [(r["corporation"], r["previous_rank"]) for r in changes["new_above"]] == [("d", 4), ("f", None)]
    assert changes["new_above_unranked"] == 1
    assert [(r["corporation"], r["rank_change"], r["probability_change"]) for r in changes["risers"]] == [("d", 3, 0.55), ("e", 0, 0.05)]
    assert [(r["corporation"], r["why"]) for r in changes["left"]] == [("b", "fell below"), ("c", "exited")]
    assert movement.reason_words(changes["left"][0]) == "fell to 0.5 or below: 0.800 -> 0.200 (-0.600)"
    now = pl.DataFrame({"rank": [2, 3, 1], "corporation": ["a", "f", "e"], "exit_probability": [0.85, 0.6, 0.3 - 1e-9]})
    moved = movement.with_movement(now, "corporation", "exit_probability", previous)
    assert moved.select(MOVEMENT).rows() == [(1, -1, -0.05), (None, None, None), (5, 4, 0.0)]
    assert str(moved["probability_change"][2]) == "0.0"  # not -0.0


def test_with_movement_appends_three_columns_with_empty_cells() -> None:
    ranked = pl.DataFrame({"rank": [1, 2, 3], "corporation": ["x", "y", "z"], "exit_probability": [0.9, 0.5, 0.1]})
    out = rankings.movement.with_movement(ranked, "corporation", "exit_probability", {"y": (1, 0.95), "z": (3, 0.1)})
    assert list(out.columns) == [*ranked.columns, *MOVEMENT]
    assert out.write_csv(line_terminator="\n").splitlines()[1:] == ["1,x,0.9,,,", "2,y,0.5,1,-1,-0.45", "3,z,0.1,3,0,0.0"]
