"""The promotion gate: a retrained candidate replaces the deployed model only if it is not worse on the same test data.

`promotion_decision` is the pure rule (F1s, the minimum improvement, --force-deploy in; the decision out); `gate` reads
the test data, the training data of both models and the deployed model at the edge and calls it. docs/drift.md has the rest.
"""

from __future__ import annotations

import logging
from pathlib import Path

from drs.core.settings import Config
from drs.data.readers import read_csv_checked, read_polars_checked
from drs.data.schema import schema_of
from drs.history.results import GateDecision
from drs.model.metrics import metrics
from drs.pipeline.judge import drift_reference, trained_on
from drs.production import versions as production
from drs.production.versions import Deployment

log = logging.getLogger("fullprocess")


def promotion_decision(
    candidate_f1: float,
    deployed_f1: float,
    min_improvement: float = 0.0,
    forced: bool = False,
    *,
    deployed_version: str = "the deployed model",
    evaluation_data: str = "the test data",
    evaluation_rows: int = 0,
    in_training_data: dict[str, int | None] | None = None,
) -> GateDecision:
    """Promote when candidate - deployed >= min_improvement (both F1 on the same evaluation data); `forced` overrides; pure.

    `in_training_data`: how many evaluation rows each model ("candidate", "deployed") was trained on (None: unknown)."""
    improvement = candidate_f1 - deployed_f1
    passes = improvement >= min_improvement - 1e-12  # equal models tie exactly; float noise must not reject them
    forced = forced and not passes
    comparison = (
        f"candidate F1 {round(candidate_f1, 6):.4f} vs deployed {deployed_version} {round(deployed_f1, 6):.4f}"
        f" on {Path(evaluation_data).name} ({evaluation_rows} rows): improvement {round(improvement, 6):+.4f}"
        f" {'>=' if passes else '<'} minimum {min_improvement:.4f}"
    )
    if passes:
        reason = f"{comparison} -> promoted"
    elif forced:
        reason = f"{comparison} -> deployed anyway: forced by --force-deploy"
    else:
        reason = f"{comparison} -> not promoted; {deployed_version} stays deployed"
    return GateDecision(
        promote=passes or forced,
        reason=reason,
        candidate_f1=round(candidate_f1, 6),
        deployed_f1=round(deployed_f1, 6),
        improvement=round(improvement, 6),
        min_improvement=min_improvement,
        passes=passes,
        forced=forced,
        deployed_version=deployed_version,
        evaluation_data=evaluation_data,
        evaluation_rows=evaluation_rows,
        evaluation_rows_in_training_data=in_training_data or {},
    )


def gate(config: Config, deployed: Deployment, candidate_f1: float, forced: bool) -> GateDecision:
    """Score the deployed model on the test data the candidate was scored on and decide.

    The comparison is fair only if neither model was trained on the test rows: how many test rows appear
    in each model's training data is counted, recorded and warned about (None: no copy to check against).
    """
    schema = schema_of(config)
    test = read_csv_checked(config.test_data_csv, schema, source=str(config.test_data_csv))
    overlap: dict[str, int | None] = {}
    for whose, data in (
        ("candidate", read_polars_checked(config.final_data_csv, schema, unlabelled=True)),
        ("deployed", drift_reference(config, deployed)),
    ):
        overlap[whose] = None if data is None else int(trained_on(data, test, list(schema.columns)).sum())
        if overlap[whose]:
            log.warning(
                "the gate's evaluation data is not independent: %d test row(s) are in the %s model's training data", overlap[whose], whose
            )
    deployed_f1 = metrics(production.load_model(deployed), test, schema)["f1"]
    return promotion_decision(
        candidate_f1,
        deployed_f1,
        config.promotion_min_improvement,
        forced,
        deployed_version=deployed.label,
        evaluation_data=str(config.test_data_csv),
        evaluation_rows=len(test),
        in_training_data=overlap,
    )
