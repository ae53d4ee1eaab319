"""The page for client managers (GET /): who to call first, and whether the model can be trusted.

A blueprint of the web app (create_app registers it), rendered on the server
from templates/ with plain CSS from static/ (both beside this file); no outside
resource, so it works on machines without internet. It only reads what the
pipeline wrote: production (drs.production.versions), the run history (drs.history.runs), and
in output_model_path the risk list, diagnostics and plots (drs.core.layout names).
It never writes. It loads models only for a client's own view (drs/web/clients.py, to score that client
with each version) and for a version deployed before scoring recorded its reliability curve (once,
to compute it; drs.model.calibration). Banners and status cards speak to a client manager
(drs/web/words.py), the technical line one click away in a <details> element; the shapes the
templates receive are drs/web/pageview.py's. See docs/reports.md (the page for client managers).

With nothing deployed it shows a "no model deployed" state, not an error; a
file that cannot be read is named in its section while the rest still shows.
Errors of the page's own routes are rendered as HTML, not as the API's JSON
(the static files' are the API's, see `assets`). Its settings,
`max_model_age_days` and `history_days`, are checked when the config loads.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from flask import Blueprint, Response, abort, current_app, render_template, request, send_file, url_for
from werkzeug.exceptions import HTTPException

from drs.core import formatting, layout
from drs.core.errors import DataError, DeploymentError
from drs.core.settings import Config
from drs.data.readers import read_polars_checked
from drs.history import runs as history
from drs.model import calibration, explain, labelsample
from drs.model.drift import describe_noise
from drs.production import versions as production
from drs.production.versions import Deployment
from drs.reports import movement, riskstore, standing
from drs.web import clients as client_page
from drs.web import pageview
from drs.web import reliability as reliability_chart
from drs.web import words as plainwords
from drs.web.pageview import RankingView, Section, ShownPage, ShownRow, shown_row
from drs.web.service import ApiError, Service, current_ranking, service

PAGE_SIZE = 25
RUNS_READ = 2000  # newest runs read from the history (cron every 10 minutes: about two weeks)
RUNS_SHOWN = 50

page = Blueprint("page", __name__, template_folder="templates")
# The CSS and script, on a blueprint of their own so that the page's HTML error
# pages do not cover them: a bad /static/... path (../config.json) is the API's JSON 404.
assets = Blueprint("page_assets", __name__, static_folder="static", static_url_path="/static")


# ---- reading what the pipeline wrote ------------------------------------------------------


def _risk_section(svc: Service, deployment: Deployment | None) -> Section:
    """The current ranking as every view reads it (drs/web/service.py's `current_ranking`): its counts, the model and data
    it names, and why it is stale if it is. Rows are read a page at a time (drs/reports/riskstore.py), never the whole list."""
    out = svc.config.model_output
    if not out(layout.RISK_LIST).exists() and not out(layout.RISK_STORE).exists():
        return Section(problem=f"No risk list yet: reporting.py writes {layout.RISK_LIST} after each deployment.")
    try:
        ranking = current_ranking(svc, deployment)
    except ApiError as exc:  # its store cannot be read
        return Section(problem=exc.message)
    meta, summary = ranking.meta, ranking.summary
    ranked_at = (meta or {}).get("ranked_at") or datetime.fromtimestamp(ranking.store.stat().st_mtime, UTC).isoformat(timespec="seconds")
    data: RankingView = {
        "total": summary["active_clients"],
        "above": summary["above_half"],
        "first": summary.get("first"),
        "written_at": ranked_at,
        "named": standing.words(meta),
        "meta": meta,
        "store": ranking.store,
    }
    return Section(data=data, notes=ranking.problems)


def _page_of(svc: Service, clients: Section, query: str, number: int) -> ShownPage | None:
    """The page of the ranking (or of a search) the request asks for; None, with the section's problem, when it cannot be read."""
    try:
        with riskstore.opened(clients.data["store"]) as con:
            found = riskstore.page(con, query, number, PAGE_SIZE, clients.data["total"])
    except riskstore.StoreError as exc:
        clients.problem, clients.data = str(exc), None
        return None
    return ShownPage.of(found, svc.schema)


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


def _calibration_section(svc: Service, deployment: Deployment) -> Section:
    """The deployed model's reliability on the test data: as recorded at deployment, or, for a version deployed
    before scoring recorded it, computed once from the deployed model (kept until the model or test file changes)."""
    recorded = pageview.recorded_calibration(deployment.meta)
    if recorded is not None:
        return Section(data={**recorded, "test_data": Path(str(deployment.meta["score"].get("test_data") or "")).name or "the test data"})
    test = svc.config.test_data_csv

    try:
        data = svc.cache.get(
            "page:calibration",
            (deployment.model_path, test),
            lambda: calibration.of_model(
                production.load_model(deployment), read_polars_checked(test, svc.schema, source=test.name), svc.schema
            ),
            extra=deployment.version,
        )
    except (OSError, DataError, DeploymentError, ValueError) as exc:
        return Section(problem=f"The reliability curve cannot be computed: {exc}")
    note = f"{deployment.label} was deployed before scoring recorded this curve: computed now from its model on {test.name}."
    return Section(data={**data, "test_data": test.name}, notes=[note])


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
    last_run = plainwords.last_real_run(runs.data)
    recent = pageview.recent_runs(runs.data, now, config.history_days)

    clients = _risk_section(svc, deployment) if meta else Section()
    query = request.args.get("q", "")[:100]
    paged = _page_of(svc, clients, query, pageview.parse_page(request.args.get("page"))) if clients.data else None

    return render_template(
        "page.html",
        now=now,
        settings=config,
        model=model,
        meta=meta,
        runs=runs,
        last_run=last_run,
        drift=drift,
        banners=plainwords.banners(meta, runs.data, now, config.stale_after_minutes, config.max_model_age_days),
        cards=plainwords.status_cards(runs.data, now),
        recent=recent[:RUNS_SHOWN],
        recent_total=len(recent),
        recent_counts=pageview.outcome_counts(recent),
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
        images={name: pageview.image_of(config, name) for name in layout.IMAGES},
        run_files=pageview.run_files,
        drift_words=plainwords.drift_words,
        estimate_words=pageview.estimate_words,
        labelled_sample_words=labelsample.recorded_words,
        describe_noise=describe_noise,
        ago=lambda value: plainwords.ago(value, now),
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
    row: ShownRow | None = None
    rows = []
    if section.data:
        try:
            with riskstore.opened(section.data["store"]) as con:
                record = riskstore.client(con, corporation, svc.schema.id_column)
            row = shown_row(record, svc.schema) if record else None
            with riskstore.opened(svc.config.model_output(layout.CLIENT_ROWS)) as con:
                rows = riskstore.client_rows(con, corporation, svc.schema.features, svc.schema.target)
        except riskstore.StoreError as exc:  # the rest of the view still shows (a ranked client without its rows)
            section.problem = str(exc)
    view = client_page.client_view(svc.config, svc.schema, corporation, row, rows, models, ranked_by)
    if view is None:
        abort(404, f"no client {corporation!r} in the risk list or the ingested files")
    return render_template(
        "client.html",
        **view,
        problem=section.problem,
        named=(section.data or {}).get("named"),
        stale=section.notes,
        ago=lambda value: plainwords.ago(value, datetime.now(UTC)),
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


page.add_app_template_filter(formatting.when, "when")  # the one way to write a time, a score, a number (drs/core/formatting.py)
page.add_app_template_filter(formatting.score, "score")
page.add_app_template_filter(formatting.number, "number")


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
