"""The report's plots: the confusion matrix, the reliability curve, the trends and the risk distribution.

Each function draws one PNG with a matplotlib Figure (no pyplot, so nothing is kept between reports) and saves it
atomically under `output_model_path`; drs/reports/reporting.py decides what to draw and embeds them in the PDF.
What each plot shows and how to read it: docs/reports.md.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import seaborn as sns
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import FixedLocator, MaxNLocator

from drs.core.fileio import atomic_output
from drs.core.formatting import threshold_of, when
from drs.history.modelresults import Reliability
from drs.history.runs import DriftDecision
from drs.production.versions import DeploymentRow

CLASS_NAMES = ["stayed (0)", "exited (1)"]


def _save(fig: Figure, path: Path) -> None:
    """Save a figure atomically (a Figure without pyplot is freed with its last reference)."""
    fig.tight_layout()
    with atomic_output(path) as tmp:
        fig.savefig(tmp, format="png")


def plot_confusion_matrix(matrix: list[list[int]], title: str, path: Path) -> None:
    """Draw a 2x2 confusion matrix with seaborn and save it atomically."""
    fig = Figure(figsize=(5.6, 4.6), dpi=120)
    ax = fig.subplots()
    sns.heatmap(
        matrix,
        annot=True,
        fmt="d",
        cmap="Blues",
        cbar=True,
        square=True,
        ax=ax,
        xticklabels=CLASS_NAMES,
        yticklabels=CLASS_NAMES,
        annot_kws={"size": 14},
        cbar_kws={"label": "clients"},
    )
    colorbar = ax.collections[0].colorbar
    if colorbar is not None:  # cbar=True: always there
        colorbar.locator = MaxNLocator(integer=True)  # whole clients, also for a tiny test set
        colorbar.update_ticks()
    ax.set_xlabel("predicted")
    ax.set_ylabel("actual")
    ax.set_title(title, fontsize=10)
    _save(fig, path)


def plot_reliability(record: Reliability, title: str, path: Path) -> None:
    """The reliability curve: each decile's mean predicted probability against the share that left, and the diagonal."""
    fig = Figure(figsize=(3.4, 3.7), dpi=150)
    ax = fig.subplots()
    ax.plot([0, 1], [0, 1], linestyle="--", color="#8a96a5", linewidth=1, label="80% means 8 in 10")
    deciles = record["deciles"]
    ax.plot(
        [d["mean_predicted"] for d in deciles],
        [d["observed_rate"] for d in deciles],
        marker="o",
        markersize=4,
        color="#1f3b5c",
        linewidth=1.4,
        label="the model, each tenth of the test clients",
    )
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ticks = [0, 0.25, 0.5, 0.75, 1]
    ax.xaxis.set_major_locator(FixedLocator(ticks))
    ax.yaxis.set_major_locator(FixedLocator(ticks))
    ax.set_xticklabels([f"{t:.0%}" for t in ticks], fontsize=7)
    ax.set_yticklabels([f"{t:.0%}" for t in ticks], fontsize=7)
    ax.set_xlabel("predicted exit probability", fontsize=8)
    ax.set_ylabel("share that left", fontsize=8)
    ax.set_title(title, fontsize=8)
    ax.set_aspect("equal")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=6.5, loc="upper center", bbox_to_anchor=(0.5, -0.2), ncol=1, frameon=False)  # below: no point hides it
    _save(fig, path)


