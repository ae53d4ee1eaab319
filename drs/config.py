"""Load config.json into resolved paths.

Relative paths are resolved against the folder that holds the config file,
never against the current directory, so `cd / && python /proj/fullprocess.py`
behaves exactly like a run from the project folder.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from drs import rawconfig
from drs.layout import HISTORY_DB, LOCK_FILE
from drs.rawconfig import ConfigError  # noqa: F401  (re-exported)

PROJECT_ROOT = Path(rawconfig.PROJECT_ROOT)
DEFAULT_CONFIG = Path(rawconfig.DEFAULT_CONFIG)
REQUIRED_PATH_KEYS = rawconfig.REQUIRED_PATH_KEYS
DEFAULTS = rawconfig.DEFAULTS


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
        return self.output_folder / HISTORY_DB

    @property
    def lock_file(self) -> Path:
        return self.output_folder / LOCK_FILE

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


def load_config(path: str | os.PathLike[str] | None = None) -> Config:
    """Read and check a config file (drs.rawconfig); raise ConfigError with a one-line reason."""
    config_file = rawconfig.config_file_path(path)
    raw = rawconfig.read(config_file)
    values = rawconfig.checked(raw, config_file)
    return Config(
        config_file=Path(values["config_file"]),
        input_folder=Path(values["input_folder_path"]),
        output_folder=Path(values["output_folder_path"]),
        test_data_folder=Path(values["test_data_path"]),
        output_model_folder=Path(values["output_model_path"]),
        prod_deployment_folder=Path(values["prod_deployment_path"]),
        features=values["features"],
        target=values["target"],
        id_column=values["id_column"],
        test_data_file=values["test_data_file"],
        api_url=values["api_url"],
        api_timeout_seconds=values["api_timeout_seconds"],
        model=values["model"],
        data_folders=tuple(Path(folder) for folder in values["data_folders"]),
        max_request_bytes=values["max_request_bytes"],
        packages_timeout_seconds=values["packages_timeout_seconds"],
        package_index_url=values["package_index_url"],
        raw=raw,
    )
