"""Diagnostics and reporting on a deployed model."""

from __future__ import annotations

import contextlib
import html
import http.server
import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from matplotlib.image import imread
from pypdf import PdfReader

from drs.core import layout
from drs.core.settings import Config
from drs.reports import diagnostics, packages, reporting
from drs.web.app import create_app
from tests.conftest import tree_state
from tools.procs import free_port

JSON_TYPE = "application/vnd.pypi.simple.v1+json"


def project_page(name: str, versions: list[str] | None, files: dict[str, bool], requires: dict[str, str] | None = None) -> dict[str, Any]:
    """A PEP 691 project page; `files` maps file name to yanked, `requires` file name to Requires-Python;
    versions None leaves out PEP 700's list."""
    page: dict[str, Any] = {
        "meta": {"api-version": "1.1" if versions is not None else "1.0"},
        "name": name,
        "files": [
            {
                "filename": f,
                "url": f"../../files/{f}",
                "hashes": {},
                "yanked": "broken" if y else False,
                "requires-python": (requires or {}).get(f),
            }
            for f, y in files.items()
        ],
    }
    if versions is not None:
        page["versions"] = versions
    return page


@dataclass
class PackageIndex:
    """A real Simple API on 127.0.0.1: `pages` by normalized name, `slow` names that answer after
    `slow_seconds`, `drip` names whose body trickles in, `stall` names that send half a body and
    stop for `slow_seconds`; every request's name is in `asked`."""

    pages: dict[str, dict[str, Any]]
    slow: set[str] = field(default_factory=set)
    drip: set[str] = field(default_factory=set)
    stall: set[str] = field(default_factory=set)
    slow_seconds: float = 5.0
    asked: list[str] = field(default_factory=list)
    url: str = ""


