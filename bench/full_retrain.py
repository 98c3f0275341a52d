"""Full retrain on 180 days of real BTC candles with the default budget: wall time, CPU use, memory, stages.

Runs the whole pipeline (fetch and validate from the CSV source, features and labels, three studies
of `tuning.n_trials` trials each on purged 5-fold CV with SMOTE in the folds, final fits, ensemble,
holdout evaluation, gate, promotion into a fresh temporary store, report) `--runs` times, and reports
medians against the targets: at most 10 minutes wall, at least 85% CPU utilisation while tuning.

Run: .venv/bin/python bench/full_retrain.py [--runs 3] [--csv PATH] [--days 180] [--trials N] [--keep-store DIR]
"""

from __future__ import annotations

import argparse
import logging
import statistics
from pathlib import Path

from bench_report import median_and_spread, publish
from measured_run import LATEST_BTC, STAGES, RetrainMeasurement, measured_retrain

from retrain.settings import load_settings

WALL_TARGET_S = 600.0
TUNING_CPU_TARGET = 0.85
OUT = Path(__file__).resolve().parents[1] / "BENCHMARKS.md"


def met(ok: bool) -> str:
    return "yes" if ok else "**no**"


def summary_table(runs: list[RetrainMeasurement]) -> str:
    wall = [r.wall_s for r in runs]
    tuning_cpu = [r.tuning_cpu * 100 for r in runs]
    rows = [
        (
            "wall time, whole retrain (s)",
            median_and_spread(wall),
            f"<= {WALL_TARGET_S:.0f}",
            met(statistics.median(wall) <= WALL_TARGET_S),
        ),
        (
            "CPU utilisation while tuning (%)",
            median_and_spread(tuning_cpu),
            f">= {TUNING_CPU_TARGET:.0%}",
            met(statistics.median(tuning_cpu) >= TUNING_CPU_TARGET * 100),
        ),
        (
            "tuning, start of training to last study's end (s)",
            median_and_spread([r.tuning_s for r in runs]),
            "-",
            "-",
        ),
        ("peak RSS (MiB)", median_and_spread([r.peak_rss_mib for r in runs]), "-", "-"),
        (
            "model file (MB)",
            median_and_spread([r.model_mb for r in runs]),
            "<= 10",
            met(statistics.median(r.model_mb for r in runs) <= 10),
        ),
    ]
    lines = ["| figure | median (min..max, runs) | target | met |", "|---|---|---|---|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def stage_table(runs: list[RetrainMeasurement]) -> str:
    lines = ["| stage | wall s: median (min..max, runs) | CPU utilisation % (median) |", "|---|---|---|"]
    for stage in STAGES:
        seconds = [r.stage_s[stage] for r in runs]
        cpu = statistics.median(r.stage_cpu[stage] * 100 for r in runs)
        lines.append(f"| {stage} | {median_and_spread(seconds)} | {cpu:.0f} |")
    rest = [r.wall_s - sum(r.stage_s.values()) for r in runs]
    lines.append(f"| gate, report and the rest | {median_and_spread(rest)} | - |")
    return "\n".join(lines)


def model_table(runs: list[RetrainMeasurement]) -> str:
    lines = [
        "| model | trials (complete / pruned), first run | tuning s | s per complete trial, first run "
        "| final fit s | CV macro-F1 | holdout macro-F1 |",
        "|---|---|---|---|---|---|---|",
    ]
    for model, first in runs[0].models.items():
        tuning = median_and_spread([r.models[model].tuning_s for r in runs])
        final = median_and_spread([r.models[model].final_fit_s for r in runs])
        lines.append(
            f"| {model} | {first.trials} ({first.complete} / {first.pruned}) | {tuning} "
            f"| {first.mean_complete_trial_s or 0:.1f} | {final} "
            f"| {first.cv_macro_f1:.4f} | {runs[0].holdout_macro_f1[model]:.4f} |"
        )
    lines.append(f"| ensemble | - | - | - | - | - | {runs[0].holdout_macro_f1['ensemble']:.4f} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument(
        "--csv", type=Path, default=LATEST_BTC, help="candles (default: latest Binance BTC/USDT)"
    )
    parser.add_argument("--days", type=int, default=180)
    parser.add_argument("--trials", type=int, default=None, help="trials per model (default: config, 50)")
    parser.add_argument(
        "--keep-store",
        type=Path,
        default=None,
        help="keep the last run's model store here (for model_in_use.py)",
    )
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    overrides = {"tuning": {"n_trials": args.trials}} if args.trials else {}
    trials = args.trials or load_settings().tuning.n_trials
    runs = []
    for number in range(1, args.runs + 1):
        keep = args.keep_store if number == args.runs else None
        runs.append(measured_retrain(args.csv, args.days, overrides, keep_store=keep))
        print(f"run {number}: {runs[-1].wall_s:.0f} s wall, tuning CPU {runs[-1].tuning_cpu:.0%}", flush=True)
    first = runs[0]
    body = (
        f"Data: {args.csv.name}, last {args.days} days ({first.window}, {first.candles:,} candles); "
        f"{trials} trials per model, a fresh model store per run (outcome of the first run: {first.status}). "
        f"CPU utilisation = CPU seconds / (wall seconds x {first.cores} cores).\n\n"
        f"{summary_table(runs)}\n\nPer stage:\n\n{stage_table(runs)}\n\n"
        f"Per model (studies run at the same time; scores are the same in every run):\n\n{model_table(runs)}\n"
    )
    publish(
        args.out, f"Full retrain ({args.days} days, {trials} trials per model)", "bench/full_retrain.py", body
    )


if __name__ == "__main__":
    main()
