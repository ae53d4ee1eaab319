"""A client's own view (GET /clients/<corporation>, routed by drs/web/page.py): why it is at risk, its rows
across the ingested files, and its exit probability under each deployed version.

- Why: its reasons as risklist.csv has them (drs/model/explain.py), drawn as a bar chart in inline SVG (no script):
  one bar per feature from a zero line, to the right when the feature raises the risk, to the left when it lowers it.
- Its rows over time: the accepted files of the ingestion record, in arrival order (finaldata.csv's), as the ranking's
  store holds them (drs/reports/riskstore.py, read at each ranking from the copy kept at ingestion or the input folder): one
  index lookup, so no request reads a source file.
- Each deployed version's probability for the client's latest row: every version's model is loaded once per worker
  (its checksum confirmed, drs/production/versions.py) and kept while its model file's checksum stays the same; the version
  that ranked the list (risklist.json, drs/reports/standing.py) shows the list's own number.

A corporation in neither the risk list nor the ingested files is unknown: the caller answers 404. See docs/reports.md#the-page-for-client-managers.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, NotRequired, TypedDict

import numpy as np

from drs.core.errors import DeploymentError
from drs.core.settings import Config
from drs.data.schema import Schema
from drs.model import explain
from drs.model.estimator import Scorer, scorer_for
from drs.production import versions as production
from drs.production.versions import Deployment
from drs.reports.riskstore import ClientRow
from drs.web.pageview import ShownRow

CHART_WIDTH = 360
CHART_HALF = 120  # the longest bar, either side of the zero line (the rest is room for the value)
ROW_HEIGHT = 50
CHART_TOP = 20


# ---- the chart (pure) ---------------------------------------------------------------------


class Chart(TypedDict):
    bars: list[Bar]
    width: int
    height: int
    middle: float


class VersionRow(TypedDict):
    """One deployed version's exit probability for the client, or why it has none."""

    label: str
    deployed_at: Any  # as the version's meta records it
    probability: NotRequired[float]
    problem: NotRequired[str]


class ClientView(TypedDict):
    """What templates/client.html shows of one client."""

    corporation: str
    row: ShownRow | None
    latest: list[Any]
    rows: Sequence[ClientRow]  # riskstore.client_rows: each accepted file's rows of the client, or why it has none
    chart: Chart | None
    total: float | None
    typical: float | None
    reference: explain.Reference | None
    versions: list[VersionRow]
    current: str | None
    features: list[str]


@dataclass(frozen=True)
class Bar:
    label: str
    value: str
    kind: str  # "raises", "lowers" or "zero"
    x: float
    width: float
    y: float
    text_x: float
    anchor: str


def contribution_chart(
    contributions: Sequence[float | None], features: Sequence[str], values: Sequence[Any], reference: dict[str, float] | None
) -> Chart | None:
    """The bars of the contribution chart, in SVG user units (viewBox 0 0 CHART_WIDTH height); None without contributions."""
    if not contributions or any(c is None for c in contributions):
        return None
    numbers = [float(c) for c in contributions if c is not None]
    longest = max((abs(c) for c in numbers), default=0.0) or 1.0
    middle = CHART_WIDTH / 2
    bars = []
    for i, (feature, c) in enumerate(zip(features, numbers, strict=True)):
        typical = f" (typical {explain.plain(reference[feature])})" if reference and feature in reference else ""
        shown = "-" if values[i] is None else explain.plain(float(values[i]))
        width = abs(c) / longest * CHART_HALF
        kind = "raises" if c > 0 else "lowers" if c < 0 else "zero"
        y = CHART_TOP + i * ROW_HEIGHT
        right = c >= 0
        bars.append(
            Bar(
                label=f"{explain.feature_label(feature)}: {shown}{typical}",
                value=f"{c:+.2f}",
                kind=kind,
                x=middle if right else middle - width,
                width=max(width, 0.5),
                y=y + 20,
                text_x=middle + width + 4 if right else middle - width - 4,
                anchor="start" if right else "end",
            )
        )
    return {"bars": bars, "width": CHART_WIDTH, "height": CHART_TOP + len(bars) * ROW_HEIGHT, "middle": middle}


