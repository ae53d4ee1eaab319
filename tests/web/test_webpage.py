"""The page for client managers (drs/web/page.py): the HTML through Flask's test client, and a real browser."""

from __future__ import annotations

import contextlib
import csv
import os
import re
import shutil
import subprocess
import tempfile
from datetime import UTC, datetime, timedelta
from html import unescape
from pathlib import Path
from typing import Any

import pytest
from pypdf import PdfReader

from drs.core.errors import ConfigError
from drs.core.formatting import score
from drs.core.settings import Config
from drs.history import runs as history
from drs.history.record import Outcome
from drs.production import versions as production
from drs.reports import diagnostics, reporting
from drs.web import page, pageview
from drs.web import words as plainwords
from drs.web.app import create_app
from tests.conftest import tree_state, write_config
from tools.procs import gunicorn_server

RANK_ROW = re.compile(r'<td class="num">(\d+)</td>\s*<td class="corp"><a href="[^"]*">([^<]*)</a>')
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--hide-scrollbars",
)


@pytest.fixture
def reported(deployed_practice: Config) -> Config:
    """The practice model deployed, with reporting.py's outputs (risklist.csv, plots) and diagnostics.json."""
    diagnostics.run(deployed_practice)
    reporting.run(deployed_practice)
    return deployed_practice


def risk_rows(config: Config) -> list[dict[str, str]]:
    with open(config.output_model_folder / "risklist.csv", newline="") as handle:
        return list(csv.DictReader(handle))


def shown(html: str) -> list[tuple[int, str]]:
    """(rank, corporation) of each row of the risk table on the page."""
    return [(int(rank), corp) for rank, corp in RANK_ROW.findall(html)]


def test_the_page_shows_the_top_clients_the_model_and_its_history(reported: Config) -> None:
    client = create_app(reported).test_client()
    answer = client.get("/")
    assert answer.status_code == 200 and answer.mimetype == "text/html"
    html = answer.get_data(as_text=True)
    rows = risk_rows(reported)
    assert shown(html) == [(int(r["rank"]), r["corporation"]) for r in rows[: page.PAGE_SIZE]]
    top = rows[0]
    assert f"{float(top['exit_probability']) * 100:.1f}%" in html
    deployed = production.current(reported.prod_deployment_folder)
    assert deployed is not None
    assert f'id="model-f1">{score(deployed.meta["score"]["f1"])}<' in html
    assert f"Showing 1–25 of {len(rows):,}." in html
    above = sum(float(r["exit_probability"]) > 0.5 for r in rows)
    assert f">{above:,}</div>" in html
    for name in ("trends.png", "confusionmatrix.png", "riskdistribution.png"):
        assert f"/images/{name}?v=" in html
        image = client.get(f"/images/{name}")
        assert image.status_code == 200 and image.data[:8] == b"\x89PNG\r\n\x1a\n"
    for asset, kind in (("page.css", "text/css"), ("page.js", "text/javascript")):
        assert f'"/static/{asset}"' in html
        served = client.get(f"/static/{asset}")
        assert served.status_code == 200 and served.mimetype == kind
    assert ", ".join(deployed.meta["training_files"]) in html
    assert "No model deployed" not in html
    assert 'role="alert"' not in html  # a fresh, healthy deployment raises no warning


