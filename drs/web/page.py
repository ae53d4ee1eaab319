"""The page for client managers (GET /): who to call first, and whether the model can be trusted.

A blueprint of the web app (create_app registers it), rendered on the server
from templates/ with plain CSS from static/ (both beside this file); no outside
resource, so it works on machines without internet. It only reads what the
pipeline wrote: production (drs.production.versions), the run history (drs.history.runs), and
in output_model_path the risk list, diagnostics and plots (drs.core.layout names).
It never writes. It loads models only for a client's own view (drs/web/clients.py, to score that client
with each version) and for a version deployed before scoring recorded its reliability curve (once,
to compute it; drs.model.calibration). Banners and status cards speak to a client manager
(drs/web/words.py), the technical line one click away in a <details> element.

With nothing deployed it shows a "no model deployed" state, not an error; a
file that cannot be read is named in its section while the rest still shows.
Errors of the page's own routes are rendered as HTML, not as the API's JSON
(the static files' are the API's, see `assets`). Its settings,
`max_model_age_days` and `history_days`, are checked when the config loads.
"""

from __future__ import annotations

import json
import struct
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from flask import Blueprint, Response, abort, current_app, render_template, request, send_file, url_for
from werkzeug.exceptions import HTTPException

from drs.alerts import rules as alerts
from drs.core import formatting, layout
from drs.core.errors import DataError, DeploymentError
from drs.core.settings import Config
from drs.data.schema import Schema, read_polars_checked
from drs.history import runs as history
from drs.history.record import Outcome
from drs.model import calibration, estimate, explain, labelsample
from drs.model.drift import describe_noise, describe_score_drift
from drs.production import versions as production
from drs.production.versions import Deployment
from drs.reports import movement, risk, riskstore, standing
from drs.web import clients as client_page
from drs.web import reliability as reliability_chart
from drs.web import words as plainwords
from drs.web.api import Service, service

PAGE_SIZE = 25
RUNS_READ = 2000  # newest runs read from the history (cron every 10 minutes: about two weeks)
RUNS_SHOWN = 50

page = Blueprint("page", __name__, template_folder="templates")
# The CSS and script, on a blueprint of their own so that the page's HTML error
# pages do not cover them: a bad /static/... path (../config.json) is the API's JSON 404.
assets = Blueprint("page_assets", __name__, static_folder="static", static_url_path="/static")


# ---- reading what the pipeline wrote (pure apart from the reads) --------------------------


def shown_row(record: dict[str, Any], schema: Schema) -> dict[str, Any]:
    """A row of the ranking as the page and the client view show it: rank, corporation, probability, the features,
    the top reason and the contributions in feature order, the movement (None: not ranked before); pure."""
    return {
        "rank": record[risk.RANK],
        "corporation": record[schema.id_column],
        "probability": float(record[risk.PROBABILITY]),
        "features": [record[f] for f in schema.features],
        "reason": record[explain.TOP_REASON] or "",
        "contributions": [record[explain.contribution_column(f)] for f in schema.features],
        **{name: record.get(name) for name in movement.COLUMNS},
    }


def parse_page(raw: str | None) -> int:
    """A page number from the query string; anything that is not a whole number >= 1 is page 1."""
    text = (raw or "").strip()
    return int(text) if text.isascii() and text.isdigit() and int(text) >= 1 else 1


def png_size(path: Path) -> tuple[int, int] | None:
    """Width and height from a PNG's header (so the page reserves the image's space: no layout shift)."""
    try:
        with open(path, "rb") as handle:
            head = handle.read(24)
    except OSError:
        return None
    if len(head) < 24 or head[:8] != b"\x89PNG\r\n\x1a\n" or head[12:16] != b"IHDR":
        return None
    width, height = struct.unpack(">II", head[16:24])
    return width, height


def parse_time(value: Any) -> datetime | None:
    try:
        moment = datetime.fromisoformat(str(value))
    except (TypeError, ValueError):
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


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
    for run in runs[::-1]:
        if run.get("outcome") != Outcome.SKIPPED_LOCKED:
            return run
    return None


