"""A file's stamp as the ingestion record and a deployment's `ingested` keep it: its sha256, size and mtime_ns.

One shape for the three places that read it: the deployment's meta (drs/production/versions.py), the files a
deployed version needs no new verdict for (drs/history/files.py) and the source folder (drs/data/sources.py).
docs/stages.md tells how the stamps decide which files need a verdict.
"""

from __future__ import annotations

from typing import TypedDict


class FileStamp(TypedDict):
    """`ingested[name]` in deployment.json: what the file was when it was ingested."""

    sha256: str
    size: int
    mtime_ns: int
