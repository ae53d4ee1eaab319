"""Diagnostics: predictions, summary statistics, missing data, stage timings, dependencies.

Each function works with no arguments (reading config.json beside the scripts),
as in the course, or with a Config. `python diagnostics.py` computes them all
and writes `output_model_path/diagnostics.json`, which the API serves.
"""
from __future__ import annotations

import concurrent.futures
import json
import logging
import re
import subprocess
import sys
import tempfile
import time
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any

from drs import production
from drs.cli import StageError, run_stage
from drs.config import Config, load_config
from drs.fileio import TMP_PREFIX, atomic_write_json
from drs.production import utc_now
from drs.schema import Schema, read_csv_as_written, read_csv_checked

if TYPE_CHECKING:
    import pandas as pd

log = logging.getLogger("diagnostics")
INDEX_CACHE = "packageindex.json"
INDEX_CACHE_SECONDS = 24 * 3600
REQUIREMENT_RE = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)\s*(?:\[[^\]]*\])?\s*(?:(==|>=|~=|<=|>|<)\s*([^\s;#,]+))?")


def _config(config: Config | None) -> Config:
    return config if config is not None else load_config()


def deployed_model(config: Config) -> tuple[Any, production.Deployment]:
    deployment = production.current(config.prod_deployment_folder)
    if deployment is None:
        raise StageError(f"no model is deployed in {config.prod_deployment_folder}")
    return production.load_model(deployment), deployment


def model_predictions(df: "pd.DataFrame | None" = None, config: Config | None = None) -> list[int]:
    """Predicted classes of the deployed model, one per row of `df` (default: the test data)."""
    config = _config(config)
    schema = Schema.from_config(config)
    if df is None:
        df = read_csv_checked(config.test_data_csv, schema, source=str(config.test_data_csv))
    model, _ = deployed_model(config)
    return [int(v) for v in model.predict(df[list(schema.features)].to_numpy(dtype="float64"))]


def final_data(config: Config) -> "pd.DataFrame":
    """The ingested data, as written by ingestion (a client named "null" or "NA" is a name, not missing)."""
    if not config.final_data_csv.exists():
        raise StageError(f"{config.final_data_csv} does not exist; run ingestion.py first")
    return read_csv_as_written(config.final_data_csv, Schema.from_config(config))


def summarize(frame: "pd.DataFrame", columns: list[str]) -> dict[str, dict[str, float]]:
    """Mean, median and standard deviation of each column; pure."""
    return {
        c: {"mean": float(frame[c].mean()), "median": float(frame[c].median()), "std": float(frame[c].std())}
        for c in columns
    }


def dataframe_summary(config: Config | None = None) -> dict[str, dict[str, float]]:
    """Mean, median and std of each numeric column of the ingested data."""
    config = _config(config)
    schema = Schema.from_config(config)
    return summarize(final_data(config), [*schema.features, schema.target])


def missing_data(config: Config | None = None) -> dict[str, float]:
    """Percent of missing values per column of the ingested data."""
    frame = final_data(_config(config))
    return {c: round(float(frame[c].isna().mean() * 100), 4) for c in frame.columns}


def execution_time(config: Config | None = None) -> list[float]:
    """Seconds for [ingestion, training, scoring], as the course's list with scoring added.

    The stages run for real on the configured input and test data, but write
    into a temporary folder, so no real output or production file changes. The
    folder is inside the output folder with the temporary prefix, so one left
    by a killed run is removed by the next full process, not left in /tmp.
    """
    import ingestion
    import scoring
    import training

    config = _config(config)
    config.output_folder.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=f"{TMP_PREFIX}timing-", dir=config.output_folder) as tmp:
        scratch = config.with_outputs(Path(tmp))
        timings = []
        for stage in (ingestion.ingest, training.run, scoring.run):
            started = time.perf_counter()
            stage(scratch)
            timings.append(round(time.perf_counter() - started, 4))
    return timings


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


def newest_version(name: str, timeout: float) -> str | None:
    """Newest version on the configured package index, or None when it cannot be asked in time."""
    try:
        done = subprocess.run(
            [sys.executable, "-m", "pip", "index", "versions", name, "--disable-pip-version-check"],
            capture_output=True, text=True, timeout=timeout,
        )
    except (subprocess.TimeoutExpired, OSError):
        return None
    latest = re.search(r"LATEST:\s*(\S+)", done.stdout) or re.search(rf"^{re.escape(name)} \(([^)]+)\)", done.stdout, re.I | re.M)
    return latest.group(1) if latest else None


def newest_versions(names: list[str], timeout: float, cache_file: Path) -> dict[str, str | None]:
    """Newest version of each package; an answer the index gave within INDEX_CACHE_SECONDS is reused.

    Each `pip index versions` is a pip process of about a second of CPU; on a
    redeploy of the shipped data they were most of the run, and newest
    versions change far less often than the cron job runs."""
    newest: dict[str, str | None] = {name: None for name in names}
    if timeout <= 0:
        return newest
    now = time.time()
    try:
        cache = json.loads(cache_file.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        cache = {}
    fresh = {n: e["newest"] for n, e in cache.items() if isinstance(e, dict) and 0 <= now - e.get("asked_at", 0) < INDEX_CACHE_SECONDS}
    ask = [name for name in names if name not in fresh]
    with concurrent.futures.ThreadPoolExecutor(max_workers=8) as pool:
        futures = {pool.submit(newest_version, name, timeout): name for name in ask}
        done, _ = concurrent.futures.wait(futures, timeout=timeout + 5)
        asked = {futures[f]: f.result() for f in done}
    for name in names:
        newest[name] = fresh[name] if name in fresh else asked.get(name)
    answered = {n: {"newest": v, "asked_at": now} for n, v in asked.items() if v is not None}
    if answered:
        atomic_write_json(cache_file, {**{n: e for n, e in cache.items() if n in fresh}, **answered})
    return newest


def _installed(name: str) -> str | None:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def outdated_packages_list(config: Config | None = None) -> list[dict[str, Any]]:
    """Per requirement: required, installed and newest version, and what differs.

    Index look-ups run in parallel with a time limit; an index that cannot be
    reached leaves `newest` as None (unknown) instead of failing.
    """
    config = _config(config)
    requirements = read_requirements(config.project_root / "requirements.txt")
    newest = newest_versions([name for name, _ in requirements], config.packages_timeout_seconds, config.output_model_folder / INDEX_CACHE)
    rows = []
    for name, required in requirements:
        installed = _installed(name)
        latest = newest[name]
        rows.append(
            {
                "package": name,
                "required": required,
                "installed": installed,
                "newest": latest,
                "differs_from_pin": bool(required and installed and installed != required),
                "outdated": bool(latest and installed and latest != installed),
            }
        )
    return rows


def run(config: Config) -> dict[str, Any]:
    """All diagnostics, written to diagnostics.json for the API and the reports."""
    ingestion_s, training_s, scoring_s = execution_time(config)
    result = {
        "computed_at": utc_now(),
        "predictions_on_test_data": model_predictions(None, config),
        "summary_statistics": dataframe_summary(config),
        "missing_data_percent": missing_data(config),
        "execution_time_seconds": {"ingestion": ingestion_s, "training": training_s, "scoring": scoring_s},
        "dependencies": outdated_packages_list(config),
    }
    atomic_write_json(config.output_model_folder / "diagnostics.json", result)
    outdated = [d["package"] for d in result["dependencies"] if d["outdated"]]
    log.info(
        "diagnostics: %d predictions; timings ingestion %.3fs, training %.3fs, scoring %.3fs; outdated packages: %s",
        len(result["predictions_on_test_data"]), ingestion_s, training_s, scoring_s, ", ".join(outdated) or "none",
    )
    return result


def main(argv: list[str] | None = None) -> int:
    return run_stage(__doc__, run, argv)


if __name__ == "__main__":
    raise SystemExit(main())
