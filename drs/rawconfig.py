"""Reading and checking config.json, on plain values, with nothing heavier than `json` and `os`.

`drs.config.load_config` builds its `Config` (pathlib paths) from `checked`; the
cron job's empty check (drs/quickcheck.py) calls `checked` itself, so a config
that the stages would refuse is refused there too, by the same code.
Relative paths are resolved against the folder that holds the config file,
never against the current directory.
"""
from __future__ import annotations

import json
import os

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

PROJECT_ROOT = os.path.dirname(os.path.dirname(os.path.realpath(__file__)))
DEFAULT_CONFIG = os.path.join(PROJECT_ROOT, "config.json")

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


def config_file_path(path: str | os.PathLike[str] | None = None) -> str:
    """The config file's absolute path (not resolved through links): the default beside the scripts, or `path`."""
    chosen = os.path.expanduser(os.fspath(path)) if path else DEFAULT_CONFIG
    return chosen if os.path.isabs(chosen) else os.path.join(os.getcwd(), chosen)


def read(config_file: str) -> dict[str, Any]:
    """The config file's JSON object; ConfigError with a one-line reason."""
    try:
        with open(config_file, encoding="utf-8") as handle:
            text = handle.read()
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
    return raw


def resolve(base: str, value: Any, key: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ConfigError(f"key '{key}' must be a non-empty path string")
    path = os.path.expanduser(value)
    return os.path.realpath(path if os.path.isabs(path) else os.path.join(base, path))


def _is_http_url(value: Any) -> bool:
    if not isinstance(value, str):
        return False
    from urllib.parse import urlsplit  # here, not at the top: most configs never need it

    parts = urlsplit(value.strip())
    return parts.scheme in ("http", "https") and bool(parts.netloc)


def package_index_url(raw: dict[str, Any]) -> str | None:
    """The Simple API base URL diagnostics ask for newest versions: the config key, else pip's
    PIP_INDEX_URL (a machine whose pip is pointed at a mirror that way asks that mirror; pip.conf
    is not read), else PyPI.

    None when PIP_INDEX_URL is not http(s) (a local folder pip can read, HTTP cannot): the index is
    then not asked, rather than failing every stage over a setting that only pip uses."""
    if "package_index_url" in raw:
        value = raw["package_index_url"]
        if not _is_http_url(value):
            raise ConfigError(f"key 'package_index_url' must be an http(s) URL such as {DEFAULTS['package_index_url']}, got {value!r}")
        return value.strip().rstrip("/")
    value = os.environ.get("PIP_INDEX_URL")
    if not value:
        return DEFAULTS["package_index_url"]
    return value.strip().rstrip("/") if _is_http_url(value) else None


def checked(raw: dict[str, Any], config_file: str) -> dict[str, Any]:
    """Every setting the stages read, merged with DEFAULTS, converted and checked; paths absolute `str`s.

    Keys: the five REQUIRED_PATH_KEYS, `config_file`, `data_folders` (a tuple) and the keys of DEFAULTS."""
    missing = [key for key in REQUIRED_PATH_KEYS if key not in raw]
    if missing:
        raise ConfigError(f"config file {config_file} lacks key(s): {', '.join(missing)}")
    base = os.path.dirname(os.path.realpath(config_file))
    merged = {**DEFAULTS, **raw}
    paths = {key: resolve(base, raw[key], key) for key in REQUIRED_PATH_KEYS}
    index_url = package_index_url(raw)
    features = merged["features"]
    if not (isinstance(features, list) and features and all(isinstance(f, str) for f in features)):
        raise ConfigError("key 'features' must be a non-empty list of column names")
    folders = merged["data_folders"]
    if folders is None:
        data_folders = (paths["input_folder_path"], paths["output_folder_path"], paths["test_data_path"])
    elif isinstance(folders, list):
        data_folders = tuple(resolve(base, f, "data_folders") for f in folders)
    else:
        raise ConfigError("key 'data_folders' must be a list of folder paths")
    try:
        return {
            **paths,
            "config_file": os.path.realpath(config_file),
            "features": tuple(features),
            "target": str(merged["target"]),
            "id_column": str(merged["id_column"]),
            "test_data_file": str(merged["test_data_file"]),
            "api_url": str(merged["api_url"]).rstrip("/"),
            "api_timeout_seconds": float(merged["api_timeout_seconds"]),
            "model": {**DEFAULTS["model"], **(raw.get("model") or {})},
            "data_folders": data_folders,
            "max_request_bytes": int(merged["max_request_bytes"]),
            "packages_timeout_seconds": float(merged["packages_timeout_seconds"]),
            "package_index_url": index_url,
        }
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"config file {config_file} has a value of the wrong type: {exc}") from None
