"""The client managers' day (issue 24; drs/reports/calls.py, drs/history/calls.py, drs/web/calls.py): today's queue, recording a
call, what the queue is worth, and whether calling helps, on data whose answers are known."""

from __future__ import annotations

import csv
import io
import json
import re
import sqlite3
from pathlib import Path

import pytest
from flask.testing import FlaskClient

from drs.core.settings import Config, load_config
from drs.history import calls as call_log
from drs.history import db as rundb
from drs.reports import callpdf, callvalues, reporting
from drs.reports import calls as day
from drs.web import users
from drs.web.app import create_app
from tests.conftest import make_project, stage_pass, write_config

PASSWORD = "correct horse battery"


def risk_rows(config: Config) -> list[dict[str, str]]:
    with open(config.output_model_folder / "risklist.csv", newline="") as handle:
        return list(csv.DictReader(handle))


def reported_project(root: Path, **settings: object) -> Config:
    project = make_project(root / "project")
    write_config(project, "practiceconfig.json", input_folder_path="practicedata", output_model_path="practicemodels", **settings)
    config = load_config(project / "practiceconfig.json")
    stage_pass(config)
    reporting.run(config)
    return config


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> tuple[Config, dict[str, str]]:
    """The practice model deployed and reported, 5 calls a day; users vera (viewer) and otto (operator), a token each."""
    config = reported_project(tmp_path_factory.mktemp("calls"), calls_per_day=5)
    users.add_user(config.users_file, "vera", "viewer", PASSWORD)
    users.add_user(config.users_file, "otto", "operator", PASSWORD)
    tokens = {role: users.new_token(config.users_file, f"{role}-token", role) for role in users.ROLES}
    return config, tokens


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def active_clients(config: Config) -> list[str]:
    return [r["corporation"] for r in risk_rows(config)]


# ---- the queue, pure ---------------------------------------------------------------------------


def candidates(*probabilities: float) -> list[day.Candidate]:
    return [day.Candidate(i + 1, f"c{i + 1}", p, "reason", None) for i, p in enumerate(probabilities)]


def test_the_queue_is_the_riskiest_not_called_recently_in_rank_order() -> None:
    ranked = candidates(0.9, 0.8, 0.7, 0.6, 0.5, 0.4)
    queue = day.build_queue(ranked, {"c2"}, 3)
    assert [e.corporation for e in queue.clients] == ["c1", "c3", "c4"]
    assert [e.position for e in queue.clients] == [1, 2, 3] and queue.skipped_called == 1 and queue.ranked_by == "probability"
    assert len(day.build_queue(ranked, set(), 25).clients) == 6  # fewer eligible than calls_per_day: all of them


def test_with_values_the_queue_ranks_by_expected_value_at_risk_and_the_coverage_is_side_by_side() -> None:
    ranked = candidates(0.9, 0.8, 0.5, 0.2)
    values = {"c1": 1_000.0, "c2": 10_000.0, "c3": 100_000.0}  # c4 has none: counts 0
    queue = day.build_queue(ranked, set(), 2, values)
    assert [(e.corporation, e.value_at_risk) for e in queue.clients] == [("c3", 50_000.0), ("c2", 8_000.0)]
    assert queue.ranked_by == "value at risk" and queue.missing_values == 1
    cover = day.coverage(ranked, values, 2)
    assert (cover.by_value, cover.by_probability, cover.total) == (58_000.0, 8_900.0, 58_900.0)
    assert cover.gain == 49_100.0


def test_the_holdout_is_a_stable_hash_of_seed_and_corporation() -> None:
    names = [f"client{i}" for i in range(4000)]
    held = [n for n in names if day.held_out(7, n, 0.25)]
    assert held == [n for n in names if day.held_out(7, n, 0.25)]  # the same every time (no randomness per request)
    assert 0.22 < len(held) / len(names) < 0.28
    assert held != [n for n in names if day.held_out(8, n, 0.25)]  # another seed, another group
    assert not any(day.held_out(7, n, 0.0) for n in names)
    queue = day.build_queue([day.Candidate(i + 1, n, 0.5, "", None) for i, n in enumerate(names)], set(), 100, None, 0.25, 7)
    assert len(queue.clients) == 100 and not set(queue.held_out) & {e.corporation for e in queue.clients}
    assert queue.held_out == [n for n in names[: 100 + len(queue.held_out)] if day.held_out(7, n, 0.25)]


