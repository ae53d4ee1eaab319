"""Generated clients against the real server: schemathesis, every check, on every operation of openapi.yaml, through gunicorn.

schemathesis reads openapi.yaml and sends what it allows (and what it does not) to a real gunicorn serving a
deployed model and a ranked list, then checks each answer: the documented status, content type, headers and
schema; a schema-valid request accepted, a schema-violating one refused; credentials enforced. Zero failures is
the rule (docs/api.md, "Checked against this description"); the quick checks of each rule it found broken are
in tests/web/test_api_description.py. The seed is fixed, so a failure here is reproduced by the same command.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from drs.core.settings import load_config
from drs.reports import reporting
from drs.web import users
from tests.conftest import ROOT, make_project, stage_pass, write_config
from tools.procs import gunicorn_server

pytestmark = pytest.mark.slow

EXAMPLES = 100  # per operation, for the fuzzing phase; the coverage phase sends its own cases (409 cases in all at this seed)
SEED = 21


def test_schemathesis_finds_no_failure_through_gunicorn(tmp_path: Path) -> None:
    pytest.importorskip("schemathesis", reason="schemathesis is not installed (requirements-dev.txt; make test installs it)")
    project = make_project(tmp_path / "project")
    # schemathesis's ignored_auth check sends a wrong password to each operation and wants a 401 every time; after
    # signin_failures_per_minute (5) of them from one address the answer is the limiter's 429 (tested in test_auth.py)
    config = load_config(write_config(project, signin_failures_per_minute=1000))
    stage_pass(config)
    reporting.run(config)  # /risk has a list to read
    token = users.new_token(config.users_file, "schemathesis", "operator")
    command = [
        str(Path(sys.executable).parent / "schemathesis"),  # installed beside this Python by requirements-dev.txt
        "--config-file",
        str(ROOT / "schemathesis.toml"),
        "--no-color",
        "run",
        str(ROOT / "openapi.yaml"),
        "--checks",
        "all",
        "--max-examples",
        str(EXAMPLES),
        "--seed",
        str(SEED),
        "--continue-on-failure",
        "--workers",
        "1",
        "--header",
        f"Authorization: Bearer {token}",
    ]
    with gunicorn_server(config.config_file, workers=2) as url:
        # in a folder of its own: schemathesis and hypothesis keep state in the folder they run in
        run = subprocess.run([*command, "--url", url], cwd=tmp_path, capture_output=True, text=True, timeout=600)
    out = run.stdout
    assert run.returncode == 0 and "No issues found" in out, out[-6000:] + run.stderr[-2000:]
    spec = yaml.safe_load((ROOT / "openapi.yaml").read_text())
    operations = sum(1 for path in spec["paths"].values() for method in path if method in {"get", "post", "put", "patch", "delete"})
    assert operations == 11  # the 7 of the API and page, and issue 24's GET/POST /calls, /calls.csv and the page's form
    assert re.search(rf"Operations:\s+{operations} selected / {operations} total", out) and re.search(rf"Tested:\s+{operations}\b", out), (
        out
    )
    counted = re.search(r"(\d+) generated, (\d+) passed", out)
    assert counted and int(counted[1]) == int(counted[2]) >= 200, out[-2000:]
