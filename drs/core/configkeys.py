"""The config keys' checks: what each kind of value must be, how it is converted, and how a key is declared.

drs/core/settings.py declares every key of config.json as a field of `Config` with `setting(key, default, check,
meaning)`; the checks below turn a raw JSON value into the value a field holds (a path resolved against the config
file's folder, a number within its bounds, a URL), or raise ValueError saying what it must be, which the loader
turns into a one-line ConfigError. The keys and their meaning: README (Configuration) and docs/architecture.md.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NotRequired, TypedDict
from urllib.parse import urlsplit

from drs.core import ids

DATABASE_URL_ENV = "DRS_SOURCE_DATABASE_URL"
DRIFT_TESTS = ("raw", "parametric", "nonparametric")


class ModelSettings(TypedDict):
    """The config's `model`: the logistic regression's settings (drs/model/estimator.py), as trainedmodel.json and
    deployment.json keep them (`scale` and `dtype` are missing in the settings of versions trained before they existed)."""

    C: float
    solver: str
    random_state: int
    max_iter: int
    scale: NotRequired[bool]
    dtype: NotRequired[str]  # float64 or float32


MODEL_DEFAULTS: ModelSettings = {"C": 1.0, "solver": "liblinear", "random_state": 0, "scale": False, "max_iter": 1000, "dtype": "float64"}


class Required:
    """The default of a key every config file must have."""

    def __repr__(self) -> str:
        return "required"


REQUIRED = Required()


@dataclass(frozen=True)
class Check:
    """Converts a raw JSON value or raises ValueError with what it must be; `kind` names it in the table."""

    kind: str
    convert: Callable[[Any, Path], Any]
    secret: bool = False  # the value may hold passwords or tokens: an error never shows it


@dataclass(frozen=True)
class Derived:
    """A default computed from the settings declared before it (and the environment)."""

    describe: str
    compute: Callable[[dict[str, Any]], Any]
    overrides: bool = False  # a value it computes (not None) wins over the file's (an environment variable that overrides)


def _path(value: Any, base: Path) -> Path:
    if not isinstance(value, str) or not value.strip():
        raise ValueError("must be a non-empty path string")
    path = Path(os.path.expanduser(value))
    return Path(os.path.realpath(path if path.is_absolute() else base / path))


def _paths(value: Any, base: Path) -> tuple[Path, ...] | None:
    if value is None:
        return None
    if not isinstance(value, list):
        raise ValueError("must be a list of folder paths")
    return tuple(_path(v, base) for v in value)


def _names(value: Any, base: Path) -> tuple[str, ...]:
    if not (isinstance(value, list) and value and all(isinstance(v, str) and v for v in value)):
        raise ValueError("must be a non-empty list of column names")
    return tuple(value)


def _name(value: Any, base: Path) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ValueError("must be a non-empty string")
    return value


def _number(minimum: float, strict: bool) -> Callable[[Any, Path], float]:
    def convert(value: Any, base: Path) -> float:
        if (
            isinstance(value, bool)
            or not isinstance(value, (int, float))
            or not math.isfinite(value)
            or not (value > minimum if strict else value >= minimum)
        ):
            raise ValueError(f"must be a number {'>' if strict else '>='} {minimum:g}")
        return float(value)

    return convert


def _whole(minimum: int) -> Callable[[Any, Path], int]:
    def convert(value: Any, base: Path) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            raise ValueError(f"must be a whole number of at least {minimum}")
        return value

    return convert


def _id_length(value: Any, base: Path) -> int:
    """max_id_length: the bound is drs/core/ids.py's LONGEST, so that an id's own link (and its sign-in link) fits gunicorn's request line."""
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= ids.LONGEST:
        raise ValueError(
            f"must be a whole number from 1 to {ids.LONGEST} (a client's link, percent-encoded, and the sign-in link that "
            f"quotes it again take up to 20 bytes a character and must fit gunicorn's limit_request_line of {ids.REQUEST_LINE} bytes)"
        )
    return value


def _any_number(value: Any, base: Path) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ValueError("must be a number")
    return float(value)


def _fraction(value: Any, base: Path) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value < 1:
        raise ValueError("must be a number from 0 up to (not including) 1")
    return float(value)


def _optional_name(value: Any, base: Path) -> str | None:
    return None if value is None else _name(value, base)


def _boolean(value: Any, base: Path) -> bool:
    if not isinstance(value, bool):
        raise ValueError("must be true or false")
    return value


def http_url(value: Any) -> str | None:
    if not isinstance(value, str):
        return None
    parts = urlsplit(value.strip())
    return value.strip().rstrip("/") if parts.scheme in ("http", "https") and parts.netloc else None


def _url(value: Any, base: Path) -> str:
    url = http_url(value)
    if url is None:
        raise ValueError("must be an http(s) URL such as http://127.0.0.1:8000")
    return url


