"""Load config.json into resolved paths.

Relative paths are resolved against the folder that holds the config file,
never against the current directory, so `cd / && python /proj/fullprocess.py`
behaves exactly like a run from the project folder.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_CONFIG = PROJECT_ROOT / "config.json"

REQUIRED_PATH_KEYS = (
    "input_folder_path",
    "output_folder_path",
    "test_data_path",
    "output_model_path",
    "prod_deployment_path",
)

DEFAULTS: dict[str, Any] = {
    "features": ["lastmonth_activity", "lastyear_activity", "number_of_employees"],
    "target": "exited",
    "id_column": "corporation",
    "test_data_file": "testdata.csv",
    "api_url": "http://127.0.0.1:8000",
    "api_timeout_seconds": 30,
    "model": {"C": 1.0, "solver": "liblinear", "random_state": 0, "scale": False},
    "data_folders": None,
    "max_request_bytes": 10 * 1024 * 1024,
    "packages_timeout_seconds": 20,
    "package_index_url": "https://pypi.org/simple",
}


class ConfigError(Exception):
    """A config file that cannot be used; the message is one line for the user."""


@dataclass(frozen=True)
class Config:
    """Resolved settings. Paths are absolute."""

    config_file: Path
    input_folder: Path
    output_folder: Path
    test_data_folder: Path
    output_model_folder: Path
    prod_deployment_folder: Path
    features: tuple[str, ...]
    target: str
    id_column: str
    test_data_file: str
    api_url: str
    api_timeout_seconds: float
    model: dict[str, Any]
    data_folders: tuple[Path, ...]
    max_request_bytes: int
    packages_timeout_seconds: float
    package_index_url: str | None
    raw: dict[str, Any] = field(repr=False, default_factory=dict)

    @property
    def test_data_csv(self) -> Path:
        return self.test_data_folder / self.test_data_file

    @property
    def final_data_csv(self) -> Path:
        return self.output_folder / "finaldata.csv"

    @property
    def ingested_files_txt(self) -> Path:
        return self.output_folder / "ingestedfiles.txt"

    @property
    def ingestion_record(self) -> Path:
        return self.output_folder / "ingestionrecord.json"

    @property
    def history_db(self) -> Path:
        return self.output_folder / "runhistory.sqlite"

    @property
    def lock_file(self) -> Path:
        return self.output_folder / ".fullprocess.lock"

    @property
    def model_pkl(self) -> Path:
        return self.output_model_folder / "trainedmodel.pkl"

    @property
    def model_meta(self) -> Path:
        return self.output_model_folder / "trainedmodel.json"

    @property
    def latest_score_txt(self) -> Path:
        return self.output_model_folder / "latestscore.txt"

    @property
    def project_root(self) -> Path:
        return PROJECT_ROOT

    def with_outputs(self, folder: Path) -> "Config":
        """A copy whose outputs go under `folder`, for dry runs such as timings."""
        return replace(
            self,
            output_folder=folder / "ingested",
            output_model_folder=folder / "models",
            prod_deployment_folder=folder / "production",
        )


def _resolve(base: Path, value: Any, key: str) -> Path:
    if not isinstance(value, str) or not value.strip():
        raise ConfigError(f"key '{key}' must be a non-empty path string")
    path = Path(os.path.expanduser(value))
    return (path if path.is_absolute() else base / path).resolve()


def _is_http_url(value: Any) -> bool:
    if not isinstance(value, str):
        return False
    parts = urlsplit(value.strip())
    return parts.scheme in ("http", "https") and bool(parts.netloc)


def package_index_url(raw: dict[str, Any]) -> str | None:
    """The Simple API base URL diagnostics ask for newest versions: the config key, else pip's
    PIP_INDEX_URL (a machine whose pip uses a mirror asks that mirror), else PyPI.

    None when PIP_INDEX_URL is not http(s) (a local folder pip can read, HTTP cannot): the index is
    then not asked, rather than failing every stage over a setting that only pip uses."""
    if "package_index_url" in raw:
        value = raw["package_index_url"]
        if not _is_http_url(value):
            raise ConfigError(f"key 'package_index_url' must be an http(s) URL such as {DEFAULTS['package_index_url']}, got {value!r}")
        return value.strip().rstrip("/")
    value = os.environ.get("PIP_INDEX_URL") or DEFAULTS["package_index_url"]
    return value.strip().rstrip("/") if _is_http_url(value) else None


def load_config(path: str | os.PathLike[str] | None = None) -> Config:
    """Read and check a config file; raise ConfigError with a one-line reason."""
    config_file = Path(path).expanduser() if path else DEFAULT_CONFIG
    config_file = config_file if config_file.is_absolute() else Path.cwd() / config_file
    try:
        text = config_file.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"config file not found: {config_file}") from None
    except OSError as exc:
        raise ConfigError(f"cannot read config file {config_file}: {exc.strerror}") from None
    try:
        raw = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigError(
            f"config file {config_file} is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}"
        ) from None
    if not isinstance(raw, dict):
        raise ConfigError(f"config file {config_file} must hold a JSON object")
    missing = [key for key in REQUIRED_PATH_KEYS if key not in raw]
    if missing:
        raise ConfigError(f"config file {config_file} lacks key(s): {', '.join(missing)}")

    base = config_file.resolve().parent
    merged = {**DEFAULTS, **raw}
    model = {**DEFAULTS["model"], **(raw.get("model") or {})}
    paths = {key: _resolve(base, raw[key], key) for key in REQUIRED_PATH_KEYS}
    index_url = package_index_url(raw)
    features = merged["features"]
    if not (isinstance(features, list) and features and all(isinstance(f, str) for f in features)):
        raise ConfigError("key 'features' must be a non-empty list of column names")
    folders = merged["data_folders"]
    if folders is None:
        data_folders = (paths["input_folder_path"], paths["output_folder_path"], paths["test_data_path"])
    elif isinstance(folders, list):
        data_folders = tuple(_resolve(base, f, "data_folders") for f in folders)
    else:
        raise ConfigError("key 'data_folders' must be a list of folder paths")
    try:
        return Config(
            config_file=config_file.resolve(),
            input_folder=paths["input_folder_path"],
            output_folder=paths["output_folder_path"],
            test_data_folder=paths["test_data_path"],
            output_model_folder=paths["output_model_path"],
            prod_deployment_folder=paths["prod_deployment_path"],
            features=tuple(features),
            target=str(merged["target"]),
            id_column=str(merged["id_column"]),
            test_data_file=str(merged["test_data_file"]),
            api_url=str(merged["api_url"]).rstrip("/"),
            api_timeout_seconds=float(merged["api_timeout_seconds"]),
            model=model,
            data_folders=data_folders,
            max_request_bytes=int(merged["max_request_bytes"]),
            packages_timeout_seconds=float(merged["packages_timeout_seconds"]),
            package_index_url=index_url,
            raw=raw,
        )
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"config file {config_file} has a value of the wrong type: {exc}") from None
