"""The page for client managers (GET /): who to call first, and whether the model can be trusted.

A blueprint of the API's Flask app (create_app registers it), rendered on the
server from templates/ with plain CSS from static/; no outside resource, so it
works on machines without internet. It only reads what the pipeline wrote:
production (drs.production), the run history (drs.history), and in
output_model_path risklist.csv, diagnostics.json and the PNGs of reporting.py.
It never writes, never loads the model, and imports nothing heavy.

With nothing deployed it shows a "no model deployed" state, not an error; a
file that cannot be read is named in its section while the rest still shows.
Errors of the page's own routes are rendered as HTML, not as the API's JSON
(the static files' are the API's, see `assets`).

Settings (optional, in config.json): `max_model_age_days` (30; an older model
raises a warning) and `history_days` (7; the runs listed under History).
"""
from __future__ import annotations

import csv
import logging
import math
import struct
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Sequence

from flask import Blueprint, Response, abort, current_app, render_template, request, send_file
from werkzeug.exceptions import HTTPException

from drs import formatting, history, production, risk
from drs.config import Config, ConfigError
from drs.production import DeploymentError
from drs.schema import DataError, Schema

log = logging.getLogger("webpage")
PAGE_SIZE = 25
RUNS_READ = 2000  # newest runs read from the history (cron every 10 minutes: about two weeks)
RUNS_SHOWN = 50
IMAGES = ("confusionmatrix.png", "trends.png", "riskdistribution.png")
RISK_LIST = "risklist.csv"
DIAGNOSTICS = "diagnostics.json"
FAILED = "failed"
DEFAULT_MAX_MODEL_AGE_DAYS = 30.0
DEFAULT_HISTORY_DAYS = 7.0
FEATURE_LABELS = {"lastmonth_activity": "Activity last month", "lastyear_activity": "Activity last year",
                  "number_of_employees": "Employees"}

page = Blueprint("page", __name__, template_folder="templates")
# The CSS and script, on a blueprint of their own so that the page's HTML error
# pages do not cover them: a bad /static/... path (../config.json) is the API's JSON 404.
assets = Blueprint("page_assets", __name__, static_folder="static", static_url_path="/static")


# ---- settings ---------------------------------------------------------------------------

@dataclass(frozen=True)
class PageSettings:
    max_model_age_days: float = DEFAULT_MAX_MODEL_AGE_DAYS
    history_days: float = DEFAULT_HISTORY_DAYS


def page_settings(config: Config) -> PageSettings:
    """The page's settings from config.json; ConfigError names a bad one."""
    values = {}
    for key, default in (("max_model_age_days", DEFAULT_MAX_MODEL_AGE_DAYS), ("history_days", DEFAULT_HISTORY_DAYS)):
        value = config.raw.get(key, default)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
            raise ConfigError(f"config file {config.config_file}: key '{key}' must be a positive number of days, got {value!r}")
        values[key] = float(value)
    return PageSettings(**values)


@page.record_once
def _check_settings(state: Any) -> None:
    """Refuse a bad setting when the app is built (gunicorn does not start), not on the first visit."""
    page_settings(state.app.extensions["drs"].config)


# ---- reading what the pipeline wrote (pure apart from the reads) --------------------------

def _cell_number(value: str) -> int | float | None:
    try:
        number = float(value)
    except ValueError:
        return None
    return int(number) if number.is_integer() else number