def _optional_url(value: Any, base: Path) -> str | None:
    if value is None or value == "":
        return None
    return _url(value, base)


def _url_or_null(value: Any, base: Path) -> str | None:
    """An http(s) URL, or null for "not set" (an empty string is neither: a mistake, said)."""
    return None if value is None else _url(value, base)


def _notify_urls(value: Any, base: Path) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) and "://" in v.strip() for v in value):
        raise ValueError("must be a list of Apprise URLs such as json://host/path or mailto://user:password@host")
    return tuple(v.strip() for v in value)


def _database_url(value: Any, base: Path) -> str | None:
    """A SQLAlchemy URL (`dialect[+driver]://...`), or None for no database; `sqlite:///relative` resolves against the config's folder."""
    if value is None or value == "":
        return None
    if not isinstance(value, str) or "://" not in value:
        raise ValueError("must be a SQLAlchemy URL such as sqlite:///clients.db or postgresql+psycopg://user@host/db, or null")
    url = value.strip()
    prefix = "sqlite:///"
    if url.startswith(prefix) and not url.startswith(prefix + "/") and url != prefix:
        url = prefix + str(base / url[len(prefix) :])
    return url


def source_database_url(values: dict[str, Any]) -> str | None:
    """DRS_SOURCE_DATABASE_URL when set (so a password can stay out of config.json), else none."""
    return _database_url(os.environ.get(DATABASE_URL_ENV), Path.cwd())


def _one_of(choices: tuple[str, ...]) -> Callable[[Any, Path], str]:
    def convert(value: Any, base: Path) -> str:
        if value not in choices:
            raise ValueError(f"must be one of {', '.join(choices)}")
        return str(value)

    return convert


def _min_history(value: Any, base: Path) -> dict[str, int]:
    allowed = DRIFT_TESTS[1:]
    if not isinstance(value, dict) or any(k not in allowed for k in value):
        raise ValueError(f"must be an object with keys among {', '.join(allowed)}")
    for count in value.values():
        _whole(2)(count, base)
    return {"parametric": 3, "nonparametric": 5, **value}


def _model(value: Any, base: Path) -> ModelSettings:
    if not isinstance(value, dict) or any(k not in MODEL_DEFAULTS for k in value):
        raise ValueError(f"must be an object with keys among {', '.join(MODEL_DEFAULTS)}")
    merged = {**MODEL_DEFAULTS, **value}
    if merged["dtype"] not in ("float64", "float32"):
        raise ValueError("must have dtype float64 or float32")
    if not isinstance(merged["scale"], bool) or not isinstance(merged["solver"], str):
        raise ValueError("must have scale true or false and solver a string")
    try:
        c, random_state, max_iter = float(merged["C"]), int(merged["random_state"]), int(merged["max_iter"])
    except (TypeError, ValueError):
        raise ValueError("must have C a number, random_state and max_iter whole numbers") from None
    return {
        "C": c,
        "solver": merged["solver"],
        "random_state": random_state,
        "scale": merged["scale"],
        "max_iter": max_iter,
        "dtype": merged["dtype"],
    }


PATH = Check("path", _path)
PATHS = Check("list of paths", _paths)
NAMES = Check("list of names", _names)
NAME = Check("string", _name)
SECONDS = Check("number > 0", _number(0, strict=True))
SECONDS_OR_OFF = Check("number >= 0", _number(0, strict=False))
DAYS = Check("number > 0", _number(0, strict=True))
COUNT = Check("whole number >= 1", _whole(1))
ID_LENGTH = Check(f"whole number from 1 to {ids.LONGEST}", _id_length)
URL = Check("http(s) URL", _url)
OPTIONAL_URL = Check("http(s) URL or null", _optional_url)
URL_OR_NULL = Check("http(s) URL or null", _url_or_null)
FRACTION = Check("number from 0 to < 1", _fraction)
OPTIONAL_NAME = Check("string or null", _optional_name)
NOTIFY_URLS = Check("list of Apprise URLs", _notify_urls, secret=True)
DATABASE_URL = Check("SQLAlchemy URL or null", _database_url, secret=True)
MINUTES = Check("number > 0", _number(0, strict=True))
HOURS = Check("number > 0", _number(0, strict=True))
BOOLEAN = Check("true/false", _boolean)
NUMBER = Check("number", _any_number)
DRIFT_TEST = Check(" / ".join(DRIFT_TESTS), _one_of(DRIFT_TESTS))
AUTH_MODES = ("on", "off")
AUTH = Check(" / ".join(AUTH_MODES), _one_of(AUTH_MODES))
HOPS = Check("whole number >= 0", _whole(0))
MIN_HISTORY = Check("object", _min_history)
MODEL = Check("object", _model)


def setting(key: str, default: Any, check: Check, meaning: str) -> Any:
    """One config key: declared as a field of `Config`, whose name may differ from the key."""
    return field(metadata={"key": key, "default": default, "check": check, "meaning": meaning})
