"""Every file name of the course layout and of production, declared once, with version labels and time stamps.

Paths are built from these names by `drs.core.settings.Config`'s properties; no other module spells a name.

See docs/architecture.md (Production layout; Module map).
"""

from __future__ import annotations

import time

TMP_PREFIX = ".tmp-"  # a temporary file or folder of a run in progress (or of a killed one)

# the project folder
CONFIG_FILE = "config.json"
REQUIREMENTS = "requirements.txt"
CRON_LOG = "logs/fullprocess.log"  # where cronjob.txt's line appends the full process's output
USERS_FILE = "instance/users.json"  # the default users_file: git-ignored, mode 0600 (drs/web/users.py)
SECRET_KEY_FILE = "secret_key"  # beside the users file: signs the page's session cookies (drs/web/signin.py)
PIPELINE_TOKEN_FILE = "pipeline_token"  # beside the users file, 0600: the full process's own API token (drs/web/users.py)

# output_folder_path
FINAL_DATA = "finaldata.csv"
INGESTED_FILES = "ingestedfiles.txt"
INGESTION_RECORD = "ingestionrecord.json"
HISTORY_DB = "runhistory.sqlite"
LOCK_FILE = ".fullprocess.lock"
ROWSTORE_DIR = "finaldata.store"
ROWSTORE_MANIFEST = "manifest.json"
KEPT_SOURCES_DIR = "sourcecopies"  # <input folder name>/<file>: each accepted file as last ingested
PROMETHEUS_DIR = "prometheus"  # server-<master pid>/: each server's workers share their metric files there (drs/web/multiproc.py)

# output_model_path
MODEL_FILE = "trainedmodel.pkl"
MODEL_META = "trainedmodel.json"
SCORE_FILE = "latestscore.txt"
SCORE_META = "latestscore.json"
DIAGNOSTICS = "diagnostics.json"
PACKAGE_INDEX_CACHE = "packageindex.json"
CONFUSION_MATRIX = "confusionmatrix.png"
RISK_LIST = "risklist.csv"
RISK_STORE = "risklist.sqlite"  # the same ranking, indexed: what the views read (drs/reports/riskstore.py)
CLIENT_ROWS = "clientrows.sqlite"  # each client's rows across the ingested files, indexed (drs/reports/riskstore.py)
CHANGES = "changes.json"  # what changed since the previous ranking (drs/reports/movement.py), written with risklist.csv
RISK_META = "risklist.json"  # which model ranked which data, when and why (drs/reports/standing.py); written last, after the others
RISK_DISTRIBUTION = "riskdistribution.png"
TRENDS = "trends.png"
RELIABILITY = "reliability.png"  # the PDF's reliability curve (the page draws its own as SVG)
REPORT_PDF = "report.pdf"
API_RETURNS = "apireturns.txt"
API_RETURNS_JSON = "apireturns.json"
API_RETURNS_FAILED = "apireturns.failed.json"  # the last attempt that failed (the two above keep the last complete answers)
IMAGES = (CONFUSION_MATRIX, TRENDS, RISK_DISTRIBUTION)

# prod_deployment_path: versions/vNNNN/ hold these, `current` links to one, the course's names link into `current`
META_FILE = "deployment.json"
TRAINING_DATA_FILE = "trainingdata.csv"
REFERENCE_FILE = "trainingreference.npz"
CANDIDATE_FILE = "candidate.json"
DEPLOYED_FILES = (MODEL_FILE, SCORE_FILE, INGESTED_FILES)
LARGE_FILES = (TRAINING_DATA_FILE, REFERENCE_FILE)  # checksummed by whoever reads them, not on every check
CURRENT = "current"
VERSIONS = "versions"
CANDIDATES = "candidates"
VERSION_PREFIX = "v"


def utc_now() -> str:
    """The time stamp of every record: UTC to the second, ISO 8601 (`datetime.isoformat` gives the same)."""
    return time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime())


def version_label(version: int) -> str:
    return f"{VERSION_PREFIX}{version:04d}"


def version_number(folder_name: str) -> int | None:
    """4 for `v0004`; None for a name that is not a version folder's."""
    digits = folder_name[len(VERSION_PREFIX) :]
    if folder_name.startswith(VERSION_PREFIX) and len(digits) >= 4 and digits.isascii() and digits.isdigit():
        return int(digits)
    return None
