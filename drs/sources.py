"""The source folder: which entries are source files, which are refused unopened, and which still need a verdict.

Light on purpose (no pandas or polars): the cron tick that finds nothing new runs this and nothing heavier.
"""

from __future__ import annotations

import os
from pathlib import Path

from drs import history
from drs.errors import StageError
from drs.fileio import sha256_file


def is_candidate(name: str) -> bool:
    """A name ending in .csv (any case) and not hidden; everything else, such as a stray `Icon\\r`, is ignored."""
    return name.lower().endswith(".csv") and not name.startswith(".")


def list_source_files(folder: Path) -> list[Path]:
    """Candidate CSV files in name order (name order is also the row order of finaldata.csv)."""
    if not folder.is_dir():
        raise StageError(f"input folder {folder} does not exist")
    return sorted((entry for entry in folder.iterdir() if is_candidate(entry.name)), key=lambda p: p.name)


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


def needs_verdict(path: Path, folder: Path, keys: set[tuple[str, int, int]], hashes: set[tuple[str, str]]) -> bool:
    """Whether the entry at `path` still needs a verdict, given `history.judged_files`' sets; hashes only touched files.

    An entry refused unread was judged if it was refused before: there is nothing to compare, so it is not
    retried. A file that vanishes meanwhile needs one (ingestion names it)."""
    if refusal(path, folder) is not None:
        return (path.name, "") not in hashes
    try:
        stat = path.stat()
        if (path.name, stat.st_size, stat.st_mtime_ns) in keys:
            return False
        return (path.name, sha256_file(path)) not in hashes  # touched but unchanged: judged
    except OSError:
        return True


def files_needing_verdict(
    folder: Path, history_db: Path, deployed_files: list[str], deployed_version: int | None, retry_not_promoted: bool = False
) -> list[Path]:
    """Source files that the deployed version was not trained on and that were not judged against it:
    a listing, one history query, and hashes only for touched files."""
    keys, hashes = history.judged_files(history.seen_files(history_db), deployed_version, retry_not_promoted)
    known = set(deployed_files)
    return [p for p in list_source_files(folder) if p.name not in known and needs_verdict(p, folder, keys, hashes)]
