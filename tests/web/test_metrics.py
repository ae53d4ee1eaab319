"""GET /metrics: parsed with prometheus-client's own parser; counts, the pipeline's figures, gunicorn's workers, the docs' rules."""

from __future__ import annotations

import os
import re
import shutil
import signal
import sqlite3
import struct
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pandas as pd
import pytest
import requests
import yaml
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.parser import text_string_to_metric_families

from drs.core import layout
from drs.core.settings import Config
from drs.data.schema import Schema
from drs.history import runs as history
from drs.history.record import Outcome
from drs.pipeline import run as pipeline
from drs.production import versions as production
from drs.reports import diagnostics, risk
from drs.web import multiproc, telemetry
from drs.web.app import create_app
from tests.conftest import ROOT, write_config
from tools.procs import gunicorn_server

RECORD = {"corporation": "abcd", "lastmonth_activity": 3, "lastyear_activity": 400, "number_of_employees": 900}
Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def parse(text: str) -> Samples:
    """Every sample of a scrape by (name, sorted labels), read by prometheus-client's parser."""
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float | None:
    return samples.get((name, tuple(sorted(labels.items()))))


def names(samples: Samples) -> set[str]:
    return {name for name, _ in samples}


def requests_of(samples: Samples, endpoint: str, status: str) -> float:
    return value(samples, "drs_http_requests_total", endpoint=endpoint, status=status) or 0.0


@pytest.fixture
def client(deployed_practice: Config):
    return create_app(deployed_practice).test_client()


def scrape(client) -> Samples:
    answer = client.get("/metrics")
    assert answer.status_code == 200 and answer.mimetype == "text/plain"
    return parse(answer.get_data(as_text=True))


# ---- one process (Flask's test client) --------------------------------------------------------


def test_counts_grow_with_requests_by_url_rule_and_status(client) -> None:
    before = scrape(client)
    for _ in range(3):
        assert client.get("/health").status_code == 200
    assert client.post("/prediction", json={"records": [RECORD, RECORD]}).status_code == 200
    assert client.post("/prediction", json={"filepath": "testdata/testdata.csv"}).status_code == 200
    assert client.post("/prediction", json={"records": []}).status_code == 400  # not a prediction served
    assert client.get("/images/nothing.png").status_code == 404
    assert client.get("/no/such/path/1").status_code == 404
    assert client.get("/no/such/path/2").status_code == 404
    after = scrape(client)

    assert requests_of(after, "/health", "200") - requests_of(before, "/health", "200") == 3
    assert requests_of(after, "/prediction", "200") - requests_of(before, "/prediction", "200") == 2
    assert requests_of(after, "/prediction", "400") == 1
    assert requests_of(after, "/images/<name>", "404") == 1  # the rule, not the path: bounded series
    assert requests_of(after, "unmatched", "404") == 2
    assert requests_of(after, "/metrics", "200") == requests_of(before, "/metrics", "200") + 1  # the first scrape
    assert not any("no/such" in str(labels) for _, labels in after)
    test_rows = len(pd.read_csv(ROOT / "testdata" / "testdata.csv"))
    assert (value(after, "drs_predictions_total") or 0) - (value(before, "drs_predictions_total") or 0) == 2 + test_rows
    durations = value(after, "drs_http_request_duration_seconds_count", endpoint="/health", status="200")
    assert durations == requests_of(after, "/health", "200")
    assert (value(after, "drs_http_request_duration_seconds_sum", endpoint="/health", status="200") or 0) > 0
    assert value(after, "drs_http_request_duration_seconds_bucket", endpoint="/health", status="200", le="+Inf") == durations
    assert not any(name.endswith("_created") for name in names(after))


def test_openmetrics_when_the_scraper_asks(client) -> None:
    answer = client.get("/metrics", headers={"Accept": "application/openmetrics-text; version=1.0.0"})
    assert answer.status_code == 200 and answer.mimetype == "application/openmetrics-text"
    assert answer.get_data(as_text=True).endswith("# EOF\n")


def test_nothing_deployed_gives_only_what_is_known(config: Config) -> None:
    samples = scrape(create_app(config).test_client())
    assert not names(samples) & {"drs_model_info", "drs_model_f1", "drs_pipeline_last_run_success", "drs_active_clients_above_half"}
    for source in ("production", "history", "risk"):
        assert value(samples, "drs_metrics_source_up", source=source) == 1
    assert not config.history_db.exists()  # a scrape creates nothing


