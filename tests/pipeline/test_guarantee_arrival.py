"""Files in flight and files that change: a file cut at any boundary and then completed, truncated, corrected or
removed ends with the rows of the input folder's current files (and of removed files) in finaldata.csv, in the
deployed model's training data after the next deployment, and in the risk list; names copy tools write under are
never read; a file still settling waits for a later run."""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import pandas as pd
import pytest

from drs.core.settings import Config
from drs.data import ingest, intake, sources
from drs.history import runs as history
from drs.model.scoring import score
from drs.model.training import train
from drs.pipeline import run as pipeline
from drs.pipeline.deploy import deploy
from drs.production import versions as production
from drs.reports import reporting
from tests.conftest import HEADER, ROOT, run_script, write_config

NAME = "dataset3.csv"  # sorts after the practice files: its rows are the latest of their clients


def source_rows(count: int = 400) -> list[str]:
    """Rows of another world than the practice data (the shipped clients_q1.csv), so the practice model drifts."""
    return (ROOT / "sourceddata" / "clients_q1.csv").read_text().splitlines()[1 : count + 1]


def write(path: Path, text: str, age_seconds: float = 120) -> None:
    """Write `text` and date it `age_seconds` ago (distinct each time), as a copy that finished that long ago would be."""
    path.write_text(text)
    stamp = time.time() - age_seconds
    os.utime(path, (stamp, stamp))


def rows_of(text: str) -> set[tuple[str, ...]]:
    return {tuple(line.split(",")) for line in text.splitlines()[1:] if line}


def csv_rows(path: Path) -> set[tuple[str, ...]]:
    return rows_of(path.read_text())


def fresh_ingestion(config: Config, tmp: Path) -> bytes:
    """finaldata.csv as ingesting every file's current content afresh gives it (removed files: their kept copies)."""
    fresh = replace(config, output_folder=tmp / "fresh")
    shutil.rmtree(fresh.output_folder, ignore_errors=True)
    if config.kept_sources_folder.is_dir():
        fresh.kept_sources_folder.mkdir(parents=True)
        for copy in config.kept_sources_folder.iterdir():
            if not (config.input_folder / copy.name).exists():
                shutil.copy2(copy, fresh.kept_sources_folder / copy.name)
    ingest.ingest(fresh)
    return fresh.final_data_csv.read_bytes()


def next_deployment(config: Config) -> production.Deployment:
    """What the next deployment does with finaldata.csv as it is: train, score, deploy, report."""
    train(config)
    score(config)
    deployed = deploy(config)
    reporting.run(config)
    return deployed


def cut_mid_row(rows: list[str]) -> str:
    return HEADER + "\n".join(rows[:200]) + "\n" + rows[200][:3]  # one field of a row: rejected


def cut_at_row_end(rows: list[str]) -> str:
    return HEADER + "\n".join(rows[:200]) + "\n"


def header_only(rows: list[str]) -> str:
    return HEADER


def complete(rows: list[str]) -> str:
    return HEADER + "\n".join(rows) + "\n"


def wrong_values(rows: list[str]) -> str:
    """The export before it was corrected: last month's activity of the first 50 clients ten times too high."""
    fixed = []
    for i, row in enumerate(rows):
        fields = row.split(",")
        if i < 50:
            fields[1] = str(int(fields[1]) * 10 + 7)
        fixed.append(",".join(fields))
    return HEADER + "\n".join(fixed) + "\n"


def truncated(rows: list[str]) -> str:
    return HEADER + "\n".join(rows[:100]) + "\n"


