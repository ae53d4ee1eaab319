"""What every view of the web app reads: the deployed model, the results computed from files, the current ranking.

`create_app` builds one `Service` per worker (the config, the schema, the model cache and the file cache) and keeps
it in `app.extensions`; the API (drs/web/api.py), the page (drs/web/page.py), `/metrics` (drs/web/telemetry.py) and
`/audit` reach it through `service()`. No routes here, and nothing is read from a request (drs/web/requests.py does that).

Each worker loads the deployed model once and checks, on every request, where production's `current` link points (one
readlink); when a new version is deployed or rolled back it loads that one, so an answer is computed wholly by one
loaded version, which it names. The current ranking is read as reporting wrote it (drs/reports/standing.py) from its
indexed store (risklist.sqlite, drs/reports/riskstore.py): the counts and the top rows, never the whole list.
A view that cannot be answered raises `ApiError(status, message)`. See docs/api.md.
"""

from __future__ import annotations

import json
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypedDict, TypeVar

from flask import current_app

from drs.alerts import rules as alerts
from drs.core import layout
from drs.core.errors import DeploymentError
from drs.core.settings import Config
from drs.data.schema import Schema
from drs.history import runs as history
from drs.model import explain
from drs.model.estimator import LinearModel, Scorer, linear_model_of, scorer_for
from drs.production import versions as production
from drs.production.versions import Deployment
from drs.reports import riskstore, standing

RETRY_FAILED_LOAD_SECONDS = 5.0
SERVICE = "drs"  # the key of the Service in app.extensions
T = TypeVar("T")


class ApiError(Exception):
    """An answer other than 200; rendered as {"status", "error", "message"} (drs/web/requests.py's handlers)."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass(frozen=True)
class LoadedModel:
    signature: str
    deployment: Deployment
    model: Any
    scorer: Scorer

    @property
    def version(self) -> str:
        return self.deployment.label


class ModelCache:
    """The deployed model of this worker, reloaded only when `current` moves.

    The check is one readlink per request. The model is loaded from the
    folder that link named, so the version in an answer is always the one
    that computed it. A deployment that fails to load is retried after a
    few seconds (not on every request), and answers 503 meanwhile.
    """

    def __init__(self, prod: Path):
        self.prod = prod
        self._lock = threading.Lock()
        self._loaded: LoadedModel | None = None
        self._failed: tuple[str, float, ApiError] | None = None

    def get(self) -> LoadedModel:
        signature = production.current_signature(self.prod)
        loaded = self._loaded
        if loaded is not None and loaded.signature == signature:
            return loaded
        if signature is None:
            raise ApiError(503, f"no model is deployed in {self.prod.name}; run the pipeline (make run) first")
        with self._lock:
            if self._loaded is not None and self._loaded.signature == signature:
                return self._loaded
            failed = self._failed
            if failed and failed[0] == signature and time.monotonic() - failed[1] < RETRY_FAILED_LOAD_SECONDS:
                raise failed[2]
            try:
                self._loaded = self._load(signature)
            except ApiError as exc:
                self._failed = (signature, time.monotonic(), exc)
                raise
            self._failed = None
            return self._loaded

    def _load(self, signature: str) -> LoadedModel:
        try:
            deployment = production.at_link_target(self.prod, signature)
            model = production.load_model(deployment)
        except DeploymentError as exc:
            raise ApiError(503, f"the deployed model cannot be used: {exc}") from None
        return LoadedModel(signature, deployment, model, scorer_for(model))


class FileCache:
    """Results computed from files, kept until a file's inode, size or mtime changes.

    At most `size` results are kept (least recently used go first), so callers
    naming many different data files cannot make a worker grow without bound.
    """

    def __init__(self, size: int = 32) -> None:
        self._entries: OrderedDict[str, tuple[Any, Any]] = OrderedDict()
        self._size = size
        self._lock = threading.Lock()  # for gevent's greenlets (gevent's lock there) and threaded workers

    def get(self, name: str, paths: tuple[Path, ...], compute: Callable[[], T], extra: Any = None) -> T:
        key = (extra, *(_stat_key(p) for p in paths))
        with self._lock:
            hit = self._entries.get(name)
            if hit is not None and hit[0] == key:
                self._entries.move_to_end(name)
                cached: T = hit[1]
                return cached
        value = compute()
        with self._lock:
            self._entries[name] = (key, value)
            self._entries.move_to_end(name)
            while len(self._entries) > self._size:
                self._entries.popitem(last=False)
        return value


def _stat_key(path: Path) -> tuple[int, int, int] | None:
    try:
        st = path.stat()
    except OSError:
        return None
    return st.st_ino, st.st_size, st.st_mtime_ns


@dataclass
class Service:
    """What every endpoint (and the page) needs, built once per worker by create_app."""

    config: Config
    schema: Schema
    models: ModelCache
    cache: FileCache = field(default_factory=FileCache)


def service() -> Service:
    svc: Service = current_app.extensions[SERVICE]
    return svc


def reasons_of(svc: Service, loaded: LoadedModel) -> tuple[LinearModel, explain.Reference] | None:
    """The deployed model's linear parts and reference (drs/model/explain.py), found once per version; None when it has none."""

    def compute() -> tuple[LinearModel, explain.Reference] | None:
        model = linear_model_of(loaded.model)
        reference = explain.deployed_reference(loaded.deployment, svc.schema.features)
        return (model, reference) if model is not None and reference is not None else None

    return svc.cache.get("reasons", (), compute, extra=loaded.signature)


