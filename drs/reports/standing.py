"""The current ranking as one artifact: which model ranked which data, when and why (`risklist.json`).

drs/reports/reporting.py ranks the active clients once per event that changes the deployed model or the ingested data
(`reporting.refresh`: a deployment by the pipeline or by hand, a rollback, new data kept, ingestion by hand) and
writes risklist.csv, its stores (risklist.sqlite, clientrows.sqlite), changes.json and report.pdf, then this file last, naming the model version and its sha256,
the data (name, sha256, size, mtime) and the stamps of the files it wrote. Every view reads the files and this
record and says what it names; `problems` says, from stats alone (a sha256 only when a stamp moved), whether the
artifact still matches the deployed model and the current data, so that a view never silently mixes two stories.

Standard library only: the web workers read it on every request.

More: docs/reports.md (One current ranking, read by every view).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, TypedDict

from drs.core import layout
from drs.core.fileio import atomic_write_json, read_json, sha256_file
from drs.core.settings import Config
from drs.production.versions import Deployment

SHORT = 12  # the sha256 prefix the views show
# the files of one ranking, each stamped in risklist.json
WRITTEN = (layout.RISK_LIST, layout.RISK_STORE, layout.CLIENT_ROWS, layout.CHANGES, layout.REPORT_PDF)


class Stamp(TypedDict):
    """A file as risklist.json stamps it: stat alone tells whether it was written again."""

    size: int
    mtime_ns: int


class DataIdentity(TypedDict, total=False):
    """The data a ranking was ranked from, as risklist.json names it ({} when there was none)."""

    name: str
    sha256: str
    size: int
    mtime_ns: int


class RefreshFacts(TypedDict):
    """What reporting adds of its ranking to risklist.json: why it ranked, its counts, its id in the run history."""

    reason: str
    active_clients: int
    above_half: int
    ranking_id: int | None


class Standing(RefreshFacts):
    """risklist.json as written (its keys are what the views and older files read)."""

    model_version: str
    model_sha256: str | None
    deployed_at: str | None
    data: DataIdentity
    ranked_at: str
    files: dict[str, Stamp | None]


def stamp(path: Path) -> Stamp | None:
    """size and mtime_ns of a file; None when it is not there."""
    try:
        st = path.stat()
    except OSError:
        return None
    return {"size": st.st_size, "mtime_ns": st.st_mtime_ns}


def data_identity(path: Path) -> DataIdentity:
    """The data a ranking was ranked from: its name, sha256, size and mtime."""
    found: DataIdentity = {"name": path.name, "sha256": sha256_file(path)}
    stat = stamp(path)
    if stat is not None:
        found["size"], found["mtime_ns"] = stat["size"], stat["mtime_ns"]
    return found


def write(config: Config, deployment: Deployment, data: DataIdentity, facts: RefreshFacts) -> Standing:
    """Record the ranking just written (after risklist.csv, the stores, changes.json and report.pdf): the commit point of a refresh."""
    record: Standing = {
        "model_version": deployment.label,
        "model_sha256": deployment.model_sha256,
        "deployed_at": deployment.meta.get("deployed_at"),
        "data": data,
        "ranked_at": layout.utc_now(),
        **facts,
        "files": {name: stamp(config.model_output(name)) for name in WRITTEN},
    }
    atomic_write_json(config.model_output(layout.RISK_META), record)
    return record


def read(config: Config) -> dict[str, Any] | None:
    """risklist.json, or None when there is none (or it cannot be read: `problems` says so)."""
    return read_json(config.model_output(layout.RISK_META))


def short(meta: dict[str, Any] | None) -> str:
    return str(((meta or {}).get("data") or {}).get("sha256") or "")[:SHORT]


def words(meta: dict[str, Any] | None) -> str:
    """'Ranked by v0003 from finaldata.csv (data 1a2b3c4d5e6f)': how every view names its ranking."""
    if not meta:
        return "Ranked by an unknown model from unknown data (no risklist.json)"
    return f"Ranked by {meta.get('model_version')} from {(meta.get('data') or {}).get('name')} (data {short(meta)})"


def _data_changed(recorded: DataIdentity, path: Path) -> bool:
    now = stamp(path)
    if now is None:
        return True
    if recorded.get("size") == now["size"] and recorded.get("mtime_ns") == now["mtime_ns"]:
        return False
    return bool(now["size"] != recorded.get("size") or sha256_file(path) != recorded.get("sha256"))


def problems(config: Config, meta: dict[str, Any] | None, deployment: Deployment | None) -> list[str]:
    """Why the artifact does not describe the deployed model's ranking of the current data; [] when it does."""
    if deployment is None:
        return []
    if meta is None:
        return [f"no {layout.RISK_META}: the list has not been ranked since this version of the project; run reporting.py"]
    found = []
    if meta.get("model_version") != deployment.label or meta.get("model_sha256") != deployment.model_sha256:
        found.append(f"the list was ranked by {meta.get('model_version')}, but {deployment.label} is deployed; run reporting.py")
    data: DataIdentity = meta.get("data") or DataIdentity()
    final = config.final_data_csv
    if data.get("name") != final.name:
        found.append(f"the list was ranked from {data.get('name')}, not from the ingested {final.name}")
    elif not final.exists():
        found.append(f"{final.name} is gone (the list was ranked from it); run ingestion.py")
    elif _data_changed(data, final):
        found.append(f"{final.name} changed after the list was ranked; run reporting.py")
    for name, recorded in (meta.get("files") or {}).items():
        now = stamp(config.model_output(name))
        if now is None or not config.model_output(name).is_file():
            found.append(f"{name} is missing (the last refresh failed, or it was removed); run reporting.py")
        elif now != recorded:
            found.append(f"{name} was written apart from {layout.RISK_META} (a refresh in progress, or a copy by hand)")
    return found


def headers(meta: dict[str, Any] | None, found: list[str] | None = None) -> dict[str, str]:
    """The served CSV's response headers: which model ranked it, from which data, when, and whether it is stale
    (`found`: what `problems` says; X-DRS-Problems joins them with '; ', as the page does)."""
    if not meta:
        return {"X-DRS-Stale": "true", "X-DRS-Problems": f"no {layout.RISK_META}; run reporting.py"}
    data = meta.get("data") or {}
    said = {
        "X-DRS-Model-Version": str(meta.get("model_version")),
        "X-DRS-Data": str(data.get("name")),
        "X-DRS-Data-Sha256": str(data.get("sha256")),
        "X-DRS-Ranked-At": str(meta.get("ranked_at")),
        "X-DRS-Stale": "true" if found else "false",
    }
    if found:
        said["X-DRS-Problems"] = "; ".join(found).encode("ascii", "backslashreplace").decode("ascii")
    return said
