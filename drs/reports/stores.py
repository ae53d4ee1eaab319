"""Writing the ranking's two stores (drs/reports/riskstore.py) at each ranking, here or in a helper process.

clientrows.sqlite needs only the ingestion record, so it starts first; risklist.sqlite follows once the list is
ranked. From PARALLEL_ROWS ingested rows the inserts run in `python -m drs.reports.riskstore` on the machine's other core.
drs/reports/reporting.py uses `Stores` as a context manager around one ranking; see docs/reports.md.
"""

from __future__ import annotations

import logging

import polars as pl

from drs.core import layout
from drs.core.settings import Config
from drs.data.schema import Schema
from drs.data.sources import recorded_files
from drs.reports import risk, riskstore

log = logging.getLogger("reporting")


def source_files(config: Config) -> list[riskstore.SourceFile]:
    """The ingestion record's accepted files in arrival order, each with where to read it (its kept copy, else the
    input folder; None when neither is there) and its recorded sha256: the client views' rows over time."""
    found = []
    for entry in recorded_files(config.ingestion_record, config.input_folder):
        if entry.get("status") != "accepted":
            continue
        name = str(entry.get("name"))
        candidates = (config.kept_sources_folder / name, config.input_folder / name)
        path = next((p for p in candidates if p.is_file()), None)
        found.append(riskstore.SourceFile(name, path, entry.get("sha256"), int(entry.get("rows_read") or 0)))
    return found


PARALLEL_ROWS = 200_000  # from this many ingested rows, the stores are written by helper processes


class Stores:
    """Writes the two stores (drs/reports/riskstore.py): by a helper process (`python -m drs.reports.riskstore`) on the machine's
    other core when the data is large (their SQLite inserts were half of a refresh at a million clients, in one
    thread), else here and now. clientrows.sqlite starts at once (it needs only the ingestion); `ranking` adds
    risklist.sqlite; `finish` waits for both and raises what failed; leaving the block ends the helper."""

    def __init__(self, config: Config, schema: Schema):
        self.config, self.schema = config, schema
        files = source_files(config)
        self.helper = riskstore.Helper() if sum(f.rows for f in files) >= PARALLEL_ROWS else None
        self.pending: list[tuple[str, riskstore.RankingFacts | riskstore.RowsFacts | None]] = []  # None: the helper's answer, still to read
        self._start(layout.CLIENT_ROWS, {**self._where(layout.CLIENT_ROWS), "files": [riskstore.file_task(f) for f in files]})

    def _where(self, name: str) -> riskstore.Task:
        """The part every task has: the store's path and the schema."""
        schema = self.schema
        return {
            "path": str(self.config.model_output(name)),
            "schema": {"id_column": schema.id_column, "features": list(schema.features), "target": schema.target},
        }

    def _start(self, name: str, task: riskstore.Task) -> None:
        if self.helper is None:
            self.pending.append((name, riskstore.run_task(task)))
            return
        self.helper.send(task)
        self.pending.append((name, None))

    def ranking(self, ranked: pl.DataFrame) -> None:
        counts: riskstore.Counts = {"active_clients": ranked.height, "above_half": risk.above(ranked), "threshold": risk.THRESHOLD}
        if self.helper is None:
            self._start(layout.RISK_STORE, {**self._where(layout.RISK_STORE), "ranked": ranked, "counts": counts})
            return
        frame = self.config.model_output(f"{layout.TMP_PREFIX}ranked.arrow")  # removed by the helper, or by the next run
        ranked.write_ipc(frame)
        self._start(layout.RISK_STORE, {**self._where(layout.RISK_STORE), "ranked": str(frame), "counts": counts})

    def finish(self) -> None:
        """Wait until both stores are written (before risklist.json names them); raise what failed."""
        for name, facts in self.pending:
            self.tell(name, facts if facts is not None else self._answer())
        self.pending = []

    def _answer(self) -> riskstore.RankingFacts | riskstore.RowsFacts:
        assert self.helper is not None
        return self.helper.result()

    def __enter__(self) -> Stores:
        return self

    def __exit__(self, *failed: object) -> None:
        if self.helper is not None:  # after a failure, one still writing is stopped (it removes its temporary file)
            self.helper.stop()

    def tell(self, name: str, facts: riskstore.RankingFacts | riskstore.RowsFacts) -> None:
        path = self.config.model_output(name)
        if "active_clients" in facts:  # risklist.sqlite
            log.info("wrote %s: %d ranked clients", path, facts["active_clients"])
            return
        for problem in facts["unreadable"]:
            log.warning("the client views show a file as unreadable: %s", problem)
        if facts["written"]:
            log.info("wrote %s: %d client rows read from the ingested files", path, facts.get("rows", 0))
        else:
            log.info("%s kept: it holds the rows of the same ingested files", path)
