"""Replaying history with labels that arrive late, on a scratch copy of the system (backtest.py).

Production is never touched: its input folder's files are read, its run history is copied (for the order the
files arrived in) with SQLite's backup from a read-only connection, and everything else happens in a scratch
folder with copies of the practice data and the test data. There, as `make run` does (tools/run_main_job.sh),
the practice pass deploys the practice model; then the input folder's files come in the order they arrived
(drs/data/sources.py `arrival_plan`, as cron saw them). Each batch arrives without its labels:

1. the deployed model's label-free estimate on its new rows (drs/pipeline/judge.py `estimate_check`, drs/model/estimate.py);
2. a random labelled sample of `sample` of its clients (seeded), checked against the estimate and against the
   threshold of the score test to come (drs/model/labelsample.py): the alarm;
3. its labels come `label_delay` batches later (0: with the batch, after 1 and 2): the labelled file then lands in
   the scratch input folder and the real full process runs a tick on the scratch copy (drs/pipeline/run.py's
   `process`, no alert sent): drift, retraining, gate, deployment, as production would have decided.

The realized F1 of each batch is that of the model deployed when the batch arrived, known once its labels are in;
a realized drop is a realized F1 below the threshold that model's score test applies (drift.score_drift). The
replay's result is JSON-ready (`batches`, `first_alarm`, `first_realized_drop`); `table` and `plot` show it.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
import shutil
import socket
import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, NotRequired, TypedDict

import numpy as np
from matplotlib.figure import Figure

from drs.core import layout
from drs.core.errors import StageError
from drs.core.fileio import atomic_output, run_lock, sha256_file
from drs.core.settings import Config
from drs.core.stamps import Arrival
from drs.data.ingest import ingest
from drs.data.intake import Status, read_source_file
from drs.data.schema import schema_of
from drs.data.sources import Stamp, arrival_plan, list_source_files, refusal
from drs.history import files as file_store
from drs.history.modelresults import Estimate, LabelledSample, ScoreVerdict
from drs.history.record import Outcome, RunReport
from drs.model import drift, estimate, labelsample
from drs.model.metrics import metrics
from drs.model.scoring import score
from drs.model.training import train
from drs.pipeline import judge
from drs.pipeline import run as pipeline
from drs.pipeline.deploy import deploy_or_roll_back
from drs.production import versions as production
from drs.production.versions import Deployment

log = logging.getLogger("backtest")
AFTER_THE_LAST = "after the last batch"


@dataclass(frozen=True)
class Options:
    label_delay: int = 1  # batches after its arrival that a batch's labels come
    sample: int = 300  # labelled clients drawn from each batch on arrival
    seed: int = 0


class GateSummary(TypedDict):
    candidate_f1: float | None
    deployed_f1: float | None
    improvement: float | None
    promote: bool


class Decisions(TypedDict):
    """The full process's decisions of one tick (`decisions`)."""

    outcome: str
    message: str
    judged_version: str | None
    drift_test: str | None
    drift_f1: float | None
    drift_threshold: float | None
    drift: bool | None
    retrained: bool
    gate: GateSummary | None
    deployed_after: str | None


class Batch(TypedDict):
    """One batch of the replay (`on_arrival`), then its labels' arrival and the full process's decisions on them."""

    file: str
    deployed_version: str
    rejected: NotRequired[str | None]
    new_rows: NotRequired[int]
    estimated_f1: float | None
    estimate: NotRequired[Estimate]  # drs/model/estimate.py's record
    labelled_sample_f1: float | None
    labelled_sample: NotRequired[LabelledSample]  # drs/model/labelsample.py's check
    alarm: bool
    threshold: NotRequired[float]
    realized_f1: float | None
    realized_drop: NotRequired[bool]
    labels_arrive_with: NotRequired[str]
    pipeline: NotRequired[Decisions]


class OptionsRecord(TypedDict):
    label_delay: int
    sample: int
    seed: int


class Replay(TypedDict):
    """The replay's result, as backtest.json holds it."""

    options: OptionsRecord
    input_folder: str
    practice_version: str
    drift_test: str
    batches: list[Batch]
    first_alarm: str | None
    first_realized_drop: str | None
    seconds: float
    assumptions: str