def test_a_damaged_history_is_one_source_down_not_a_failed_scrape(deployed_practice: Config) -> None:
    deployed_practice.history_db.write_bytes(b"this is not an SQLite file" * 100)
    samples = scrape(create_app(deployed_practice).test_client())
    assert value(samples, "drs_metrics_source_up", source="history") == 0
    assert value(samples, "drs_metrics_source_up", source="production") == 1
    assert value(samples, "drs_model_info", version="v0001") == 1


# ---- the pipeline's figures equal what the history and production say --------------------------


def test_pipeline_figures_equal_the_history_and_production(deployed_practice: Config, config: Config) -> None:
    assert pipeline.run(config) == 0  # the practice model drifts on the new data: retrain, deploy v0002
    client = create_app(config).test_client()
    samples = scrape(client)

    current = production.current(config.prod_deployment_folder)
    assert current is not None and current.label == "v0002"
    assert value(samples, "drs_model_info", version="v0002") == 1
    assert [labels for name, labels in samples if name == "drs_model_info"] == [(("version", "v0002"),)]
    assert value(samples, "drs_model_f1") == float((config.prod_deployment_folder / layout.SCORE_FILE).read_text())

    run = history.runs(config.history_db)[-1]
    check, data = run["details"]["drift"], run["details"]["data_drift"]
    assert check["drift"] is True and data["measured"] is True
    assert value(samples, "drs_drift_check_f1") == check["new_data_f1"]
    assert value(samples, "drs_drift_check_threshold") == check["threshold"]
    assert value(samples, "drs_drift_check_drift") == 1
    started = pd.Timestamp(run["started_at"]).timestamp()
    assert value(samples, "drs_drift_check_timestamp_seconds") == started
    assert started <= value(samples, "drs_model_deployed_timestamp_seconds")  # answered by a deployment (times to the second)
    assert value(samples, "drs_data_drift_detected") == float(data["drift"])
    psi = {dict(labels)["feature"]: v for (name, labels), v in samples.items() if name == "drs_data_drift_psi"}
    assert psi == {row["feature"]: row["psi"] for row in data["features"]}
    assert set(psi) == set(config.features)

    finished = pd.Timestamp(run["finished_at"]).timestamp()
    assert value(samples, "drs_pipeline_last_run_timestamp_seconds") == finished
    age = value(samples, "drs_pipeline_last_run_age_seconds")
    assert age is not None and 0 <= age <= time.time() - finished + 1
    assert value(samples, "drs_pipeline_last_run_success") == 1
    assert value(samples, "drs_pipeline_runs_total", outcome="deployed") == 1

    # the active clients above 0.5: the deployed model on finaldata.csv, as /risk and drs.reports.risk rank them
    schema = Schema.from_config(config)
    ranked = risk.risk_list(production.load_model(current), diagnostics.final_data(config), schema)
    assert value(samples, "drs_active_clients") == len(ranked)
    assert value(samples, "drs_active_clients_above_half") == risk.above(ranked) > 0
    assert client.get("/risk").get_json()["above_half"] == risk.above(ranked)

    # a failed run, then one skipped by the lock: the last finished run is the failed one
    for outcome in (Outcome.FAILED, Outcome.SKIPPED_LOCKED):
        history.append_run(
            config.history_db,
            started_at="2027-01-01T00:00:00+00:00",
            finished_at="2027-01-01T00:00:05+00:00",
            kind="fullprocess",
            outcome=outcome,
            message="test",
            deployed_version=None,
            details={},
        )
    samples = scrape(client)
    assert value(samples, "drs_pipeline_last_run_success") == 0
    assert value(samples, "drs_pipeline_last_run_timestamp_seconds") == pd.Timestamp("2027-01-01T00:00:05+00:00").timestamp()
    assert value(samples, "drs_pipeline_runs_total", outcome="failed") == 1
    assert value(samples, "drs_pipeline_runs_total", outcome="skipped: locked") == 1
    assert value(samples, "drs_drift_check_f1") == check["new_data_f1"]  # still the last drift check


# ---- the multiprocess folder ---------------------------------------------------------------------


