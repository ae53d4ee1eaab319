"""Atomic writes, checksums and the run lock.

A file is written to a temporary name in its own folder, flushed to disk and
then renamed over the target with `os.replace`, so a reader sees either the
old file or the new one, never half of one. It gets the mode the umask gives any new file
(0640 under `umask 027`), or 0600 for a secret. The run lock is a kernel lock
(`fcntl.flock`): it is released when its process dies, so a killed run never
blocks the next one.

Every writer of the project goes through here (and `read_json` is the one reader of a JSON record it wrote);
see docs/architecture.md (Principles) and docs/guarantees.md.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, NotRequired, TypedDict

from drs.core.layout import TMP_PREFIX, utc_now


class Holder(TypedDict):
    """What the run lock's holder records of itself in the lock file (its pid; its script and start when written)."""

    pid: int
    script: NotRequired[str]
    started_at: NotRequired[str]


class LockBusy(Exception):
    """Another process holds the run lock; `holder` is what it recorded of itself (lock_holder)."""

    def __init__(self, path: Path, holder: Holder | None = None):
        super().__init__(str(path))
        self.path, self.holder = Path(path), holder


class WriteError(OSError):
    """A write that failed (disk full, read-only folder); the file it meant to replace is unchanged."""

    def __init__(self, path: Path, cause: OSError):
        super().__init__(cause.errno, cause.strerror)
        self.path = Path(path)

    def __str__(self) -> str:
        return f"cannot write {self.path}: {self.strerror or 'error'}; the previous file is left as it was"


@contextlib.contextmanager
def _clear_write_errors(path: Path) -> Iterator[None]:
    """Name the file in any OSError (ENOSPC from write or fsync names no file)."""
    try:
        yield
    except WriteError:
        raise
    except OSError as exc:
        raise WriteError(path, exc) from exc


def current_umask() -> int:
    """The process's umask, read from /proc where it can be (setting it to read it would race other threads)."""
    try:
        with open("/proc/self/status", encoding="ascii") as handle:
            for line in handle:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    old = os.umask(0o077)  # no /proc: the classic read-by-setting, briefly the strictest mask
    os.umask(old)
    return old


def default_mode() -> int:
    """The mode a new file gets from open(): 0666 less the umask (0644 under 022, 0640 under 027)."""
    return 0o666 & ~current_umask()


def atomic_write_bytes(path: Path, data: bytes, mode: int | None = None) -> None:
    """Write `data` to `path` so that readers never see a partial file; mode as the umask says, or `mode` (0600 for a secret)."""
    with atomic_output(path, mode) as tmp, open(tmp, "wb") as handle:
        handle.write(data)


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: Path, obj: Any) -> None:
    atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=True, default=str) + "\n")


@contextlib.contextmanager
def atomic_output(path: Path, mode: int | None = None) -> Iterator[Path]:
    """Yield a temporary path to write to (for libraries that want a filename);
    it replaces `path` only if the block finishes without error. The temporary is created 0600
    (mkstemp) and given `mode` (default: what the umask allows, as for any new file) just before the rename,
    so a private file is never readable by others and the data is never more readable than the user asked."""
    path = Path(path)
    with _clear_write_errors(path):
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(prefix=TMP_PREFIX + path.name + ".", suffix=path.suffix, dir=path.parent)
        os.close(fd)
    try:
        with _clear_write_errors(path):
            yield Path(tmp_name)
            with open(tmp_name, "rb+") as handle:
                os.fsync(handle.fileno())
            os.chmod(tmp_name, default_mode() if mode is None else mode)
            os.replace(tmp_name, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp_name)
        raise
    fsync_dir(path.parent)