def closed_port() -> int:
    """A loopback port nothing listens on (the scratch deployments' API calls are refused there, going nowhere)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def scratch_config(config: Config, folder: Path, input_folder: Path, model_folder: str) -> Config:
    """`config` with every output, the input and the test data in `folder`; no alert, no database, no package index."""
    output = folder / "ingesteddata"
    return dataclasses.replace(
        config,
        config_file=folder / config.config_file.name,
        input_folder=input_folder,
        output_folder=output,
        test_data_folder=folder / "testdata",
        output_model_folder=folder / model_folder,
        prod_deployment_folder=folder / "production_deployment",
        data_folders=(input_folder, output, folder / "testdata"),
        users_file=folder / "instance" / "users.json",
        settle_seconds=0,
        notify=(),
        source_database_url=None,
        packages_timeout_seconds=0,
        api_url=f"http://127.0.0.1:{closed_port()}",
        batches_history=None,
    )


def known_arrivals(config: Config, folder: Path) -> list[Arrival]:
    """Production's recorded arrivals of its input folder, read from a copy of its history (never opened for writing)."""
    source = config.arrivals_record
    if not source.exists():
        return []
    copy = folder / "production-history-copy.sqlite"
    with contextlib.closing(sqlite3.connect(f"{source.resolve().as_uri()}?mode=ro", uri=True)) as original:
        with contextlib.closing(sqlite3.connect(copy)) as target:
            original.backup(target)
    return file_store.arrivals(copy, str(config.input_folder))


def arrival_order(config: Config, folder: Path) -> list[Path]:
    """The input folder's source files in the order production saw (or, for files it has not seen, would see) them."""
    files = [p for p in list_source_files(config.input_folder) if refusal(p, config.input_folder) is None]
    stamps = [Stamp(p.name, sha256_file(p), p.stat().st_size, p.stat().st_mtime_ns) for p in files]
    plan = arrival_plan(known_arrivals(config, folder), stamps, set())
    return sorted(files, key=lambda p: plan.key(p.name))


def practice_pass(practice: Config) -> Deployment:
    """`make run`'s practice pass on the scratch copy: ingest, train, score, deploy (the stages' own functions)."""
    ingest(practice)
    train(practice)
    score(practice)
    return deploy_or_roll_back(practice, None)


def score_test(config: Config, deployed: Deployment, f1: float) -> ScoreVerdict:
    """The verdict the full process's score test gives `deployed` on an F1 (its threshold does not depend on the F1)."""
    return drift.score_drift(config.drift_test, f1, deployed.score(), judge.lineage_history(config, deployed), config.drift_min_history)


def on_arrival(config: Config, source: Config, path: Path, options: Options, rng: np.random.Generator) -> Batch:
    """What is known of a batch when it arrives: the deployed model's estimate and the labelled sample's verdict; and,
    kept for later, its realized F1 (revealed when its labels come)."""
    schema = schema_of(config)
    deployed = production.current(config.prod_deployment_folder)
    if deployed is None:
        raise StageError("nothing is deployed on the scratch copy after the practice pass")
    frame, record = read_source_file(path, source.input_folder, schema)
    if frame is None or record.status != Status.ACCEPTED:
        return {
            "file": path.name,
            "deployed_version": deployed.label,
            "rejected": record.reason,
            "estimated_f1": None,
            "realized_f1": None,
            "labelled_sample_f1": None,
            "alarm": False,
        }
    rows, info, _ = judge.new_rows(
        dataclasses.replace(config, input_folder=source.input_folder), [record], judge.drift_reference(config, deployed)
    )
    expected = judge.estimate_check(config, deployed, rows)
    model = production.load_model(deployed)
    verdict = score_test(config, deployed, 0.0)
    counts, _ = labelsample.sample_counts(model, rows, schema, options.sample, rng)
    sample = labelsample.check(counts, expected.get("f1"), verdict["threshold"], judge.threshold_counts(deployed, verdict["test"]))
    exits = int((rows[schema.target] == 1).sum()) if len(rows) else 0
    realized = metrics(model, rows, schema)["f1"] if len(rows) and drift.unmeasurable(exits) is None else None
    return {
        "file": path.name,
        "deployed_version": deployed.label,
        "new_rows": info.rows,
        "estimated_f1": expected.get("f1"),
        "estimate": expected,
        "labelled_sample_f1": sample["f1"],
        "labelled_sample": sample,
        "alarm": sample["alarm"],
        "threshold": verdict["threshold"],
        "realized_f1": None if realized is None else round(realized, 6),
        "realized_drop": realized is not None and bool(score_test(config, deployed, realized)["drift"]),
    }


def labels_arrive(config: Config, path: Path, seq: int) -> Decisions:
    """The labelled file lands in the scratch input folder (its arrival `seq` seconds into the replay) and the full
    process runs one tick there, as cron would: its decisions."""
    target = config.input_folder / path.name
    shutil.copyfile(path, target)
    moment = (int(time.time()) - 86_400 + seq) * 1_000_000_000  # whole seconds in arrival order: drs/data/sources.py's rule
    os.utime(target, ns=(moment, moment))
    report = RunReport()
    with run_lock(config.lock_file, script="backtest.py"):
        try:
            pipeline.process(config, report)
        except Exception as exc:  # a failed tick is part of the history being replayed
            report.finish(Outcome.FAILED, str(exc), report.deployed_version)
            log.error("the full process failed on %s: %s", path.name, exc)
        finally:
            pipeline.record(config, report)
    return decisions(report)