def test_the_statistics_give_the_published_answers() -> None:
    low, high = day.wilson(81, 263)  # Newcombe (1998), Statistics in Medicine 17: 0.2553 to 0.3662
    assert (round(low, 4), round(high, 4)) == (0.2553, 0.3662)
    low, high = day.newcombe(56, 70, 48, 80)  # his example for a difference: 0.0524 to 0.3339
    assert (round(low, 4), round(high, 4)) == (0.0524, 0.3339)
    assert day.sample_size(0.3, 0.2) == 294 and day.sample_size(0.2, 0.1) == 199  # Fleiss's table, no continuity correction
    assert day.sample_size(0.2, 0.2) is None


def test_a_simulated_quarter_compares_called_and_held_out_clients_with_an_interval_and_a_power_figure(tmp_path: Path) -> None:
    """A quarter: 400 clients held out, 1,200 called; after the quarter's file 30% of the held-out and 20% of the called left."""
    store = tmp_path / "clientrows.sqlite"
    con = sqlite3.connect(store)
    con.execute("CREATE TABLE files (position INTEGER PRIMARY KEY, name TEXT NOT NULL, readable INTEGER NOT NULL)")
    con.execute("CREATE TABLE client_rows (seq INTEGER PRIMARY KEY, corporation TEXT NOT NULL, file INTEGER NOT NULL, exited INTEGER)")
    con.executemany("INSERT INTO files VALUES (?, ?, 1)", [(1, "q3.csv"), (2, "q4.csv")])
    held = {f"h{i}": "q3.csv" for i in range(400)}
    called = {f"c{i}": "q3.csv" for i in range(1200)}
    rows = [(c, 1, None) for c in [*held, *called]]  # unlabelled when they were called or held out
    rows += [(c, 2, int(i < 120)) for i, c in enumerate(held)] + [(c, 2, int(i < 240)) for i, c in enumerate(called)]
    rows += [("later", 1, 1)]  # a label of the file they were in does not count
    con.executemany("INSERT INTO client_rows (corporation, file, exited) VALUES (?, ?, ?)", rows)
    con.commit()
    labels = day.labels_after(con, {**held, **called, "later": "q3.csv"}, "exited")
    assert labels["later"] is None
    result = day.compare(*day.outcomes(called, labels), *day.outcomes(held, labels))
    assert (result.called, result.called_exits, result.held, result.held_exits) == (1200, 240, 400, 120)
    assert result.called_rate == 0.2 and result.held_rate == 0.3 and result.difference == pytest.approx(-0.1)
    assert result.interval is not None and result.interval[0] < -0.1 < result.interval[1] < 0  # calling helps, beyond noise
    assert result.p_value is not None and result.p_value < 0.001
    assert result.needed_per_group == 294 and result.enough is True
    said = callpdf.verdict(result)
    assert said.startswith("Called clients left at 20.0%, held-out ones at 30.0%: a difference of -10.0 points (95% interval -15.")
    assert "p < 0.001). Calling lowers the exit rate, beyond what chance explains. Both groups have the 294 clients" in said
    small = day.compare(2, 10, 3, 10)
    assert (
        small.enough is False and small.needed_per_group == 294 and small.interval is not None and small.interval[0] < 0 < small.interval[1]
    )
    assert "The difference may be chance. A difference this size needs about 294 clients" in callpdf.verdict(small)


# ---- the queue and the calls through the API ---------------------------------------------------