def drift_words(check: dict[str, Any]) -> str:
    """The score-drift decision in the words fullprocess logs, or what is known of it."""
    try:
        return describe_score_drift(check)
    except (KeyError, TypeError, ValueError):
        threshold = formatting.threshold_of(check)
        return f"F1 on the new data {formatting.score(check.get('new_data_f1'))} vs threshold {formatting.score(threshold)}"


def estimate_words(check: dict[str, Any]) -> str | None:
    """The label-free estimate recorded with a drift check, beside the realized F1 once measured; None when none was made."""
    expected = check.get("estimate")
    if not isinstance(expected, dict):
        return None
    realized = check.get("new_data_f1") if check.get("measured") is not False else None
    try:
        against = check.get("against_estimate")
        return estimate.describe(expected, realized, against if isinstance(against, dict) and realized is not None else None)
    except (KeyError, TypeError, ValueError):
        return None


def last_finished(runs: Sequence[dict[str, Any]]) -> dict[str, Any] | None:
    """The newest full-process run that got the lock (what staleness is measured from), or None."""
    for run in runs[::-1]:
        if run.get("kind", "fullprocess") == "fullprocess" and run.get("outcome") != Outcome.SKIPPED_LOCKED:
            return run
    return None


def last_drift_run(runs: Sequence[dict[str, Any]]) -> dict[str, Any] | None:
    """The newest run that made a score-drift decision (its outcome says what followed), or None."""
    for run in runs[::-1]:
        if isinstance((run.get("details") or {}).get("drift"), dict):
            return run
    return None


def stale_banner(finished: dict[str, Any] | None, now: datetime, stale_after_minutes: float) -> dict[str, str] | None:
    """The banner of a pipeline with no finished run for longer than stale_after_minutes; pure."""
    if finished is None or not alerts.is_stale(finished.get("finished_at"), now, stale_after_minutes):
        return None
    return plainwords.stale_words(finished, now, stale_after_minutes)


def banners(
    meta: dict[str, Any] | None,
    runs: Sequence[dict[str, Any]],
    now: datetime,
    stale_after_minutes: float,
    max_age_days: float,
) -> list[dict[str, str]]:
    """The banners, in a client manager's words with the technical line for the model's owners; pure.

    Updates stopped (stale); what the newest run that did something did (drs/web/words.py's words per
    outcome); the model too old; the newest client data unlike the training data. Each has a `level`:
    "warning" (red, role="alert"), "notice" (amber) or "info" (blue)."""
    found = [b for b in [stale_banner(last_finished(runs), now, stale_after_minutes)] if b]
    told = plainwords.telling_run(runs)
    if told is not None:
        newest = last_real_run(runs)
        quiet_after = newest if newest is not None and newest is not told and newest.get("outcome") == Outcome.NO_NEW_DATA else None
        found.append(plainwords.run_banner(told, (meta or {}).get("label"), now, quiet_after, drift_words))
    drift_run = last_drift_run(runs)
    in_use = (meta or {}).get("version")
    if (
        drift_run is not None
        and drift_run is not told
        and drift_run.get("outcome") == Outcome.NOT_PROMOTED
        and drift_run.get("deployed_version") == in_use  # about the model in use, not one since replaced or rolled back
    ):
        found.append(plainwords.run_banner(drift_run, (meta or {}).get("label"), now, None, drift_words))  # still what holds
    if meta:
        trained = parse_time(meta.get("trained_at") or meta.get("deployed_at"))
        if trained is not None and now - trained > timedelta(days=max_age_days):
            found.append(
                plainwords.old_model_words(
                    str(meta.get("label", "the deployed model")),
                    trained,
                    meta.get("trained_at") or meta.get("deployed_at"),
                    now,
                    max_age_days,
                )
            )
    data = ((drift_run or {}).get("details") or {}).get("data_drift")
    drifted = (data.get("drifted_features") or []) if isinstance(data, dict) else []
    if drift_run is not None and drifted:
        found.append(plainwords.data_drift_words(drifted, drift_run))
    return found