def decisions(report: RunReport) -> Decisions:
    """The full process's decisions of one tick, as its history row has them."""
    check, gate = report.drift, report.gate
    return {
        "outcome": str(report.outcome),
        "message": report.message,
        "judged_version": check.deployed_version if check else None,
        "drift_test": check.test if check else None,
        "drift_f1": check.new_data_f1 if check else None,
        "drift_threshold": check.threshold if check else None,
        "drift": check.drift if check else None,
        "retrained": report.new_model_test_f1 is not None,
        "gate": None
        if gate is None
        else {"candidate_f1": gate.candidate_f1, "deployed_f1": gate.deployed_f1, "improvement": gate.improvement, "promote": gate.promote},
        "deployed_after": layout.version_label(report.deployed_version) if report.deployed_version else None,
    }


def replay(config: Config, practice: Config, folder: Path, options: Options, progress: Callable[[str], None] = log.info) -> Replay:
    """Replay production's input folder on a scratch copy in `folder` (empty or new); the result backtest.json holds."""
    if options.label_delay < 0 or options.sample < 1:
        raise StageError("--label-delay must be >= 0 and --sample >= 1")
    started = time.perf_counter()
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copytree(config.test_data_folder, folder / "testdata")
    shutil.copytree(practice.input_folder, folder / "practicedata")
    (folder / "input").mkdir()
    scratch_practice = scratch_config(practice, folder, folder / "practicedata", "practicemodels")
    scratch = scratch_config(config, folder, folder / "input", "models")
    files = arrival_order(config, folder)
    first = practice_pass(scratch_practice)
    progress(f"practice pass: {first.label} deployed (F1 {first.score():.4f} on the test data)")
    batches: list[Batch] = []
    for step in range(len(files) + options.label_delay):
        if step < len(files):
            rng = np.random.default_rng([options.seed, step])  # each batch's own draw: independent of the batches before it
            batches.append(on_arrival(scratch, config, files[step], options, rng))
            progress(f"{files[step].name} arrives: {arrival_words(batches[-1])}")
        matured = step - options.label_delay
        if 0 <= matured < len(files):
            batches[matured]["labels_arrive_with"] = files[step].name if step < len(files) else AFTER_THE_LAST
            batches[matured]["pipeline"] = labels_arrive(scratch, files[matured], matured)
            progress(f"labels of {files[matured].name} arrive: {batches[matured]['pipeline']['message']}")
    return {
        "options": {"label_delay": options.label_delay, "sample": options.sample, "seed": options.seed},
        "input_folder": str(config.input_folder),
        "practice_version": first.label,
        "drift_test": config.drift_test,
        "batches": batches,
        "first_alarm": next((b["file"] for b in batches if b["alarm"]), None),
        "first_realized_drop": next((b["file"] for b in batches if b.get("realized_drop")), None),
        "seconds": round(time.perf_counter() - started, 2),
        "assumptions": estimate.ASSUMPTIONS,
    }


def arrival_words(batch: Batch) -> str:
    if batch.get("rejected"):
        return f"rejected ({batch['rejected']})"
    return f"{batch['deployed_version']} deployed; {estimate.describe(batch['estimate']).split('; valid only')[0]}; sample: {labelsample.describe(batch['labelled_sample'])}"


def _f1(value: float | None) -> str:
    return "-" if value is None else f"{value:.4f}"


def decision_words(decided: Decisions | None) -> str:
    """The full process's decisions on a batch's labels, short: drift, retraining, gate, deployment."""
    if not decided:
        return "-"
    if decided["drift"] is None:
        return str(decided["outcome"])
    words = f"{decided['judged_version']} {'drift' if decided['drift'] else 'no drift'} ({_f1(decided['drift_f1'])} vs {_f1(decided['drift_threshold'])})"
    if decided["retrained"] and decided["gate"]:
        gate = decided["gate"]
        words += f", retrained, gate {gate['improvement']:+.4f}: {'promoted' if gate['promote'] else 'refused'}"
    if decided["outcome"] == Outcome.DEPLOYED:
        words += f" -> {decided['deployed_after']}"
    return words


