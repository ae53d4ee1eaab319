"""The per-version summary of the training data (drs/model/reference.py): same numbers as the full data, used by the full process."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from scipy.stats import ks_2samp

from drs.core import layout
from drs.core.errors import DeploymentError
from drs.core.settings import Config
from drs.data.readers import read_polars_checked
from drs.data.rowstore import rows_in
from drs.data.schema import Schema
from drs.history import runs as history
from drs.model import drift, reference
from drs.pipeline import judge
from drs.pipeline import run as pipeline
from drs.production import versions as production
from tests.conftest import ROOT

FEATURES = ["lastmonth_activity", "lastyear_activity", "number_of_employees"]


def shipped(config: Config) -> tuple[pl.DataFrame, pl.DataFrame, Schema]:
    schema = Schema.from_config(config)
    training = pl.concat([read_polars_checked(p, schema) for p in sorted((ROOT / "sourceddata").glob("*.csv"))])
    return training, read_polars_checked(ROOT / "testdata" / "testdata.csv", schema), schema


def test_summary_gives_the_full_datas_numbers_on_the_shipped_data(config: Config, tmp_path: Path) -> None:
    training, new, schema = shipped(config)
    path = tmp_path / "ref.npz"
    reference.write(path, reference.build(training, schema.columns, FEATURES))
    summary = reference.read(path, schema.columns, FEATURES)
    assert summary is not None and summary.rows == training.height == 10120
    full = drift.feature_drift(training, new, FEATURES)
    summarized = summary.feature_drift(new, FEATURES)
    assert [{k: v for k, v in r.items() if k != "ks_reference"} for r in summarized] == full  # identical, not close
    assert {r["ks_reference"] for r in summarized} == {"exact"}
    assert full[2]["ks_p_value"] == 1.76744e-08 and full[2]["psi"] == 0.039539
    # rows of the test data that are in the training data, found by hash as rows_in finds them by value
    mixed = pl.concat([new, training.slice(100, 37)])
    assert np.array_equal(summary.known(mixed), rows_in(mixed, training, list(schema.columns)))
    assert summary.known(mixed).sum() == 37 + rows_in(new, training, list(schema.columns)).sum()


def test_large_reference_ks_is_scipys_exact_statistic_and_asymptotic_p() -> None:
    rng = np.random.default_rng(7)
    for big, small in (
        (rng.integers(0, 1000, 1_000_000).astype(float), rng.integers(0, 1010, 10_000)),  # ties
        (rng.normal(size=300_000), rng.normal(0.01, size=20_000)),  # all distinct
    ):
        values, counts = np.unique(big, return_counts=True)
        statistic, p_value = drift.ks_from_counts(values, counts, small, expand_limit=200_000)
        expected = ks_2samp(big, small)
        assert statistic == float(expected.statistic)
        assert p_value == pytest.approx(float(expected.pvalue), rel=1e-12)


def test_psi_from_counts_equals_psi() -> None:
    rng = np.random.default_rng(3)
    ref, cur = rng.integers(0, 50, 5000), rng.integers(5, 60, 700)
    edges = drift.psi_edges(ref)
    assert drift.psi_from_counts(drift.bin_counts(edges, ref), drift.bin_counts(edges, cur)) == drift.psi(ref, cur)


def test_many_distinct_values_keep_a_sample(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(reference, "MAX_DISTINCT", 1000)
    monkeypatch.setattr(reference, "SAMPLE_SIZE", 5000)
    rng = np.random.default_rng(11)
    frame = pl.DataFrame({"a": rng.normal(size=50_000), "b": rng.integers(0, 10, 50_000)})
    summary = reference.build(frame, ["a", "b"], ["a", "b"])
    assert summary.meta["ks_reference"] == {"a": "sample of 5000", "b": "exact"}
    assert summary.arrays["a.counts"].sum() == 5000 and summary.arrays["b.counts"].sum() == 50_000
    new = pl.DataFrame({"a": rng.normal(0.5, size=2000), "b": rng.integers(0, 10, 2000)})
    rows = {r["feature"]: r for r in summary.feature_drift(new, ["a", "b"])}
    full = {r["feature"]: r for r in drift.feature_drift(frame, new, ["a", "b"])}
    assert rows["b"]["ks_statistic"] == full["b"]["ks_statistic"] and rows["a"]["psi"] == full["a"]["psi"]  # PSI uses all values
    assert rows["a"]["ks_statistic"] == pytest.approx(full["a"]["ks_statistic"], abs=1.36 / np.sqrt(5000))
    assert rows["a"]["reference_rows"] == 50_000 and rows["a"]["ks_drift"] is True


def test_a_summary_for_other_columns_or_polars_is_not_used(config: Config, tmp_path: Path) -> None:
    training, _, schema = shipped(config)
    path = tmp_path / "ref.npz"
    summary = reference.build(training, schema.columns, FEATURES)
    reference.write(path, reference.Reference({**summary.meta, "polars": "0.0.1"}, summary.arrays))
    assert reference.read(path, schema.columns, FEATURES) is None
    reference.write(path, summary)
    assert reference.read(path, schema.columns, FEATURES[:2]) is None


def full_data_table(config: Config) -> list[dict[str, object]]:
    """The data-drift table the full process gave before summaries: v0001's trainingdata.csv against the new files' rows."""
    from drs.data.combine import deduplicate
    from drs.data.intake import read_source_file
    from drs.data.readers import to_pandas

    schema = Schema.from_config(config)
    training = read_polars_checked(config.prod_deployment_folder / "versions" / "v0001" / layout.TRAINING_DATA_FILE, schema)
    frames = [read_source_file(p, config.input_folder, schema)[0] for p in sorted(config.input_folder.glob("*.csv"))]
    new = to_pandas(deduplicate(frames)[0])
    assert len(new) == 10000
    return drift.feature_drift(training, new, config.features)


def test_full_process_judges_from_the_summary_with_the_full_datas_numbers(deployed_practice: Config, config: Config) -> None:
    deployed = production.current(config.prod_deployment_folder)
    assert deployed.meta["sha256"][layout.REFERENCE_FILE] == production.sha256_file(deployed.reference_path)
    assert pipeline.run(config) == 0
    d = history.runs(config.history_db)[-1]["details"]
    assert d["data_drift"]["summary"] == "v0001/trainingreference.npz" and d["trigger"] == "drift (raw): F1 0.4844 < 0.6305"
    assert [{k: v for k, v in r.items() if k != "ks_reference"} for r in d["data_drift"]["features"]] == full_data_table(config)
    assert production.current(config.prod_deployment_folder).reference_path is not None  # v0002 has its own


def test_a_version_deployed_before_summaries_reads_its_training_data(deployed_practice: Config, config: Config) -> None:
    folder = production.current(config.prod_deployment_folder).folder
    meta = json.loads((folder / layout.META_FILE).read_text())
    del meta["sha256"][layout.REFERENCE_FILE]
    (folder / layout.META_FILE).write_text(json.dumps(meta))
    (folder / layout.REFERENCE_FILE).unlink()
    assert pipeline.run(config) == 0
    d = history.runs(config.history_db)[-1]["details"]
    assert d["data_drift"]["summary"] is None and d["data_drift"]["features"] == full_data_table(config)
    assert d["new_data"]["rows_already_trained_on"] == 0 and d["trigger"] == "drift (raw): F1 0.4844 < 0.6305"


def test_a_damaged_summary_is_refused(deployed_practice: Config, config: Config) -> None:
    path = production.current(config.prod_deployment_folder).reference_path
    path.write_bytes(path.read_bytes()[:-10] + b"0" * 10)
    with pytest.raises(DeploymentError, match="trainingreference.npz does not match the checksum"):
        judge.drift_reference(config, production.current(config.prod_deployment_folder))
