"""backtest.py (drs/pipeline/backtest.py): the shipped history replayed with late labels on a scratch copy, production untouched;
the first alarm comes no later than the first batch whose realized F1 falls below the threshold (issue 23 part 4)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from drs.core.errors import StageError
from drs.core.settings import Config
from drs.history import runs as history
from drs.pipeline import backtest
from drs.pipeline import run as pipeline
from tests.conftest import run_script, stage_pass, tree_state

FILES = ["clients_q1.csv", "clients_q2.csv", "clients_q3.csv", "clients_q4.csv"]


def test_the_shipped_history_alarms_no_later_than_the_first_realized_drop_and_production_is_untouched(
    practice_config: Config, config: Config, project: Path, tmp_path: Path
) -> None:
    stage_pass(practice_config)  # production as `make run` leaves it: the practice pass, then the full process
    assert pipeline.run(config) == 0
    before = tree_state(project / "production_deployment", project / "ingesteddata", project / "practicemodels", project / "models")
    runs_before = history.runs(config.history_db)

    done = run_script("backtest.py", "--config", str(project / "config.json"), "--sample", "300", "--seed", "0", "--label-delay", "1")
    assert done.returncode == 0, done.stderr
    assert tree_state(project / "production_deployment", project / "ingesteddata", project / "practicemodels") == {
        k: v for k, v in before.items() if "/models/" not in k
    }
    after_models = tree_state(project / "models")
    assert {k: v for k, v in after_models.items() if not Path(k).name.startswith("backtest.")} == {
        k: v for k, v in before.items() if "/models/" in k
    }
    assert history.runs(config.history_db) == runs_before

    result = json.loads((project / "models" / "backtest.json").read_text())
    batches = result["batches"]
    assert [b["file"] for b in batches] == FILES  # the order they arrived in
    for b in batches:
        assert {"file", "estimated_f1", "realized_f1", "labelled_sample_f1", "alarm"} <= set(b)
        assert b["labelled_sample"]["labels"] == 300
    names = [b["file"] for b in batches]
    assert result["first_alarm"] is not None and result["first_realized_drop"] is not None
    assert names.index(result["first_alarm"]) <= names.index(result["first_realized_drop"])
    q1 = batches[0]
    assert q1["deployed_version"] == "v0001" and result["practice_version"] == "v0001"
    assert q1["estimated_f1"] == pytest.approx(0.7855, abs=5e-4) and q1["realized_f1"] == pytest.approx(0.4910, abs=5e-4)
    assert q1["alarm"] is True and q1["labelled_sample"]["below_estimate"] is True and q1["realized_drop"] is True
    # the labels of q1 come with q2: the real full process, run on the scratch copy, retrains and deploys v0002
    assert q1["labels_arrive_with"] == "clients_q2.csv"
    decided = q1["pipeline"]
    assert decided["judged_version"] == "v0001" and decided["drift"] is True and decided["retrained"] is True
    assert decided["gate"]["promote"] is True and decided["deployed_after"] == "v0002" and decided["outcome"] == "deployed"
    assert batches[1]["deployed_version"] == "v0001" and batches[2]["deployed_version"] == "v0002"
    assert batches[-1]["labels_arrive_with"] == backtest.AFTER_THE_LAST and batches[-1]["pipeline"]["outcome"]
    assert result["seconds"] < 120

    out = done.stdout.splitlines()
    assert out[0].split()[:4] == ["batch", "model", "estimated", "labelled"]
    assert out[2].startswith("clients_q1.csv   v0001     0.7855  ") and " YES " in out[2] and "-> v0002" in out[2]
    assert "first alarm: clients_q1.csv; first realized drop below the threshold: clients_q1.csv" in done.stdout
    png = (project / "models" / "backtest.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 20_000


def test_labels_two_batches_late_keep_the_practice_model_deployed_longer(config: Config, practice_config: Config, tmp_path: Path) -> None:
    result = backtest.replay(config, practice_config, tmp_path / "scratch", backtest.Options(label_delay=2, sample=200, seed=3))
    batches = result["batches"]
    assert [b["labels_arrive_with"] for b in batches] == [
        "clients_q3.csv",
        "clients_q4.csv",
        backtest.AFTER_THE_LAST,
        backtest.AFTER_THE_LAST,
    ]
    assert [b["deployed_version"] for b in batches[:3]] == ["v0001", "v0001", "v0001"]  # q3 arrives before q1's labels are judged
    assert all(b["alarm"] for b in batches[:3])  # each batch the practice model meets: the alarm comes at once, the labels later
    assert result["first_alarm"] == result["first_realized_drop"] == "clients_q1.csv"
    assert batches[0]["pipeline"]["deployed_after"] == "v0002"
    assert not (config.prod_deployment_folder / "current").exists()  # the project's production was never used
    assert "\n".join(backtest.table(result)).count("v0001") >= 3


def test_bad_options_are_refused_before_anything_is_copied(config: Config, practice_config: Config, tmp_path: Path) -> None:
    with pytest.raises(StageError, match="--label-delay must be >= 0 and --sample >= 1"):
        backtest.replay(config, practice_config, tmp_path / "scratch", backtest.Options(label_delay=-1))
    assert not (tmp_path / "scratch").exists()


def test_the_files_come_in_the_order_production_saw_them(config: Config, project: Path, tmp_path: Path) -> None:
    import os

    from drs.data.ingest import ingest

    start = 1_700_000_000
    for i, name in enumerate(reversed(FILES)):  # written q4 first, q1 last
        os.utime(config.input_folder / name, (start + 10 * i, start + 10 * i))
    assert [p.name for p in backtest.arrival_order(config, tmp_path / "a")] == list(reversed(FILES))
    ingest(config)  # production records that order
    for i, name in enumerate(FILES):  # touched again, now in name order: production keeps the order it saw
        os.utime(config.input_folder / name, (start + 100 + 10 * i, start + 100 + 10 * i))
    before = tree_state(project / "ingesteddata")
    (tmp_path / "b").mkdir()
    assert [p.name for p in backtest.arrival_order(config, tmp_path / "b")] == list(reversed(FILES))
    assert tree_state(project / "ingesteddata") == before  # its history was only copied, read-only