def test_prepare_gives_each_server_its_own_folder_and_removes_stopped_ones(config: Config, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(multiproc.ENV, raising=False)
    base = config.output_folder / layout.PROMETHEUS_DIR
    stopped = subprocess.Popen(["true"])
    stopped.wait()  # a pid that is surely gone
    for pid in (stopped.pid, 1):  # pid 1 is alive: another server's folder, left alone
        (base / f"server-{pid}").mkdir(parents=True)
        (base / f"server-{pid}" / f"counter_{pid}.db").write_bytes(b"old")
    (base / "counter_123.db").write_bytes(b"older layout")
    (base / "notes.txt").write_text("not ours to remove")
    message = multiproc.prepare(str(config.config_file), master_pid=4242)
    folder = base / "server-4242"
    assert os.environ[multiproc.ENV] == str(folder)
    assert sorted(p.name for p in base.iterdir()) == ["notes.txt", "server-1", "server-4242"]
    assert list(folder.iterdir()) == [] and (base / "server-1" / "counter_1.db").read_bytes() == b"old"
    assert message == f"metrics shared between workers in {folder} (2 folder(s) of stopped servers removed)"
    bad = write_config(config.config_file.parent, "bad.json", drift_test="sometimes")
    assert multiproc.prepare(str(bad)).startswith("metrics not shared between workers: config file")
    assert multiproc.ENV not in os.environ


def test_a_file_being_created_by_a_worker_does_not_fail_the_scrape(tmp_path: Path) -> None:
    """Seen under load: a scrape reading a new worker's still-empty file answered 500 (struct.error)."""
    (tmp_path / "counter_1.db").touch()
    with pytest.raises(struct.error):
        MultiProcessCollector(None, path=str(tmp_path)).collect()
    assert list(telemetry.SharedFiles(None, path=str(tmp_path)).collect()) == []


def per_worker(folder: Path, endpoint: str) -> dict[int, float]:
    """Requests to `endpoint` counted in each worker's own file."""
    counts = {}
    for path in folder.glob("counter_*.db"):
        pid = int(path.stem.split("_")[1])
        for family in MultiProcessCollector.merge([str(path)]):
            for sample in family.samples:
                if sample.name == "drs_http_requests_total" and sample.labels["endpoint"] == endpoint:
                    counts[pid] = counts.get(pid, 0.0) + sample.value
    return counts


def get_metrics(url: str) -> Samples:
    answer = requests.get(url + "/metrics", timeout=10)
    assert answer.status_code == 200 and answer.headers["Content-Type"].startswith("text/plain")
    return parse(answer.text)


PROBE = 1  # tools.procs.gunicorn_server's readiness check: one GET /health before the test's first request


@pytest.fixture
def served(deployed_practice: Config) -> Iterator[tuple[str, Config]]:
    with gunicorn_server(deployed_practice.config_file, workers=2) as url:
        yield url, deployed_practice


@pytest.mark.slow
def test_gunicorn_workers_count_together(served: tuple[str, Config]) -> None:
    url, config = served
    [folder] = (config.output_folder / layout.PROMETHEUS_DIR).glob("server-*")
    before = get_metrics(url)
    n = 0
    with ThreadPoolExecutor(max_workers=8) as pool:  # concurrent batches until both sync workers have answered some
        while n < 2000 and len(per_worker(folder, "/health")) < 2:
            statuses = list(pool.map(lambda _: requests.get(url + "/health", timeout=30).status_code, range(100)))
            assert statuses == [200] * 100
            n += 100
    for _ in range(4):  # every scrape, whichever worker answers it, counts every worker's requests
        assert requests_of(get_metrics(url), "/health", "200") - requests_of(before, "/health", "200") == n

    (folder / "counter_999999.db").touch()  # a worker's file at the instant it is created: empty
    assert requests_of(get_metrics(url), "/health", "200") - requests_of(before, "/health", "200") == n
    (folder / "counter_999999.db").unlink()

    spread = per_worker(folder, "/health")
    assert len(spread) == 2 and all(count > 0 for count in spread.values()), spread
    assert sum(spread.values()) == requests_of(get_metrics(url), "/health", "200")  # the files are the whole count

    # a worker that dies (gunicorn starts another) keeps its counts in the total
    os.kill(next(iter(spread)), signal.SIGTERM)
    deadline = time.monotonic() + 20
    while len(list(folder.glob("counter_*.db"))) < 3 and time.monotonic() < deadline:
        requests.get(url + "/health", timeout=10)
    assert len(list(folder.glob("counter_*.db"))) >= 3
    assert requests_of(get_metrics(url), "/health", "200") >= n


@pytest.mark.slow
def test_a_new_server_starts_from_zero(deployed_practice: Config) -> None:
    with gunicorn_server(deployed_practice.config_file, workers=2) as url:  # its readiness check is one GET /health
        for _ in range(5):
            requests.get(url + "/health", timeout=10)
        assert requests_of(get_metrics(url), "/health", "200") == PROBE + 5
    log = next(deployed_practice.config_file.parent.glob("gunicorn-*.log")).read_text()
    assert "metrics shared between workers in" in log
    with gunicorn_server(deployed_practice.config_file, workers=2) as url:
        assert requests_of(get_metrics(url), "/health", "200") == PROBE
        requests.get(url + "/health", timeout=10)
        assert requests_of(get_metrics(url), "/health", "200") == PROBE + 1


@pytest.mark.slow
def test_a_second_server_on_the_same_project_leaves_the_first_ones_counts(deployed_practice: Config) -> None:
    """Seen by hand: a second `make serve` that failed to bind the port in use emptied the live server's folder."""
    with gunicorn_server(deployed_practice.config_file, workers=2) as url:
        for _ in range(5):
            requests.get(url + "/health", timeout=10)
        port = url.rsplit(":", 1)[1]
        env = {**os.environ, "DRS_CONFIG": str(deployed_practice.config_file), "PORT": port, "WORKERS": "1"}
        gunicorn = Path(sys.executable).parent / "gunicorn"
        second = subprocess.run(
            [str(gunicorn), "--config", "gunicorn.conf.py", "app:create_app()"],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert second.returncode != 0 and "Connection in use" in second.stderr
        assert requests_of(get_metrics(url), "/health", "200") == PROBE + 5


# ---- docs/metrics.md: the scrape configuration and the alerting rules ----------------------------


def yaml_blocks(markdown: str) -> list[object]:
    return [yaml.safe_load(block) for block in re.findall(r"```yaml\n(.*?)```", markdown, flags=re.S)]


def test_the_documented_rules_are_valid_and_use_served_metrics(deployed_practice: Config, config: Config) -> None:
    assert pipeline.run(config) == 0
    client = create_app(config).test_client()
    assert client.post("/prediction", json={"records": [RECORD]}).status_code == 200
    served = names(scrape(client))
    served |= {n.removesuffix("_bucket") for n in served}  # histogram_quantile(..._bucket) is the family
    blocks = yaml_blocks((ROOT / "docs" / "metrics.md").read_text())
    scrape_configs = [b for b in blocks if isinstance(b, dict) and "scrape_configs" in b]
    assert scrape_configs and scrape_configs[0]["scrape_configs"][0]["metrics_path"] == "/metrics"
    rule_files = [b for b in blocks if isinstance(b, dict) and "groups" in b]
    assert len(rule_files) == 1
    rules = [rule for group in rule_files[0]["groups"] for rule in group["rules"]]
    alerts = {rule["alert"] for rule in rules}
    assert {"DrsPipelineStale", "DrsPipelineRunFailed", "DrsScoreDrift", "DrsDataDrift"} <= alerts
    for rule in rules:
        assert set(rule) <= {"alert", "expr", "for", "labels", "annotations"} and rule["expr"] and rule["annotations"]["summary"]
        used = set(re.findall(r"\bdrs_[a-z0-9_]+", rule["expr"]))
        assert used and used <= served | {n + "_bucket" for n in served}, (rule["alert"], used - served)


def test_the_history_queries_behind_a_scrape_use_indexes(deployed_practice: Config, config: Config) -> None:
    assert pipeline.run(config) == 0
    with sqlite3.connect(config.history_db) as conn:
        plans = [
            " ".join(row[3] for row in conn.execute("EXPLAIN QUERY PLAN " + query))
            for query in (
                "SELECT outcome, COUNT(*) FROM runs GROUP BY outcome",
                "SELECT id FROM runs WHERE drift_model_sha256 IS NOT NULL OR new_data_f1 IS NOT NULL ORDER BY id DESC LIMIT 1",
            )
        ]
    assert "USING COVERING INDEX runs_outcome" in plans[0]
    assert "runs_judged" in plans[1]


@pytest.mark.skipif(
    shutil.which("promtool") is None, reason="promtool (Prometheus's own checker; Debian package prometheus) is not installed"
)
def test_promtool_accepts_the_rules_the_configuration_and_a_scrape(deployed_practice: Config, config: Config, tmp_path: Path) -> None:
    blocks = re.findall(r"```yaml\n(.*?)```", (ROOT / "docs" / "metrics.md").read_text(), flags=re.S)
    (tmp_path / "drs-rules.yml").write_text(blocks[1])
    (tmp_path / "prometheus.yml").write_text(blocks[0] + "rule_files: [drs-rules.yml]\n")
    for args in (["check", "rules", "drs-rules.yml"], ["check", "config", "prometheus.yml"]):
        checked = subprocess.run(["promtool", *args], cwd=tmp_path, capture_output=True, text=True, timeout=60)
        assert checked.returncode == 0, checked.stdout + checked.stderr
    assert pipeline.run(config) == 0
    client = create_app(config).test_client()
    client.post("/prediction", json={"records": [RECORD]})
    text = client.get("/metrics").get_data(as_text=True)
    linted = subprocess.run(["promtool", "check", "metrics"], input=text, capture_output=True, text=True, timeout=60)
    assert linted.returncode == 0 and not linted.stdout.strip() and not linted.stderr.strip(), linted.stdout + linted.stderr
