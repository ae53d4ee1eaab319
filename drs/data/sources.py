"""The source folder: which entries are source files, which are refused unopened, which still need a verdict, and the
order they arrived in (the order finaldata.csv takes them in: `arrival_plan`, recorded in the history's `arrivals`).

Light on purpose (no pandas or polars): the cron tick that finds nothing new runs this and nothing heavier.
docs/data.md tells the arrival order and the names refused; docs/stages.md which files need a verdict.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

from drs.core import ids
from drs.core.errors import StageError
from drs.core.fileio import atomic_write_json, sha256_file
from drs.core.layout import utc_now
from drs.core.stamps import Arrival, FileStamp
from drs.history import batches as batch_store
from drs.history import files as file_store
from drs.history.record import Repeat, Resent  # the run record's parts, declared with it

GONE = "removed from the input folder; the rows ingested from it are kept"
ARRIVING = "being written again (modified less than settle_seconds ago); the rows ingested from it are kept until it settles"

log = logging.getLogger("sources")
_told: set[str] = set()  # names already said to be skipped in this process (one line a name, however often it lists)

# Suffixes copy tools give a file while they write it (browsers, rsync --partial, scp clients, editors).
IN_FLIGHT_SUFFIXES = (".tmp", ".part", ".partial", ".crdownload", ".download", ".filepart")


def is_in_flight_name(name: str) -> bool:
    """A name a copy tool uses while writing: hidden (rsync's `.name.XXXXXX`), `~` at either end (editors,
    Office's `~$name`), or a temporary suffix anywhere among its suffixes (`q5.csv.part`, `q5.part.csv`)."""
    lowered = name.lower()
    return lowered.startswith((".", "~")) or lowered.endswith("~") or any(s in IN_FLIGHT_SUFFIXES for s in Path(lowered).suffixes)


def is_candidate(name: str) -> bool:
    """A name ending in .csv (any case) that no copy tool is still writing; everything else, such as a stray `Icon\\r`, is ignored."""
    return name.lower().endswith(".csv") and not is_in_flight_name(name)


def is_safe_name(name: str) -> bool:
    """A name every output can hold and every reader sees as it is: valid UTF-8 (Python gives the bytes of a name that
    is not as lone surrogates, U+DC80 to U+DCFF) with no control, bidirectional or invisible format character: the id
    rule of drs/core/ids.py. A line break would write two lines into ingestedfiles.txt and forge log lines; U+202E would show
    another name."""
    return not ids.has_control(name)


def skipped_line(name: str) -> str:
    """The log line for a file whose name is refused (escapes shown, so the line itself is safe)."""
    return f"skipping a file whose name cannot be shown safely: {name!r} (rename it)"


def list_source_files(folder: Path) -> list[Path]:
    """Candidate CSV files in name order (a stable listing; the row order of finaldata.csv is `arrival_plan`'s); a
    candidate whose name is not safe (`is_safe_name`) is left out and named once in the log."""
    if not folder.is_dir():
        raise StageError(f"input folder {folder} does not exist")
    files = []
    for entry in folder.iterdir():
        if not is_candidate(entry.name):
            continue
        if is_safe_name(entry.name):
            files.append(entry)
        elif entry.name not in _told:
            _told.add(entry.name)
            log.warning("%s", skipped_line(entry.name))
    return sorted(files, key=lambda p: p.name)


def settling(paths: Iterable[Path], settle_seconds: float, now: float | None = None, complete: Mapping[str, str] | None = None) -> set[str]:
    """Names of the files modified less than `settle_seconds` ago: perhaps still being copied, left for a later run.

    `complete` maps names to the sha256 of files known whole (the batches drs/data/dbsource.py renamed into place): such a file
    with that content needs no settling."""
    if settle_seconds <= 0:
        return set()
    now = time.time() if now is None else now
    complete = complete or {}
    young = set()
    for path in paths:
        try:
            if now - path.stat().st_mtime < settle_seconds and not (path.name in complete and sha256_file(path) == complete[path.name]):
                young.add(path.name)
        except OSError:
            continue  # gone meanwhile: whoever opens it says so
    return young


@dataclass(frozen=True)
class SourceListing:
    """The input folder as a run sees it: files to read now, and files left to settle."""

    ready: list[Path]
    waiting: list[str]


def list_ready_files(folder: Path, settle_seconds: float, now: float | None = None, history_db: Path | None = None) -> SourceListing:
    """The candidate files, less those still settling (named once in the log by the caller); with `history_db`, the
    batches the system wrote itself (recorded there) need no settling."""
    files = list_source_files(folder)
    young = settling(files, settle_seconds, now)
    if young and history_db is not None:
        young = settling([p for p in files if p.name in young], settle_seconds, now, batch_store.self_written(history_db))
    return SourceListing([p for p in files if p.name not in young], sorted(young))


def refusal(path: Path, folder: Path) -> str | None:
    """Why an entry of the input folder is refused without being opened (a link out of the folder,
    a broken link, a directory, a pipe or device); None for a file to read. Nothing outside the input folder is ever opened."""
    if path.is_symlink():
        target, inside = os.path.realpath(path), os.path.realpath(folder)
        if os.path.commonpath([target, inside]) != inside:
            return "is a symlink pointing outside the input folder"
        if not os.path.exists(target):
            return "is a symlink to a file that does not exist"
    if path.is_dir():
        return "is a directory, not a file"
    if not path.is_file():  # a pipe, socket or device: opening it could block the run, lock held
        return "is not a regular file (a pipe, socket or device)"
    return None


def waiting_line(name: str, settle_seconds: float) -> str:
    """The log line for a file left to settle (the tick's step 2 and ingestion say the same)."""
    return f"waiting for {name} to settle (modified less than {settle_seconds:g}s ago); it is left for a later run"


def ingestion_record(path: Path, folder: Path) -> dict[str, Any] | None:
    """The last ingestion record (ingestionrecord.json), if it is one of `folder`'s: the practice and production
    configs share the output folder, so a record of another input folder says nothing about this one."""
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(record, dict) or record.get("input_folder") != str(folder) or not isinstance(record.get("files"), list):
        return None
    record["files"] = [f for f in record["files"] if isinstance(f, dict)]
    return record


def recorded_files(path: Path, folder: Path) -> list[dict[str, Any]]:
    """The file records of `folder`'s last ingestion (none when there was none or it cannot be read)."""
    record = ingestion_record(path, folder)
    return record["files"] if record else []


def mark_removed(path: Path, folder: Path, present: set[str], note: str) -> list[dict[str, Any]]:
    """The accepted files of the last ingestion of `folder` that left it since, marked `kept` with `note` in its
    record (rewritten only when one is new), so that a removal is logged and recorded once, by the first run that sees it."""
    record = ingestion_record(path, folder)
    if record is None:
        return []
    removed = [f for f in record["files"] if f.get("status") == "accepted" and not f.get("kept") and f.get("name") not in present]
    if removed:
        for f in removed:
            f["kept"] = note
        atomic_write_json(path, record)
    return removed


def needs_verdict(path: Path, folder: Path, judged: file_store.Judged) -> bool:
    """Whether the entry at `path` still needs a verdict, given the history's `judged` files; hashes only touched files.

    An entry refused unread was judged if it was refused before: there is nothing to compare, so it is not
    retried. A file that vanishes meanwhile needs one (ingestion names it)."""
    if refusal(path, folder) is not None:
        return (path.name, "") not in judged.hashes
    try:
        stat = path.stat()
        if (path.name, stat.st_size, stat.st_mtime_ns) in judged.keys:
            return False
        return (path.name, sha256_file(path)) not in judged.hashes  # touched but unchanged: judged
    except OSError:
        return True


def files_needing_verdict(
    files: list[Path],
    folder: Path,
    history_db: Path,
    deployed_files: Mapping[str, FileStamp | None],
    deployed_version: int | None,
    retry_not_promoted: bool = False,
) -> list[Path]:
    """Of `files`, those whose current content the deployed version was neither trained on nor judged against
    (drs/history/files.py `judged_files`, the rule): one history query, and hashes only for touched files."""
    judged = file_store.judged_files(file_store.seen_files(history_db), deployed_version, retry_not_promoted, deployed_files)
    return [p for p in files if p.name not in judged.by_name and needs_verdict(p, folder, judged)]


# Why a file has its place in the arrival order (the `how` of its arrivals row).
ARRIVED = "arrived"  # first seen by this system
CHANGED = "changed"  # its content changed: its rows are newer than everything before
LABELS_FILLED = "labels filled in"  # its only change is labels filled in (drs/data/ingest.py labels_filled_in): same rows, same place
FOUND = "found before arrivals were recorded"  # already ingested when the record began (migration)


class Stamp(NamedTuple):
    """A source file's content and time stamp as one ingestion read it."""

    name: str
    sha256: str
    size: int
    mtime_ns: int


@dataclass
class ArrivalPlan:
    """Where each file of an ingestion goes in the row order, what to record, and what to tell (pure data)."""

    order: dict[str, int]  # name -> arrival sequence number: finaldata.csv takes the files in this order
    record: list[Arrival]  # arrivals rows to write (new, changed or touched files)
    resent: list[Resent]  # a copy of another file, or a file touched with the same content
    first_record: bool  # nothing was recorded for this folder before: every file was ordered by the fallback rule

    def key(self, name: str) -> tuple[int, str]:
        return (self.order.get(name, 0), name)


NS_PER_SECOND = 1_000_000_000


def arrival_plan(
    known: list[Arrival],
    files: list[Stamp],
    ingested_before: set[str],
    now: str | None = None,
    labels_only: frozenset[str] = frozenset(),
) -> ArrivalPlan:
    """The arrival order of `files`, given the `known` arrivals of their folder (drs/history/files.py `arrivals`); pure.

    A known file keeps its place while its content is the same (a touch is only noted), and when its only change is
    labels filled in (`labels_only` names those: the same rows, no newer than before, so a client's newer row in a
    later file stays its latest); a file whose content otherwise changed, and every file never seen, go after everything known, in the order of their modification time to
    the whole second, then name (the rule for files first seen together, and for the first ingestion ever: files
    written in the same second, as a `git clone` or a bulk copy writes them, count as written together and go by
    name, since nanoseconds there say only the order the copier happened to take). `ingested_before`
    names the files an ingestion from before the record existed took: at the first record they come first (by the
    same rule; they were there before any new file) and are recorded as found then."""
    now = now or utc_now()
    by_name = {k["name"]: k for k in known}
    by_content: dict[str, str] = {}
    for k in known:
        by_content.setdefault(k["sha256"], k["name"])
    order = {k["name"]: int(k["seq"]) for k in known}
    record: list[Arrival] = []
    resent: list[Resent] = []
    fresh: list[Stamp] = []
    for stamp in files:
        old = by_name.get(stamp.name)
        if old is not None and old["sha256"] != stamp.sha256 and stamp.name in labels_only:
            record.append(
                {**old, "sha256": stamp.sha256, "size": stamp.size, "mtime_ns": stamp.mtime_ns, "arrived_at": now, "how": LABELS_FILLED}
            )
            if by_content.get(old["sha256"]) == stamp.name:
                del by_content[old["sha256"]]
            by_content.setdefault(stamp.sha256, stamp.name)
        elif old is None or old["sha256"] != stamp.sha256:
            fresh.append(stamp)
        elif (old["size"], old["mtime_ns"]) != (stamp.size, stamp.mtime_ns):
            record.append({**old, "size": stamp.size, "mtime_ns": stamp.mtime_ns})
            resent.append(Resent(name=stamp.name, of=stamp.name, how="touched"))
    for stamp in fresh:  # a changed file no longer holds its old content: nothing is a copy of that
        old = by_name.get(stamp.name)
        if old is not None and by_content.get(old["sha256"]) == stamp.name:
            del by_content[old["sha256"]]
    following = max(order.values(), default=0)
    first = not known  # at the first record, the files an earlier ingestion took were there before the new ones
    for stamp in sorted(fresh, key=lambda s: (first and s.name not in ingested_before, s.mtime_ns // NS_PER_SECOND, s.name)):
        following += 1
        old = by_name.get(stamp.name)
        how = CHANGED if old is not None else FOUND if first and stamp.name in ingested_before else ARRIVED
        order[stamp.name] = following
        record.append(
            {
                "name": stamp.name,
                "sha256": stamp.sha256,
                "size": stamp.size,
                "mtime_ns": stamp.mtime_ns,
                "seq": following,
                "arrived_at": now,
                "how": how,
                "first_seen_at": old["first_seen_at"] if old else now,
            }
        )
        twin = by_content.get(stamp.sha256)
        if twin is not None and twin != stamp.name:
            resent.append(Resent(name=stamp.name, of=twin, how="copy"))
        by_content.setdefault(stamp.sha256, stamp.name)
    return ArrivalPlan(order, record, resent, first_record=first)


def resent_line(entry: Resent) -> str:
    """A re-sent file in plain words (the log and the run's message say the same)."""
    if entry["how"] == "touched":
        return f"{entry['name']} was sent again unchanged (same content, new time stamp); its rows keep their place"
    return f"{entry['name']} is a copy of {entry['of']} (same content); it adds no rows"


def repeat_line(entry: Repeat) -> str:
    """A file whose rows are already in from another file, in plain words."""
    if entry["whole"]:
        return f"every row of {entry['name']} repeats {entry['of']} ({entry['rows']} row(s)); it adds no rows"
    return f"{entry['name']} repeats {entry['rows']} row(s) of {entry['of']}; those are kept once, where {entry['of']} put them"


def repeats_to_tell(resent: list[Resent], repeats: list[Repeat]) -> list[Repeat]:
    """The repeats not already told as a copy (a copy of a file repeats all its rows)."""
    copies = {(r["name"], r["of"]) for r in resent}
    return [r for r in repeats if (r["name"], r["of"]) not in copies]


def file_notes(resent: list[Resent], repeats: list[Repeat]) -> list[str]:
    """What a run's message says about re-sent files and files all of whose rows repeat another's (a copy named once)."""
    return [resent_line(r) for r in resent] + [repeat_line(r) for r in repeats_to_tell(resent, repeats) if r["whole"]]


def touched_again(arrivals_record: Path, folder: Path, paths: Iterable[Path]) -> list[Resent]:
    """Of `paths` (files needing no verdict), those sent again with the content recorded for them, only their time stamp
    new: their new stamp is recorded, so each touch is told once. Hashes only files whose stamp differs from the record."""
    known = {k["name"]: k for k in file_store.arrivals(arrivals_record, str(folder))}
    touched: list[Arrival] = []
    for path in paths:
        old = known.get(path.name)
        try:
            stat = path.stat()
            if old is None or (stat.st_size, stat.st_mtime_ns) == (old["size"], old["mtime_ns"]) or stat.st_size != old["size"]:
                continue
            if sha256_file(path) == old["sha256"]:
                touched.append({**old, "mtime_ns": stat.st_mtime_ns})
        except OSError:
            continue
    file_store.record_arrivals(arrivals_record, str(folder), touched)
    return [Resent(name=t["name"], of=t["name"], how="touched") for t in touched]
