"""The production deployment folder: immutable versions and one atomic switch.

Layout of `prod_deployment_path`:

    versions/v0001/  trainedmodel.pkl latestscore.txt ingestedfiles.txt deployment.json
    versions/v0002/  ...
    current -> versions/v0002          (a symlink, replaced in one rename)
    trainedmodel.pkl -> current/trainedmodel.pkl
    latestscore.txt  -> current/latestscore.txt
    ingestedfiles.txt -> current/ingestedfiles.txt
    deployment.json  -> current/deployment.json
    candidates/<time>-<sha>/  a retrained model the promotion gate did not deploy, kept for inspection

A version deployed with the data its model was trained on also holds
`trainingdata.csv` (checksummed like the rest): the reference for data drift,
and `trainingreference.npz`, its summary computed once at deployment
(drs/model/reference.py), so that a drift check reads only the new rows. These two
large files are checksummed when they are read, not on every check of the
version (their presence is always checked).
A version folder is complete and fsynced before `current` is pointed at it,
so the course's file names always show one whole deployment: a reader never
sees the model of one deployment beside the score of another. Readers in this
project resolve `current` once and read every file from that one folder.
"""

from __future__ import annotations

import json
import os
import pickle
import shutil
import time
from collections.abc import Collection
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypedDict

from drs.core.configkeys import ModelSettings
from drs.core.errors import DeploymentError
from drs.core.fileio import fsync_dir, remove_stale_temporaries, sha256_file
from drs.core.layout import (
    CANDIDATE_FILE,
    CANDIDATES,
    CURRENT,
    DEPLOYED_FILES,
    INGESTED_FILES,
    LARGE_FILES,
    META_FILE,
    MODEL_FILE,
    REFERENCE_FILE,
    SCORE_FILE,
    TMP_PREFIX,
    TRAINING_DATA_FILE,
    VERSIONS,
    utc_now,
    version_label,
    version_number,
)
from drs.core.stamps import FileStamp

if TYPE_CHECKING:  # a type only: the tick that reads a deployment never builds the step results
    from drs.history.results import GateRecord

DEPLOYED_BY_PIPELINE = "fullprocess"  # deployment.json's `deployed_by` for versions the full process deployed


class DeployedScore(TypedDict, total=False):
    """deployment.json's `score`: the candidate's latestscore.json on the test data when it was deployed (None where it had no such key)."""

    f1: float | None
    precision: float | None
    recall: float | None
    accuracy: float | None
    rows: int | None
    confusion_matrix: list[list[int]] | None
    calibration: Any  # drs/model/calibration.py's record, read there
    test_data: str | None
    scored_at: str | None


class DeploymentMeta(TypedDict, total=False):
    """deployment.json (and a kept candidate's candidate.json), with every key it has had: older versions lack the newer ones.

    `settings`, `reference` and `production_calibration` are the training record's own parts (drs/model/training.py),
    copied as they are and read by the modules that wrote them."""

    version: int
    label: str
    deployed_at: str
    deployed_by: str
    reason: str
    sha256: dict[str, str]
    ingested: dict[str, FileStamp]
    trained_at: str | None
    training_rows: int | None
    training_files: list[str] | None
    settings: ModelSettings | None
    features: list[str] | None
    reference: dict[str, Any] | None
    production_calibration: dict[str, Any] | None
    score: DeployedScore


class CandidateMeta(DeploymentMeta, total=False):
    """candidate.json of a model the gate kept and did not deploy."""

    gate: GateRecord
    deployed_version: str | None
    kept_at: str


class ListedCandidate(CandidateMeta, total=False):
    """A kept candidate as `list_candidates` gives it: its candidate.json and its `folder`."""

    folder: str


class DeploymentRow(TypedDict):
    """One deployment as the page and the report list it."""

    label: str
    deployed_at: str | None
    f1: float | None
    training_files: list[str]
    reason: str | None


@dataclass(frozen=True)
class Deployment:
    version: int
    folder: Path
    meta: DeploymentMeta

    @property
    def label(self) -> str:
        return version_label(self.version)

    @property
    def model_path(self) -> Path:
        return self.folder / MODEL_FILE

    def score(self) -> float:
        return float((self.folder / SCORE_FILE).read_text().strip())

    @property
    def model_sha256(self) -> str | None:
        sha = self.meta.get("sha256", {}).get(MODEL_FILE)
        return sha if isinstance(sha, str) else None

    @property
    def reference_path(self) -> Path | None:
        """The summary of the training data (drs/model/reference.py), when this version was deployed with one."""
        return self.folder / REFERENCE_FILE if REFERENCE_FILE in self.meta.get("sha256", {}) else None

    @property
    def training_data_path(self) -> Path | None:
        """The copy of the training data, when this version was deployed with one."""
        return self.folder / TRAINING_DATA_FILE if TRAINING_DATA_FILE in self.meta.get("sha256", {}) else None

    def ingested_files(self) -> list[str]:
        text = (self.folder / INGESTED_FILES).read_text(encoding="utf-8")
        return [line for line in text.splitlines() if line.strip()]

    def trained_on(self) -> dict[str, FileStamp | None]:
        """Each file this version was trained on, with its sha256, size and mtime_ns as ingested;
        None for every file of a version deployed before those were recorded (known by name only)."""
        stamps = self.meta.get("ingested")
        names = self.ingested_files()
        if not isinstance(stamps, dict):
            return dict.fromkeys(names)
        return {name: stamps.get(name) for name in names}


