"""The client managers' day on the web: today's call queue, recording a call, the calls as CSV, the page's section.

A blueprint (create_app registers it): `GET /calls` (the queue as JSON), `POST /calls` (record a call, JSON, by a viewer
or an operator with a token or a password), `GET /calls.csv` (every call), `POST /calls/form` (the page's form: the
signed-in session and its CSRF token, checked here, as the sign-out form is). The queue is built from the current
ranking's store (drs/reports/riskstore.py, what the page shows) by drs/reports/calls.py; the calls live in the run
history's database (drs/history/calls.py). The page and the client view call the template globals `calls_today` and
`client_calls` from their partials (_calls.html, _client_calls.html). Who was held out of a queue as a control is
recorded when the queue is built: the moment the client would have been called. See docs/reports.md#the-client-managers-day.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, TypedDict

from flask import Blueprint, Response, current_app, g, jsonify, redirect, render_template, request, url_for
from werkzeug.exceptions import HTTPException
from werkzeug.wrappers import Response as BaseResponse

from drs.core import layout
from drs.history import calls as call_log
from drs.model import explain
from drs.reports import callpdf, callsummary, callvalues, movement, risk, riskstore
from drs.reports import calls as day
from drs.web import auth, signin
from drs.web.service import ApiError, Service, service

calls = Blueprint("calls", __name__, template_folder="templates")
CHUNK = 500  # ranking rows read at a time while filling a queue ranked by probability
SHOWN_CALLS = 20  # the page lists the newest calls


@dataclass(frozen=True)
class Today:
    """What the page's section and GET /calls show: the queue, or why there is none; the value and holdout figures."""

    queue: day.Queue | None
    problem: str | None = None
    values: callvalues.Values | None = None
    coverage: day.Coverage | None = None
    comparison: day.Comparison | None = None
    held_total: int = 0
    recent: list[call_log.Call] = field(default_factory=list)


def _candidate(row: dict[str, Any], id_column: str) -> day.Candidate:
    change = row.get(movement.RANK_CHANGE)
    return day.Candidate(int(row[risk.RANK]), str(row[id_column]), float(row[risk.PROBABILITY]), row[explain.TOP_REASON] or "", change)


def _ranked(con: sqlite3.Connection, id_column: str) -> Iterator[day.Candidate]:
    """The ranking in rank order, read CHUNK rows at a time (a queue by probability reads only as far as it needs)."""
    first = 1
    while True:
        rows = riskstore.ranks(con, first, first + CHUNK - 1)
        yield from (_candidate(r, id_column) for r in rows)
        if len(rows) < CHUNK:
            return
        first += CHUNK


def newest_file(svc: Service) -> str | None:
    """The newest ingested file the client rows store knows (a later file's label is an outcome)."""
    try:
        with riskstore.opened(svc.config.model_output(layout.CLIENT_ROWS)) as con:
            row = con.execute(f"SELECT name FROM {riskstore.FILES} ORDER BY position DESC LIMIT 1").fetchone()
    except riskstore.StoreError:
        return None
    return None if row is None else str(row[0])


def _comparison(svc: Service) -> tuple[day.Comparison | None, int]:
    """Called against held out (drs/reports/callsummary.py, as the PDF has it); and how many were ever held out."""
    return callsummary.comparison(svc.config), len(call_log.holdouts(svc.config.history_db))


def today(svc: Service, record: bool = True) -> Today:
    """Today's queue from the current ranking; with `record`, the clients held out of it join the control group."""
    config = svc.config
    store = config.model_output(layout.RISK_STORE)
    db = config.history_db
    called = call_log.contacted_since(db, call_log.since(config.recall_after_days))
    values = svc.cache.get("calls:values", (config.model_output(callvalues.STORE),), lambda: callvalues.read(config))
    try:
        with riskstore.opened(store) as con:
            riskstore.summary(con)
            id_column = svc.schema.id_column
            if values is None:
                queue = day.build_queue(
                    _ranked(con, id_column), called, config.calls_per_day, None, config.holdout_fraction, config.holdout_seed
                )
                cover = None
            else:
                everyone = svc.cache.get("calls:candidates", (store,), lambda: list(_ranked(con, id_column)))
                queue = day.build_queue(everyone, called, config.calls_per_day, values.values, config.holdout_fraction, config.holdout_seed)
                cover = day.coverage(everyone, values.values, config.calls_per_day)
    except riskstore.StoreError as exc:
        return Today(None, problem=str(exc))
    if record and queue.held_out:
        try:
            call_log.record_holdouts(db, queue.held_out, config.holdout_seed, config.holdout_fraction, newest_file(svc))
        except (OSError, sqlite3.Error) as exc:
            current_app.logger.error("cannot record the held-out clients in %s: %s", db, exc)
    comparison, held_total = _comparison(svc)
    return Today(queue, None, values, cover, comparison, held_total, call_log.calls(db, SHOWN_CALLS))


class QueueAnswer(TypedDict):
    """GET /calls (openapi.yaml's CallQueue)."""

    clients: list[dict[str, object]]
    calls_per_day: int
    recall_after_days: float
    ranked_by: str
    value_column: str | None
    missing_values: int | None
    held_out: list[str]
    holdout_fraction: float
    called_recently: int
    comparison: dict[str, object] | None


def _answer(found: Today) -> QueueAnswer:
    if found.queue is None:
        raise ApiError(503, f"no call queue: {found.problem}")
    config = service().config
    return {
        "clients": [e.to_record() for e in found.queue.clients],
        "calls_per_day": config.calls_per_day,
        "recall_after_days": config.recall_after_days,
        "ranked_by": found.queue.ranked_by,
        "value_column": config.value_column,
        "missing_values": found.queue.missing_values if found.values else None,
        "held_out": found.queue.held_out,
        "holdout_fraction": config.holdout_fraction,
        "called_recently": found.queue.skipped_called,
        "comparison": found.comparison.to_record() if found.comparison else None,
    }