@contextlib.contextmanager
def package_index(index: PackageIndex) -> Iterator[PackageIndex]:
    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            name = self.path.strip("/").rsplit("/", 1)[-1]
            index.asked.append(name)
            if name in index.slow:
                time.sleep(index.slow_seconds)
            page = index.pages.get(name)
            if page is None or JSON_TYPE not in self.headers.get("Accept", ""):
                self.send_error(404 if page is None else 406)
                return
            body = json.dumps(page).encode()
            self.send_response(200)
            self.send_header("Content-Type", JSON_TYPE)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if name in index.stall:
                self.wfile.write(body[: len(body) // 2])
                self.wfile.flush()
                time.sleep(index.slow_seconds)
            step = 1 if name in index.drip else len(body)
            for start in range(0, len(body), step):
                self.wfile.write(body[start : start + step])
                self.wfile.flush()
                if name in index.drip:
                    time.sleep(0.2)  # each read is quick; only the whole answer is slow

        def log_message(self, *args: object) -> None:
            pass

    class Server(http.server.ThreadingHTTPServer):
        daemon_threads = True

        def handle_error(self, request: object, client_address: object) -> None:
            pass  # the client hanging up on a slow answer is expected

    server = Server(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    index.url = f"http://127.0.0.1:{server.server_address[1]}/simple"
    try:
        yield index
    finally:
        server.shutdown()
        server.server_close()


def only_pandas_index() -> PackageIndex:
    return PackageIndex({"pandas": project_page("pandas", ["2.0.0", "99.0"], {"pandas-99.0.tar.gz": False})})


def test_predictions_summary_and_missing_data(deployed_practice: Config) -> None:
    test = pd.read_csv(deployed_practice.test_data_csv)
    predictions = diagnostics.model_predictions(test, deployed_practice)
    assert len(predictions) == len(test) == 1200
    assert set(predictions) == {0, 1}
    summary = diagnostics.dataframe_summary(deployed_practice)
    final = pd.read_csv(deployed_practice.final_data_csv)
    assert summary["lastmonth_activity"]["mean"] == pytest.approx(final.lastmonth_activity.mean())
    assert summary["number_of_employees"]["median"] == pytest.approx(final.number_of_employees.median())
    assert summary["lastyear_activity"]["std"] == pytest.approx(final.lastyear_activity.std())
    assert diagnostics.missing_data(deployed_practice) == {c: 0.0 for c in final.columns}


def test_missing_data_counts_percentages(deployed_practice: Config) -> None:
    final = pd.read_csv(deployed_practice.final_data_csv)
    final.loc[:103, "lastyear_activity"] = None  # 104 of 520 rows
    final.to_csv(deployed_practice.final_data_csv, index=False)
    assert diagnostics.missing_data(deployed_practice)["lastyear_activity"] == pytest.approx(20.0)


def test_execution_time_changes_no_real_output(deployed_practice: Config) -> None:
    folders = [deployed_practice.output_folder, deployed_practice.output_model_folder, deployed_practice.prod_deployment_folder]
    before = tree_state(*folders)
    timings = diagnostics.execution_time(deployed_practice)
    assert len(timings) == 3 and all(t > 0 for t in timings)
    assert tree_state(*folders) == before


def test_outdated_packages_report_required_installed_and_newest(deployed_practice: Config) -> None:
    with package_index(only_pandas_index()) as index:
        rows = packages.outdated_packages_list(replace(deployed_practice, packages_timeout_seconds=5, package_index_url=index.url))
    by_name = {r["package"]: r for r in rows}
    assert by_name["pandas"]["required"] == "3.1.1"
    assert by_name["pandas"]["installed"] == pd.__version__
    assert by_name["pandas"]["newest"] == "99.0" and by_name["pandas"]["outdated"] is True
    assert by_name["pandas"]["newest_status"] == "known" and by_name["pandas"]["newest_unknown_because"] is None
    # not on this index: unknown, so whether it is outdated is not known either (was False: "not outdated")
    assert by_name["flask"]["newest"] is None and by_name["flask"]["outdated"] is None
    assert (
        by_name["flask"]["newest_status"] == "unknown"
        and by_name["flask"]["newest_unknown_because"] == "not on the package index (HTTP 404)"
    )
    assert sorted(index.asked) == sorted(r["package"].lower() for r in rows)


def test_index_answers_are_reused_for_a_day(deployed_practice: Config) -> None:
    with package_index(only_pandas_index()) as index:
        config = replace(deployed_practice, packages_timeout_seconds=5, package_index_url=index.url)
        packages.outdated_packages_list(config)
        first = sorted(index.asked)
        index.asked.clear()
        rows = {r["package"]: r["newest"] for r in packages.outdated_packages_list(config)}
        assert "pandas" in first and "pandas" not in index.asked and rows["pandas"] == "99.0"
        assert sorted(index.asked) == [n for n in first if n != "pandas"]  # unanswered ones are asked again
        cache = config.model_output(layout.PACKAGE_INDEX_CACHE)
        entry = json.loads(cache.read_text())
        entry["pandas"]["asked_at"] -= packages.INDEX_CACHE_SECONDS + 1
        cache.write_text(json.dumps(entry))
        index.asked.clear()
        packages.outdated_packages_list(config)
        assert "pandas" in index.asked
        index.asked.clear()
        other = PackageIndex(only_pandas_index().pages)
        with package_index(other):  # another index's answers are not reused
            packages.outdated_packages_list(replace(config, package_index_url=other.url))
        assert "pandas" in other.asked and index.asked == []


def test_newest_versions_from_a_simple_json_index(tmp_path: Path) -> None:
    pages = {
        # string order says 1.9.0, PEP 440 says 1.10.0; pre- and dev releases are not the newest
        "alpha": project_page(
            "alpha",
            ["1.9.0", "1.10.0", "1.11.0rc1", "2.0.0.dev1"],
            {"alpha-1.9.0.tar.gz": False, "alpha-1.10.0.tar.gz": False, "alpha-1.11.0rc1.tar.gz": False},
        ),
        # 3.0 is yanked (all its files); 2.5 has one yanked file and one that is not
        "beta-pkg": project_page(
            "Beta_Pkg",
            ["2.4", "2.5", "3.0"],
            {
                "beta_pkg-2.4.tar.gz": False,
                "beta_pkg-2.5.tar.gz": True,
                "beta_pkg-2.5-py3-none-any.whl": False,
                "beta_pkg-3.0.tar.gz": True,
                "beta_pkg-3.0-py3-none-any.whl": True,
            },
        ),
        # API version 1.0, without PEP 700's versions list: the file names say the versions
        "gamma": project_page(
            "gamma", None, {"gamma-0.9.tar.gz": False, "gamma-0.10-py3-none-any.whl": False, "gamma-1.0b1.tar.gz": False}
        ),
        # 4.0 needs a Python newer than any there is: not installable here, as pip would say
        "delta": project_page(
            "delta",
            ["3.2", "4.0"],
            {"delta-3.2.tar.gz": False, "delta-4.0.tar.gz": False},
            {"delta-3.2.tar.gz": ">=3.8", "delta-4.0.tar.gz": ">=99"},
        ),
        # a version in PEP 700's list with no file left is not installable either
        "epsilon": project_page("epsilon", ["1.0", "1.1"], {"epsilon-1.0-py3-none-any.whl": False}),
        # a page listing versions but no files (not what PyPI does): the versions list
        "zeta": project_page("zeta", ["1.9", "1.10", "2.0a1"], {}),
        "slow": project_page("slow", ["1.0"], {"slow-1.0.tar.gz": False}),
        "drip": project_page("drip", ["1.0"], {"drip-1.0.tar.gz": False}),
        "stall": project_page("stall", ["1.0"], {"stall-1.0.tar.gz": False}),
    }
    timeout = 1.0
    cache = tmp_path / "models" / layout.PACKAGE_INDEX_CACHE
    names = ["alpha", "Beta_Pkg", "gamma", "delta", "epsilon", "zeta", "missing", "slow", "drip", "stall"]
    with package_index(PackageIndex(pages, slow={"slow"}, drip={"drip"}, stall={"stall"})) as index:
        started = time.perf_counter()
        newest = packages.newest_versions(names, timeout, cache, index.url)
        elapsed = time.perf_counter() - started
        assert newest == {
            "alpha": "1.10.0",
            "Beta_Pkg": "2.5",
            "gamma": "0.10",
            "delta": "3.2",
            "epsilon": "1.0",
            "zeta": "1.10",
            "missing": None,
            "slow": None,
            "drip": None,
            "stall": None,
        }
        assert elapsed < timeout + 2, elapsed  # the slow and the dripping answers are cut off at the limit
        while any(t.name.startswith("index") for t in threading.enumerate()) and time.perf_counter() - started < timeout + 2:
            time.sleep(0.05)
        assert not [t.name for t in threading.enumerate() if t.name.startswith("index")]  # no request outlives the limit
        assert sorted(index.asked) == sorted(["alpha", "beta-pkg", "gamma", "delta", "epsilon", "zeta", "missing", "slow", "drip", "stall"])
        assert set(json.loads(cache.read_text())) == {"alpha", "Beta_Pkg", "gamma", "delta", "epsilon", "zeta"}
        index.asked.clear()
        assert packages.newest_versions(["alpha", "Beta_Pkg", "gamma"], timeout, cache, index.url) == {
            "alpha": "1.10.0",
            "Beta_Pkg": "2.5",
            "gamma": "0.10",
        }
        assert index.asked == []  # all answered from the day's cache
        assert packages.newest_versions(["alpha"], 0, cache, index.url) == {"alpha": None}  # 0: not asked, not even the cache


def test_index_credentials_never_reach_the_cache_file(tmp_path: Path) -> None:
    cache = tmp_path / layout.PACKAGE_INDEX_CACHE
    with package_index(only_pandas_index()) as index:
        url = index.url.replace("http://", "http://reader:s3cret@")
        assert packages.newest_versions(["pandas"], 5, cache, url) == {"pandas": "99.0"}
        index.asked.clear()
        assert packages.newest_versions(["pandas"], 5, cache, url) == {"pandas": "99.0"} and index.asked == []
    text = cache.read_text()
    assert "s3cret" not in text and "reader" not in text
    assert json.loads(text)["pandas"]["index"] == index.url


def test_an_index_refusing_json_is_unknown(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(packages, "INDEX_ACCEPT", "text/html")
    with package_index(PackageIndex({"alpha": project_page("alpha", ["1.0"], {"alpha-1.0.tar.gz": False})})) as index:
        assert packages.newest_versions(["alpha"], 5, tmp_path / "cache.json", index.url) == {"alpha": None}
        assert index.asked == ["alpha"] and not (tmp_path / "cache.json").exists()


def test_outdated_packages_answers_when_the_index_is_unreachable(deployed_practice: Config) -> None:
    rows = packages.outdated_packages_list(deployed_practice)  # packages_timeout_seconds is 0 in tests
    assert {r["package"] for r in rows} >= {"pandas", "scikit-learn", "flask", "gunicorn", "reportlab"}
    assert all(r["newest"] is None for r in rows)
    assert all(r["installed"] for r in rows)


OFF = "not asked (packages_timeout_seconds is 0)"
REFUSED = "the package index could not be reached: connection refused"


@pytest.mark.parametrize("index", ["off", "refused", "some"])
def test_unknown_newest_versions_are_said_as_unknown_never_as_none(
    deployed_practice: Config, caplog: pytest.LogCaptureFixture, index: str
) -> None:
    """The log, diagnostics.json, /diagnostics, the page and the PDF: all unknown, or some (k of N), never 'none'."""
    total = len(packages.read_requirements(deployed_practice.project_root / "requirements.txt"))
    with contextlib.ExitStack() as stack:
        if index == "off":
            config = deployed_practice  # packages_timeout_seconds is 0 in tests
        elif index == "refused":
            config = replace(deployed_practice, packages_timeout_seconds=5, package_index_url=f"http://127.0.0.1:{free_port()}/simple")
        else:
            served = stack.enter_context(package_index(only_pandas_index()))
            config = replace(deployed_practice, packages_timeout_seconds=5, package_index_url=served.url)
        with caplog.at_level("INFO", logger="diagnostics"):
            diagnostics.run(config)
    recorded = json.loads(config.model_output(layout.DIAGNOSTICS).read_text())
    check = recorded["dependency_check"]
    line = next(r.getMessage() for r in caplog.records if "outdated packages:" in r.getMessage())
    if index == "some":
        why = "not on the package index (HTTP 404)"
        assert check == {"status": "partial", "packages": total, "outdated": 1, "unknown": total - 1, "unknown_because": {why: total - 1}}
        assert line.endswith(f"outdated packages: pandas; unknown for {total - 1} of {total} ({why})")
        words = f"1 of the 1 packages looked up have a newer release; the newest version of some ({total - 1} of {total}) could not be looked up: {why}."
    else:
        why = OFF if index == "off" else REFUSED
        assert check == {"status": "unknown", "packages": total, "outdated": 0, "unknown": total, "unknown_because": {why: total}}
        assert line.endswith(f"outdated packages: unknown for {total} of {total} ({why})")  # was: "outdated packages: none"
        assert all(d["outdated"] is None and d["newest_unknown_because"] == why for d in recorded["dependencies"])
        words = f"The newest version of every package could not be looked up (all {total}): {why}."
    client = create_app(config).test_client()
    assert client.get("/diagnostics").get_json()["dependency_check"] == check
    page = client.get("/").get_data(as_text=True)
    assert f'<p class="muted">{html.escape(words)}</p>' in page
    reporting.run(config)
    pdf = " ".join(" ".join(page.extract_text() for page in PdfReader(config.model_output(layout.REPORT_PDF)).pages).split())
    assert words in pdf


def test_requirement_lines_are_parsed(tmp_path) -> None:
    path = tmp_path / "requirements.txt"
    path.write_text("# comment\npandas==3.1.1\nflask>=3.0  # web\nrequests\n-r other.txt\n")
    assert packages.read_requirements(path) == [("pandas", "3.1.1"), ("flask", "3.0"), ("requests", None)]


def test_confusion_matrix_png(deployed_practice: Config) -> None:
    result = reporting.run(deployed_practice)
    image = imread(deployed_practice.output_model_folder / "confusionmatrix.png")
    assert image.shape[0] > 400 and image.shape[1] > 500
    assert image.std() > 0.05  # not a blank picture
    matrix = result["confusion_matrix"]
    assert sum(map(sum, matrix)) == 1200
    assert result["version"] == "v0001"