# ---- the current ranking --------------------------------------------------------------------


@dataclass(frozen=True)
class Ranking:
    """The current ranking as reporting wrote it (drs/reports/standing.py): its store's counts, what changed, and which model
    ranked which data; `problems` says why it does not match the deployed model or the current data ([] when it does)."""

    summary: dict[str, Any]  # riskstore.summary: the store's counts
    meta: dict[str, Any] | None  # risklist.json, as standing.read gives it
    changes: dict[str, Any]  # changes.json, a stored JSON blob ({} when there is none)
    problems: list[str]
    store: Path


def read_ranking(config: Config) -> Ranking:
    """The store's summary (its counts), risklist.json and changes.json, no problems judged yet; ApiError 503 when the store
    cannot be read."""
    store = config.model_output(layout.RISK_STORE)
    try:
        with riskstore.opened(store) as con:
            summary = riskstore.summary(con)
    except riskstore.StoreError as exc:
        raise ApiError(503, str(exc)) from None
    try:
        changes = json.loads(config.model_output(layout.CHANGES).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        changes = {}
    return Ranking(summary, standing.read(config), changes, [], store)


def current_ranking(svc: Service, deployment: Deployment | None) -> Ranking:
    """The ranking every view reads (shared by /risk, /metrics and the page), its small files read again only when one
    changes; nothing is ranked on request. ApiError 503 when no list has been ranked yet or its store cannot be read."""
    out = svc.config.model_output
    if not out(layout.RISK_LIST).is_file() and not out(layout.RISK_STORE).is_file():
        raise ApiError(503, f"no {layout.RISK_LIST} yet: the pipeline (or reporting.py) ranks the clients after each deployment")
    paths = (out(layout.RISK_STORE), out(layout.RISK_META), out(layout.CHANGES))
    read = svc.cache.get("risk", paths, lambda: read_ranking(svc.config))
    return replace(read, problems=standing.problems(svc.config, read.meta, deployment))


def top_clients(ranking: Ranking, count: int) -> list[dict[str, Any]]:
    """The `count` clients ranked first, as risklist.csv has them (an unknown value None; the columns are the config's)."""
    try:
        with riskstore.opened(ranking.store) as con:
            return riskstore.top(con, count)
    except riskstore.StoreError as exc:
        raise ApiError(503, str(exc)) from None


# ---- the pipeline's state -------------------------------------------------------------------


class LastRun(TypedDict):
    finished_at: str
    outcome: str


class PipelineHealth(TypedDict):
    stale: bool
    last_finished_run: LastRun | None


def pipeline_health(config: Config) -> PipelineHealth:
    """The newest finished full-process run and whether the pipeline is stale (none for stale_after_minutes); one short query."""
    try:
        finished = history.last_finished_run(config.history_db)
    except Exception:  # a damaged history is the page's to report; /health answers for the model
        finished = None
    last: LastRun | None = {"finished_at": finished["finished_at"], "outcome": finished["outcome"]} if finished else None
    stale = alerts.is_stale(last["finished_at"] if last else None, datetime.now(UTC), config.stale_after_minutes)
    return {"stale": stale, "last_finished_run": last}
