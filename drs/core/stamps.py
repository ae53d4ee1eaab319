"""A file's stamp as the project records it: its sha256, size and mtime_ns, as a deployment's `ingested` keeps it and
as the history's arrivals keep it with the file's place in the row order.

One shape for the places that read it: the deployment's meta (drs/production/versions.py), the files a deployed
version needs no new verdict for (drs/history/files.py) and the source folder's arrival order (drs/data/sources.py).
docs/stages.md tells how the stamps decide which files need a verdict; docs/data.md the arrival order.
"""

from __future__ import annotations

from typing import TypedDict


class FileStamp(TypedDict):
    """`ingested[name]` in deployment.json: what the file was when it was ingested."""

    sha256: str
    size: int
    mtime_ns: int


class Arrival(TypedDict):
    """A row of the history's `arrivals` (drs/history/files.py): where a source file of a folder arrived in the row order,
    with the content and time stamp it had then (drs/data/sources.py `arrival_plan` decides it)."""

    name: str
    seq: int
    sha256: str
    size: int
    mtime_ns: int
    first_seen_at: str
    arrived_at: str
    how: str
