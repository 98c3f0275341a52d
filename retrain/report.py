"""The run report: one markdown page (Prefect UI artifact, and `report.md` beside the model) plus plots.

An operator opening a run should see, without digging: what data it trained on and how clean it
was, how the three models, the ensemble, the naive baselines and the champion scored on the same
holdout, every gate check with its verdict, and where the time went.
"""

from __future__ import annotations

import base64
import io
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.figure import Figure

from retrain.data.validation import DataQualityReport
from retrain.dataset import DatasetSummary
from retrain.evaluation import EvaluationResult
from retrain.files import write_atomically
from retrain.gate import GateDecision
from retrain.labels import CLASSES
from retrain.run_dir import RunDir
from retrain.training.result import StudySummary, TrialRecord

TOP_FEATURES = 20
PLOTS = {
    "confusion_matrices.png": "Confusion matrices on the holdout",
    "equity_curve.png": "Holdout equity following the signals, after fees",
    "feature_importance.png": "Feature importance per member",
    "optuna_history.png": "Optuna trials per study",
}
"""The report's plots: file name in the report folder, and its title."""


def _fmt(value: Any) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, float):
        return f"{value:.4f}"
    return str(value)


def metrics_markdown(evaluation: EvaluationResult) -> str:
    """The holdout metrics table: ensemble, members, champion, baselines (macro-F1 first)."""
    columns = [
        "name",
        "kind",
        "macro_f1",
        "weighted_f1",
        "accuracy",
        "log_loss",
        "total_return",
        "hit_rate",
        "trades",
        "max_drawdown",
    ]
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    for row in evaluation.metrics_table():
        lines.append("| " + " | ".join(_fmt(row[column]) for column in columns) + " |")
    support = ", ".join(f"{name} {count}" for name, count in evaluation.class_support.items())
    header = (
        f"Holdout {evaluation.holdout_start:%Y-%m-%d %H:%M} .. {evaluation.holdout_end:%Y-%m-%d %H:%M} UTC, "
        f"{evaluation.n_rows} rows ({support})."
    )
    note = f"\n\nChampion: {evaluation.champion_note}" if evaluation.champion_note else ""
    return header + "\n\n" + "\n".join(lines) + note