def fsync_dir(folder: Path) -> None:
    """Make a rename in `folder` durable."""
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def remove_stale_temporaries(folder: Path) -> int:
    """Delete the temporary files, links and folders a killed run left in `folder`; return how many.

    Call it only while holding the run lock: a temporary of a live run looks the same.
    """
    removed = 0
    if not Path(folder).is_dir():
        return 0
    for entry in Path(folder).iterdir():
        if entry.name.startswith(TMP_PREFIX):
            with contextlib.suppress(OSError):
                if entry.is_dir() and not entry.is_symlink():
                    shutil.rmtree(entry)
                else:
                    entry.unlink()
                removed += 1
    return removed


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def sha256_file(path: str | os.PathLike[str], chunk_size: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(chunk_size):
            digest.update(chunk)
    return digest.hexdigest()


LOCK_POLL_SECONDS = 0.2
HOLDER_GRACE_SECONDS = 2.0  # how long a busy lock's holder is given to write its name (it does so at once)


def _try_lock(fd: int) -> bool:
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


def read_json(path: Path) -> dict[str, Any] | None:
    """A JSON object a file holds (a record this project wrote: free-form here, read by its owner);
    None when the file is missing, unreadable, not JSON or not an object."""
    try:
        found = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return found if isinstance(found, dict) else None


def lock_holder(path: Path) -> Holder | None:
    """Who holds the run lock, as its holder wrote it into the lock file (pid, script, started_at); None when unknown."""
    found = read_json(path)
    if found is None or "pid" not in found:
        return None
    holder: Holder = {"pid": found["pid"]}
    if "script" in found:
        holder["script"] = found["script"]
    if "started_at" in found:
        holder["started_at"] = found["started_at"]
    return holder


def describe_holder(holder: Holder | None) -> str:
    """'the full process (pid 812, started at 2026-12-02T20:50:01+00:00)', 'ingestion.py (pid ...)', or 'another process'."""
    if holder is None:
        return "another process (it has not written its name into the lock file yet)"
    script = str(holder.get("script") or "a process")
    named = "the full process" if script == "fullprocess.py" else script
    return f"{named} (pid {holder.get('pid')}, started at {holder.get('started_at')})"


def _named_holder(path: Path) -> Holder | None:
    """The lock's holder, waiting up to HOLDER_GRACE_SECONDS for its record: a holder writes it just after taking the
    lock, and on a loaded machine a run that lost the race by microseconds would otherwise name 'another process'."""
    deadline = time.monotonic() + HOLDER_GRACE_SECONDS
    while (holder := lock_holder(path)) is None and time.monotonic() < deadline:
        time.sleep(LOCK_POLL_SECONDS / 10)
    return holder


@contextlib.contextmanager
def run_lock(
    path: Path,
    wait_seconds: float = 0.0,
    script: str | None = None,
    on_wait: Callable[[Holder | None], None] | None = None,
) -> Iterator[None]:
    """Hold the exclusive kernel lock on `path` for the block, recording this process (pid, `script`, start) in the file.

    Held elsewhere: wait up to `wait_seconds` (calling `on_wait` with the holder each time a new one is seen),
    then LockBusy naming the holder. Take it once per process, at the script's edge: flock is not reentrant,
    so a second take in the same process finds it held."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)  # as the umask allows, like every other file
    try:
        deadline, seen = time.monotonic() + wait_seconds, None
        while not _try_lock(fd):
            holder = _named_holder(path)
            if time.monotonic() >= deadline:
                raise LockBusy(path, holder)
            if on_wait is not None and (seen is None or holder != seen[0]):
                on_wait(holder)
                seen = (holder,)
            time.sleep(LOCK_POLL_SECONDS)
        record: Holder = {"pid": os.getpid(), "script": script or Path(sys.argv[0]).name, "started_at": utc_now()}
        os.ftruncate(fd, 0)
        os.pwrite(fd, (json.dumps(record) + "\n").encode(), 0)
    except BaseException:
        os.close(fd)
        raise
    try:
        yield
    finally:
        with contextlib.suppress(OSError):
            os.ftruncate(fd, 0)  # released: the next reader finds no stale holder
        os.close(fd)
