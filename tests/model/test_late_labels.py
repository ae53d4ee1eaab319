"""Labels that arrive late in the live system (issue 23): an empty `exited` cell means "label not known yet".

Such a row is ingested (nothing lost), ranked on the risk list like any active client, never trained on nor counted
in a realized F1; a partly labelled batch raises the labelled-sample alarm through the real full process, and the
same file exported again with every label is judged again with its realized F1, told as "labels arrived"."""

from __future__ import annotations

import json
import os
import re
import time
from pathlib import Path

import numpy as np
import pandas as pd
import polars as pl
import pytest
from pypdf import PdfReader

from drs.alerts import rules as alerts
from drs.core.errors import DataError, StageError
from drs.core.settings import Config
from drs.data import dbsource, intake
from drs.data.ingest import ingest
from drs.data.readers import checked_frame, fast_frame, frame_from_text, labelled, to_pandas, to_polars
from drs.data.schema import Schema
from drs.history import alerts as alert_store
from drs.history import files as file_store
from drs.history import runs as history
from drs.model.training import train
from drs.pipeline import judge
from drs.pipeline import run as pipeline
from drs.production import versions as production
from drs.reports import diagnostics, reporting, risk
from drs.web.app import create_app
from tests.alerts.test_alerts import JsonReceiver, receiver, with_targets  # noqa: F401 (receiver: a fixture)
from tests.conftest import stage_pass
from tests.data.test_dbsource import COLUMNS, client, db_project, insert
from tools.generate_data import CHANGED_WORLD, clients, unique_ids

HEADER = "corporation,lastmonth_activity,lastyear_activity,number_of_employees,exited\n"
PARTLY = HEADER + "abcd,10,200,5,0\nefgh,500,900,40,\nijkl,0,30,2,1\nmnop,7,70,3,\n"


def test_an_empty_exited_is_a_label_not_known_yet_and_both_readers_agree() -> None:
    schema = Schema()
    assert fast_frame(PARTLY.encode(), schema) is None  # where labels are required: the careful reader, which rejects it
    fast = fast_frame(PARTLY.encode(), schema, unlabelled=True)
    careful = to_polars(frame_from_text(PARTLY, schema, "q5.csv", unlabelled=True))
    assert fast is not None and fast.equals(careful)
    assert fast["exited"].to_list() == [0, None, 1, None] and fast["exited"].dtype == pl.Int64
    # a row cut short before its last column is null there to polars too: the commas tell, and the careful reader names it
    for short in (PARTLY.replace("40,\n", "40\n"), PARTLY.replace("40,\n", "40\n").replace("0,30,2,1", "0,30,2,1,")):
        assert fast_frame(short.encode(), schema, unlabelled=True) is None
        with pytest.raises(DataError, match=r"line 3 has 4 fields but the header has 5"):
            checked_frame(short.encode(), schema, "q5.csv", unlabelled=True)
    quoted = PARTLY.replace("abcd", '"ab,cd"')  # a quote: the careful reader, which reads the same
    assert fast_frame(quoted.encode(), schema, unlabelled=True) is None
    assert checked_frame(quoted.encode(), schema, "q5.csv", unlabelled=True)["corporation"].to_list()[0] == "ab,cd"
    spaced = PARTLY.replace("40,\n", "40,  \n")  # a cell of spaces is empty too
    assert to_polars(frame_from_text(spaced, schema, "q5.csv", unlabelled=True)).equals(fast)
    assert checked_frame(spaced.encode(), schema, "q5.csv", unlabelled=True).equals(fast)
    assert labelled(fast, schema)["corporation"].to_list() == ["abcd", "ijkl"]
    assert labelled(to_pandas(careful), schema)["exited"].dtype == "int64"
    assert frame_from_text(PARTLY, schema, "q5.csv", unlabelled=True).equals(to_pandas(fast))
    for wrong in ("2", "yes", "-1", "0.5"):
        with pytest.raises(DataError, match=r"column 'exited' must be 0 or 1 but is not in line 3"):
            checked_frame(PARTLY.replace("40,\n", f"40,{wrong}\n").encode(), schema, "q5.csv", unlabelled=True)
    # the test data, and every reader that does not say otherwise, still needs every label
    with pytest.raises(DataError, match=r"column 'exited' is empty in line 3, line 5"):
        checked_frame(PARTLY.encode(), schema, "testdata.csv")