def studies_markdown(
    studies: Mapping[str, StudySummary], cv_macro_f1: Mapping[str, float], weights: Mapping[str, float]
) -> str:
    lines = [
        "| model | weight | CV macro-F1 | trials | complete | pruned | failed | tuning s | final fit s |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for name, study in studies.items():
        lines.append(
            f"| {name} | {weights.get(name, 0.0):.2f} | {cv_macro_f1[name]:.4f} | {study.n_trials} | "
            f"{study.n_complete} | {study.n_pruned} | {study.n_failed} | {study.tuning_s:.1f} | "
            f"{study.final_fit_s:.1f} |"
        )
    return "\n".join(lines)


def durations_markdown(durations: Mapping[str, float]) -> str:
    lines = ["| stage | seconds |", "|---|---|"]
    lines += [f"| {stage} | {seconds:.1f} |" for stage, seconds in durations.items()]
    return "\n".join(lines)


def run_report_markdown(
    *,
    title: str,
    outcome: str,
    source: Mapping[str, Any],
    quality: DataQualityReport,
    dataset: DatasetSummary,
    evaluation: EvaluationResult,
    decision: GateDecision,
    studies: Mapping[str, StudySummary],
    cv_macro_f1: Mapping[str, float],
    weights: Mapping[str, float],
    durations: Mapping[str, float],
) -> str:
    """The whole report as markdown."""
    demo = (
        "\n\n> **DEMO DATA**: these candles were generated in code; this model must not trade.\n"
        if source.get("demo")
        else ""
    )
    source_line = ", ".join(f"{key}: {value}" for key, value in source.items())
    classes = ", ".join(f"{name} {count}" for name, count in dataset.class_distribution.items())
    return "\n".join(
        [
            f"# {title}",
            demo,
            f"**Outcome: {outcome}**",
            "",
            "## Data",
            f"Source: {source_line}.  ",
            f"Labelled rows: {dataset.rows} ({dataset.start} .. {dataset.end}; {classes}); "
            f"labels {dataset.label_settings().sentence()}.",
            "",
            quality.to_markdown(),
            "",
            "## Holdout metrics",
            metrics_markdown(evaluation),
            "",
            "## Promotion gate",
            decision.to_markdown(),
            "",
            "## Models",
            studies_markdown(studies, cv_macro_f1, weights),
            "",
            "## Plots",
            *(f"![{title}]({name})" for name, title in PLOTS.items()),
            "",
            "## Durations",
            durations_markdown(durations),
            "",
        ]
    )


def inline_images(markdown: str, folder: Path) -> str:
    """The report with each plot embedded as a base64 data URI, for the Prefect UI's markdown artifact
    (the UI cannot reach files on the worker's disk)."""
    for name in PLOTS:
        data = base64.b64encode((folder / name).read_bytes()).decode()
        markdown = markdown.replace(f"]({name})", f"](data:image/png;base64,{data})")
    return markdown


def write_report(run: RunDir, models: list[str], *, title: str, outcome: str) -> str:
    """The run's report.md and its four plots in the run's report folder; returns the markdown."""
    dataset = run.read_dataset()
    trained = run.read_trained(models)
    evaluation = run.read_evaluation()
    weights = run.read_weights()
    curves = {
        name: evaluation.equity_curves[name]
        for name in (*evaluation.models, "champion")
        if name in evaluation.equity_curves
    }
    folder = run.report_dir
    plot_confusion_matrices(evaluation, folder / "confusion_matrices.png")
    plot_feature_importance(
        {m: t.member.feature_importance() for m, t in trained.items()},
        dataset.feature_names,
        folder / "feature_importance.png",
    )
    plot_equity_curves(curves, folder / "equity_curve.png")
    plot_optuna_history({m: t.history for m, t in trained.items()}, folder / "optuna_history.png")
    markdown = run_report_markdown(
        title=title,
        outcome=outcome,
        source=run.read_source().description,
        quality=run.read_quality(),
        dataset=dataset.summary(),
        evaluation=evaluation,
        decision=run.read_decision(),
        studies={m: t.study for m, t in trained.items()},
        cv_macro_f1={m: t.cv_macro_f1 for m, t in trained.items()},
        weights=weights.weights,
        durations=run.durations(),
    )
    run.write_report(markdown)
    return markdown


def plot_confusion_matrices(evaluation: EvaluationResult, path: Path) -> Path:
    names = list(evaluation.models)
    fig = Figure(figsize=(3.6 * len(names), 3.4))
    axes = fig.subplots(1, len(names), squeeze=False)
    for ax, name in zip(axes[0], names, strict=True):
        matrix = np.asarray(evaluation.models[name].scores.confusion_matrix)
        ax.imshow(matrix, cmap="Blues")
        for (row, col), count in np.ndenumerate(matrix):
            ax.text(col, row, str(count), ha="center", va="center", fontsize=9)
        ax.set(
            xticks=range(len(CLASSES)),
            yticks=range(len(CLASSES)),
            xticklabels=CLASSES,
            yticklabels=CLASSES,
            xlabel="predicted",
            ylabel="true",
            title=f"{name}\nmacro-F1 {evaluation.models[name].scores.macro_f1:.3f}",
        )
    return _save(fig, path)


def plot_feature_importance(
    importances: Mapping[str, np.ndarray], feature_names: Sequence[str], path: Path
) -> Path:
    """Top features per member, as shares of each member's total importance."""
    fig = Figure(figsize=(4.5 * len(importances), 6))
    axes = fig.subplots(1, len(importances), squeeze=False)
    for ax, (name, importance) in zip(axes[0], importances.items(), strict=True):
        order = np.argsort(importance)[::-1][:TOP_FEATURES][::-1]
        ax.barh([feature_names[i] for i in order], importance[order])
        ax.set(title=name, xlabel="importance share")
        ax.tick_params(axis="y", labelsize=7)
    return _save(fig, path)


def plot_equity_curves(curves: Mapping[str, Sequence[float]], path: Path) -> Path:
    fig = Figure(figsize=(9, 4))
    ax = fig.subplots()
    for name, curve in curves.items():
        ax.plot(curve, label=name, linewidth=2.0 if name == "ensemble" else 1.0)
    ax.axhline(1.0, color="grey", linewidth=0.5)
    ax.set(title="Holdout equity following the signals, after fees", xlabel="holdout candle", ylabel="equity")
    ax.legend(fontsize=8)
    return _save(fig, path)


def plot_optuna_history(histories: Mapping[str, Sequence[TrialRecord]], path: Path) -> Path:
    """Each study's trial values and its best-so-far line; pruned trials marked at the bottom."""
    fig = Figure(figsize=(4.5 * len(histories), 3.5))
    axes = fig.subplots(1, len(histories), squeeze=False)
    for ax, (name, history) in zip(axes[0], histories.items(), strict=True):
        done = [(r.number, r.value) for r in history if r.value is not None]
        pruned = [r.number for r in history if r.state == "PRUNED"]
        if done:
            numbers, values = zip(*done, strict=True)
            ax.scatter(numbers, values, s=12, label="complete")
            ax.step(numbers, np.maximum.accumulate(values), where="post", color="C1", label="best so far")
        if pruned:
            floor = min(v for _, v in done) if done else 0.0
            ax.scatter(pruned, [floor] * len(pruned), marker="x", s=12, color="grey", label="pruned")
        ax.set(title=name, xlabel="trial", ylabel="CV macro-F1")
        ax.legend(fontsize=7)
    return _save(fig, path)


def _save(fig: Figure, path: Path) -> Path:
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=90)
    return write_atomically(path, buffer.getvalue())
