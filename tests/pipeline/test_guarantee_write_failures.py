"""Promise 8, disk full and read-only output: a write that fails leaves the files it was replacing
and production as they were, leaves no temporary file, and the run exits 1 naming the file and the
error; once the disk has room again, the next run does the work.

tests/faultrun.py injects the faults without changing the code under test: a read-only folder
(every change under it fails with EROFS, as on a read-only mount; chmod would not stop the root
user the tests may run as) and a full disk (fsync of any file under the folder fails with ENOSPC,
where a full disk reports it for buffered writes).
"""

from __future__ import annotations

import pytest

from drs.core.settings import Config
from drs.history import runs as history
from drs.pipeline import run as pipeline
from drs.production import versions as production
from tests.conftest import tree_state
from tests.faults import assert_one_whole_deployment, leftovers, run_with_faults

FAULTS = {"readonly": "Read-only file system", "nospace": "No space left on device"}


def unchanging(state: dict[str, tuple[str, int]]) -> dict[str, tuple[str, int]]:
    """All but the run history (written by SQLite, outside these faults) and the lock file every run creates."""
    return {k: v for k, v in state.items() if not k.endswith(("runhistory.sqlite", ".fullprocess.lock"))}


def message(config: Config, folder: str, fault: str) -> str:
    """The last line the run logs: which file could not be written, and why."""
    error = FAULTS[fault]
    if folder == "production_deployment":
        return f"cannot write deployment v0002 in {config.prod_deployment_folder}: {error}; the current deployment is unchanged"
    if folder == "ingesteddata" and fault == "readonly":
        return f"[Errno 30] {error}: '{config.lock_file}'"  # the run cannot even take its lock
    path = config.final_data_csv if folder == "ingesteddata" else config.model_pkl
    return f"cannot write {path}: {error}; the previous file is left as it was"


@pytest.mark.parametrize("fault", sorted(FAULTS))
@pytest.mark.parametrize("folder", ["ingesteddata", "models", "production_deployment"])
def test_failed_write_leaves_outputs_and_production_and_exits_1(deployed_practice: Config, config: Config, folder: str, fault: str) -> None:
    project = config.config_file.parent
    fill_models = folder == "models"
    if fill_models:  # earlier outputs in the models folder, to see they survive
        assert pipeline.run(deployed_practice) == 0
        (config.output_model_folder / "trainedmodel.pkl").write_bytes(b"earlier model")
    broken = project / folder
    before = unchanging(tree_state(broken))
    prod_before = tree_state(config.prod_deployment_folder)

    done = run_with_faults("fullprocess.py", config, **{fault: broken})
    assert done.returncode == 1
    last = done.stderr.strip().splitlines()[-1]
    assert last.endswith(message(config, folder, fault)), last
    assert "Traceback" not in done.stderr
    assert unchanging(tree_state(broken)) == before
    assert tree_state(config.prod_deployment_folder) == prod_before
    assert_one_whole_deployment(config)
    assert leftovers(project) == []
    if not (folder == "ingesteddata" and fault == "readonly"):
        assert history.runs(config.history_db)[-1]["outcome"] == "failed"

    assert pipeline.run(config) == 0  # room again: the next run does the work
    assert production.current(config.prod_deployment_folder).version == 2
    assert_one_whole_deployment(config)