def write_batch(folder: Path, name: str, frame: pd.DataFrame, labelled_rows: np.ndarray | None) -> Path:
    out = frame.astype({"exited": "Int64"})
    if labelled_rows is not None:
        out.loc[~np.isin(np.arange(len(out)), labelled_rows), "exited"] = pd.NA
    path = folder / name
    out.to_csv(path, index=False)
    old = time.time() - 300  # settled
    os.utime(path, (old, old))
    return path


def test_rows_with_no_label_are_ingested_ranked_and_never_trained_on(deployed_practice: Config, config: Config) -> None:
    for path in config.input_folder.glob("*.csv"):
        path.unlink()
    (config.input_folder / "clients_q5.csv").write_text(PARTLY + "qrst,3,20,1,0\nuvwx,90,100,9,1\n" * 1)
    rng = np.random.default_rng(3)
    more = clients(rng, unique_ids(rng, 400, {"abcd", "efgh", "ijkl", "mnop", "qrst", "uvwx"}), CHANGED_WORLD)
    write_batch(config.input_folder, "clients_q6.csv", more, np.arange(300))
    result = ingest(config)
    assert result.rows_written == 406 and not result.rejected
    final = pl.read_csv(config.final_data_csv, schema_overrides={"corporation": pl.String})
    assert final.height == 406 and final["exited"].null_count() == 102  # in finaldata.csv with an empty exited
    assert final.filter(pl.col("corporation") == "efgh")["exited"].to_list() == [None]
    assert diagnostics.missing_data(config)["exited"] == round(102 / 406 * 100, 4)  # an unknown label is missing as written
    meta = train(config)
    assert (meta["training_rows"], meta["unlabelled_rows"]) == (304, 102)
    _, checked = risk.read_ingested(config.final_data_csv, Schema())
    active = risk.active_clients(checked, Schema())["corporation"].to_list()
    assert "efgh" in active and "mnop" in active and "ijkl" not in active  # not known to have left: on the list


def concept_drift_batch(seed: int = 21) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return clients(rng, unique_ids(rng, 5000), CHANGED_WORLD)