def table(result: Replay) -> list[str]:
    """The replay as fixed-width lines: one per batch."""
    head = f"{'batch':16} {'model':6} {'estimated':>9} {'labelled sample F1 (95%)':>29} {'alarm':>5} {'realized':>8} {'drop':>4}  {'labels with':20} pipeline on its labels"
    lines = [head, "-" * len(head)]
    for b in result["batches"]:
        s = b.get("labelled_sample")
        interval = (
            f"{_f1(s.get('f1'))} ({_f1(s.get('low'))}-{_f1(s.get('high'))}) n={s.get('labels', 0)}" if s and s.get("measured") else "-"
        )
        lines.append(
            f"{b['file']:16} {b['deployed_version']:6} {_f1(b['estimated_f1']):>9} {interval:>29} {'YES' if b['alarm'] else 'no':>5}"
            f" {_f1(b['realized_f1']):>8} {'yes' if b.get('realized_drop') else 'no':>4}  {b.get('labels_arrive_with', '-'):20}"
            f" {decision_words(b.get('pipeline'))}"
        )
    lines.append(
        f"first alarm: {result['first_alarm'] or 'none'}; first realized drop below the threshold: {result['first_realized_drop'] or 'none'}"
    )
    return lines


def plot(result: Replay, path: Path) -> None:
    """Realized, estimated and sample F1 per batch, the threshold, the alarms and the deployments, in one PNG."""
    batches = result["batches"]
    x = np.arange(len(batches))

    def values(key: Literal["threshold", "estimated_f1", "labelled_sample_f1", "realized_f1"]) -> np.ndarray:
        return np.array([np.nan if b.get(key) is None else b[key] for b in batches], dtype=float)

    fig = Figure(figsize=(9, 5), dpi=110)
    ax = fig.subplots()
    ax.step(
        np.append(x, x[-1] + 1) - 0.5,
        np.append(values("threshold"), values("threshold")[-1:]),
        where="post",
        color="#888",
        linestyle=":",
        label="threshold of the score test",
    )
    estimated = values("estimated_f1")
    low = np.array([e.get("low", np.nan) if (e := b.get("estimate")) else np.nan for b in batches], dtype=float)
    high = np.array([e.get("high", np.nan) if (e := b.get("estimate")) else np.nan for b in batches], dtype=float)
    ax.fill_between(x, low, high, color="#1f77b4", alpha=0.15, linewidth=0)
    ax.plot(x, estimated, "o--", color="#1f77b4", label="estimated F1 (no labels, CBPE)")
    sample = values("labelled_sample_f1")
    s_low = np.array([s.get("low", np.nan) if (s := b.get("labelled_sample")) else np.nan for b in batches], dtype=float)
    s_high = np.array([s.get("high", np.nan) if (s := b.get("labelled_sample")) else np.nan for b in batches], dtype=float)
    n = result["options"]["sample"]
    ax.errorbar(
        x,
        sample,
        yerr=[sample - s_low, s_high - sample],
        fmt="s",
        color="#ff7f0e",
        capsize=5,
        label=f"labelled sample F1, 95% interval ({n} labels)",
    )
    ax.plot(x, values("realized_f1"), "D-", color="#2ca02c", linewidth=2, label="realized F1 (all labels, known later)")
    drops = [i for i, b in enumerate(batches) if b.get("realized_drop")]
    if drops:
        realized = values("realized_f1")
        ax.scatter(
            drops,
            realized[drops],
            s=170,
            facecolors="none",
            edgecolors="#d62728",
            linewidths=1.8,
            zorder=4,
            label="realized F1 below the threshold",
        )
    alarms = [i for i, b in enumerate(batches) if b["alarm"]]
    if alarms:
        ax.scatter(
            alarms,
            [0.05] * len(alarms),
            marker="^",
            s=160,
            color="#d62728",
            zorder=5,
            label="alarm (sample contradicts estimate or threshold)",
        )
    for i, b in enumerate(batches[1:], start=1):
        if b["deployed_version"] != batches[i - 1]["deployed_version"]:
            ax.axvline(i - 0.5, color="#9467bd", linewidth=1.5)
            ax.text(i - 0.45, 0.97, f"{b['deployed_version']} deployed", color="#9467bd", va="top", fontsize=9)
    ax.set_xticks(x, [b["file"] for b in batches])
    ax.set_xlim(-0.5, len(batches) - 0.5)
    ax.set_ylim(0, 1)
    ax.set_ylabel("F1 of the model deployed when the batch arrived")
    delay = result["options"]["label_delay"]
    ax.set_title(
        f"Backtest: labels {delay} batch(es) late; first alarm {result['first_alarm'] or 'none'}, first realized drop {result['first_realized_drop'] or 'none'}",
        fontsize=10,
    )
    ax.grid(axis="y", color="#eee")
    ax.legend(loc="lower right", fontsize=8, framealpha=0.9)
    fig.tight_layout()
    with atomic_output(path) as tmp:
        fig.savefig(tmp, format="png")