def status_cards(runs: Sequence[dict[str, Any]], now: datetime) -> dict[str, Any]:
    """The "last update" and "model on new data" cards: a word or two each, when, and a class for its colour."""
    told = plainwords.telling_run(runs)
    drift_run = last_drift_run(runs)
    cards: dict[str, Any] = {"last_update": None, "new_data_check": None}  # not "update": Jinja would find dict.update
    if told is not None:
        words = plainwords.words_for(told)
        cards["last_update"] = {"word": words.short, "level": words.level, "when": ago(told.get("started_at"), now)}
    if drift_run is not None:
        word, level = plainwords.check_card(drift_run)
        version = ((drift_run.get("details") or {}).get("drift") or {}).get("deployed_version")  # the model it checked
        cards["new_data_check"] = {"word": word, "level": level, "when": ago(drift_run.get("started_at"), now), "version": version}
    return cards


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


def _risk_section(svc: Service, deployment: Deployment | None) -> Section:
    """The current ranking (drs/reports/standing.py): its store and counts, the model and data it names, and why it is stale
    if it is. Rows are read a page at a time (drs/reports/riskstore.py), never the whole list."""
    out = svc.config.model_output
    path, store = out(layout.RISK_LIST), out(layout.RISK_STORE)
    if not path.exists() and not store.exists():
        return Section(problem=f"No risk list yet: reporting.py writes {layout.RISK_LIST} after each deployment.")

    def counts() -> dict[str, Any]:
        with riskstore.opened(store) as con:
            return riskstore.summary(con)

    try:
        summary = svc.cache.get("page:summary", (store,), counts)
    except riskstore.StoreError as exc:
        return Section(problem=str(exc))
    meta = standing.read(svc.config)
    ranked_at = (meta or {}).get("ranked_at") or datetime.fromtimestamp(store.stat().st_mtime, UTC).isoformat(timespec="seconds")
    data = {
        "total": summary["active_clients"],
        "above": summary["above_half"],
        "first": summary.get("first"),
        "written_at": ranked_at,
        "named": standing.words(meta),
        "meta": meta,
        "store": store,
    }
    return Section(data=data, notes=standing.problems(svc.config, meta, deployment))


def _page_of(svc: Service, clients: Section, query: str, number: int) -> riskstore.Page | None:
    """The page of the ranking (or of a search) the request asks for; None, with the section's problem, when it cannot be read."""
    try:
        with riskstore.opened(clients.data["store"]) as con:
            found = riskstore.page(con, query, number, PAGE_SIZE, clients.data["total"])
    except riskstore.StoreError as exc:
        clients.problem, clients.data = str(exc), None
        return None
    return replace(found, rows=[shown_row(r, svc.schema) for r in found.rows])


def _changes_section(svc: Service) -> Section:
    """What changed since the previous ranking, as reporting wrote it beside the risk list (drs/reports/movement.py)."""
    path = svc.config.model_output(layout.CHANGES)
    if not path.exists():
        return Section(problem=f"Nothing to compare yet: reporting.py writes {layout.CHANGES} with the risk list.")
    try:
        return Section(data=svc.cache.get("page:changes", (path,), lambda: json.loads(path.read_text(encoding="utf-8"))))
    except (OSError, ValueError) as exc:
        return Section(problem=f"{layout.CHANGES} cannot be read: {exc}")


def _diagnostics_section(config: Config) -> Section:
    path = config.model_output(layout.DIAGNOSTICS)
    if not path.exists():
        return Section(problem=f"No {layout.DIAGNOSTICS} yet: diagnostics.py writes it after each deployment.")
    try:
        return Section(data=json.loads(path.read_text(encoding="utf-8")))
    except (OSError, ValueError) as exc:
        return Section(problem=f"{layout.DIAGNOSTICS} cannot be read: {exc}")