def test_a_viewer_token_reads_the_queue_records_a_call_and_the_call_survives_a_restart(served: tuple[Config, dict[str, str]]) -> None:
    config, tokens = served
    client = create_app(config).test_client()
    answer = client.get("/calls", headers=bearer(tokens["viewer"]))
    assert answer.status_code == 200, answer.get_data(as_text=True)
    queue = answer.get_json()
    called_before = call_log.contacted_since(config.history_db, "")
    expected = [c for c in active_clients(config) if c not in called_before][:5]
    assert [c["corporation"] for c in queue["clients"]] == expected  # riskiest first, exactly calls_per_day
    assert queue["calls_per_day"] == 5 and queue["ranked_by"] == "probability"
    first = queue["clients"][0]
    assert set(first) >= {"corporation", "probability", "top_reason", "rank_change", "rank"} and first["top_reason"]

    made = client.post(
        "/calls", json={"corporation": first["corporation"], "outcome": "will stay", "note": "renewing"}, headers=bearer(tokens["viewer"])
    )
    assert made.status_code == 201, made.get_data(as_text=True)
    call = made.get_json()["call"]
    assert call["recorded_by"] == "viewer-token" and call["outcome"] == "will stay" and call["at"]
    with sqlite3.connect(config.history_db) as con:
        assert con.execute("SELECT corporation, outcome, note, recorded_by FROM calls WHERE id = ?", (call["id"],)).fetchone() == (
            first["corporation"],
            "will stay",
            "renewing",
            "viewer-token",
        )

    restarted = create_app(load_config(config.config_file)).test_client()  # a new process reads the same database
    after = restarted.get("/calls", headers=bearer(tokens["operator"])).get_json()
    shown = [c["corporation"] for c in after["clients"]]
    assert first["corporation"] not in shown and shown[:4] == expected[1:] and len(shown) == 5
    view = restarted.get(f"/clients/{first['corporation']}", headers=bearer(tokens["viewer"])).get_data(as_text=True)
    assert "<td>will stay</td><td>viewer-token</td><td>renewing</td>" in view
    exported = restarted.get("/calls.csv", headers=bearer(tokens["viewer"]))
    assert exported.status_code == 200 and exported.mimetype == "text/csv"
    rows = list(csv.DictReader(io.StringIO(exported.get_data(as_text=True))))
    assert {"corporation": first["corporation"], "outcome": "will stay", "recorded_by": "viewer-token"}.items() <= rows[0].items()


@pytest.mark.parametrize(
    ("body", "status", "says"),
    [
        ({"corporation": "no-such-client", "outcome": "reached"}, 404, "no active client"),
        ({"corporation": "X", "outcome": "maybe"}, 400, "'outcome' must be one of: reached, no answer, will stay, plans to leave"),
        ({"outcome": "reached"}, 400, "'corporation'"),
        ({"corporation": "X", "outcome": "reached", "when": "now"}, 400, "unknown field(s) when"),
        ([1, 2], 400, "send a JSON object"),
    ],
)
def test_a_bad_call_is_refused_with_its_reason(served: tuple[Config, dict[str, str]], body: object, status: int, says: str) -> None:
    config, tokens = served
    answer = create_app(config).test_client().post("/calls", json=body, headers=bearer(tokens["viewer"]))
    assert answer.status_code == status and says in answer.get_json()["message"]
    assert create_app(config).test_client().post("/calls", json={"corporation": "X", "outcome": "reached"}).status_code == 401


def sign_in(client: FlaskClient) -> str:
    form = client.get("/signin").get_data(as_text=True)
    token = re.search(r'name="csrf_token" value="([^"]+)"', form)
    assert token is not None
    assert client.post("/signin", data={"csrf_token": token.group(1), "name": "vera", "password": PASSWORD, "next": "/"}).status_code == 302
    page = client.get("/").get_data(as_text=True)
    found = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert found is not None
    return found.group(1)


def test_the_page_shows_the_queue_first_and_its_form_records_a_call_with_its_csrf_token(served: tuple[Config, dict[str, str]]) -> None:
    config, _ = served
    client = create_app(config).test_client()
    csrf = sign_in(client)
    page = client.get("/").get_data(as_text=True)
    assert page.index('id="calls"') < page.index('class="tiles"') < page.index('id="clients"')  # the queue comes first
    queued = re.findall(r'<option value="([^"]+)">\d+\. ', page)
    assert len(queued) == 5
    refused = client.post("/calls/form", data={"corporation": queued[0], "outcome": "reached", "csrf_token": "forged"})
    assert refused.status_code == 400 and call_log.client_calls(config.history_db, queued[0]) == []
    sent = client.post("/calls/form", data={"corporation": queued[0], "outcome": "plans to leave", "note": "", "csrf_token": csrf})
    assert sent.status_code == 302 and sent.headers["Location"].endswith(f"/?called={queued[0]}#calls")
    (call,) = call_log.client_calls(config.history_db, queued[0])
    assert (call.outcome, call.recorded_by) == ("plans to leave", "vera")
    again = client.get(f"/?called={queued[0]}").get_data(as_text=True)
    assert f"Call recorded for <strong>{queued[0]}</strong>" in again
    assert queued[0] not in re.findall(r'<option value="([^"]+)">\d+\. ', again)
    anonymous = (
        create_app(config).test_client().post("/calls/form", data={"corporation": queued[1], "outcome": "reached", "csrf_token": "x"})
    )
    assert anonymous.status_code == 302 and anonymous.headers["Location"].startswith("/signin")
    not_the_form = create_app(config).test_client().post("/calls/form", headers={"Authorization": "Bearer x"})
    assert not_the_form.status_code == 400  # found by schemathesis: no body at all was sent to the sign-in form
    assert "not the page&#39;s call form: no csrf_token or corporation or outcome field" in not_the_form.get_data(as_text=True)


