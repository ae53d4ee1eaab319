"""Diagnostics and reporting on a deployed model."""
from __future__ import annotations

import json

import pandas as pd
import pytest
from matplotlib.image import imread

import diagnostics
import reporting
from drs.config import Config
from tests.conftest import tree_state


def test_predictions_summary_and_missing_data(deployed_practice: Config) -> None:
    test = pd.read_csv(deployed_practice.test_data_csv)
    predictions = diagnostics.model_predictions(test, deployed_practice)
    assert len(predictions) == len(test) == 1200
    assert set(predictions) == {0, 1}
    summary = diagnostics.dataframe_summary(deployed_practice)
    final = pd.read_csv(deployed_practice.final_data_csv)
    assert summary["lastmonth_activity"]["mean"] == pytest.approx(final.lastmonth_activity.mean())
    assert summary["number_of_employees"]["median"] == pytest.approx(final.number_of_employees.median())
    assert summary["lastyear_activity"]["std"] == pytest.approx(final.lastyear_activity.std())
    assert diagnostics.missing_data(deployed_practice) == {c: 0.0 for c in final.columns}


def test_missing_data_counts_percentages(deployed_practice: Config) -> None:
    final = pd.read_csv(deployed_practice.final_data_csv)
    final.loc[:103, "lastyear_activity"] = None  # 104 of 520 rows
    final.to_csv(deployed_practice.final_data_csv, index=False)
    assert diagnostics.missing_data(deployed_practice)["lastyear_activity"] == pytest.approx(20.0)


def test_execution_time_changes_no_real_output(deployed_practice: Config) -> None:
    folders = [deployed_practice.output_folder, deployed_practice.output_model_folder, deployed_practice.prod_deployment_folder]
    before = tree_state(*folders)
    timings = diagnostics.execution_time(deployed_practice)
    assert len(timings) == 3 and all(t > 0 for t in timings)
    assert tree_state(*folders) == before


def test_outdated_packages_report_required_installed_and_newest(deployed_practice: Config, monkeypatch: pytest.MonkeyPatch) -> None:
    from dataclasses import replace

    monkeypatch.setattr(diagnostics, "newest_version", lambda name, timeout: "99.0" if name == "pandas" else None)
    rows = diagnostics.outdated_packages_list(replace(deployed_practice, packages_timeout_seconds=5))
    by_name = {r["package"]: r for r in rows}
    assert by_name["pandas"]["required"] == "3.1.1"
    assert by_name["pandas"]["installed"] == pd.__version__
    assert by_name["pandas"]["newest"] == "99.0" and by_name["pandas"]["outdated"] is True
    assert by_name["flask"]["newest"] is None and by_name["flask"]["outdated"] is False


def test_index_answers_are_reused_for_a_day(deployed_practice: Config, monkeypatch: pytest.MonkeyPatch) -> None:
    from dataclasses import replace

    asked: list[str] = []
    monkeypatch.setattr(diagnostics, "newest_version", lambda name, timeout: asked.append(name) or ("99.0" if name == "pandas" else None))
    config = replace(deployed_practice, packages_timeout_seconds=5)
    diagnostics.outdated_packages_list(config)
    first = sorted(asked)
    asked.clear()
    rows = {r["package"]: r["newest"] for r in diagnostics.outdated_packages_list(config)}
    assert "pandas" in first and "pandas" not in asked and rows["pandas"] == "99.0"
    assert sorted(asked) == [n for n in first if n != "pandas"]  # unanswered ones are asked again
    cache = config.output_model_folder / diagnostics.INDEX_CACHE
    entry = json.loads(cache.read_text())
    entry["pandas"]["asked_at"] -= diagnostics.INDEX_CACHE_SECONDS + 1
    cache.write_text(json.dumps(entry))
    asked.clear()
    diagnostics.outdated_packages_list(config)
    assert "pandas" in asked


def test_outdated_packages_answers_when_the_index_is_unreachable(deployed_practice: Config) -> None:
    rows = diagnostics.outdated_packages_list(deployed_practice)  # packages_timeout_seconds is 0 in tests
    assert {r["package"] for r in rows} >= {"pandas", "scikit-learn", "flask", "gunicorn", "reportlab"}
    assert all(r["newest"] is None for r in rows)
    assert all(r["installed"] for r in rows)


def test_requirement_lines_are_parsed(tmp_path) -> None:
    path = tmp_path / "requirements.txt"
    path.write_text("# comment\npandas==3.1.1\nflask>=3.0  # web\nrequests\n-r other.txt\n")
    assert diagnostics.read_requirements(path) == [("pandas", "3.1.1"), ("flask", "3.0"), ("requests", None)]


def test_confusion_matrix_png(deployed_practice: Config) -> None:
    result = reporting.run(deployed_practice)
    image = imread(deployed_practice.output_model_folder / "confusionmatrix.png")
    assert image.shape[0] > 400 and image.shape[1] > 500
    assert image.std() > 0.05  # not a blank picture
    matrix = result["confusion_matrix"]
    assert sum(map(sum, matrix)) == 1200
    assert result["version"] == "v0001"