def recorded_calibration(meta: dict[str, Any]) -> dict[str, Any] | None:
    """The reliability table scoring recorded in latestscore.json and deployment copied, if it did."""
    found = (meta.get("score") or {}).get("calibration")
    return found if isinstance(found, dict) and found.get("deciles") else None


def _calibration_section(svc: Service, deployment: Deployment) -> Section:
    """The deployed model's reliability on the test data: as recorded at deployment, or, for a version deployed
    before scoring recorded it, computed once from the deployed model (kept until the model or test file changes)."""
    recorded = recorded_calibration(deployment.meta)
    if recorded is not None:
        return Section(data={**recorded, "test_data": Path(str(deployment.meta["score"].get("test_data") or "")).name or "the test data"})
    test = svc.config.test_data_csv

    def compute() -> dict[str, Any]:
        return calibration.of_model(production.load_model(deployment), read_polars_checked(test, svc.schema, source=test.name), svc.schema)

    try:
        data = svc.cache.get("page:calibration", (deployment.model_path, test), compute, extra=deployment.version)
    except (OSError, DataError, DeploymentError, ValueError) as exc:
        return Section(problem=f"The reliability curve cannot be computed: {exc}")
    note = f"{deployment.label} was deployed before scoring recorded this curve: computed now from its model on {test.name}."
    return Section(data={**data, "test_data": test.name}, notes=[note])


def _image(config: Config, name: str) -> dict[str, Any] | None:
    path = config.model_output(name)
    size = png_size(path)
    if size is None:
        return None
    return {"name": name, "width": size[0], "height": size[1], "version": path.stat().st_mtime_ns}


@page.get("/")
def index() -> str:
    svc = service()
    config = svc.config
    now = datetime.now(UTC)
    model = Section()
    try:
        deployment = production.current(config.prod_deployment_folder)
    except DeploymentError as exc:
        deployment, model.problem = None, f"the deployed version cannot be read: {exc}"
    meta = {**deployment.meta, "label": deployment.label} if deployment else None
    model.data = meta
    reliability = _calibration_section(svc, deployment) if deployment else Section()

    runs = Section(data=[])
    try:
        db = config.history_db  # re-read when the file (or a write-ahead log, should one be turned on) changes
        runs.data = svc.cache.get("page:runs", (db, db.with_name(db.name + "-wal")), lambda: history.runs(db, limit=RUNS_READ))
    except Exception as exc:  # a damaged SQLite file raises sqlite3.DatabaseError and others
        runs.problem = f"the run history {config.history_db.name} cannot be read: {type(exc).__name__}: {exc}"
    drifts = history.drift_decisions(runs.data)
    drift = drifts[-1] if drifts else None
    last_run = last_real_run(runs.data)
    recent = recent_runs(runs.data, now, config.history_days)

    clients = _risk_section(svc, deployment) if meta else Section()
    query = request.args.get("q", "")[:100]
    paged = _page_of(svc, clients, query, parse_page(request.args.get("page"))) if clients.data else None

    return render_template(
        "page.html",
        now=now,
        settings=config,
        model=model,
        meta=meta,
        runs=runs,
        last_run=last_run,
        drift=drift,
        banners=banners(meta, runs.data, now, config.stale_after_minutes, config.max_model_age_days),
        cards=status_cards(runs.data, now),
        recent=recent[:RUNS_SHOWN],
        recent_total=len(recent),
        recent_counts=outcome_counts(recent),
        deployments=list(reversed(production.deployment_rows(config.prod_deployment_folder))),
        clients=clients,
        paged=paged,
        query=query,
        features=[explain.feature_label(f) for f in svc.schema.features],
        diagnostics=_diagnostics_section(config),
        changes=_changes_section(svc) if meta else Section(),
        since_words=movement.since_words,
        reliability=reliability,
        reliability_svg=reliability_chart.svg,
        calibration=calibration,
        images={name: _image(config, name) for name in layout.IMAGES},
        run_files=run_files,
        drift_words=drift_words,
        estimate_words=estimate_words,
        labelled_sample_words=labelsample.recorded_words,
        describe_noise=describe_noise,
        ago=lambda value: ago(value, now),
        fmt=formatting,
    )