def test_300_labels_of_5000_raise_the_alarm_then_the_labels_arrive_and_the_batch_is_judged_again(
    deployed_practice: Config,
    config: Config,
    receiver: JsonReceiver,  # noqa: F811 (the fixture imported above)
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The practice model (older world) meets the changed world: 300 random labels of 5,000 rows fire the alarm through
    fullprocess, the alert is recorded; the file exported again with every label is judged again with its realized F1."""
    config = with_targets(config, receiver.url())
    for path in config.input_folder.glob("*.csv"):
        path.unlink()
    batch = concept_drift_batch()
    sample = np.sort(np.random.default_rng(5).choice(len(batch), 300, replace=False))
    write_batch(config.input_folder, "clients_q5.csv", batch, sample)
    pipeline.run(config)
    run = history.runs(config.history_db)[-1]
    check = run["details"]["drift"]
    assert (check["new_rows"], check["labelled_rows"], check["measured"], check["new_data_f1"]) == (5000, 300, False, None)
    assert check["reason"].startswith("4,700 of the 5,000 new rows have no label yet; the score test waits for every label")
    assert check["estimate"]["rows"] == 5000  # the estimate on every new row
    alarm = check["labelled_sample"]
    assert alarm["alarm"] is True and alarm["below_estimate"] is True and alarm["below_threshold"] is True and alarm["labels"] == 300
    assert alarm["exits"] == int(batch["exited"].to_numpy()[sample].sum())
    assert "matured first" in alarm["caveat"]
    assert f"labelled sample (300 of 5,000 new rows labelled): 300 labelled client(s), {alarm['exits']} exited" in caplog.text
    ranked = pd.read_csv(config.output_model_folder / "risklist.csv", keep_default_na=False)
    waiting = set(batch["corporation"]) - set(batch["corporation"].to_numpy()[sample])
    stayed = int((batch["exited"].to_numpy()[sample] == 0).sum())
    assert waiting <= set(ranked["corporation"]) and len(ranked) == 4700 + stayed  # every client with no label yet is ranked
    recorded = alert_store.alerts(config.history_db)[-1]
    assert "sample_alarm" in recorded["events"] and recorded["severity"] == alerts.WARNING
    body = json.dumps(receiver.posts[-1])
    assert "Labelled sample: the model is worse than expected" in body and "300 of 5,000 new rows labelled so far" in body
    assert "below the label-free estimate" in body and "the score test waits for every label" in body
    shown = f"300 of 5,000 new rows labelled so far: 300 labelled client(s), {alarm['exits']} exited: F1 {alarm['f1']:.4f}"
    html = create_app(config).test_client().get("/").get_data(as_text=True)
    assert '<dt>Labelled sample</dt><dd><strong class="alert">alarm</strong>: ' + shown in html
    assert "(concept drift)" in html and "-&gt; ALARM" in html
    reporting.run(config)
    text = re.sub(r"\s+", " ", " ".join(p.extract_text() for p in PdfReader(config.output_model_folder / "report.pdf").pages))
    assert f"Labelled sample alarm: {shown}" in text and "-> ALARM" in text

    caplog.clear()
    write_batch(config.input_folder, "clients_q5.csv", batch, None)  # the same clients, every label known now
    pipeline.run(config)
    again = history.runs(config.history_db)[-1]
    check = again["details"]["drift"]
    assert (check["new_rows"], check["labelled_rows"], check["measured"]) == (5000, 5000, True)
    assert check["new_data_f1"] < alarm["high"] and check.get("labelled_sample") is None
    # the numbers docs/drift.md shows: estimate 0.7824 (the first run's), 300 labels 0.4496 (0.3830-0.5110), realized 0.4884
    assert (round(alarm["estimated_f1"], 4), round(alarm["f1"], 4), round(check["new_data_f1"], 4)) == (0.7824, 0.4496, 0.4884)
    assert check["drift"] is True  # below the raw threshold 0.6305: the full labels retrain
    assert round(check["estimate"]["f1"], 4) == 0.7824  # the same rows' features: the same estimate
    changed = again["details"]["changed_files"]
    assert [(c["name"], c["labels_filled"]) for c in changed] == [("clients_q5.csv", 4700)]
    assert "labels arrived for 4,700 row(s) of clients_q5.csv (its only change)" in caplog.text
    assert "changed after it was ingested" not in caplog.text
    events = alerts.file_events(alerts.RunParts.of(again["details"]))
    assert [(e.key, e.severity, e.lines) for e in events] == [
        ("labels", alerts.INFO, ["labels arrived for 4,700 row(s) of clients_q5.csv"])
    ]


def test_a_null_exited_in_the_source_database_is_a_label_not_known_yet(project: Path) -> None:
    """NULL exited lands as an empty cell and is ingested; NULL in another column, or exited 2, still blocks the batch."""
    config, db = db_project(project)
    insert(db, [client(1, "2026-01-01 10:00:01"), ("c002", 20, 207, 3, None, "2026-01-01 10:00:02")])
    assert dbsource.fetch(config).rows == 2
    landed = next(config.input_folder.glob("db-*.csv")).read_text()
    assert landed.splitlines()[1:] == ["c001,10,107,2,1", "c002,20,207,3,"]
    result = ingest(config)
    assert result.rows_written == 2 and not result.rejected
    final = pl.read_csv(config.final_data_csv, schema_overrides={"corporation": pl.String})
    assert final["exited"].to_list() == [1, None]
    columns = Schema.from_config(config)
    known = dbsource.checked_rows([*COLUMNS, "updated_at"], [("c003", 5, 1, 1, None, "t")], columns, "updated_at", "db")
    assert known.rows == [["c003", 5, 1, 1, None]]
    with pytest.raises(DataError, match=r"column 'lastmonth_activity' is empty \(NULL\)"):
        dbsource.checked_rows([*COLUMNS, "updated_at"], [("c003", None, 1, 1, 0, "t")], columns, "updated_at", "db")
    with pytest.raises(DataError, match=r"column 'exited' must be 0 or 1 but is 2"):
        dbsource.checked_rows([*COLUMNS, "updated_at"], [("c003", 5, 1, 1, 2, "t")], columns, "updated_at", "db")


def test_a_row_with_no_label_is_never_counted_as_one_the_deployed_model_was_trained_on(practice_config: Config) -> None:
    """Its version's trainingdata.csv holds the row (a copy of finaldata.csv), but training skipped it: it stays new."""
    (practice_config.input_folder / "dataset3.csv").write_text(HEADER + "waits,5,50,5,\nknown,6,60,6,1\n")
    stage_pass(practice_config)
    deployed = production.current(practice_config.prod_deployment_folder)
    assert deployed is not None and deployed.training_data_path is not None
    assert "waits,5,50,5,\n" in deployed.training_data_path.read_text()
    records = [intake.read_source_file(practice_config.input_folder / "dataset3.csv", practice_config.input_folder, Schema())[1]]
    rows, info, _ = judge.new_rows(practice_config, records, judge.drift_reference(practice_config, deployed))
    info = info.to_record()
    assert (info["rows"], info["rows_already_trained_on"]) == (1, 1) and rows["corporation"].tolist() == ["waits"]


def test_only_labels_filled_in_is_told_as_labels_arrived() -> None:
    """Same rows in the same order, every known label unchanged: labels arrived; anything more is a change."""
    old = checked_frame(PARTLY.encode(), Schema(), "q5.csv", unlabelled=True)
    filled = PARTLY.replace("40,\n", "40,1\n")
    assert intake.labels_filled_in(old, checked_frame(filled.encode(), Schema(), "q5.csv", unlabelled=True), Schema()) == 1
    for other in (
        PARTLY.replace("10,200,5,0", "10,200,5,1"),  # a known label changed
        PARTLY.replace("10,200,5,0", "10,200,5,"),  # a known label removed
        PARTLY.replace("500,900,40,", "501,900,40,1"),  # a value changed too
        PARTLY + "zzzz,1,1,1,0\n",  # a row more
        PARTLY,  # nothing filled in
    ):
        new = checked_frame(other.encode(), Schema(), "q5.csv", unlabelled=True)
        assert intake.labels_filled_in(old, new, Schema()) is None, other


def test_a_batch_with_no_label_at_all_gets_the_estimate_and_waits(deployed_practice: Config) -> None:
    deployed = production.current(deployed_practice.prod_deployment_folder)
    assert deployed is not None
    frame = concept_drift_batch().head(1000).astype({"exited": "Int64"}).assign(exited=pd.NA).astype({"exited": "Int64"})
    check = judge.score_drift_check(deployed_practice, deployed, frame, 0.78).to_record()
    assert (check["measured"], check["drift"], check["labelled_rows"], check["labelled_sample"]) == (False, False, 0, None)
    assert check["reason"] == "1,000 of the 1,000 new rows have no label yet; the score test waits for every label"
    assert alerts.sample_alarm_event(alerts.RunParts.of({"drift": check}), "v0001") == []
    assert judge.estimate_check(deployed_practice, deployed, frame)["rows"] == 1000


def test_one_unlabelled_file_does_not_stop_the_score_test_of_the_complete_files_that_arrived_with_it(
    deployed_practice: Config, config: Config, caplog: pytest.LogCaptureFixture
) -> None:
    """The shipped batches (every label known) arrive with a file whose one row has no label yet: the complete files'
    10,000 rows get the score test now; only the late file's row waits (and, unlabelled, is no sample)."""
    write_batch(
        config.input_folder,
        "clients_late.csv",
        pd.DataFrame([["latecorp", 1, 2, 3, 0]], columns=HEADER.strip().split(",")),
        np.array([], dtype=int),
    )
    pipeline.run(config)
    run = history.runs(config.history_db)[-1]
    check = run["details"]["drift"]
    assert (check["new_rows"], check["measured"], check.get("waiting_rows"), check["labelled_sample"]) == (10_001, True, 1, None)
    assert run["details"]["new_data"]["waiting_files"] == ["clients_late.csv"]
    assert round(check["new_data_f1"], 2) == 0.48 and check["drift"] is True  # v0001 on the complete files' 10,000 rows
    assert check["waiting"] == (
        "1 of the 10,001 new rows have no label yet; the score test waits for every label: the 1 row(s) of the files with"
        " labels missing wait; the score test ran on the 10,000 new row(s) of the files whose labels are complete"
    )
    assert check["waiting"] in caplog.text
    assert run["outcome"] != "no_drift" and "score not measurable" not in run["message"]


def dated(path: Path, text: str) -> None:
    path.write_text(HEADER + text)
    old = time.time() - 300  # settled
    os.utime(path, (old, old))


def test_labels_filled_in_an_older_file_keep_its_place_so_a_newer_row_stays_the_clients_latest(
    practice_config: Config, caplog: pytest.LogCaptureFixture
) -> None:
    config, schema = practice_config, Schema()
    ingest(config)
    dated(config.input_folder / "clients_oldA.csv", "dupx,1,2,3,\n")
    ingest(config)
    dated(config.input_folder / "clients_newB.csv", "dupx,500,5000,50,0\n")
    ingest(config)
    dated(config.input_folder / "clients_oldA.csv", "dupx,1,2,3,0\n")  # oldA exported again, its label known now
    result = ingest(config)
    assert [(c["name"], c["labels_filled"]) for c in result.changed] == [("clients_oldA.csv", 1)]
    order = [a["name"] for a in file_store.arrivals(config.arrivals_record, str(config.input_folder))]
    assert order[-2:] == ["clients_oldA.csv", "clients_newB.csv"] and [f.name for f in result.accepted][-2:] == order[-2:]
    assert file_store.arrivals(config.arrivals_record, str(config.input_folder))[-2]["how"] == "labels filled in"
    _, frame = risk.read_ingested(config.final_data_csv, schema)
    latest = risk.active_clients(frame, schema).filter(pl.col("corporation") == "dupx")
    assert latest.select(schema.features).rows() == [(500, 5000, 50)]  # ranked on its newer row, not the old one
    assert "labels arrived for 1 row(s) of clients_oldA.csv (its only change)" in caplog.text


def test_a_source_with_no_label_at_all_says_nothing_is_labelled_not_one_class(practice_config: Config) -> None:
    config = practice_config
    for path in config.input_folder.glob("*.csv"):
        path.unlink()
    rng = np.random.default_rng(8)
    write_batch(config.input_folder, "clients_q5.csv", clients(rng, unique_ids(rng, 50), CHANGED_WORLD), np.array([], dtype=int))
    assert ingest(config).rows_written == 50
    words = "finaldata.csv: 50 of 50 rows have no label yet (empty exited): nothing to train on"
    with pytest.raises(StageError, match=re.escape(words)):
        train(config)
    with pytest.raises(StageError, match=re.escape(words)):
        pipeline.run(config)  # nothing deployed yet: the first deployment's training says so, and the run records it
    assert words in history.runs(config.history_db)[-1]["message"]


def test_beside_a_complete_file_a_partly_labelled_files_labelled_rows_are_the_sample_not_the_score(deployed_practice: Config) -> None:
    deployed = production.current(deployed_practice.prod_deployment_folder)
    assert deployed is not None
    batch = concept_drift_batch().head(2000).astype({"exited": "Int64"}).reset_index(drop=True)
    batch.loc[1000 + 300 :, "exited"] = pd.NA  # the second file: 300 of its 1,000 rows labelled
    waits = np.arange(2000) >= 1000
    check = judge.score_drift_check(deployed_practice, deployed, batch, 0.78, waits).to_record()
    production_f1 = judge.metrics(production.load_model(deployed), batch.head(1000), Schema())["f1"]
    assert (check["measured"], check["new_rows"], check["waiting_rows"], check["labelled_rows"]) == (True, 2000, 1000, 1300)
    assert check["new_data_f1"] == round(production_f1, 6)  # on the complete file's rows only
    assert (check["labelled_sample"]["labels"], check["labelled_sample"]["of"]) == (300, 1000)
    assert check["waiting"].startswith("700 of the 2,000 new rows have no label yet")