def _load(folder: Path) -> Deployment:
    version = version_number(folder.name)
    if version is None:
        raise DeploymentError(f"{folder} is not a version folder")
    try:
        meta = json.loads((folder / META_FILE).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise DeploymentError(f"deployment {folder.name} has no {META_FILE}") from None
    except (OSError, ValueError) as exc:
        raise DeploymentError(f"deployment {folder.name}: unreadable {META_FILE}: {exc}") from None
    return Deployment(version=version, folder=folder, meta=meta)


def current(prod: Path) -> Deployment | None:
    """The deployment `current` points at, or None when nothing is deployed."""
    link = Path(prod) / CURRENT
    try:
        target = os.readlink(link)
    except (FileNotFoundError, OSError):
        return None
    return _load((link.parent / target).resolve())


def at_link_target(prod: Path, target: str) -> Deployment:
    """The deployment a `current` link target (as current_signature gave it) names.

    Loading by the target read once, instead of reading `current` again,
    keeps a reader on one version even if `current` moves meanwhile.
    """
    return _load((Path(prod) / target).resolve())


def current_signature(prod: Path) -> str | None:
    """A cheap per-request check: the target of `current` changes with every switch."""
    try:
        return os.readlink(os.path.join(prod, CURRENT))  # os.path, not pathlib: the API calls this per request
    except OSError:
        return None


def list_versions(prod: Path) -> list[Deployment]:
    root = Path(prod) / VERSIONS
    if not root.is_dir():
        return []
    found = []
    for entry in sorted(root.iterdir()):
        if version_number(entry.name) is not None and entry.is_dir():
            try:
                found.append(_load(entry))
            except DeploymentError:
                continue
    return sorted(found, key=lambda d: d.version)


def deployment_rows(prod: Path) -> list[DeploymentRow]:
    """Every deployment so far, oldest first, with its F1 on the test data at deployment (for the page and the report)."""
    return [
        {
            "label": d.label,
            "deployed_at": d.meta.get("deployed_at"),
            "f1": (d.meta.get("score") or {}).get("f1"),
            "training_files": d.meta.get("training_files") or [],
            "reason": d.meta.get("reason"),
        }
        for d in list_versions(prod)
    ]


def verify(deployment: Deployment, skip: Collection[str] = ()) -> None:
    """Raise DeploymentError unless every file is present with a recorded sha256 that it matches.

    Files named in `skip` are only checked to be present: LARGE_FILES are checksummed by whoever reads them."""
    checksums = deployment.meta.get("sha256")
    checksums = checksums if isinstance(checksums, dict) else {}
    for name in dict.fromkeys([*DEPLOYED_FILES, *checksums]):
        path = deployment.folder / name
        if not path.is_file():
            raise DeploymentError(f"deployment {deployment.label} is missing {name}")
        expected = checksums.get(name)
        if expected is None:
            raise DeploymentError(f"deployment {deployment.label} records no checksum for {name}")
        if name not in skip and sha256_file(path) != expected:
            raise DeploymentError(
                f"deployment {deployment.label}: {name} does not match the checksum recorded at deployment (changed or damaged)"
            )


def load_model(deployment: Deployment) -> Any:
    """Unpickle the model only after its checksum is confirmed; DeploymentError if it does not load."""
    verify(deployment, skip=LARGE_FILES)
    try:
        with open(deployment.model_path, "rb") as handle:
            return pickle.load(handle)
    except Exception as exc:  # an unpicklable file is a broken deployment, whatever the exception
        raise DeploymentError(f"deployment {deployment.label}: the model does not load ({type(exc).__name__}: {exc})") from None


def _swap_symlink(link: Path, target: str) -> None:
    tmp = link.parent / f"{TMP_PREFIX}{link.name}.{os.getpid()}.{time.monotonic_ns()}"
    os.symlink(target, tmp)
    os.replace(tmp, link)
    fsync_dir(link.parent)


def _ensure_course_names(prod: Path) -> None:
    """Point the course's top-level names at `current/...` (done once; later switches need no change)."""
    for name in (*DEPLOYED_FILES, META_FILE):
        link = prod / name
        target = f"{CURRENT}/{name}"
        if link.is_symlink() and os.readlink(link) == target:
            continue
        _swap_symlink(link, target)


def get(prod: Path, version: int) -> Deployment:
    folder = Path(prod) / VERSIONS / version_label(version)
    if not folder.is_dir():
        raise DeploymentError(f"no deployment {version_label(version)} in {prod}")
    return _load(folder)


def activate(prod: Path, version: int) -> Deployment:
    """Make `version` current in one rename, after checking it is whole."""
    prod = Path(prod)
    deployment = get(prod, version)
    verify(deployment)
    _swap_symlink(prod / CURRENT, f"{VERSIONS}/{deployment.label}")
    _ensure_course_names(prod)
    return deployment


def clean_stale(prod: Path) -> int:
    """Remove half-built version folders and temporary links left by a killed run."""
    return sum(remove_stale_temporaries(folder) for folder in (Path(prod), Path(prod) / VERSIONS, Path(prod) / CANDIDATES))


def _write_folder(staging: Path, files: dict[str, Path], meta_name: str, meta: DeploymentMeta | CandidateMeta) -> None:
    """Copy `files` into the new folder `staging`, fsync them, write `meta_name`: `meta` with their sha256."""
    staging.mkdir()
    checksums = {}
    for name, source in files.items():
        shutil.copyfile(source, staging / name)
        with open(staging / name, "rb+") as handle:
            os.fsync(handle.fileno())
        checksums[name] = sha256_file(staging / name)
    (staging / meta_name).write_text(json.dumps({**meta, "sha256": checksums}, indent=2, sort_keys=True, default=str) + "\n")
    with open(staging / meta_name, "rb+") as handle:
        os.fsync(handle.fileno())
    fsync_dir(staging)


def publish(prod: Path, files: dict[str, Path], meta: DeploymentMeta) -> Deployment:
    """Copy `files` (the course's three, optionally trainingdata.csv) into a new version folder, then switch `current` to it.

    The caller holds the run lock, so version numbers cannot collide.
    """
    prod = Path(prod)
    missing = [name for name in DEPLOYED_FILES if name not in files]
    if missing:
        raise DeploymentError(f"cannot deploy without {', '.join(missing)}")
    (prod / VERSIONS).mkdir(parents=True, exist_ok=True)
    clean_stale(prod)
    versions = list_versions(prod)
    existing = [v for e in (prod / VERSIONS).iterdir() if (v := version_number(e.name)) is not None]
    version = max(existing + [d.version for d in versions], default=0) + 1
    label = version_label(version)
    staging = prod / VERSIONS / f"{TMP_PREFIX}{label}.{os.getpid()}"
    try:
        _write_folder(staging, files, META_FILE, {**meta, "version": version, "label": label, "deployed_at": utc_now()})
        os.rename(staging, prod / VERSIONS / label)
        fsync_dir(prod / VERSIONS)
    except BaseException as exc:
        shutil.rmtree(staging, ignore_errors=True)
        if isinstance(exc, OSError):
            raise DeploymentError(
                f"cannot write deployment {label} in {prod}: {exc.strerror or exc}; the current deployment is unchanged"
            ) from exc
        raise
    try:
        return activate(prod, version)
    except OSError as exc:
        now = current_signature(prod)
        raise DeploymentError(f"cannot make {label} current in {prod}: {exc.strerror or exc}; current is {now or 'nothing'}") from exc


def keep_candidate(prod: Path, files: dict[str, Path], meta: DeploymentMeta, gate: GateRecord, deployed_version: str | None) -> Path:
    """Keep a model the gate did not deploy (`gate`, against `deployed_version`) under `candidates/`, beside production and never current."""
    root = Path(prod) / CANDIDATES
    root.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    name = f"{stamp}-{sha256_file(files[MODEL_FILE])[:8]}"
    staging = root / f"{TMP_PREFIX}{name}.{os.getpid()}"
    try:
        kept: CandidateMeta = {**meta, "gate": gate, "deployed_version": deployed_version, "kept_at": utc_now()}
        _write_folder(staging, files, CANDIDATE_FILE, kept)
        target = root / name
        if target.exists():  # the same model rejected twice within a second: keep the first copy
            shutil.rmtree(staging)
            return target
        os.rename(staging, target)
        fsync_dir(root)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return target


def prune_candidates(prod: Path, keep: int) -> list[str]:
    """Remove all but the newest `keep` kept candidates (their names sort by time); return the names removed.

    Each is first renamed to a temporary name, so that a run killed halfway leaves what `clean_stale` removes."""
    root = Path(prod) / CANDIDATES
    if not root.is_dir():
        return []
    kept = sorted(e.name for e in root.iterdir() if e.is_dir() and not e.name.startswith(TMP_PREFIX))
    removed = kept[: max(len(kept) - keep, 0)]
    for name in removed:
        doomed = root / f"{TMP_PREFIX}{name}.removed"
        os.rename(root / name, doomed)
        shutil.rmtree(doomed, ignore_errors=True)
    return removed


def list_candidates(prod: Path) -> list[ListedCandidate]:
    """Kept candidates, oldest first, each its candidate.json plus `folder`."""
    root = Path(prod) / CANDIDATES
    if not root.is_dir():
        return []
    found: list[ListedCandidate] = []
    for entry in sorted(root.iterdir()):
        if entry.name.startswith(TMP_PREFIX) or not entry.is_dir():
            continue
        meta: CandidateMeta
        try:
            meta = json.loads((entry / CANDIDATE_FILE).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            meta = {}
        found.append({**meta, "folder": str(entry)})
    return found
