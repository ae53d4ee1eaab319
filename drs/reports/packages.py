"""The package-index client: required, installed and newest version of each requirement.

Hand-written: one HTTP request per package against the Simple API's JSON (PEP 691) instead of a pip process per
package, all bounded by packages_timeout_seconds; offline, the newest version is unknown (None) without slowing the run.

How the dependency check is shown and when a version is unknown: docs/reports.md (The PDF report).
"""

from __future__ import annotations

import concurrent.futures
import functools
import json
import logging
import re
import sys
import time
from importlib import metadata
from pathlib import Path
from typing import Any, NamedTuple
from urllib.parse import urlsplit

import requests
import urllib3
from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version

from drs.core import layout
from drs.core.configkeys import http_url
from drs.core.fileio import atomic_write_json, read_json
from drs.core.formatting import PackageRow
from drs.core.settings import Config, load_config

log = logging.getLogger("diagnostics")
INDEX_CACHE_SECONDS = 24 * 3600
INDEX_ACCEPT = "application/vnd.pypi.simple.v1+json"  # PEP 691's JSON form of the Simple API
INDEX_WORKERS = 4  # measured here: 2-8 connections take the same ~0.5 s for 12 packages; each costs a TLS handshake of CPU
INDEX_MAX_BYTES = 64 * 1024 * 1024  # a project page with thousands of files is a few MB
INDEX_RECEIVE_SECONDS = 1.0  # longest wait for one receive: how far past the limit a request (and interpreter exit) can run
PYTHON = ".".join(map(str, sys.version_info[:3]))  # whose Requires-Python a newest release must admit
REQUIREMENT_RE = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)\s*(?:\[[^\]]*\])?\s*(?:(==|>=|~=|<=|>|<)\s*([^\s;#,]+))?")


def read_requirements(path: Path) -> list[tuple[str, str | None]]:
    """(name, required version) for each requirement line."""
    found = []
    for line in path.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if not line or line.startswith("-"):
            continue
        match = REQUIREMENT_RE.match(line)
        if match:
            found.append((match.group(1), match.group(3)))
    return found


def _file_version(filename: str) -> Version | None:
    """The version a wheel or sdist file is of (its name's version field); None for other (legacy) formats."""
    if filename.endswith(".whl"):
        fields = filename[:-4].split("-")
        return _parsed(fields[1]) if len(fields) in (5, 6) else None
    for suffix in (".tar.gz", ".zip"):
        if filename.endswith(suffix) and "-" in filename:
            return _parsed(filename[: -len(suffix)].rpartition("-")[2])
    return None


@functools.lru_cache(maxsize=4096)
def _parsed(text: str) -> Version | None:
    """Cached: a page names each version in several files (numpy's has 4,400 files)."""
    try:
        return Version(text)
    except InvalidVersion:
        return None


@functools.lru_cache(maxsize=256)
def _admits(requires_python: str, python: str) -> bool:
    """Whether a file's Requires-Python admits `python`; an unreadable one does not exclude the file.
    Cached: a page has a handful of distinct values over thousands of files."""
    try:
        return SpecifierSet(requires_python).contains(python, prereleases=True)
    except InvalidSpecifier:
        return True


def newest_release(project: dict[str, Any], python: str = PYTHON) -> str | None:
    """Highest final (not pre- or dev-) release by PEP 440 order, of a PEP 691 project page, that has
    a file neither yanked nor requiring another Python than `python`; pure.

    Yanking (PEP 592) and Requires-Python are per file, so versions come from the file names;
    PEP 700's "versions" list is used only on a page without files. Requires-Python keeps the
    answer the one `pip index versions` gave: numpy 2.5 (Python >= 3.12) is not newer for 3.11."""
    usable: dict[Version, bool] = {}
    files, versions = project.get("files"), project.get("versions")
    for entry in files if isinstance(files, list) else []:
        version = _file_version(str(entry.get("filename", ""))) if isinstance(entry, dict) else None
        if version is not None:
            ok = not entry.get("yanked") and _admits(str(entry.get("requires-python") or ""), python)
            usable[version] = usable.get(version, False) or ok
    if not usable and isinstance(versions, list):
        usable = {v: True for v in map(_parsed, map(str, versions)) if v is not None}
    final = [v for v, ok in usable.items() if ok and not v.is_prerelease]
    return str(max(final)) if final else None


class Newest(NamedTuple):
    """A package's newest version, or why it is unknown (a few plain words, the same for every package they fit)."""

    version: str | None
    unknown_because: str | None = None


UNREACHABLE = "the package index could not be reached"
NOT_IN_TIME = "the package index did not answer within packages_timeout_seconds"


def unreachable_words(exc: requests.ConnectionError) -> str:
    """Refused, no such host, or no connection in time, as the reason every package of this index shares."""
    if isinstance(exc, requests.ConnectTimeout):
        return f"{UNREACHABLE}: no connection in time"
    text = str(exc)
    if "refused" in text.lower():
        return f"{UNREACHABLE}: connection refused"
    if "resolve" in text or "not known" in text or "getaddrinfo" in text:
        return f"{UNREACHABLE}: its host name could not be resolved"
    return f"{UNREACHABLE}: the connection failed ({type(exc).__name__})"


def _get_json(session: requests.Session, url: str, deadline: float) -> tuple[dict[str, Any] | None, str | None]:
    """The JSON body at `url`, read within `deadline` (time.monotonic()), or None and why not.

    The body is read as it arrives so that a server answering slowly is cut off at the
    deadline: requests' own timeout bounds each connect and each receive, not the whole
    answer, so each receive is bounded by INDEX_RECEIVE_SECONDS and the deadline is checked
    after each one; no thread outlives the limit by more than one receive (a slow DNS lookup
    is not bounded by either)."""
    left = deadline - time.monotonic()
    if left <= 0:
        return None, NOT_IN_TIME
    try:
        with session.get(url, timeout=(left, min(left, INDEX_RECEIVE_SECONDS)), stream=True) as response:
            if response.status_code != 200 or "json" not in response.headers.get("Content-Type", ""):
                log.debug(
                    "package index: %s answered %s %s", url.rsplit("/", 2)[-2], response.status_code, response.headers.get("Content-Type")
                )
                if response.status_code == 404:
                    return None, "not on the package index (HTTP 404)"
                if response.status_code != 200:
                    return None, f"the package index answered HTTP {response.status_code}"
                return None, "the package index did not answer in JSON (PEP 691)"
            body = bytearray()
            while chunk := response.raw.read1(64 * 1024, decode_content=True):  # read1: at most one receive
                body += chunk
                if time.monotonic() > deadline:
                    return None, NOT_IN_TIME
                if len(body) > INDEX_MAX_BYTES:
                    return None, f"the package index's answer is larger than {INDEX_MAX_BYTES // 2**20} MB"
        answer = json.loads(body)
        return (answer, None) if isinstance(answer, dict) else (None, "the package index's answer is not a PEP 691 page")
    except requests.ConnectionError as exc:
        log.debug("package index: %s not answered: %s", url.rsplit("/", 2)[-2], type(exc).__name__)
        return None, unreachable_words(exc)
    except (requests.Timeout, urllib3.exceptions.TimeoutError, TimeoutError):
        return None, NOT_IN_TIME
    except (
        requests.RequestException,
        urllib3.exceptions.HTTPError,
        OSError,
        ValueError,
        RecursionError,
    ) as exc:  # raw reads raise urllib3's own; RecursionError: JSON nested too deep
        log.debug("package index: %s not answered: %s", url.rsplit("/", 2)[-2], type(exc).__name__)
        return None, f"the package index's answer could not be read ({type(exc).__name__})"


def newest_version(session: requests.Session, index_url: str, name: str, deadline: float) -> Newest:
    """Newest release of `name` on the index's Simple API (JSON form), or why it is unknown by `deadline`."""
    project, why = _get_json(session, f"{index_url}/{canonicalize_name(name)}/", deadline)
    if project is None:
        return Newest(None, why)
    found = newest_release(project)
    return Newest(found) if found else Newest(None, f"no final release for Python {PYTHON} on the package index")


def ask_index(names: list[str], index_url: str, timeout: float) -> dict[str, Newest]:
    """Newest version of each name, asked concurrently over one session; all within `timeout` seconds.

    One HTTP request per package (about 0.1-0.2 s) replaces a `pip index versions`
    process (about a second of CPU each), which made the first redeploy of a day slow."""
    if not names:
        return {}
    deadline = time.monotonic() + timeout
    workers = min(INDEX_WORKERS, len(names))
    session = requests.Session()
    session.headers.update({"Accept": INDEX_ACCEPT, "User-Agent": "drs-diagnostics"})
    session.mount(index_url, requests.adapters.HTTPAdapter(pool_connections=1, pool_maxsize=workers))
    pool = concurrent.futures.ThreadPoolExecutor(max_workers=workers, thread_name_prefix="index")
    try:
        futures = {pool.submit(newest_version, session, index_url, name, deadline): name for name in names}
        done, _ = concurrent.futures.wait(futures, timeout=max(0.0, deadline - time.monotonic()) + 0.5)
        return {futures[f]: f.result() if f in done else Newest(None, NOT_IN_TIME) for f in futures}
    finally:
        pool.shutdown(wait=False, cancel_futures=True)  # not waited for here; at exit for at most one receive
        session.close()


def without_credentials(url: str) -> str:
    """`url` without a user and password (a PIP_INDEX_URL may carry them): what the cache file may record."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    netloc = f"[{host}]" if ":" in host else host
    return parts._replace(netloc=netloc + (f":{parts.port}" if parts.port else "")).geturl()


class Index(NamedTuple):
    """The package index to ask, or None with why none is asked."""

    url: str | None
    why_not: str = ""


def index_url(config: Config) -> Index:
    """`package_index_url` when set, else the index pip itself uses: PIP_INDEX_URL, else the `index-url` of pip's
    configuration files, else pip's built-in default (read from pip, so no index is named here). One that is not
    http(s) (a folder pip reads) is not asked."""
    if config.package_index_url:
        return Index(config.package_index_url)
    try:
        from pip._internal.configuration import Configuration  # pip's own reading of its files and PIP_* variables
        from pip._internal.models.index import PyPI

        settings = Configuration(isolated=False)
        settings.load()
        found = dict(settings.items())
    except Exception as exc:  # pip absent or changed: say so, ask nothing
        return Index(None, f"not asked (pip's index is unknown: {type(exc).__name__}; set package_index_url)")
    value = next((str(found[k]) for k in (":env:.index-url", "install.index-url", "global.index-url") if found.get(k)), PyPI.simple_url)
    url = http_url(value)
    return Index(url) if url else Index(None, "not asked (pip's index is not an http(s) URL; set package_index_url)")


def newest_versions(names: list[str], timeout: float, cache_file: Path, index_url: str | None) -> dict[str, str | None]:
    """Newest version of each package (None: unknown); see look_up."""
    return {name: found.version for name, found in look_up(names, timeout, cache_file, index_url).items()}


def look_up(
    names: list[str], timeout: float, cache_file: Path, index_url: str | None, why_not: str = "not asked (no package index)"
) -> dict[str, Newest]:
    """Newest version of each package, or why it is unknown; an answer the same index gave within INDEX_CACHE_SECONDS is reused.

    Newest versions change far less often than the cron job runs, so the index is
    asked at most once a day per package (an unanswered one is asked again)."""
    if timeout <= 0:
        return {name: Newest(None, "not asked (packages_timeout_seconds is 0)") for name in names}
    if index_url is None:
        return {name: Newest(None, why_not) for name in names}
    now = time.time()
    cache_key = without_credentials(index_url)
    cache = read_json(cache_file) or {}  # none yet, or unreadable: every package is asked
    fresh = {
        n: e["newest"]
        for n, e in cache.items()
        if isinstance(e, dict) and e.get("index") == cache_key and 0 <= now - e.get("asked_at", 0) < INDEX_CACHE_SECONDS
    }
    asked = ask_index([name for name in names if name not in fresh], index_url, timeout)
    newest = {name: Newest(fresh[name]) if name in fresh else asked[name] for name in names}
    answered = {n: {"newest": v.version, "asked_at": now, "index": cache_key} for n, v in asked.items() if v.version is not None}
    if answered:
        atomic_write_json(cache_file, {**{n: e for n, e in cache.items() if n in fresh}, **answered})
    log.debug("package index %s: %d cached, %d asked, %d answered", urlsplit(index_url).hostname, len(fresh), len(asked), len(answered))
    return newest


def installed_version(name: str) -> str | None:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def outdated_packages_list(config: Config | None = None) -> list[PackageRow]:
    """Per requirement: required, installed and newest version, and what differs.

    Index look-ups run in parallel with a time limit; a newest version the index did not give is
    None (unknown) with `newest_unknown_because`, and then `outdated` is None too (not known), never False.
    """
    config = config if config is not None else load_config()
    requirements = read_requirements(config.project_root / layout.REQUIREMENTS)
    index = index_url(config) if config.packages_timeout_seconds > 0 else Index(None)
    if index.url is None and config.packages_timeout_seconds > 0:
        log.warning("newest versions %s", index.why_not)
    newest = look_up(
        [name for name, _ in requirements],
        config.packages_timeout_seconds,
        config.model_output(layout.PACKAGE_INDEX_CACHE),
        index.url,
        index.why_not,
    )
    rows: list[PackageRow] = []
    for name, required in requirements:
        installed = installed_version(name)
        latest, why = newest[name]
        rows.append(
            {
                "package": name,
                "required": required,
                "installed": installed,
                "newest": latest,
                "newest_status": "known" if latest else "unknown",
                "newest_unknown_because": why,
                "differs_from_pin": bool(required and installed and installed != required),
                "outdated": bool(installed and latest != installed) if latest else None,
            }
        )
    return rows
