"""The source files the run history remembers: `seen_files`, the verdict on each file's content (so that a file the drift
check found harmless is not ingested again on every cron tick, and a rejected file is tried again only when its content
changes), the rule of which verdicts still hold (`judged_files`), and `arrivals`, when the system first saw each file (the
order ingestion takes them in: drs/data/sources.py `arrival_plan`). See docs/drift.md#new-data and docs/data.md.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import TypedDict, cast

from drs.core.stamps import Arrival, FileStamp
from drs.history import db
from drs.history.db import StrPath


class Verdict(StrEnum):
    """What was decided about one source file: the `verdict` of its `seen_files` row."""

    REJECTED = "rejected"
    NO_DRIFT = "no drift"
    DEPLOYED = "deployed"
    NOT_PROMOTED = "not promoted"
    ROLLED_BACK = "rolled back"


class SeenFile(TypedDict):
    """One `seen_files` row: a source file's content and stamp, the verdict on it, and the version it was judged against."""

    name: str
    sha256: str  # "" for an entry refused unread
    size: int
    mtime_ns: int
    verdict: str  # a Verdict
    judged_against: int | None
    reason: str | None
    run_id: int | None
    seen_at: str


SEEN_COLUMNS = ("name", "sha256", "size", "mtime_ns", "verdict", "judged_against", "reason", "run_id", "seen_at")


def record_seen(path: StrPath, entries: Iterable[SeenFile]) -> None:
    """Append these verdicts in one transaction (rows are never rewritten: `judged_files` weighs every one)."""
    rows = [{**e, "verdict": str(e["verdict"])} for e in entries]
    with db.writing(path) as conn:
        conn.executemany(
            f"INSERT INTO seen_files ({', '.join(SEEN_COLUMNS)}) VALUES ({', '.join(':' + c for c in SEEN_COLUMNS)})",
            rows,
        )


def seen_files(path: StrPath) -> list[SeenFile]:
    """Every verdict recorded, oldest first."""
    with db.reading(path) as conn:
        if conn is None:
            return []
        return [
            SeenFile(
                name=r["name"],
                sha256=r["sha256"],
                size=r["size"],
                mtime_ns=r["mtime_ns"],
                verdict=r["verdict"],
                judged_against=r["judged_against"],
                reason=r["reason"],
                run_id=r["run_id"],
                seen_at=r["seen_at"],
            )
            for r in conn.execute(f"SELECT {', '.join(SEEN_COLUMNS)} FROM seen_files ORDER BY rowid")
        ]


@dataclass(frozen=True)
class Judged:
    """The source files that need no new verdict: by (name, size, mtime_ns), by (name, sha256) once a touched file is
    hashed, and by name alone (the files of a version deployed before file records were kept)."""

    keys: frozenset[tuple[str, int, int]]
    hashes: frozenset[tuple[str, str]]
    by_name: frozenset[str]


def judged_files(
    entries: Iterable[SeenFile],
    deployed_version: int | None,
    retry_not_promoted: bool = False,
    deployed_files: Mapping[str, FileStamp | None] | None = None,
) -> Judged:
    """The files whose current content needs no new verdict; pure (drs/data/sources.py `files_needing_verdict` looks).

    A rejection holds until the content changes; any other verdict holds while the version it was judged against stays
    deployed (`retry_not_promoted`, for --force-deploy, drops the gate's refusals). The files the deployed version was
    trained on (`deployed_files`: name -> its record with sha256, size and mtime_ns, or None for a version deployed
    before records were kept, trusted by name) need none either."""
    keys: set[tuple[str, int, int]] = set()
    hashes: set[tuple[str, str]] = set()
    for entry in entries:
        still_valid = entry["verdict"] == Verdict.REJECTED or (
            deployed_version is not None
            and entry["judged_against"] == deployed_version
            and not (retry_not_promoted and entry["verdict"] == Verdict.NOT_PROMOTED)
        )
        if still_valid:
            keys.add((entry["name"], entry["size"], entry["mtime_ns"]))
            hashes.add((entry["name"], entry["sha256"]))
    by_name: set[str] = set()
    for name, stamp in (deployed_files or {}).items():
        if stamp is None:
            by_name.add(name)
        else:
            keys.add((name, stamp["size"], stamp["mtime_ns"]))
            hashes.add((name, stamp["sha256"]))
    return Judged(frozenset(keys), frozenset(hashes), frozenset(by_name))


ARRIVAL_COLUMNS = ("name", "seq", "sha256", "size", "mtime_ns", "first_seen_at", "arrived_at", "how")


def arrivals(path: StrPath, folder: str) -> list[Arrival]:
    """The recorded arrivals of the files of input folder `folder`, in arrival order (none before anything was recorded)."""
    with db.reading(path, since=db.ARRIVALS) as conn:
        if conn is None:
            return []
        query = f"SELECT {', '.join(ARRIVAL_COLUMNS)} FROM arrivals WHERE folder = ? ORDER BY seq"
        return [cast(Arrival, dict(r)) for r in conn.execute(query, (folder,))]  # the columns selected


def _columns(row: Arrival) -> Mapping[str, object]:
    """An arrival read by column name (ARRIVAL_COLUMNS are its keys)."""
    return row


def record_arrivals(path: StrPath, folder: str, rows: Iterable[Arrival]) -> None:
    """Write these arrivals of `folder`'s files (each replaces the row of its name); nothing is opened when there are none."""
    entries = [{**{k: row[k] for k in ARRIVAL_COLUMNS}, "folder": folder} for row in map(_columns, rows)]
    if not entries:
        return
    with db.writing(path) as conn:
        conn.executemany(
            f"INSERT OR REPLACE INTO arrivals (folder, {', '.join(ARRIVAL_COLUMNS)})"
            f" VALUES (:folder, {', '.join(':' + k for k in ARRIVAL_COLUMNS)})",
            entries,
        )
