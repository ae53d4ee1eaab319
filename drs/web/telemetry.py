"""`GET /metrics`: Prometheus metrics of the API (requests, durations, predictions) and of the pipeline's state.

Requests are counted by endpoint (the URL rule, such as `/images/<name>`, so a
caller cannot create new series; `unmatched` for a path no rule matches, 405s
included) and status. Under gunicorn (gunicorn.conf.py, drs/web/multiproc.py) the
workers share their counts through prometheus-client's multiprocess files, so a
scrape answered by any worker counts every worker's requests; without
PROMETHEUS_MULTIPROC_DIR (Flask's test client, one process) they live in the
app's own registry.

The pipeline's figures (drs/reports/monitoring.py: the deployed model, the last run, the
last drift check; and the active clients above 0.5) are computed when a scrape
asks, by a collector on the scrape's registry, so they are never summed across
workers. Each read is kept until its source changes: the history's file, the
`current` link, finaldata.csv. See docs/metrics.md.
"""

from __future__ import annotations

import contextlib
import glob
import logging
import os
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

from flask import Blueprint, Flask, Response, current_app, g, request
from prometheus_client import CollectorRegistry, Counter, Histogram, disable_created_metrics, values
from prometheus_client.exposition import choose_encoder
from prometheus_client.metrics_core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector

from drs.core.layout import RISK_LIST
from drs.history import runs as history
from drs.production import versions as production
from drs.reports import monitoring, risk
from drs.web.multiproc import ENV
from drs.web.service import Service, current_ranking

EXTENSION = "drs.telemetry"  # the key of the Telemetry in app.extensions
UNMATCHED = "unmatched"
LABELS = ("endpoint", "status")

telemetry = Blueprint("telemetry", __name__)


@dataclass(frozen=True)
class Telemetry:
    registry: CollectorRegistry  # what a scrape reads
    requests: Counter
    duration: Histogram
    predictions: Counter
    shared: bool  # counts kept in PROMETHEUS_MULTIPROC_DIR, across the server's workers


def shared_folder(log: logging.Logger) -> str | None:
    """PROMETHEUS_MULTIPROC_DIR when this process can use it, else None (the app counts alone)."""
    folder = os.environ.get(ENV)
    if not folder:
        return None
    if values.ValueClass is values.MutexValue:
        log.warning("%s is set but prometheus_client was imported before it was: this worker counts alone", ENV)
        return None
    if not os.path.isdir(folder):
        log.warning("%s names %s, which is not a folder: this worker counts alone", ENV, folder)
        return None
    return folder


class SharedFiles(MultiProcessCollector):
    """prometheus-client's collector, less the files a worker is creating at this instant.

    A worker's first count creates its file empty and then sizes it; a scrape in between failed with
    `struct.error` (a 500, seen under load when gunicorn replaced a worker). An empty file holds no values."""

    def collect(self) -> Iterable[Metric]:
        files = []
        for path in glob.glob(os.path.join(self._path, "*.db")):
            with contextlib.suppress(OSError):  # a dead worker's gauge file may be removed meanwhile
                if os.path.getsize(path) > 0:
                    files.append(path)
        merged: Iterable[Metric] = self.merge(files, accumulate=True)  # type: ignore[no-untyped-call]
        return merged


def build(shared: bool) -> Telemetry:
    """The instruments; shared ones write to the multiprocess files, the others to the app's registry.

    No `_created` series: the multiprocess files do not keep them, so one process would differ from gunicorn."""
    disable_created_metrics()  # type: ignore[no-untyped-call]  # process-wide, and the same for every app
    registry = CollectorRegistry(auto_describe=False)
    target = None if shared else registry
    telemetry_ = Telemetry(
        registry=registry,
        requests=Counter("drs_http_requests", "HTTP requests answered, by endpoint (URL rule) and status", LABELS, registry=target),
        duration=Histogram("drs_http_request_duration_seconds", "time to answer an HTTP request", LABELS, registry=target),
        predictions=Counter("drs_predictions", "rows scored by POST /prediction (answers with status 200)", registry=target),
        shared=shared,
    )
    if shared:
        SharedFiles(registry)  # type: ignore[no-untyped-call]
    return telemetry_


def install(app: Flask, svc: Service) -> Telemetry:
    """Count every request of `app` and serve GET /metrics."""
    tel = build(shared_folder(app.logger) is not None)
    tel.registry.register(PipelineCollector(svc, app.logger))
    app.extensions[EXTENSION] = tel
    app.before_request(_started)
    app.after_request(_counted)
    app.register_blueprint(telemetry)
    return tel


def _started() -> None:
    g.telemetry_started = time.perf_counter()


def _counted(response: Response) -> Response:
    tel: Telemetry = current_app.extensions[EXTENSION]
    labels = (request.url_rule.rule if request.url_rule is not None else UNMATCHED, str(response.status_code))
    tel.requests.labels(*labels).inc()
    started = g.pop("telemetry_started", None)
    if started is not None:
        tel.duration.labels(*labels).observe(time.perf_counter() - started)
    rows = g.pop("rows_scored", None)  # set by POST /prediction
    if rows and response.status_code == 200:
        tel.predictions.inc(rows)
    return response


@telemetry.get("/metrics")
def metrics_endpoint() -> Response:
    """The Prometheus text format (or OpenMetrics, when the scraper asks for it)."""
    tel: Telemetry = current_app.extensions[EXTENSION]
    encoder, content_type = choose_encoder(request.headers.get("Accept", ""))
    return Response(encoder(tel.registry), status=200, headers={"Content-Type": content_type})


# ---- the pipeline's figures, computed at scrape time ---------------------------------------


