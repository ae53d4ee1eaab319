"""apicalls.py tells the truth: a call without a 2xx JSON answer is a failure, named, with its cause, and never
replaces the last good apireturns.txt; once users exist, the pipeline calls with its own token (drs/web/users.py)."""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from drs.core import layout
from drs.core.errors import StageError
from drs.core.settings import Config, load_config
from drs.reports import diagnostics, reporting
from drs.web import apicalls, users
from tests.conftest import app_server, make_project, run_script, stage_pass

PASSWORD = "correct horse battery"
COURSE_CALLS = ["prediction", "scoring", "summarystats", "diagnostics"]


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Config, str]]:
    """The practice model deployed and reported, one user (so the API wants a credential), served over HTTP."""
    project = make_project(tmp_path_factory.mktemp("apicalls") / "project")
    config = load_config(project / "practiceconfig.json")
    stage_pass(config)
    diagnostics.run(config)
    reporting.run(config)
    users.add_user(config.users_file, "otto", "operator", PASSWORD)
    with app_server(config.config_file) as url:
        yield config, url


def apicalls_py(config: Config, url: str, token: str | None = None) -> tuple[int, str]:
    env = {k: v for k, v in os.environ.items() if k != apicalls.TOKEN_ENV}
    if token is not None:
        env[apicalls.TOKEN_ENV] = token
    done = run_script("apicalls.py", "--config", str(config.config_file), "--url", url, env=env)
    assert "Traceback" not in done.stderr, done.stderr
    return done.returncode, done.stderr


def statuses(path: Path) -> list[int | None]:
    return [a["status"] for a in json.loads(path.read_text())["answers"]]


def test_with_a_user_and_no_drs_token_the_pipelines_own_token_is_used(live: tuple[Config, str]) -> None:
    config, url = live
    code, err = apicalls_py(config, url)
    assert code == 0, err
    assert statuses(config.model_output(layout.API_RETURNS_JSON)) == [200] * 5  # before: four 401s, exit 0
    secret = users.pipeline_token_file(config.users_file)
    token = secret.read_text().strip()
    assert stat.S_IMODE(secret.stat().st_mode) == 0o600
    entry = users.read_users(config.users_file).tokens[users.PIPELINE_TOKEN]
    assert entry["role"] == "operator" and entry["sha256"] == users.token_hash(token)
    assert token not in config.users_file.read_text()  # only its hash
    for name in (layout.API_RETURNS, layout.API_RETURNS_JSON):
        assert token not in config.model_output(name).read_text()
    again, err = apicalls_py(config, url)  # the same token again, not a new one each time
    assert again == 0, err
    assert secret.read_text().strip() == token
    assert list(users.read_users(config.users_file).tokens) == [users.PIPELINE_TOKEN]


def test_a_revoked_token_fails_each_call_by_name_and_keeps_the_good_returns(live: tuple[Config, str]) -> None:
    config, url = live
    assert apicalls_py(config, url)[0] == 0
    good = {name: config.model_output(name).read_bytes() for name in (layout.API_RETURNS, layout.API_RETURNS_JSON)}
    assert users.remove(config.users_file, users.PIPELINE_TOKEN) == ["token"]
    try:
        code, err = apicalls_py(config, url)
        assert code == 1  # before: exit 0 with the 401 bodies in apireturns.txt
        secret = users.pipeline_token_file(config.users_file)
        for call in COURSE_CALLS:
            assert f"ERROR apicalls: {call}: HTTP 401: the API did not accept the pipeline's token ({secret}): it was revoked" in err
        assert "delete the file to issue a new one, or set DRS_TOKEN" in err
        assert {name: config.model_output(name).read_bytes() for name in good} == good
        failed = json.loads(config.model_output(layout.API_RETURNS_FAILED).read_text())
        assert [(f["endpoint"], f["status"]) for f in failed["failures"]] == [(c, 401) for c in COURSE_CALLS]
        assert [a["status"] for a in failed["answers"]] == [401] * 4 + [200]  # /health is open

        code, err = apicalls_py(config, url, token="drs_not-a-token")
        assert code == 1 and err.count("HTTP 401: the API did not accept the token in DRS_TOKEN (not valid, or removed)") == 4
        viewer = users.new_token(config.users_file, "vera-token", "viewer")
        code, err = apicalls_py(config, url, token=viewer)
        assert code == 1
        assert err.count("HTTP 403: the token's role may not call this: vera-token has the role viewer; this needs operator") == 4
        assert {name: config.model_output(name).read_bytes() for name in good} == good
        # a revocation sticks: the token file is not silently re-registered
        assert users.PIPELINE_TOKEN not in users.read_users(config.users_file).tokens
    finally:
        users.remove(config.users_file, "vera-token")
        users.pipeline_token_file(config.users_file).unlink()  # rotation: the next call issues a new token
    assert apicalls_py(config, url)[0] == 0
    assert not config.model_output(layout.API_RETURNS_FAILED).exists()  # a complete set again: the failed attempt is gone