# ---- the holdout on the page and in GET /calls ----------------------------------------------------


def test_a_holdout_keeps_a_stable_share_out_of_the_queue_says_so_and_records_the_control_group(tmp_path: Path) -> None:
    config = reported_project(tmp_path, calls_per_day=10, holdout_fraction=0.3, holdout_seed=4)
    client = create_app(config).test_client()
    queue = client.get("/calls").get_json()
    shown = [c["corporation"] for c in queue["clients"]]
    assert len(shown) == 10 and queue["held_out"] and queue["holdout_fraction"] == 0.3
    would_be = active_clients(config)[: 10 + len(queue["held_out"])]
    assert shown == [c for c in would_be if not day.held_out(4, c, 0.3)]
    assert queue["held_out"] == [c for c in would_be if day.held_out(4, c, 0.3)]
    assert set(call_log.holdouts(config.history_db)) == set(queue["held_out"])
    assert client.get("/calls").get_json()["held_out"] == queue["held_out"]  # the same on every request
    page = client.get("/").get_data(as_text=True)
    assert "A control group is on." in page and "A held-out client at risk is not called" in page
    assert "Does calling help?" in page and "No comparison yet" in page


# ---- what the queue is worth ------------------------------------------------------------------------


def with_values(folder: Path, seed: int) -> dict[str, float]:
    """Adds an annual_contract_value column to every CSV of `folder`; the values, by corporation (the last file's)."""
    values: dict[str, float] = {}
    for i, path in enumerate(sorted(folder.glob("*.csv"))):
        lines = path.read_text().splitlines()
        out = [lines[0] + ",annual_contract_value"]
        for j, line in enumerate(lines[1:]):
            value = float((seed + 37 * i + 101 * j) % 997 * 100)
            values[line.split(",")[0]] = value
            out.append(f"{line},{value:g}")
        path.write_text("\n".join(out) + "\n")
    return values


def test_a_value_column_ranks_the_queue_by_value_at_risk_and_a_file_without_it_still_works(tmp_path: Path) -> None:
    project = make_project(tmp_path / "project")
    values = with_values(project / "practicedata", 3)
    write_config(
        project,
        "practiceconfig.json",
        input_folder_path="practicedata",
        output_model_path="practicemodels",
        value_column="annual_contract_value",
        calls_per_day=4,
    )
    config = load_config(project / "practiceconfig.json")
    stage_pass(config)
    reporting.run(config)
    stored = callvalues.read(config)
    assert stored is not None and stored.values == {c: values[c] for c in stored.values} and stored.invalid == 0
    ranked = risk_rows(config)
    worth = sorted((-float(r["exit_probability"]) * values.get(r["corporation"], 0.0), int(r["rank"]), r["corporation"]) for r in ranked)
    queue = create_app(config).test_client().get("/calls").get_json()
    assert queue["ranked_by"] == "value at risk" and queue["value_column"] == "annual_contract_value"
    assert [c["corporation"] for c in queue["clients"]] == [w[2] for w in worth[:4]]
    assert queue["clients"][0]["value_at_risk"] == pytest.approx(-worth[0][0], abs=0.01)
    page = create_app(config).test_client().get("/").get_data(as_text=True)
    assert "What the top 4 cover" in page and "Ranked by probability alone" in page
    assert json.loads(json.dumps(queue))["missing_values"] == sum(1 for r in ranked if r["corporation"] not in values)


def test_values_must_be_numbers_at_least_zero_and_others_count_zero(tmp_path: Path) -> None:
    source = tmp_path / "a.csv"
    source.write_text(
        "corporation,lastmonth_activity,lastyear_activity,number_of_employees,exited,acv\nx,1,2,3,0,-5\ny,1,2,3,0,abc\nz,1,2,3,0,12.5\nw,1,2,3,0,\n"
    )
    other = tmp_path / "b.csv"
    other.write_text("corporation,lastmonth_activity,lastyear_activity,number_of_employees,exited\nz,1,2,3,0\n")
    from drs.reports.stores import SourceFile

    found = callvalues.read_values([SourceFile("a.csv", source, None), SourceFile("b.csv", other, None)], "corporation", "acv")
    assert found.values == {"z": 12.5} and found.invalid == 3 and found.files_without == ["b.csv"]