def read_risk_list(path: Path, schema: Schema) -> list[dict[str, Any]]:
    """risklist.csv as reporting.py wrote it; DataError when its columns are not the expected ones."""
    expected = risk.risk_columns(schema)
    with open(path, newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        if reader.fieldnames != expected:
            raise DataError(path.name, f"has columns {reader.fieldnames}, expected {expected}")
        rows = []
        for line, row in enumerate(reader, start=2):
            probability = _cell_number(row[risk.PROBABILITY])
            if probability is None:
                raise DataError(path.name, f"line {line}: exit_probability is not a number ({row[risk.PROBABILITY]!r})")
            rows.append({
                "rank": row[risk.RANK], "corporation": row[schema.id_column], "probability": float(probability),
                "features": [_cell_number(row[f]) for f in schema.features],
            })
    return rows


def search(rows: Sequence[dict[str, Any]], query: str) -> list[dict[str, Any]]:
    """Rows whose corporation id contains `query` (any case), exact matches first, each keeping its rank."""
    needle = query.strip().casefold()
    if not needle:
        return list(rows)
    found = [r for r in rows if needle in r["corporation"].casefold()]
    return sorted(found, key=lambda r: r["corporation"].casefold() != needle)  # stable: rank order otherwise


def parse_page(raw: str | None) -> int:
    """A page number from the query string; anything that is not a whole number >= 1 is page 1."""
    text = (raw or "").strip()
    return int(text) if text.isascii() and text.isdigit() and int(text) >= 1 else 1


@dataclass(frozen=True)
class Paged:
    rows: list[dict[str, Any]]
    page: int
    pages: int
    first: int  # 1-based position of the first row shown (0 when none)
    last: int
    total: int


def paginate(rows: Sequence[dict[str, Any]], page_number: int, size: int = PAGE_SIZE) -> Paged:
    """One page of `rows`; a page past the end shows the last one."""
    pages = max(1, math.ceil(len(rows) / size))
    page_number = min(max(page_number, 1), pages)
    start = (page_number - 1) * size
    shown = list(rows[start:start + size])
    return Paged(shown, page_number, pages, start + 1 if shown else 0, start + len(shown), len(rows))


def png_size(path: Path) -> tuple[int, int] | None:
    """Width and height from a PNG's header (so the page reserves the image's space: no layout shift)."""
    try:
        with open(path, "rb") as handle:
            head = handle.read(24)
    except OSError:
        return None
    if len(head) < 24 or head[:8] != b"\x89PNG\r\n\x1a\n" or head[12:16] != b"IHDR":
        return None
    return struct.unpack(">II", head[16:24])


def parse_time(value: Any) -> datetime | None:
    try:
        moment = datetime.fromisoformat(str(value))
    except (TypeError, ValueError):
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def ago(value: Any, now: datetime) -> str:
    """'3 days ago', '5 minutes ago'; '' for no time."""
    moment = parse_time(value) if not isinstance(value, datetime) else value
    if moment is None:
        return ""
    seconds = (now - moment).total_seconds()
    if seconds < -60:  # a little clock skew between machines is "just now"
        return "in the future"
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60)):
        if seconds >= size:
            count = int(seconds // size)
            return f"{count} {unit}{'s' if count != 1 else ''} ago"
    return "just now"


def last_real_run(runs: Sequence[dict[str, Any]]) -> dict[str, Any] | None:
    """The newest run that did something (a run skipped because another held the lock says nothing)."""
    for run in reversed(runs):
        if not str(run.get("outcome", "")).startswith("skipped"):
            return run
    return None


def drift_words(check: dict[str, Any]) -> str:
    """The score-drift decision in the words fullprocess logs, or what is known of it."""
    from drs.drift import describe_score_drift

    try:
        return describe_score_drift(check)
    except (KeyError, TypeError, ValueError):
        threshold = formatting.threshold_of(check)
        return f"F1 on the new data {formatting.score(check.get('new_data_f1'))} vs threshold {formatting.score(threshold)}"


def warnings(
    meta: dict[str, Any] | None, last_run: dict[str, Any] | None, drift: dict[str, Any] | None,
    now: datetime, max_age_days: float,
) -> list[dict[str, str]]:
    """The banners: last run failed, model too old, data drift found, drift found but nothing deployed; pure."""
    found = []
    if last_run and last_run.get("outcome") == FAILED:
        found.append({"title": "The last run failed",
                      "text": f"{formatting.when(last_run.get('started_at'))}: {last_run.get('message') or 'no message'}"})
    if meta:
        trained = parse_time(meta.get("trained_at") or meta.get("deployed_at"))
        if trained is not None and now - trained > timedelta(days=max_age_days):
            found.append({"title": "The model is old",
                          "text": f"{meta.get('label', 'the deployed model')} was trained {ago(trained, now)} "
                                  f"({formatting.when(meta.get('trained_at') or meta.get('deployed_at'))}), "
                                  f"more than the {formatting.number(max_age_days)} days allowed (max_model_age_days)."})
    if drift:
        data = drift.get("data_drift") if isinstance(drift.get("data_drift"), dict) else {}
        drifted = data.get("drifted_features") or []
        if drifted:
            found.append({"title": "Data drift found",
                          "text": f"in {', '.join(map(str, drifted))} ({data.get('rule') or 'drift rule not recorded'}), "
                                  f"run of {formatting.when(drift.get('started_at'))}."})
        check = drift.get("check") or {}
        gate = drift.get("gate") if isinstance(drift.get("gate"), dict) else {}
        if check.get("drift") and gate and not gate.get("promote", True):
            found.append({"title": "Drift found, retrained model not promoted",
                          "text": f"{drift_words(check)}; {gate.get('reason') or 'the promotion gate refused it'}."})
    return found


def recent_runs(runs: Sequence[dict[str, Any]], now: datetime, days: float) -> list[dict[str, Any]]:
    """Runs that started within the last `days`, newest first."""
    since = now - timedelta(days=days)
    return [r for r in reversed(runs) if (t := parse_time(r.get("started_at"))) is not None and t >= since]


def run_files(run: dict[str, Any]) -> list[str]:
    details = run.get("details") or {}
    return list(details.get("new_files") or (details.get("new_data") or {}).get("files") or [])


def outcome_counts(runs: Sequence[dict[str, Any]]) -> list[tuple[str, int]]:
    counts: dict[str, int] = {}
    for run in runs:
        counts[str(run.get("outcome"))] = counts.get(str(run.get("outcome")), 0) + 1
    return sorted(counts.items(), key=lambda kv: -kv[1])


# ---- the view ---------------------------------------------------------------------------

@dataclass
class Section:
    """What one part of the page has, or why it has nothing."""

    data: Any = None
    problem: str | None = None
    notes: list[str] = field(default_factory=list)


def _service() -> Any:
    return current_app.extensions["drs"]


def _read_json(path: Path) -> Any:
    import json

    return json.loads(path.read_text(encoding="utf-8"))


def _risk_section(svc: Any, meta: dict[str, Any] | None) -> Section:
    path = svc.config.output_model_folder / RISK_LIST
    if not path.exists():
        return Section(problem=f"No risk list yet: reporting.py writes {RISK_LIST} after each deployment.")
    try:
        rows = svc.cache.get("page:risklist", (path,), lambda: read_risk_list(path, svc.schema))
    except (OSError, UnicodeDecodeError, DataError, csv.Error) as exc:
        return Section(problem=f"{RISK_LIST} cannot be read: {exc}")
    written = datetime.fromtimestamp(path.stat().st_mtime, timezone.utc)
    above = sum(1 for r in rows if r["probability"] > risk.THRESHOLD)
    section = Section(data={"rows": rows, "above": above, "written_at": written.isoformat(timespec="seconds")})
    deployed = parse_time((meta or {}).get("deployed_at"))
    if deployed is not None and written < deployed - timedelta(seconds=1):
        section.notes.append(f"This list was ranked before {meta.get('label')} was deployed; run reporting.py to rank with it.")
    return section


def _image(folder: Path, name: str) -> dict[str, Any] | None:
    path = folder / name
    size = png_size(path)
    if size is None:
        return None
    return {"name": name, "width": size[0], "height": size[1], "version": path.stat().st_mtime_ns}


@page.get("/")
def index() -> str:
    svc = _service()
    config: Config = svc.config
    settings = page_settings(config)
    now = datetime.now(timezone.utc)
    model = Section()
    try:
        deployment = production.current(config.prod_deployment_folder)
    except DeploymentError as exc:
        deployment, model.problem = None, f"the deployed version cannot be read: {exc}"
    meta = {**deployment.meta, "label": deployment.label} if deployment else None
    model.data = meta

    runs = Section(data=[])
    try:
        db = config.history_db  # re-read when the file (or a write-ahead log, should one be turned on) changes
        runs.data = svc.cache.get("page:runs", (db, db.with_name(db.name + "-wal")), lambda: history.runs(db, limit=RUNS_READ))
    except Exception as exc:  # a damaged SQLite file raises sqlite3.DatabaseError and others
        runs.problem = f"the run history {config.history_db.name} cannot be read: {type(exc).__name__}: {exc}"
    from reporting import deployment_rows, drift_runs

    drifts = drift_runs(runs.data)
    drift = drifts[-1] if drifts else None
    last_run = last_real_run(runs.data)
    recent = recent_runs(runs.data, now, settings.history_days)

    diagnostics = Section()
    diagnostics_path = config.output_model_folder / DIAGNOSTICS
    if diagnostics_path.exists():
        try:
            diagnostics.data = _read_json(diagnostics_path)
        except (OSError, ValueError) as exc:
            diagnostics.problem = f"{DIAGNOSTICS} cannot be read: {exc}"
    else:
        diagnostics.problem = f"No {DIAGNOSTICS} yet: diagnostics.py writes it after each deployment."

    clients = _risk_section(svc, meta) if meta else Section()
    query = request.args.get("q", "")[:100]
    paged = None
    if clients.data:
        found = search(clients.data["rows"], query)
        paged = paginate(found, parse_page(request.args.get("page")))

    folder = config.output_model_folder
    return render_template(
        "page.html",
        now=now, settings=settings, model=model, meta=meta, runs=runs, last_run=last_run, drift=drift,
        warnings=warnings(meta, last_run, drift, now, settings.max_model_age_days) if meta or last_run else [],
        recent=recent[:RUNS_SHOWN], recent_total=len(recent), recent_counts=outcome_counts(recent),
        deployments=list(reversed(deployment_rows(config.prod_deployment_folder))),
        clients=clients, paged=paged, query=query, features=[FEATURE_LABELS.get(f, f.replace("_", " ").capitalize()) for f in svc.schema.features],
        diagnostics=diagnostics, images={name: _image(folder, name) for name in IMAGES}, run_files=run_files,
        drift_words=drift_words, ago=lambda value: ago(value, now), fmt=formatting,
    )


@page.get("/risklist.csv")
def risk_list_csv() -> Response:
    """The whole ranked list, exactly as reporting.py wrote it."""
    path = _service().config.output_model_folder / RISK_LIST
    if not path.is_file():
        abort(404, f"no {RISK_LIST} yet: reporting.py writes it after each deployment")
    return send_file(path, mimetype="text/csv", as_attachment=True, download_name=RISK_LIST, max_age=0)


@page.get("/images/<name>")
def image(name: str) -> Response:
    """One of reporting.py's plots; only the known names, from output_model_path."""
    if name not in IMAGES:
        abort(404, f"no image {name}")
    path = _service().config.output_model_folder / name
    if not path.is_file():
        abort(404, f"no {name} yet: reporting.py writes it after each deployment")
    return send_file(path, mimetype="image/png", max_age=0)


@page.app_template_filter("when")
def _when(value: Any) -> str:
    return formatting.when(value)


@page.app_template_filter("score")
def _score(value: Any) -> str:
    return formatting.score(value)


@page.app_template_filter("number")
def _number(value: Any) -> str:
    return formatting.number(value)


@page.app_template_filter("days")
def _days(value: float) -> str:
    return f"{value:g} day" + ("" if value == 1 else "s")


@page.app_template_filter("percent")
def _percent(value: Any, decimals: int = 1) -> str:
    return "-" if value is None else f"{float(value) * 100:.{decimals}f}%"


@page.errorhandler(HTTPException)
def _http_error(exc: HTTPException) -> tuple[str, int]:
    return render_template("error.html", status=exc.code or 500, message=exc.description or exc.name), exc.code or 500


@page.errorhandler(Exception)
def _unexpected(exc: Exception) -> tuple[str, int]:
    current_app.logger.exception("unexpected error on %s %s", request.method, request.path)
    return render_template("error.html", status=500, message="Something went wrong on the server; its log has the details."), 500