def test_server_errors_timeouts_and_non_json_answers_are_failures() -> None:
    def answer(status: int | None, **more: object) -> dict[str, object]:
        return {"endpoint": "scoring", "status": status, "json": True, "response": {}, **more}

    assert apicalls.failure(answer(200)) is None
    broken = apicalls.failure(answer(500, response={"message": "model file damaged"}))
    assert broken == apicalls.Failure("scoring", 500, "the API failed: model file damaged; see its log")
    assert apicalls.failure(answer(None, error="no answer within 0.3 s")) == apicalls.Failure("scoring", None, "no answer within 0.3 s")
    html = apicalls.failure(answer(200, json=False, content_type="text/html; charset=utf-8"))
    assert html is not None and html.cause == "the answer is not JSON (text/html; charset=utf-8): is the URL the API's?"
    assert apicalls.failure(answer(404, response={"message": "no such file"})) == apicalls.Failure(
        "scoring", 404, "the API refused the request: no such file"
    )
    assert apicalls.failure(answer(401)).cause.startswith("the API needs a token: set DRS_TOKEN to an operator's token")  # type: ignore[union-attr]


def test_an_api_that_is_not_up_is_one_line_and_overwrites_nothing(deployed_practice: Config) -> None:
    good = deployed_practice.model_output(layout.API_RETURNS)
    good.write_text("the last good answers\n")
    code, err = apicalls_py(deployed_practice, "http://127.0.0.1:9")
    assert code == 1
    assert (
        "prediction: no answer: the API is not reachable at http://127.0.0.1:9 (connection refused): is it running? (`make serve`);"
        " not tried: scoring, summarystats, diagnostics, health" in err
    )
    assert good.read_text() == "the last good answers\n"


def test_no_pipeline_token_while_there_is_no_user(config: Config) -> None:
    """With no user the API is open on the loopback; a token would close it, so none is issued."""
    assert users.pipeline_token(config.users_file) is None
    assert not config.users_file.exists() and not users.pipeline_token_file(config.users_file).exists()


def test_the_pipelines_token_goes_only_over_https_or_to_the_loopback(config: Config) -> None:
    users.add_user(config.users_file, "otto", "operator", PASSWORD)
    for url in ("https://risk.example.com", "http://127.0.0.1:8000", "http://localhost:8000", "http://[::1]:8000"):
        assert apicalls.private_channel(url), url
    plain = "http://risk.example.com:8000"
    assert not apicalls.private_channel(plain)
    cred = apicalls.credential(config, plain, environ={})
    assert cred == apicalls.Credential(None, f"the pipeline's token is sent only over https or to the loopback, not to {plain}")
    assert not users.pipeline_token_file(config.users_file).exists()  # not even issued
    assert apicalls.failure({"endpoint": "scoring", "status": 401}, cred).cause.startswith(  # type: ignore[union-attr]
        f"the API needs a token (the pipeline's token is sent only over https or to the loopback, not to {plain}): set DRS_TOKEN"
    )
    assert apicalls.credential(config, plain, environ={"DRS_TOKEN": "drs_mine"}) == apicalls.Credential("drs_mine", "DRS_TOKEN")
    token = apicalls.credential(config, "http://127.0.0.1:8000", environ={}).token
    assert token and users.read_users(config.users_file).check_token(token) == (users.PIPELINE_TOKEN, "operator")


def test_a_pipeline_token_others_may_read_is_refused_in_one_line(config: Config) -> None:
    users.add_user(config.users_file, "otto", "operator", PASSWORD)
    secret = users.pipeline_token_file(config.users_file)
    users.pipeline_token(config.users_file)
    secret.chmod(0o644)
    with pytest.raises(
        StageError, match=rf"no token for the API calls: pipeline token {secret} may be read by others: run `chmod 600 {secret}`"
    ):
        apicalls.run(config, "http://127.0.0.1:9", environ={})