# ---- each deployed version's probability -----------------------------------------------------


class VersionModels:
    """Every deployed version's model, loaded once per worker and kept while its recorded checksum is the same."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._loaded: dict[str, tuple[str | None, Scorer | str]] = {}
        self._references: dict[tuple[str, str | None, tuple[str, ...]], explain.Reference | None] = {}

    def scorer(self, deployment: Deployment) -> Scorer | str:
        """The version's scorer, or why it cannot be loaded."""
        with self._lock:
            hit = self._loaded.get(deployment.label)
        if hit is not None and hit[0] == deployment.model_sha256:
            return hit[1]
        try:
            loaded: Scorer | str = scorer_for(production.load_model(deployment))
        except DeploymentError as exc:
            loaded = str(exc)
        with self._lock:
            self._loaded[deployment.label] = (deployment.model_sha256, loaded)
        return loaded

    def reference(self, deployment: Deployment, features: Sequence[str]) -> explain.Reference | None:
        """The version's reference for the reasons (drs/model/explain.py), found once (an old version's may read its training data)."""
        key = (deployment.label, deployment.model_sha256, tuple(features))
        with self._lock:
            if key in self._references:
                return self._references[key]
        found = explain.deployed_reference(deployment, features)
        with self._lock:
            self._references[key] = found
        return found


def version_probabilities(versions: Sequence[Deployment], models: VersionModels, x: np.ndarray) -> list[VersionRow]:
    """Each version's exit probability for the one row `x`, newest version first."""
    found = []
    for deployment in reversed(versions):
        scorer = models.scorer(deployment)
        row: VersionRow = {"label": deployment.label, "deployed_at": deployment.meta.get("deployed_at")}
        if isinstance(scorer, str):
            row["problem"] = scorer
        else:
            row["probability"] = float(scorer.score(x[None, :])[1][0])
        found.append(row)
    return found


def typical_probability(deployment: Deployment | None, models: VersionModels, features: Sequence[str]) -> float | None:
    """The exit probability of the reference client (every feature at the training mean) under `deployment`."""
    reference = models.reference(deployment, features) if deployment is not None else None
    scorer = models.scorer(deployment) if deployment is not None else None
    if reference is None or scorer is None or isinstance(scorer, str):
        return None
    return float(scorer.score(reference.vector(features)[None, :])[1][0])


# ---- the view ---------------------------------------------------------------------------------


def client_view(
    config: Config,
    schema: Schema,
    corporation: str,
    row: ShownRow | None,
    rows: Sequence[ClientRow],
    models: VersionModels,
    ranked_by: str | None = None,
) -> ClientView | None:
    """What the client's page shows, from its row of the ranking (`row`, None when it is not ranked) and its rows across
    the ingested files (`rows`, drs/reports/riskstore.py); None for a corporation in neither.

    The version that ranked the list (`ranked_by`, from risklist.json) shows the list's own probability, so the
    client's page and the list never give two numbers for one version."""
    if row is None and not any("features" in r for r in rows):
        return None
    current = production.current(config.prod_deployment_folder)
    reference = models.reference(current, schema.features) if current is not None else None
    latest = row["features"] if row is not None else next(r["features"] for r in reversed(rows) if "features" in r)
    x = np.array([np.nan if v is None else float(v) for v in latest], dtype="float64")
    versions = production.list_versions(config.prod_deployment_folder) if not np.isnan(x).any() else []
    contributions = row.get("contributions") if row is not None else None
    return {
        "corporation": corporation,
        "row": row,
        "latest": latest,
        "rows": rows,
        "chart": contribution_chart(contributions or [], schema.features, latest, reference.means if reference else None),
        "total": sum(contributions) if contributions and None not in contributions else None,
        "typical": typical_probability(current, models, schema.features),
        "reference": reference,
        "versions": [
            {**v, "probability": row["probability"]} if row is not None and v["label"] == ranked_by else v
            for v in version_probabilities(versions, models, x)
        ],
        "current": current.label if current else None,
        "features": [explain.feature_label(f) for f in schema.features],
    }