@calls.get("/calls")
def queue_endpoint() -> Response:
    return jsonify(_answer(today(service())))


def _identity_name() -> str:
    identity = getattr(g, "identity", None)
    return identity.name if identity is not None else "anyone"


def shape_problem(corporation: Any, outcome: Any, note: Any) -> str | None:
    """What is wrong with a call's fields before anything is looked up (the JSON endpoint and the form say the same)."""
    if not isinstance(corporation, str) or not corporation.strip():
        return "'corporation' must be the id of an active client"
    if outcome not in call_log.OUTCOMES:
        return f"'outcome' must be one of: {', '.join(call_log.OUTCOMES)}"
    if note is not None and (not isinstance(note, str) or len(note) > call_log.MAX_NOTE):
        return f"'note' must be text of at most {call_log.MAX_NOTE} characters"
    return None


def record(corporation: Any, outcome: Any, note: Any) -> call_log.Call:
    """Check and record one call by the identity of this request (ApiError 400 or 404 when it cannot be)."""
    svc = service()
    problem = shape_problem(corporation, outcome, note)
    if problem is not None:
        raise ApiError(400, problem)
    try:
        with riskstore.opened(svc.config.model_output(layout.RISK_STORE)) as con:
            known = riskstore.client(con, corporation, svc.schema.id_column)
    except riskstore.StoreError as exc:
        raise ApiError(503, f"no risk list to call from: {exc}") from None
    if known is None:
        raise ApiError(404, f"no active client {corporation!r} on the risk list")
    return call_log.record_call(
        svc.config.history_db, corporation, str(outcome), note or "", _identity_name(), auth.client_address(), newest_file(svc)
    )


@calls.post("/calls")
def record_endpoint() -> tuple[Response, int]:
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        raise ApiError(400, 'send a JSON object: {"corporation": "...", "outcome": "reached", "note": "..."}')
    unknown = sorted(set(body) - {"corporation", "outcome", "note"})
    if unknown:
        raise ApiError(400, f"unknown field(s) {', '.join(unknown)} (allowed: corporation, outcome, note)")
    found = record(body.get("corporation"), body.get("outcome"), body.get("note"))
    return jsonify({"call": found.to_record()}), 201


@calls.get("/calls.csv")
def export_csv() -> Response:
    """Every call as CSV for people (formulas neutralised by drs/data/csvsafe.py's rule)."""
    import csv
    import io

    from drs.data.csvsafe import neutralised  # pandas and polars with it: only for this download

    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["id", "at", "corporation", "outcome", "note", "recorded_by", "origin"])
    for c in call_log.calls(service().config.history_db):
        writer.writerow([c.id, c.at, neutralised(c.corporation), c.outcome, neutralised(c.note), neutralised(c.recorded_by), c.origin])
    response = Response(out.getvalue(), mimetype="text/csv")
    response.headers["Content-Disposition"] = "attachment; filename=calls.csv"
    return response


def _form_identity() -> auth.Identity | BaseResponse:
    """Who sends the page's form: the signed-in user of the session (or everyone, open or with auth off)."""
    state = auth.auth_state()
    if state.config.auth == "off":
        return auth.Identity("anyone", auth.OPERATOR, "off")
    users = state.users.get()
    if users.empty:
        refused = auth.open_mode()
        return refused if refused is not None else auth.Identity("anyone", auth.OPERATOR, "open")
    found = auth.from_session(state, users)
    if found is None:
        return redirect(url_for("signin.form", next=url_for("page.index")))
    return found


@calls.post("/calls/form")
def record_form() -> BaseResponse:
    """The page's form: checked like the sign-out form (session and CSRF token), then recorded as POST /calls is.
    A form that could never be recorded (a field missing, an unknown outcome, a note too long: what openapi.yaml declares)
    is a 400 before anything else; whether the client exists is asked only of a signed-in user."""
    missing = [name for name in ("csrf_token", "corporation", "outcome") if name not in request.form]
    problem = shape_problem("checked later", request.form.get("outcome"), request.form.get("note") or None)  # the id: once signed in
    if missing or problem is not None:
        message = f"this is not the page's call form: no {' or '.join(missing)} field" if missing else str(problem)
        return Response(render_template("error.html", status=400, message=message), 400)
    who = _form_identity()
    if isinstance(who, BaseResponse):
        return who
    try:
        signin._check_csrf()
    except HTTPException as exc:  # an expired form: said as a page, not as the API's JSON
        return Response(render_template("error.html", status=exc.code, message=exc.description), exc.code or 400)
    g.identity = who
    try:
        found = record(request.form.get("corporation", ""), request.form.get("outcome", ""), request.form.get("note") or None)
    except ApiError as exc:
        return Response(render_template("error.html", status=exc.status, message=exc.message), exc.status)
    return redirect(url_for("page.index", called=found.corporation, _anchor="calls"))


@calls.app_template_global("calls_today")
def calls_today() -> Today:
    return today(service())


@calls.app_template_global("client_calls")
def client_calls(corporation: str) -> list[call_log.Call]:
    return call_log.client_calls(service().config.history_db, corporation)


@calls.app_template_global("call_verdict")
def call_verdict(comparison: day.Comparison) -> str:
    return callpdf.verdict(comparison)  # the PDF's words


@calls.app_template_global("call_outcomes")
def call_outcomes() -> tuple[str, ...]:
    return call_log.OUTCOMES
