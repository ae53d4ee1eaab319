"""config.json: every key declared once, in `Config`, with its type, default, check and meaning.

Loading, defaults, the one-line errors and the README's configuration table
(`python -m drs.core.settings --markdown`) all come from the declarations below; what each kind of value must
be (the checks, `setting`, REQUIRED and Derived) is drs/core/configkeys.py (see docs/architecture.md).
Relative paths resolve against the folder that holds the config file, never
against the current directory, so `cd / && python /proj/fullprocess.py`
behaves exactly like a run from the project folder. Nothing else reads the
config file's JSON.
"""

from __future__ import annotations

import argparse
import dataclasses
import difflib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from drs.core import ids, layout
from drs.core.configkeys import (
    AUTH,
    BOOLEAN,
    COUNT,
    DATABASE_URL,
    DATABASE_URL_ENV,
    DAYS,
    DRIFT_TEST,
    FRACTION,
    HOPS,
    HOURS,
    ID_LENGTH,
    MIN_HISTORY,
    MINUTES,
    MODEL,
    MODEL_DEFAULTS,
    NAME,
    NAMES,
    NOTIFY_URLS,
    NUMBER,
    OPTIONAL_NAME,
    OPTIONAL_URL,
    PATH,
    PATHS,
    REQUIRED,
    SECONDS,
    SECONDS_OR_OFF,
    URL,
    URL_OR_NULL,
    Derived,
    ModelSettings,
    Required,
    setting,
    source_database_url,
)
from drs.core.errors import ConfigError

PROJECT_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_CONFIG = PROJECT_ROOT / layout.CONFIG_FILE
DEFAULT_SOURCE_QUERY = (
    "SELECT * FROM clients WHERE :watermark IS NULL OR updated_at IS NULL OR updated_at >= :watermark ORDER BY updated_at"
)


def _data_folders(values: dict[str, Any]) -> tuple[Path, ...]:
    return (values["input_folder"], values["output_folder"], values["test_data_folder"])