@page.app_template_global("client_url")
def client_url(corporation: str) -> str:
    """The link to a client's own view: /clients/<id>, the id URL-quoted (`?`, `#`, `%`, spaces, any script); an id the
    path cannot carry as it is, one with a `/` (which a proxy may decode or refuse as %2F) or `.` or `..` (which
    browsers resolve away), as /clients/?id=<id>. Every id the list shows opens its own view (docs/reports.md)."""
    if "/" in corporation or corporation in (".", ".."):
        return url_for("page.client", id=corporation)
    return url_for("page.client", corporation=corporation)


@page.get("/clients/", defaults={"corporation": None})
@page.get("/clients/<path:corporation>")
def client(corporation: str | None) -> str:
    """One client's own view (drs/web/clients.py): why it is at risk, its rows over time, each version's probability.

    The id is the rest of the path (`/clients/a/b` and `/clients/a%2Fb` both name `a/b`) or `?id=` (`client_url`).
    Everything but the versions' probabilities comes from the ranking's store by the corporation (an index lookup):
    an unknown corporation is a 404 without reading any source file."""
    if corporation is None:
        corporation = request.args.get("id", "")
        if not corporation:
            abort(404, "no client named: open /clients/<id>, or /clients/?id=<id>")
    svc = service()
    try:
        deployed = production.current(svc.config.prod_deployment_folder)
    except DeploymentError:
        deployed = None
    section = _risk_section(svc, deployed)
    ranked_by = ((section.data or {}).get("meta") or {}).get("model_version")
    models = current_app.extensions.setdefault("drs.version_models", client_page.VersionModels())
    found: tuple[dict[str, Any] | None, list[dict[str, Any]]] = (None, [])
    if section.data:
        try:
            with riskstore.opened(section.data["store"]) as con:
                record = riskstore.client(con, corporation, svc.schema.id_column)
            found = (shown_row(record, svc.schema) if record else None, [])
            with riskstore.opened(svc.config.model_output(layout.CLIENT_ROWS)) as con:
                found = (found[0], riskstore.client_rows(con, corporation, svc.schema.features, svc.schema.target))
        except riskstore.StoreError as exc:  # the rest of the view still shows (a ranked client without its rows)
            section.problem = str(exc)
    view = client_page.client_view(svc.config, svc.schema, corporation, *found, models, ranked_by)
    if view is None:
        abort(404, f"no client {corporation!r} in the risk list or the ingested files")
    return render_template(
        "client.html",
        **view,
        problem=section.problem,
        named=(section.data or {}).get("named"),
        stale=section.notes,
        ago=lambda value: ago(value, datetime.now(UTC)),
    )


@page.get("/risklist.csv")
def risk_list_csv() -> Response:
    """The whole ranked list, exactly as reporting wrote it, its X-DRS-* headers naming the model and data (drs/reports/standing.py)."""
    path = service().config.model_output(layout.RISK_LIST)
    if not path.is_file():
        abort(404, f"no {layout.RISK_LIST} yet: reporting.py writes it after each deployment")
    response = send_file(path, mimetype="text/csv", as_attachment=True, download_name=layout.RISK_LIST, max_age=0)
    config = service().config
    meta = standing.read(config)
    try:
        deployed: Deployment | None = production.current(config.prod_deployment_folder)
    except DeploymentError:
        deployed = None
    # which model ranked it, from which data, and whether that is still the deployed model's ranking of the current data
    response.headers.update(standing.headers(meta, standing.problems(config, meta, deployed)))
    return response


@page.get("/images/<name>")
def image(name: str) -> Response:
    """One of reporting's plots; only the known names, from output_model_path."""
    if name not in layout.IMAGES:
        abort(404, f"no image {name}")
    path = service().config.model_output(name)
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
