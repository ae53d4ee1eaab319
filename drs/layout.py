"""Names, places and checks every stage agrees on, with nothing heavier than `os`.

The cron job's empty check (drs/quickcheck.py) runs 52,560 times a year and
must answer in a few milliseconds, before pathlib, logging, dataclasses or
anything else that costs import time is loaded. What it shares with the
stages (the file names, which source entries are read or refused, how a
deployment is checked against its checksums, the time stamp format) is
written once here, on plain `str` paths, and the stages use it from here.
"""
from __future__ import annotations

import os
import sys
import time

TYPE_CHECKING = False
if TYPE_CHECKING:  # the annotations only; importing typing costs the empty check a few milliseconds
    from typing import Any, Collection, Mapping

TMP_PREFIX = ".tmp-"

# output_folder_path
HISTORY_DB = "runhistory.sqlite"
LOCK_FILE = ".fullprocess.lock"
ROWSTORE_DIR = "finaldata.store"

# prod_deployment_path
MODEL_FILE = "trainedmodel.pkl"
SCORE_FILE = "latestscore.txt"
INGESTED_FILE = "ingestedfiles.txt"
META_FILE = "deployment.json"
TRAINING_DATA_FILE = "trainingdata.csv"
REFERENCE_FILE = "trainingreference.npz"
LARGE_FILES = (TRAINING_DATA_FILE, REFERENCE_FILE)
DEPLOYED_FILES = (MODEL_FILE, SCORE_FILE, INGESTED_FILE)
CURRENT = "current"
VERSIONS = "versions"
CANDIDATES = "candidates"
VERSION_PREFIX = "v"


def utc_now() -> str:
    """The time stamp of every record: UTC to the second, ISO 8601 (`datetime.isoformat` gives the same)."""
    return time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime())


def version_label(version: int) -> str:
    return f"{VERSION_PREFIX}{version:04d}"


def version_number(folder_name: str) -> int | None:
    """4 for `v0004`; None for a name that is not a version folder's."""
    digits = folder_name[len(VERSION_PREFIX):]
    if folder_name.startswith(VERSION_PREFIX) and len(digits) >= 4 and digits.isascii() and digits.isdigit():
        return int(digits)
    return None


def is_source_candidate(name: str) -> bool:
    """A name ending in .csv (any case); everything else, such as a stray `Icon\\r`, is ignored."""
    return name.lower().endswith(".csv") and not name.startswith(".")


def source_refusal(path: str, folder: str) -> str | None:
    """Why an entry of the input folder is refused without being opened (a link out of the folder,
    a broken link, a directory, a pipe or device); None for a file to read. Nothing outside the input folder is ever opened."""
    if os.path.islink(path):
        target, inside = os.path.realpath(path), os.path.realpath(folder)
        if os.path.commonpath([target, inside]) != inside:
            return "is a symlink pointing outside the input folder"
        if not os.path.exists(target):
            return "is a symlink to a file that does not exist"
    if os.path.isdir(path):
        return "is a directory, not a file"
    if not os.path.isfile(path):  # a pipe, socket or device: opening it could block the run, lock held
        return "is not a regular file (a pipe, socket or device)"
    return None


SMALL_FILE_BYTES = 1 << 20


def _new_sha256(size: int) -> Any:
    """A sha256 object for `size` bytes of data.

    OpenSSL's (hashlib) is the fast one for large files, but loading it costs the cron job's empty check about
    3 ms, a tenth of its time; for the few small files that check hashes (a model, a score, a file list), CPython's
    own implementation gives the same digest without it."""
    if size <= SMALL_FILE_BYTES and "hashlib" not in sys.modules:
        try:
            from _sha256 import sha256  # CPython 3.11 (3.12 and later: _sha2)
        except ImportError:
            try:
                from _sha2 import sha256
            except ImportError:
                from hashlib import sha256
        return sha256()
    import hashlib

    return hashlib.sha256()


def sha256_file(path: str | os.PathLike[str], chunk_size: int = 1 << 20) -> str:
    with open(path, "rb") as handle:
        digest = _new_sha256(os.fstat(handle.fileno()).st_size)
        while chunk := handle.read(chunk_size):
            digest.update(chunk)
    return digest.hexdigest()


def deployment_problem(folder: str, label: str, meta: Mapping[str, object], skip: Collection[str] = ()) -> str | None:
    """What is wrong with a version folder against the checksums in its deployment.json, or None.

    Every file must be present with a recorded sha256; files named in `skip` are only checked to be present
    (LARGE_FILES are checksummed by whoever reads them)."""
    checksums = meta.get("sha256")
    checksums = checksums if isinstance(checksums, dict) else {}
    for name in dict.fromkeys([*DEPLOYED_FILES, *checksums]):
        path = os.path.join(folder, name)
        if not os.path.isfile(path):
            return f"deployment {label} is missing {name}"
        expected = checksums.get(name)
        if expected is None:
            return f"deployment {label} records no checksum for {name}"
        if name not in skip and sha256_file(path) != expected:
            return f"deployment {label}: {name} does not match the checksum recorded at deployment (changed or damaged)"
    return None


def has_stale_temporaries(folders: list[str]) -> bool:
    """Whether a killed run left a temporary file or folder in any of `folders` (the full process removes them)."""
    for folder in folders:
        try:
            names = os.listdir(folder)
        except OSError:
            continue
        if any(name.startswith(TMP_PREFIX) for name in names):
            return True
    return False


class LockBusy(Exception):
    """Another process holds the run lock."""


def acquire_lock(path: str, wait: bool = False) -> int:
    """An open descriptor holding an exclusive kernel lock (`fcntl.flock`) on `path`; close it to release.

    The kernel drops the lock when its process dies, so a killed run never blocks the next one.
    With `wait=False` a lock held elsewhere raises LockBusy at once."""
    import fcntl

    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
    except BlockingIOError:
        os.close(fd)
        raise LockBusy(path) from None
    except BaseException:
        os.close(fd)
        raise
    return fd