def _event_axis(ax: Axes, times: list[Any], what: str, labels: list[str] | None = None) -> None:
    """Events evenly spaced in order, labelled with their time (UTC); at most 8 labels.

    Evenly spaced, because a burst of runs seconds apart (`make run`) and cron
    runs days apart must both stay readable.
    """
    n = len(times)
    step = max(1, -(-n // 8))
    ticks = list(range(0, n, step))
    if ticks and ticks[-1] != n - 1 and n > 1:
        ticks[-1] = n - 1
    ax.xaxis.set_major_locator(FixedLocator(ticks))
    names = labels or [""] * n
    ax.set_xticklabels([(names[i] + "\n" if names[i] else "") + when(times[i]).replace(" ", "\n", 1) for i in ticks], fontsize=7.5)
    ax.set_xlim(-0.6, max(n - 1, 0) + 0.6)
    ax.set_xlabel(f"{what}, in order (time in UTC)")


def plot_trends(deployments: list[DeploymentRow], drifts: list[DriftDecision], path: Path) -> None:
    """Two panels: F1 of each deployment, and each drift check's F1 against its threshold, in time order."""
    fig = Figure(figsize=(7.6, 6.4), dpi=130)
    top, bottom = fig.subplots(2, 1)
    scored = [(d, f1) for d in deployments if (f1 := d["f1"]) is not None]
    if scored:
        y = [float(f1) for _, f1 in scored]
        x = list(range(len(y)))
        top.plot(x, y, marker="o", color="#1f3b5c", linewidth=1.2)
        for xi, yi in zip(x, y, strict=True) if len(y) <= 12 else ():  # beyond that the labels would overlap
            top.annotate(f"{yi:.3f}", (xi, yi), textcoords="offset points", xytext=(0, 7), ha="center", fontsize=7.5)
        _event_axis(top, [d["deployed_at"] for d, _ in scored], "deployment", [d["label"] for d, _ in scored])
    else:
        top.text(0.5, 0.5, "no deployment recorded", ha="center", va="center", transform=top.transAxes)
    top.set_title(f"F1 of each deployment on the test data ({len(scored)} deployments)", fontsize=10)
    top.set_ylabel("F1 (0 to 1)")

    usable = [d for d in drifts if d["check"].get("new_data_f1") is not None and threshold_of(d["check"]) is not None]
    if usable:
        x = list(range(len(usable)))
        new = [float(d["check"]["new_data_f1"]) for d in usable]
        ref = [float(threshold_of(d["check"])) for d in usable]
        bottom.vlines(
            x,
            [min(a, b) for a, b in zip(new, ref, strict=True)],
            [max(a, b) for a, b in zip(new, ref, strict=True)],
            color="#999999",
            linewidth=0.8,
        )
        bottom.scatter(
            x, ref, marker="_", s=260, linewidths=2, color="#333333", label="drift threshold (raw test: deployed model's recorded F1)"
        )
        for flag, colour, marker, label in (
            (True, "#b3261e", "X", "F1 on new data: drift"),
            (False, "#1e6b34", "o", "F1 on new data: no drift"),
        ):
            pts = [(xi, ni) for xi, ni, d in zip(x, new, usable, strict=True) if bool(d["check"].get("drift")) is flag]
            if pts:
                bottom.scatter([p[0] for p in pts], [p[1] for p in pts], marker=marker, s=60, color=colour, label=label, zorder=3)
        bottom.legend(fontsize=7.5, loc="lower left")
        _event_axis(
            bottom,
            [d["started_at"] for d in usable],
            "full-process run with a drift check",
            [d["check"].get("deployed_version") or "" for d in usable],
        )
    else:
        bottom.text(0.5, 0.5, "no drift check in the run history yet", ha="center", va="center", transform=bottom.transAxes)
    drifted = sum(1 for d in drifts if d["check"].get("drift"))
    unmeasured = sum(1 for d in drifts if d["check"].get("measured") is False)  # too few exits: no F1 to plot
    also = f", {unmeasured} not measurable" if unmeasured else ""
    bottom.set_title(f"Drift checks of the deployed model on new data: {len(drifts)} run(s), {drifted} found drift{also}", fontsize=10)
    bottom.set_ylabel("F1 (0 to 1)")
    for ax in (top, bottom):
        ax.set_ylim(0, 1.1)
        ax.grid(alpha=0.3)
    _save(fig, path)


def plot_risk_distribution(probabilities: Any, threshold: float, path: Path) -> None:
    """Histogram of the active clients' exit probabilities, with the threshold marked."""
    values = np.asarray(probabilities, dtype="float64")
    fig = Figure(figsize=(7.6, 2.5), dpi=130)
    ax = fig.subplots()
    ax.hist(values, bins=np.linspace(0, 1, 21).tolist(), color="#5b7fa6", edgecolor="white")
    count = int((values > threshold).sum())
    ax.axvline(threshold, color="#b3261e", linestyle="--", linewidth=1.2)
    ax.text(
        threshold + 0.01,
        0.95,
        f"{count:,} of {len(values):,} above {threshold:g}",
        color="#b3261e",
        transform=ax.get_xaxis_transform(),
        va="top",
        fontsize=8,
    )
    ax.set_xlim(0, 1)
    ax.set_title("Exit probability of the active clients", fontsize=10)
    ax.set_xlabel("exit probability (0 to 1)")
    ax.set_ylabel("clients")
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    ax.grid(alpha=0.3, axis="y")
    _save(fig, path)