def gauge(name: str, documentation: str, value: float | None, labels: dict[str, str] | None = None) -> Iterator[Metric]:
    """One gauge with one sample, or nothing for an unknown value."""
    if value is None:
        return
    family = GaugeMetricFamily(name, documentation, labels=list(labels or {}))
    family.add_metric(list((labels or {}).values()), float(value))
    yield family


class PipelineCollector:
    """The deployed model, the last run, the last drift check and the clients at risk, read when a scrape asks.

    Each source is read on its own: one that cannot be read is logged, shows as
    `drs_metrics_source_up{source=...} 0`, and leaves the others' metrics in place."""

    SOURCES = ("production", "history", "risk")

    def __init__(self, svc: Service, log: logging.Logger):
        self.svc = svc
        self.log = log

    def describe(self) -> list[Metric]:
        return []  # nothing to read when the collector is registered

    def collect(self) -> Iterator[Metric]:
        up = GaugeMetricFamily("drs_metrics_source_up", "1 when a source of the pipeline's figures could be read", labels=["source"])
        readers: dict[str, Callable[[], list[Metric]]] = {
            "production": self._production,
            "history": self._history,
            "risk": self._risk,
        }
        for source, read in readers.items():
            try:
                found = read()
            except Exception as exc:  # a damaged file, a broken deployment: the other sources still report
                self.log.warning("metrics: %s cannot be read: %s: %s", source, type(exc).__name__, exc)
                up.add_metric([source], 0.0)
                continue
            up.add_metric([source], 1.0)
            yield from found
        yield up

    def _deployed(self) -> monitoring.DeployedModel | None:
        prod = self.svc.config.prod_deployment_folder
        signature = production.current_signature(prod)
        return self.svc.cache.get("metrics:deployed", (), lambda: monitoring.deployed_model(prod), extra=signature)

    def _production(self) -> list[Metric]:
        deployed = self._deployed()
        if deployed is None:
            return []
        return [
            *gauge("drs_model_info", "the deployed model version (always 1)", 1, {"version": deployed.version}),
            *gauge("drs_model_f1", "F1 of the deployed model on the test data (its latestscore.txt)", deployed.f1),
            *gauge("drs_model_deployed_timestamp_seconds", "when the deployed model was deployed (Unix time)", deployed.deployed_at),
        ]

    def _history_figures(self) -> tuple[monitoring.LastRun | None, monitoring.DriftCheck | None, dict[str, int]]:
        db = self.svc.config.history_db

        def read() -> tuple[monitoring.LastRun | None, monitoring.DriftCheck | None, dict[str, int]]:
            return monitoring.last_run(db), monitoring.last_drift_check(db), history.outcome_counts(db)

        return self.svc.cache.get("metrics:history", (db, db.with_name(db.name + "-wal")), read)

    def _history(self) -> list[Metric]:
        last, drift, counts = self._history_figures()
        found: list[Metric] = []
        runs = CounterMetricFamily("drs_pipeline_runs", "runs recorded in the run history, by outcome", labels=["outcome"])
        for outcome, count in sorted(counts.items()):
            runs.add_metric([outcome], count)
        found.append(runs)
        if last is not None:
            found += [
                *gauge(
                    "drs_pipeline_last_run_timestamp_seconds", "when the last finished full-process run ended (Unix time)", last.finished_at
                ),
                *gauge(
                    "drs_pipeline_last_run_age_seconds",
                    "seconds since the last finished full-process run ended",
                    time.time() - last.finished_at,
                ),
                *gauge("drs_pipeline_last_run_success", "1 when the last finished full-process run did not fail", float(last.succeeded)),
            ]
        if drift is not None:
            if drift.f1 is not None and drift.threshold is not None:  # left out, not 0, when too few new rows exited to measure it
                found += [
                    *gauge("drs_drift_check_f1", "the deployed model's F1 on the new rows at the last drift check", drift.f1),
                    *gauge("drs_drift_check_threshold", "the F1 below which the last drift check found drift", drift.threshold),
                ]
            found += gauge(  # left out when the estimate was refused (drs/model/estimate.py records why)
                "drs_drift_check_estimated_f1",
                "the label-free estimate (CBPE) of the deployed model's F1 on the new rows at the last drift check, made before their labels",
                drift.estimated_f1,
            )
            found += [
                *gauge(
                    "drs_drift_check_measured",
                    "1 when the last drift check could measure the F1 (0: too few clients in the new rows exited; no score test)",
                    float(drift.f1 is not None),
                ),
                *gauge("drs_drift_check_drift", "1 when the last drift check found score drift", float(drift.drift)),
                *gauge(
                    "drs_drift_check_timestamp_seconds",
                    "when the run of the last drift check started (Unix time; a deployment by that run comes later)",
                    drift.started_at,
                ),
            ]
            if drift.data_drift is not None:
                found += gauge(
                    "drs_data_drift_detected", "1 when the last data-drift check found a drifted feature", float(drift.data_drift)
                )
            if drift.psi:
                psi = GaugeMetricFamily(
                    "drs_data_drift_psi", "population stability index of each feature at the last data-drift check", labels=["feature"]
                )
                for feature, value in drift.psi.items():
                    psi.add_metric([feature], value)
                found.append(psi)
        return found

    def _risk(self) -> list[Metric]:
        if self._deployed() is None or not self.svc.config.model_output(RISK_LIST).exists():
            return []  # nothing ranked yet: not a fault
        counts = current_ranking(self.svc, self.svc.models.get().deployment).summary  # the counts GET /risk gives
        return [
            *gauge("drs_active_clients", "active clients in finaldata.csv (their latest row says they stayed)", counts["active_clients"]),
            *gauge(
                "drs_active_clients_above_half", f"active clients with an exit probability above {risk.THRESHOLD}", counts["above_half"]
            ),
        ]