@dataclass(frozen=True)
class Config:
    """The checked settings of one config file; paths are absolute."""

    config_file: Path
    input_folder: Path = setting("input_folder_path", REQUIRED, PATH, "folder where new CSV files arrive")
    output_folder: Path = setting("output_folder_path", REQUIRED, PATH, "ingested data, its record and the run history")
    test_data_folder: Path = setting("test_data_path", REQUIRED, PATH, "folder of the labelled test data")
    output_model_folder: Path = setting("output_model_path", REQUIRED, PATH, "trained model, score, diagnostics and reports")
    prod_deployment_folder: Path = setting("prod_deployment_path", REQUIRED, PATH, "deployed versions and the `current` link")
    settle_seconds: float = setting(
        "settle_seconds", 60, SECONDS_OR_OFF, "a source file modified less than this ago may still be arriving: left for a later run"
    )
    test_data_file: str = setting("test_data_file", "testdata.csv", NAME, "name of the test file in test_data_path")
    features: tuple[str, ...] = setting(
        "features", ["lastmonth_activity", "lastyear_activity", "number_of_employees"], NAMES, "the model's input columns, in order"
    )
    target: str = setting("target", "exited", NAME, "the label column (0 stayed, 1 exited)")
    id_column: str = setting("id_column", "corporation", NAME, "the client id column (never a feature)")
    max_id_length: int = setting(
        "max_id_length",
        ids.DEFAULT_MAX_LENGTH,
        ID_LENGTH,
        "longest id accepted, in characters (a longer one rejects its file; docs/data.md)",
    )
    model: ModelSettings = setting(
        "model", MODEL_DEFAULTS, MODEL, "logistic regression settings: C, solver, random_state, scale, max_iter, dtype"
    )
    drift_test: str = setting("drift_test", "raw", DRIFT_TEST, "score-drift test (docs/drift.md)")
    drift_min_history: dict[str, int] = setting(
        "drift_min_history", {"parametric": 3, "nonparametric": 5}, MIN_HISTORY, "F1 values a test needs before it replaces raw"
    )
    data_drift_retrain: bool = setting("data_drift_retrain", False, BOOLEAN, "retrain on data drift alone")
    promotion_min_improvement: float = setting(
        "promotion_min_improvement", 0.0, NUMBER, "F1 a candidate must gain over the deployed model to be deployed"
    )
    keep_candidates: int = setting("keep_candidates", 20, COUNT, "refused candidates kept under candidates/ (oldest pruned)")
    keep_rankings: int = setting("keep_rankings", 60, COUNT, "rankings kept in the run history for what changed (oldest pruned)")
    api_url: str = setting("api_url", "http://127.0.0.1:8000", URL, "where apicalls.py finds the API")
    api_timeout_seconds: float = setting("api_timeout_seconds", 30, SECONDS, "apicalls.py's limit per call")
    max_request_bytes: int = setting("max_request_bytes", 10 * 1024 * 1024, COUNT, "largest request body or data file the API reads")
    max_records: int = setting("max_records", 10_000, COUNT, "most records one /prediction request may score")
    max_source_bytes: int = setting(
        "max_source_bytes", 1024**3, COUNT, "largest source file ingestion reads (bytes); a larger one is rejected unread, the rest go on"
    )
    max_source_rows: int = setting("max_source_rows", 20_000_000, COUNT, "most rows a source file may hold; one with more is rejected")
    data_folders: tuple[Path, ...] = setting(
        "data_folders", Derived("the input, output and test folders", _data_folders), PATHS, "folders /prediction may read files from"
    )
    users_file: Path = setting(
        "users_file", layout.USERS_FILE, PATH, "users and API tokens (hashes only, mode 0600; `python -m drs.users`, docs/security.md)"
    )
    auth: str = setting("auth", "on", AUTH, 'sign-in and tokens required; "off" serves open on purpose (a warning at every start)')
    session_hours: float = setting("session_hours", 12, HOURS, "a page sign-in lasts this long")
    signin_failures_per_minute: int = setting(
        "signin_failures_per_minute", 5, COUNT, "wrong passwords one address may send a worker per minute; then 429 (docs/security.md)"
    )
    proxy_hops: int = setting(
        "proxy_hops", 0, HOPS, "reverse proxies in front whose X-Forwarded-For/-Proto are trusted (0: none; docs/security.md)"
    )
    max_model_age_days: float = setting("max_model_age_days", 30, DAYS, "the page warns when the model is older")
    history_days: float = setting("history_days", 7, DAYS, "runs the page lists under History")
    packages_timeout_seconds: float = setting(
        "packages_timeout_seconds", 20, SECONDS_OR_OFF, "limit on asking the package index for newest versions (0: do not ask)"
    )
    package_index_url: str | None = setting(
        "package_index_url",
        None,
        URL_OR_NULL,
        "package index diagnostics ask; null: the one pip uses (PIP_INDEX_URL, pip.conf, pip's default)",
    )
    notify: tuple[str, ...] = setting(
        "notify", [], NOTIFY_URLS, "Apprise URLs alerts go to, plus those in DRS_NOTIFY_URLS (docs/alerts.md); never logged"
    )
    notify_repeat_hours: float = setting("notify_repeat_hours", 24, HOURS, "while runs keep failing, a reminder at most this often")
    notify_timeout_seconds: float = setting("notify_timeout_seconds", 10, SECONDS, "limit on delivering one run's alert, all targets")
    stale_after_minutes: float = setting("stale_after_minutes", 30, MINUTES, "no finished run for this long: the pipeline is stale")
    public_url: str | None = setting("public_url", None, OPTIONAL_URL, "the page's address, linked from every alert")
    source_database_url: str | None = setting(
        "source_database_url",
        Derived(f"{DATABASE_URL_ENV}, else none", source_database_url, overrides=True),
        DATABASE_URL,
        f"database new rows are read from each tick (docs/database.md); {DATABASE_URL_ENV} overrides it; never logged",
    )
    source_query: str = setting(
        "source_query",
        DEFAULT_SOURCE_QUERY,
        NAME,
        "SQL returning the five columns and the watermark column at or past `:watermark` (NULL at first), and rows where it is NULL",
    )
    source_watermark_column: str = setting(
        "source_watermark_column", "updated_at", NAME, "the query's column that only grows (a time stamp or an increasing id)"
    )
    source_timeout_seconds: float = setting("source_timeout_seconds", 30, SECONDS, "limit on connecting to and querying the database")
    source_watermark_margin_seconds: float = setting(
        "source_watermark_margin_seconds",
        0,
        SECONDS_OR_OFF,
        "re-read this far behind the watermark, for rows committed late with an earlier time stamp (docs/database.md)",
    )

    # the client managers' day (docs/reports.md#the-client-managers-day; drs/reports/calls.py)
    calls_per_day: int = setting("calls_per_day", 25, COUNT, "clients in today's call queue (GET /calls, the page)")
    recall_after_days: float = setting("recall_after_days", 30, DAYS, "a client called is out of the queue this long")
    value_column: str | None = setting(
        "value_column",
        None,
        OPTIONAL_NAME,
        "optional numeric column of the source data (e.g. annual_contract_value): rank by value at risk",
    )
    holdout_fraction: float = setting(
        "holdout_fraction", 0, FRACTION, "share of would-be-queued clients kept out as a control group (0: off)"
    )
    holdout_seed: int = setting("holdout_seed", 0, HOPS, "seed of the stable holdout assignment (a hash of seed and corporation)")

    # not a key: the run history that records the batches drs/data/dbsource.py wrote (a dry-run copy keeps the original's)
    batches_history: Path | None = None

    # ---- the course's files, by their declared names (drs.core.layout) ----
    @property
    def test_data_csv(self) -> Path:
        return self.test_data_folder / self.test_data_file

    @property
    def final_data_csv(self) -> Path:
        return self.output_folder / layout.FINAL_DATA

    @property
    def ingested_files_txt(self) -> Path:
        return self.output_folder / layout.INGESTED_FILES

    @property
    def ingestion_record(self) -> Path:
        return self.output_folder / layout.INGESTION_RECORD

    @property
    def kept_sources_folder(self) -> Path:
        """The copies of the accepted source files, per input folder (drs/data/ingest.py)."""
        return self.output_folder / layout.KEPT_SOURCES_DIR / self.input_folder.name

    @property
    def history_db(self) -> Path:
        return self.output_folder / layout.HISTORY_DB

    @property
    def self_written_record(self) -> Path:
        """Where the batches the system wrote into the input folder are recorded (they need no settling)."""
        return self.batches_history or self.history_db

    @property
    def arrivals_record(self) -> Path:
        """Where the order the system first saw each source file is recorded (drs/data/sources.py `arrival_plan`); a dry run
        (`with_outputs`) keeps the real one, so that it takes the files in the same order."""
        return self.self_written_record

    @property
    def lock_file(self) -> Path:
        return self.output_folder / layout.LOCK_FILE

    @property
    def prometheus_folder(self) -> Path:
        return self.output_folder / layout.PROMETHEUS_DIR

    @property
    def model_pkl(self) -> Path:
        return self.output_model_folder / layout.MODEL_FILE

    @property
    def model_meta(self) -> Path:
        return self.output_model_folder / layout.MODEL_META

    @property
    def latest_score_txt(self) -> Path:
        return self.output_model_folder / layout.SCORE_FILE

    @property
    def latest_score_json(self) -> Path:
        return self.output_model_folder / layout.SCORE_META

    def model_output(self, name: str) -> Path:
        """A file of output_model_path by its name in drs.core.layout (diagnostics.json, risklist.csv, ...)."""
        return self.output_model_folder / name

    @property
    def project_root(self) -> Path:
        return PROJECT_ROOT

    def with_outputs(self, folder: Path) -> Config:
        """A copy whose outputs go under `folder`, for dry runs such as timings."""
        return dataclasses.replace(
            self,
            batches_history=self.self_written_record,
            output_folder=folder / "ingested",
            output_model_folder=folder / "models",
            prod_deployment_folder=folder / "production",
        )