def test_search_finds_a_given_corporation_and_paging_walks_the_list(reported: Config) -> None:
    client = create_app(reported).test_client()
    rows = risk_rows(reported)
    wanted = rows[60]  # on page 3
    html = client.get("/", query_string={"q": wanted["corporation"].upper()}).get_data(as_text=True)
    assert shown(html)[0] == (int(wanted["rank"]), wanted["corporation"])
    assert all(wanted["corporation"] in corp for _, corp in shown(html))
    nobody = client.get("/", query_string={"q": "no-such-corporation"}).get_data(as_text=True)
    assert shown(nobody) == [] and "0 clients matching" in nobody

    second = client.get("/?page=2").get_data(as_text=True)
    assert [rank for rank, _ in shown(second)] == list(range(26, 51))
    assert "Page 2 of" in second and 'rel="prev"' in second and 'rel="next"' in second
    pages = -(-len(rows) // page.PAGE_SIZE)
    last = client.get("/?page=99999").get_data(as_text=True)
    assert [rank for rank, _ in shown(last)] == list(range((pages - 1) * page.PAGE_SIZE + 1, len(rows) + 1))
    assert 'rel="next"' not in last
    assert [rank for rank, _ in shown(client.get("/?page=abc").get_data(as_text=True))] == list(range(1, 26))


def test_the_download_is_the_whole_risk_list(reported: Config) -> None:
    answer = create_app(reported).test_client().get("/risklist.csv")
    assert answer.status_code == 200 and answer.mimetype == "text/csv"
    assert "attachment" in answer.headers["Content-Disposition"]
    assert answer.data == (reported.output_model_folder / "risklist.csv").read_bytes()


def test_nothing_deployed_is_a_clear_state_not_an_error(config: Config) -> None:
    client = create_app(config).test_client()
    answer = client.get("/")
    assert answer.status_code == 200 and answer.mimetype == "text/html"
    html = answer.get_data(as_text=True)
    assert "No model deployed yet" in html and "make run" in html
    assert 'id="clients"' not in html and "<img" not in html
    download = client.get("/risklist.csv")
    assert download.status_code == 404 and download.mimetype == "text/html"
    assert "no risklist.csv yet" in download.get_data(as_text=True)
    assert client.get("/health").get_json()["status"] == 503  # the API still answers JSON


def test_the_page_reads_and_never_writes(reported: Config, project: Path) -> None:
    client = create_app(reported).test_client()
    before = tree_state(project)
    for url in ("/", "/?q=a&page=2", "/risklist.csv", "/images/trends.png", "/static/page.css", "/images/nope.png"):
        client.get(url)
    assert tree_state(project) == before


def test_only_the_known_images_are_served(reported: Config) -> None:
    client = create_app(reported).test_client()
    for name in ("risklist.csv", "trainedmodel.pkl", "report.pdf", "..config.json"):
        answer = client.get(f"/images/{name}")
        assert answer.status_code == 404 and answer.mimetype == "text/html"
        assert f"no image {name}" in answer.get_data(as_text=True)
    assert client.get("/images/..%2F..%2Fconfig.json").status_code == 404  # a slash is no image name: no route


def test_a_failed_run_and_a_damaged_risk_list_show_on_the_page(reported: Config) -> None:
    now = datetime.now(UTC).isoformat(timespec="seconds")
    history.append_run(
        reported.history_db,
        started_at=now,
        finished_at=now,
        kind="fullprocess",
        outcome=Outcome.FAILED,
        message="ingestion: no valid data in q9.csv",
        deployed_version=1,
        details={},
    )
    (reported.output_model_folder / "risklist.csv").write_text("rank,who\n1,x\n")  # the people's copy, changed by hand
    client = create_app(reported).test_client()
    html = unescape(client.get("/").get_data(as_text=True))
    assert "<strong>Update failed.</strong> The last update (today) failed: the list below is from before it" in html
    assert "ingestion: no valid data in q9.csv" in html  # in the technical line, under <details>
    assert "risklist.csv was written apart from risklist.json" in html  # the list the page shows is the store's
    (reported.output_model_folder / "risklist.sqlite").write_text("rank,who\n1,x\n")
    html = unescape(client.get("/").get_data(as_text=True))
    assert "risklist.sqlite cannot be read: file is not a database" in html
    assert 'id="model-f1"' in html  # the rest of the page still shows


def drift_run(outcome: str, check: dict[str, Any], at: datetime, **details: Any) -> dict[str, Any]:
    """A history row as history.runs returns it, for the pure banner functions."""
    return {
        "kind": "fullprocess",
        "started_at": at.isoformat(),
        "finished_at": at.isoformat(),
        "outcome": outcome,
        "message": outcome,
        "details": {"drift": check, **details},
    }


def test_banners_for_an_old_model_data_drift_and_a_refused_candidate() -> None:
    now = datetime(2026, 11, 25, 12, tzinfo=UTC)
    meta = {"label": "v0003", "trained_at": (now - timedelta(days=40)).isoformat()}
    check = {"test": "raw", "new_data_f1": 0.5, "deployed_score": 0.7, "threshold": 0.7, "drift": True}
    refused = drift_run(
        Outcome.NOT_PROMOTED,
        check,
        now - timedelta(days=1),
        data_drift={"drifted_features": ["lastmonth_activity"], "rule": "KS p < 0.05 and PSI > 0.2"},
        gate={"promote": False, "reason": "improvement -0.1 < minimum 0.0 -> not promoted"},
    )
    found = plainwords.banners(meta, [refused], now, 60 * 24 * 7, 30)
    assert [(b["title"], b["level"]) for b in found] == [
        ("Model kept", "warning"),  # no sampling noise measured: read as beyond it, as the alerts do
        ("Model getting old", "notice"),
        ("Client data has changed", "notice"),
    ]
    assert found[0]["text"] == plainwords.OUTCOME_WORDS[plainwords.BEYOND_NOISE].sentence.format(label="v0003", day="yesterday")
    assert "improvement -0.1 < minimum 0.0 -> not promoted" in found[0]["technical"]
    assert "F1 on the new data 0.5000 vs its latestscore 0.7000 -> drift" in found[0]["technical"]
    assert found[1]["text"].startswith("The model was trained 40 days ago, longer than the 30 days its owners allow")
    assert found[2]["text"].startswith("The newest client data looks different from the data the model learned from (activity last month)")
    assert "KS p < 0.05 and PSI > 0.2" in found[2]["technical"]
    assert plainwords.banners(meta, [], now, 30, 45) == []
    fresh = {"label": "v0004", "trained_at": now.isoformat()}
    deployed = drift_run(Outcome.DEPLOYED, {**check}, now, gate={"promote": True, "reason": "improvement +0.1 -> promoted"})
    (banner,) = plainwords.banners(fresh, [refused, {**deployed, "deployed_version": 4}], now, 60, 30)
    assert (banner["title"], banner["level"]) == ("New model", "info")
    assert banner["text"] == "A new model (v0004) was deployed today: the list below uses it."
    by_hand = {"label": "v0005", "trained_at": now.isoformat()}  # deployment.py records no run: the run still names its own
    assert plainwords.banners(by_hand, [{**deployed, "deployed_version": 4}], now, 60, 30)[0]["text"].startswith("A new model (v0004)")


def test_a_page_number_is_a_whole_number_from_1() -> None:  # searching and paging: tests/reports/test_riskstore.py
    assert [pageview.parse_page(v) for v in (None, "", "0", "-1", "3", "x", "٣")] == [1, 1, 1, 1, 3, 1, 1]


def test_a_bad_page_setting_stops_the_app_from_starting(project: Path) -> None:
    path = write_config(project, "bad.json", max_model_age_days="thirty")
    message = f"config file {path}: key 'max_model_age_days' must be a number > 0, got \"thirty\""
    with pytest.raises(ConfigError, match=f"^{re.escape(message)}$"):
        create_app(path)


def chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if not found:
        pytest.skip(
            "Debian's chromium is not installed (apt-get install chromium; .ci/run installs it as root): the browser test cannot run here"
        )
    return found


def run_chromium(browser: str, *args: str, profile: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([browser, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", *args], capture_output=True, text=True, timeout=120)


@pytest.mark.slow
def test_a_real_browser_shows_the_top_client_its_reason_and_view_the_f1_and_the_images(reported: Config, tmp_path: Path) -> None:
    browser = chromium()
    top = risk_rows(reported)[0]["corporation"]
    deployed = production.current(reported.prod_deployment_folder)
    assert deployed is not None
    f1 = score(deployed.meta["score"]["f1"])
    with gunicorn_server(reported.config_file) as url, tempfile.TemporaryDirectory() as profile:
        dom = run_chromium(browser, "--virtual-time-budget=15000", "--dump-dom", f"{url}/", profile=Path(profile))
        assert dom.returncode == 0, dom.stderr[-2000:]
        html = dom.stdout
        body = re.search(r"<body[^>]*>", html)
        assert body is not None and 'data-images="3/3"' in body.group(0), body  # page.js: every <img> has naturalWidth > 0
        assert shown(html)[0] == (1, top)
        assert f'id="model-f1">{f1}<' in html
        # the top client's reason is rendered (printed text holds only what is displayed), and its own view opens
        reason = risk_rows(reported)[0]["top_reason"]
        printed = tmp_path / "page.pdf"
        result = run_chromium(browser, "--no-pdf-header-footer", f"--print-to-pdf={printed}", f"{url}/", profile=Path(profile))
        assert result.returncode == 0, result.stderr[-2000:]
        assert reason in re.sub(r"\s+", " ", " ".join(p.extract_text() for p in PdfReader(printed).pages))
        view = run_chromium(browser, "--dump-dom", f"{url}/clients/{top}", profile=Path(profile)).stdout
        assert f"<strong>Top reason:</strong> {reason}" in view and '<svg class="contrib-chart"' in view
        shots = Path(os.environ.get("DRS_SHOTS_DIR") or tmp_path)  # DRS_SHOTS_DIR keeps them to look at
        shots.mkdir(parents=True, exist_ok=True)
        for name, path in (("page", "/"), ("client", f"/clients/{top}")):
            for width, height in ((1280, 800), (390, 844)):
                shot = shots / f"{name}-{width}.png"
                result = run_chromium(
                    browser, f"--window-size={width},{height}", f"--screenshot={shot}", f"{url}{path}", profile=Path(profile)
                )
                assert result.returncode == 0 and shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", result.stderr[-2000:]
                assert pageview.png_size(shot) == (width, height)


def test_a_drift_within_sampling_noise_is_an_information_banner_and_a_stale_pipeline_a_warning() -> None:
    now = datetime(2026, 11, 25, tzinfo=UTC)
    noise = {"level": 0.95, "resamples": 2000, "rows": 2000, "low": 0.736, "high": 0.778, "threshold_rows": 1200}
    noise |= {"drop": -0.0338, "drop_low": -0.071, "drop_high": 0.004, "share_at_or_above": 0.04, "beyond_noise": False}
    check = {"test": "raw", "new_data_f1": 0.7571, "deployed_score": 0.7909, "threshold": 0.7909, "drift": True, "noise": noise}
    run = drift_run(Outcome.NOT_PROMOTED, check, now, gate={"promote": False, "reason": "improvement -0.0004 < 0 -> not promoted"})
    (banner,) = plainwords.banners(None, [run], now, 30, 30)
    assert banner["level"] == "info" and banner["title"] == "Model kept"
    assert banner["text"] == plainwords.OUTCOME_WORDS[Outcome.NOT_PROMOTED].sentence.format(label="the deployed model", day="today")
    assert "within sampling noise (no drop in 4% of 2,000 resamples)" in banner["technical"]  # the alerts' own line
    assert plainwords.status_cards([run], now)["new_data_check"]["word"] == "Small dip"
    beyond = drift_run(Outcome.NOT_PROMOTED, {**check, "noise": {**noise, "beyond_noise": True}}, now)
    assert plainwords.banners(None, [beyond], now, 30, 30)[0]["level"] == "warning"
    assert plainwords.status_cards([beyond], now)["new_data_check"]["word"] == "Did worse"
    finished = {"kind": "fullprocess", "outcome": "no new data", "finished_at": (now - timedelta(minutes=31)).isoformat()}
    stale = plainwords.stale_banner(plainwords.last_finished([finished, {"kind": "rollback", "finished_at": now.isoformat()}]), now, 30)
    assert stale is not None and stale["level"] == "warning" and stale["title"] == "Updates have stopped"
    assert stale["text"] == "The pipeline has not run for 31 minutes: the list may be out of date."
    assert "stale_after_minutes is 30" in stale["technical"]
    assert plainwords.stale_banner(finished, now, 45) is None and plainwords.stale_banner(None, now, 30) is None
    hours = {**finished, "finished_at": (now - timedelta(hours=3, minutes=5)).isoformat()}
    assert plainwords.stale_banner(hours, now, 30)["text"].startswith("The pipeline has not run for 3 hours:")  # type: ignore[index]


class DevTools:
    """Chromium driven over --remote-debugging-pipe (fd 3 in, fd 4 out, NUL-separated JSON): standard library only."""

    def __init__(self, browser: str, profile: Path):
        import json as _json

        self.json = _json
        to_browser_r, self.to_browser = os.pipe()
        self.from_browser, from_browser_w = os.pipe()

        def fds() -> None:  # in the child: its fd 3 reads our commands, its fd 4 writes the answers
            os.dup2(to_browser_r, 100)
            os.dup2(from_browser_w, 101)
            os.dup2(100, 3, inheritable=True)
            os.dup2(101, 4, inheritable=True)

        self.proc = subprocess.Popen(
            [browser, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", "--remote-debugging-pipe", "about:blank"],
            preexec_fn=fds,
            pass_fds=(3, 4),  # kept open when the other descriptors are closed, after fds() ran
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        os.close(to_browser_r)
        os.close(from_browser_w)
        self.buffer = b""
        self.next_id = 0
        target = self.send("Target.createTarget", url="about:blank")["targetId"]
        self.session = self.send("Target.attachToTarget", targetId=target, flatten=True)["sessionId"]

    def send(self, method: str, session: str | None = None, **params: Any) -> dict[str, Any]:
        self.next_id += 1
        message: dict[str, Any] = {"id": self.next_id, "method": method, "params": params}
        if session:
            message["sessionId"] = session
        os.write(self.to_browser, self.json.dumps(message).encode() + b"\0")
        while True:
            while b"\0" not in self.buffer:
                chunk = os.read(self.from_browser, 1 << 16)
                assert chunk, "chromium closed its debugging pipe"
                self.buffer += chunk
            raw, self.buffer = self.buffer.split(b"\0", 1)
            answer = self.json.loads(raw)
            if answer.get("id") == self.next_id:
                assert "error" not in answer, answer
                return answer.get("result", {})

    def evaluate(self, expression: str) -> Any:
        result = self.send("Runtime.evaluate", self.session, expression=expression, awaitPromise=True, returnByValue=True)
        return result.get("result", {}).get("value")

    def wait_for(self, expression: str, limit: float = 30) -> Any:
        import time

        deadline = time.monotonic() + limit
        while time.monotonic() < deadline:
            value = self.evaluate(expression)
            if value:
                return value
            time.sleep(0.1)
        raise AssertionError(f"never true in the browser: {expression}")

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.send("Browser.close")
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(timeout=20)
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        os.close(self.to_browser)
        os.close(self.from_browser)


@pytest.mark.slow
def test_a_real_browser_signs_in_through_the_form_and_sees_the_top_client(reported: Config, tmp_path: Path) -> None:
    """With a user configured the page asks for a sign-in; the browser fills the form (CSRF token and all) and lands on the list."""
    from drs.web import users

    browser = chromium()
    password = "a long enough password"
    users.add_user(reported.users_file, "vera", "viewer", password)
    top = risk_rows(reported)[0]["corporation"]
    with gunicorn_server(reported.config_file) as url:
        tools = DevTools(browser, tmp_path / "profile")
        try:
            tools.send("Page.enable", tools.session)
            tools.send("Page.navigate", tools.session, url=f"{url}/")
            tools.wait_for("location.pathname === '/signin' && document.readyState === 'complete' && !!document.forms[0]")
            assert tools.evaluate("document.forms[0].csrf_token.value.length") >= 32
            tools.evaluate(
                f"document.getElementById('name').value = 'vera'; document.getElementById('password').value = {password!r};"
                " document.forms[0].requestSubmit(); true"
            )
            tools.wait_for("location.pathname === '/' && document.readyState === 'complete' && !!document.querySelector('td.corp a')")
            html = tools.evaluate("document.documentElement.outerHTML")
            assert shown(html)[0] == (1, top)
            assert "Sign out" in html and ">vera<" in html
            assert tools.evaluate("document.cookie") == ""  # HttpOnly: the session is out of the script's reach
        finally:
            tools.close()