# (first content, what happens next, final content or None when the file is removed)
SCENARIOS: dict[str, tuple[Callable[[list[str]], str], Callable[[list[str]], str] | None]] = {
    "cut mid-row, then completed": (cut_mid_row, complete),
    "cut at a row end, then completed": (cut_at_row_end, complete),
    "header only, then completed": (header_only, complete),
    "complete, then truncated": (complete, truncated),
    "replaced by a corrected export": (wrong_values, complete),
    "complete, then removed": (complete, None),
}


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_rows_of_current_files_reach_finaldata_training_and_risk_list(
    scenario: str, deployed_practice: Config, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    config = deployed_practice
    caplog.set_level(logging.INFO)
    first, then = SCENARIOS[scenario]
    rows = source_rows()
    path = config.input_folder / NAME
    write(path, first(rows), age_seconds=300)
    old_text = path.read_text()
    assert pipeline.run(config) == 0
    if then is None:
        path.unlink()
        final_rows = rows_of(old_text)  # a removed file keeps its rows
    else:
        write(path, then(rows), age_seconds=200)
        final_rows = rows_of(path.read_text())
    caplog.clear()
    assert pipeline.run(config) == 0
    last = history.runs(config.history_db)[-1]

    if then is None:
        assert f"{NAME} was removed from {config.input_folder}; its 400 ingested row(s) are kept" in caplog.text
        assert last["details"]["gone_files"] == [NAME] and last["outcome"] == "no new data"
        assert f"{NAME} removed (its rows are kept)" in last["message"]
    elif first(rows) != header_only(rows) and first is not cut_mid_row:  # an accepted file that changed
        old_sha = hashlib.sha256(old_text.encode()).hexdigest()
        new_sha = hashlib.sha256(path.read_bytes()).hexdigest()
        change = last["details"]["changed_files"]
        assert [(c["name"], c["old_sha256"], c["new_sha256"]) for c in change] == [(NAME, old_sha, new_sha)]
        assert f"{NAME} changed after it was ingested (sha256 {old_sha[:12]} -> {new_sha[:12]})" in caplog.text

    final = config.final_data_csv
    assert final.read_bytes() == fresh_ingestion(config, tmp_path)
    in_final = csv_rows(final)
    assert final_rows <= in_final
    assert not (rows_of(old_text) - final_rows) & in_final  # what the file no longer holds is gone from the training set
    for practice_file in ("dataset1.csv", "dataset2.csv"):
        assert csv_rows(config.input_folder / practice_file) <= in_final

    deployed = next_deployment(config)
    assert deployed.training_data_path is not None
    assert csv_rows(deployed.training_data_path) == in_final
    listed = set(pd.read_csv(config.model_output("risklist.csv"))["corporation"])
    active = {row[0] for row in final_rows if row[4] == "0"}
    assert active and active <= listed


def test_changed_file_after_deployment_is_noticed_and_judged(deployed_practice: Config, caplog: pytest.LogCaptureFixture) -> None:
    """A file the deployed model was trained on changes: the next tick judges its new rows (cheaply: stat, then hash)."""
    config = deployed_practice
    caplog.set_level(logging.INFO)
    dataset1 = config.input_folder / "dataset1.csv"
    assert pipeline.run(config) == 0
    assert history.runs(config.history_db)[-1]["outcome"] == "no new data"
    os.utime(dataset1)  # touched, same content: still nothing new
    assert pipeline.run(config) == 0
    assert history.runs(config.history_db)[-1]["outcome"] == "no new data"
    write(dataset1, dataset1.read_text() + "\n".join(source_rows(300)) + "\n")
    caplog.clear()
    assert pipeline.run(config) == 0
    run = history.runs(config.history_db)[-1]
    assert run["details"]["new_files"] == ["dataset1.csv"]
    assert run["details"]["new_data"]["rows"] == 300  # the rows the deployed model was trained on are left out
    assert run["outcome"] in {"deployed", "no drift", "not promoted"}
    assert "drift check (raw): v0001 F1 on the new data" in caplog.text


IN_FLIGHT = [".clients_q5.csv.Xy12Ab", "clients_q5.csv.part", "clients_q5.part.csv", "clients_q5.csv.partial", "clients_q5.csv.tmp"]
IN_FLIGHT += ["clients_q5.tmp.csv", "~$clients_q5.csv", "clients_q5.csv~", "clients_q5.csv.crdownload", "clients_q5.csv.filepart"]
READ = ["clients_q5.csv", "CLIENTS_Q6.CSV", "party.csv", "q5 part 2.csv", "temporary.csv"]


@pytest.mark.parametrize("name", IN_FLIGHT)
def test_names_copy_tools_write_under_are_never_read(name: str, practice_config: Config) -> None:
    assert sources.is_in_flight_name(name) and not sources.is_candidate(name)
    (practice_config.input_folder / name).write_text(HEADER + "inflight,1,2,3,0\n")
    result = ingest.ingest(practice_config)
    assert [f.name for f in result.files] == ["dataset1.csv", "dataset2.csv"]
    assert "inflight" not in practice_config.final_data_csv.read_text()


@pytest.mark.parametrize("name", READ)
def test_ordinary_names_are_read(name: str) -> None:
    assert sources.is_candidate(name)


def test_a_file_still_settling_waits_for_a_later_run(deployed_practice: Config, caplog: pytest.LogCaptureFixture) -> None:
    config = replace(deployed_practice, settle_seconds=60)
    caplog.set_level(logging.INFO)
    path = config.input_folder / "clients_q5.csv"
    path.write_text(HEADER + "\n".join(source_rows(200)) + "\n")  # modified just now: perhaps still being copied
    before = config.final_data_csv.read_bytes()
    assert pipeline.run(config) == 0
    assert "waiting for clients_q5.csv to settle (modified less than 60s ago); it is left for a later run" in caplog.text
    run = history.runs(config.history_db)[-1]
    assert run["outcome"] == "no new data" and run["details"]["waiting"] == ["clients_q5.csv"]
    assert run["message"] == "no new data in practicedata; waiting for clients_q5.csv to settle; v0001 stays deployed"
    assert config.final_data_csv.read_bytes() == before
    ingest.ingest(config)  # ingestion by hand waits too
    assert config.final_data_csv.read_bytes() == before

    stamp = time.time() - 61  # the copy finished a minute ago
    os.utime(path, (stamp, stamp))
    caplog.clear()
    assert pipeline.run(config) == 0
    run = history.runs(config.history_db)[-1]
    assert run["details"]["new_files"] == ["clients_q5.csv"] and "waiting" not in run["details"]
    assert csv_rows(path) <= csv_rows(config.final_data_csv)


def test_a_file_being_rewritten_keeps_its_rows_until_it_settles(deployed_practice: Config) -> None:
    """An ingested file copied over again: while the new copy settles, its last ingested rows stay in finaldata.csv."""
    config = replace(deployed_practice, settle_seconds=60)
    dataset2 = config.input_folder / "dataset2.csv"
    before = config.final_data_csv.read_bytes()
    dataset2.write_text(HEADER + "half,1,")  # a copy in progress
    result = ingest.ingest(config)
    kept = next(f for f in result.files if f.name == "dataset2.csv")
    assert kept.kept == sources.ARRIVING and kept.status == intake.Status.ACCEPTED
    assert config.final_data_csv.read_bytes() == before


def test_make_run_settle_flag_reads_fresh_files_at_once(practice_config: Config) -> None:
    """`--settle-seconds 0` (what `make run` passes) reads files copied a moment ago; the default waits."""
    config_file = write_config(practice_config.config_file.parent, "settling.json", input_folder_path="practicedata", settle_seconds=60)
    for path in practice_config.input_folder.iterdir():
        os.utime(path)
    waited = run_script("ingestion.py", "--config", str(config_file))
    assert waited.returncode == 1 and "waiting for dataset1.csv to settle" in waited.stderr
    assert "no CSV files to ingest" in waited.stderr and "(2 still settling)" in waited.stderr
    done = run_script("ingestion.py", "--config", str(config_file), "--settle-seconds", "0")
    assert done.returncode == 0, done.stderr
    assert len(practice_config.final_data_csv.read_text().splitlines()) == 521
    bad = run_script("ingestion.py", "--config", str(config_file), "--settle-seconds", "-1")
    assert bad.returncode == 2 and "must be a number of seconds >= 0, got '-1'" in bad.stderr
