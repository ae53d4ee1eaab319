"""The promotion gate: a retrained candidate replaces the deployed model only if it is not worse on the same test data."""

from __future__ import annotations

import logging
from typing import Any

from drs.core.settings import Config
from drs.data.readers import read_csv_checked, read_polars_checked
from drs.data.schema import Schema
from drs.model.metrics import metrics
from drs.pipeline.judge import drift_reference, trained_on
from drs.production import versions as production
from drs.production.versions import Deployment

log = logging.getLogger("fullprocess")


def promotion_decision(candidate_f1: float, deployed_f1: float, min_improvement: float = 0.0, forced: bool = False) -> dict[str, Any]:
    """Promote when candidate - deployed >= min_improvement (both F1 on the same evaluation data); `forced` overrides; pure."""
    improvement = candidate_f1 - deployed_f1
    passes = improvement >= min_improvement - 1e-12  # equal models tie exactly; float noise must not reject them
    return {
        "candidate_f1": round(candidate_f1, 6),
        "deployed_f1": round(deployed_f1, 6),
        "improvement": round(improvement, 6),
        "min_improvement": min_improvement,
        "passes": passes,
        "forced": forced and not passes,
        "promote": passes or forced,
    }


def gate(config: Config, deployed: Deployment, candidate_f1: float, forced: bool) -> dict[str, Any]:
    """Score the deployed model on the test data the candidate was scored on and decide.

    The comparison is fair only if neither model was trained on the test rows: how many test rows appear
    in each model's training data is counted, recorded and warned about (None: no copy to check against).
    """
    schema = Schema.from_config(config)
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
    decision = promotion_decision(candidate_f1, deployed_f1, config.promotion_min_improvement, forced)
    comparison = (
        f"candidate F1 {decision['candidate_f1']:.4f} vs deployed {deployed.label} {decision['deployed_f1']:.4f}"
        f" on {config.test_data_csv.name} ({len(test)} rows): improvement {decision['improvement']:+.4f}"
        f" {'>=' if decision['passes'] else '<'} minimum {decision['min_improvement']:.4f}"
    )
    if decision["passes"]:
        decision["reason"] = f"{comparison} -> promoted"
    elif decision["forced"]:
        decision["reason"] = f"{comparison} -> deployed anyway: forced by --force-deploy"
    else:
        decision["reason"] = f"{comparison} -> not promoted; {deployed.label} stays deployed"
    return {
        **decision,
        "deployed_version": deployed.label,
        "evaluation_data": str(config.test_data_csv),
        "evaluation_rows": len(test),
        "evaluation_rows_in_training_data": overlap,
    }
