"""Reporting: the deployed model's confusion matrix on the test data.

Writes `output_model_path/confusionmatrix.png`: counts in each cell, labelled
axes, and a title naming the model version and its F1, so the picture says
which model it describes.
"""
from __future__ import annotations

import argparse
import logging
from pathlib import Path
from typing import Any

from drs.cli import run_main
from drs.config import Config
from drs.fileio import atomic_output
from drs.schema import Schema, read_csv_checked

log = logging.getLogger("reporting")
CLASS_NAMES = ["stayed (0)", "exited (1)"]


def plot_confusion_matrix(matrix: list[list[int]], title: str, path: Path) -> None:
    """Draw a 2x2 confusion matrix with seaborn and save it atomically."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import seaborn as sns

    fig, ax = plt.subplots(figsize=(5.6, 4.6), dpi=120)
    try:
        sns.heatmap(
            matrix, annot=True, fmt="d", cmap="Blues", cbar=True, square=True, ax=ax,
            xticklabels=CLASS_NAMES, yticklabels=CLASS_NAMES, annot_kws={"size": 14},
            cbar_kws={"label": "clients"},
        )
        ax.set_xlabel("predicted")
        ax.set_ylabel("actual")
        ax.set_title(title, fontsize=10)
        fig.tight_layout()
        with atomic_output(path) as tmp:
            fig.savefig(tmp, format="png")
    finally:
        plt.close(fig)


def confusion_matrix_report(config: Config) -> dict[str, Any]:
    """Score the deployed model on the test data and draw its confusion matrix."""
    from diagnostics import deployed_model
    from scoring import metrics

    schema = Schema.from_config(config)
    model, deployment = deployed_model(config)
    test = read_csv_checked(config.test_data_csv, schema, source=str(config.test_data_csv))
    result = metrics(model, test, schema)
    path = config.output_model_folder / "confusionmatrix.png"
    title = (
        f"Model {deployment.label} on {config.test_data_csv.name} ({result['rows']} clients)\n"
        f"F1 {result['f1']:.3f} · precision {result['precision']:.3f} · recall {result['recall']:.3f}"
    )
    plot_confusion_matrix(result["confusion_matrix"], title, path)
    log.info("wrote %s (model %s, F1 %.4f)", path, deployment.label, result["f1"])
    return {**result, "version": deployment.label, "path": str(path)}


def run(config: Config) -> dict[str, Any]:
    return confusion_matrix_report(config)


def _body(config: Config, args: argparse.Namespace) -> int:
    run(config)
    return 0


def main(argv: list[str] | None = None) -> int:
    return run_main(__doc__.splitlines()[0], _body, argv)


if __name__ == "__main__":
    raise SystemExit(main())