SETTINGS = [f for f in dataclasses.fields(Config) if "key" in f.metadata]


def config_file_path(path: str | os.PathLike[str] | None = None) -> Path:
    """The config file's absolute path (not resolved through links): the default beside the scripts, or `path`."""
    chosen = Path(os.path.expanduser(os.fspath(path))) if path else DEFAULT_CONFIG
    return chosen if chosen.is_absolute() else Path.cwd() / chosen


def read_config_file(config_file: Path) -> dict[str, Any]:
    """The config file's JSON object; ConfigError with a one-line reason."""
    try:
        text = config_file.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"config file not found: {config_file}") from None
    except OSError as exc:
        raise ConfigError(f"cannot read config file {config_file}: {exc.strerror}") from None
    try:
        raw = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigError(f"config file {config_file} is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"config file {config_file} must hold a JSON object")
    return raw


def unknown_keys(unknown: list[str], keys: list[str]) -> str:
    """Each unknown key with the known key it is closest to, if any: a misspelling is the usual cause."""

    def said(key: str) -> str:
        close = difflib.get_close_matches(key, keys, n=1)
        return f"'{key}' (did you mean '{close[0]}'?)" if close else f"'{key}'"

    return ", ".join(said(k) for k in unknown) + " (known: see README, Configuration)"


def checked(raw: dict[str, Any], config_file: Path) -> Config:
    """The Config of a config file's JSON object; ConfigError names the first bad key."""
    keys = [f.metadata["key"] for f in SETTINGS]
    unknown = sorted(set(raw) - set(keys))
    if unknown:  # before the missing keys: a misspelt required key is both, and the spelling is the fix
        raise ConfigError(f"config file {config_file} has unknown key(s): {unknown_keys(unknown, keys)}")
    missing = [f.metadata["key"] for f in SETTINGS if f.metadata["default"] is REQUIRED and f.metadata["key"] not in raw]
    if missing:
        raise ConfigError(f"config file {config_file} lacks key(s): {', '.join(missing)}")
    base = config_file.resolve().parent
    values: dict[str, Any] = {}
    for f in SETTINGS:
        key, default, check = f.metadata["key"], f.metadata["default"], f.metadata["check"]
        if isinstance(default, Derived) and (key not in raw or default.overrides):
            try:
                values[f.name] = default.compute(values)
            except ValueError as exc:
                raise ConfigError(f"key '{key}' as given by {default.describe.split(',')[0]} {exc}") from None
            if key not in raw or values[f.name] is not None:
                continue
        value = raw.get(key, default)
        try:
            values[f.name] = check.convert(value, base)
        except ValueError as exc:
            got = "(not shown: it may hold secrets)" if check.secret else json.dumps(value)[:60]
            raise ConfigError(f"config file {config_file}: key '{key}' {exc}, got {got}") from None
        if values[f.name] is None and isinstance(default, Derived):
            values[f.name] = default.compute(values)
    return Config(config_file=config_file.resolve(), **values)


def load_config(path: str | os.PathLike[str] | None = None) -> Config:
    """Read and check a config file; ConfigError with a one-line reason."""
    config_file = config_file_path(path)
    return checked(read_config_file(config_file), config_file)


def default_text(default: Any) -> str:
    if isinstance(default, Derived):
        return default.describe
    if isinstance(default, Required):
        return "**required**"
    return f"`{json.dumps(default)}`"


def markdown_table() -> str:
    """The README's configuration table."""
    lines = ["| key | type | default | meaning |", "| --- | --- | --- | --- |"]
    for f in SETTINGS:
        m = f.metadata
        lines.append(f"| `{m['key']}` | {m['check'].kind} | {default_text(m['default'])} | {m['meaning']} |")
    return "\n".join(lines)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="The config keys, as declared")
    parser.add_argument("--markdown", action="store_true", help="print the README's configuration table")
    parser.parse_args()
    print(markdown_table())