def test_the_calls_table_is_migration_8_and_an_older_history_is_brought_up_to_date(tmp_path: Path) -> None:
    db = tmp_path / "runrundb.sqlite"
    with sqlite3.connect(db) as conn:
        for statement in rundb.statements(";".join([rundb.SCHEMA, *rundb.MIGRATIONS[:7]])):
            conn.execute(statement)
        conn.execute("PRAGMA user_version = 7")
    call_log.record_call(db, "abcd", "reached", "", "vera", "127.0.0.1")
    assert [c.corporation for c in call_log.calls(db)] == ["abcd"]
    with rundb.opened(db) as conn:
        assert rundb.schema_version(conn) == 8 == rundb.SCHEMA_VERSION


@pytest.mark.slow
def test_a_real_browser_records_a_call_through_the_pages_form_and_sees_it_leave_the_queue(tmp_path: Path) -> None:
    """Headless Chromium signs in, picks the first client of the queue, records "reached" through the form (CSRF token and
    all), lands back on the page with the client out of the queue, and finds the call on the client's own view."""
    from tests.web.test_webpage import DevTools, chromium
    from tools.procs import gunicorn_server

    browser = chromium()
    config = reported_project(tmp_path, calls_per_day=5)
    users.add_user(config.users_file, "vera", "viewer", PASSWORD)
    with gunicorn_server(config.config_file) as url:
        tools = DevTools(browser, tmp_path / "profile")
        try:
            tools.send("Page.enable", tools.session)
            tools.send("Page.navigate", tools.session, url=f"{url}/")
            tools.wait_for("location.pathname === '/signin' && document.readyState === 'complete' && !!document.forms[0]")
            tools.evaluate(
                f"document.getElementById('name').value = 'vera'; document.getElementById('password').value = {PASSWORD!r};"
                " document.forms[0].requestSubmit(); true"
            )
            tools.wait_for("location.pathname === '/' && document.readyState === 'complete' && !!document.getElementById('call-client')")
            first = tools.evaluate("document.getElementById('call-client').value")
            assert first == active_clients(config)[0]
            tools.evaluate(
                "document.getElementById('call-outcome').value = 'reached'; document.getElementById('call-note').value = 'asked for a visit';"
                " document.querySelector('form.record-call').requestSubmit(); true"
            )
            tools.wait_for(
                "location.search.startsWith('?called=') && document.readyState === 'complete' && !!document.querySelector('.call-recorded')"
            )
            queued = tools.evaluate("Array.from(document.querySelectorAll('#call-client option')).map(o => o.value)")
            assert first not in queued and len(queued) == 5
            (call,) = call_log.client_calls(config.history_db, first)
            assert (call.outcome, call.note, call.recorded_by) == ("reached", "asked for a visit", "vera")
            tools.send("Page.navigate", tools.session, url=f"{url}/clients/{first}")
            tools.wait_for("document.readyState === 'complete' && !!document.querySelector('table.client-calls')")
            assert tools.evaluate("document.querySelector('table.client-calls tbody tr').innerText").split("\t")[1:] == [
                "reached",
                "vera",
                "asked for a visit",
            ]
        finally:
            tools.close()


def test_the_generator_adds_a_plausible_contract_value_and_leaves_the_other_columns_as_shipped(tmp_path: Path) -> None:
    from tools import generate_data

    assert generate_data.main(["--out", str(tmp_path), "--with-values"]) == 0
    shipped = Path(__file__).resolve().parents[2]
    for relative in ("practicedata/dataset1.csv", "sourceddata/clients_q1.csv", "testdata/testdata.csv"):
        with open(tmp_path / relative, newline="") as handle:
            rows = list(csv.DictReader(handle))
        with open(shipped / relative, newline="") as handle:
            assert [{k: v for k, v in r.items() if k != "annual_contract_value"} for r in rows] == list(csv.DictReader(handle))
        values = [int(r["annual_contract_value"]) for r in rows]
        assert min(values) > 0 and all(v % 100 == 0 for v in values)
        assert 15_000 < sorted(values)[len(values) // 2] < 40_000  # the median client pays tens of thousands a year
