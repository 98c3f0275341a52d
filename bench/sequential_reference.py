"""The normal retrain against its sequential reference, alternated in one run: speed ratio and holdout F1.

The reference is the same pipeline with three switches off (studies in parallel, `tuning.pruner: none`,
fold datasets reused across trials): the studies run one after another with all cores
each, every trial scores all folds, and every trial rebuilds its folds' SMOTE output and datasets.
Both run the same number of trials with the same seeds on the same candles (dry runs: nothing is
stored). Rounds alternate which configuration goes first, so drift in the machine's speed hits both.

`--pruner` gives the normal configuration another pruner than the configured one (its own section).

Run: .venv/bin/python bench/sequential_reference.py [--rounds 3] [--trials 50] [--days 180]
     [--pruner successive_halving]
"""

from __future__ import annotations

import argparse
import logging
import statistics
from pathlib import Path
from typing import get_args

from bench_report import median_and_spread, publish
from measured_run import LATEST_BTC, RetrainMeasurement, measured_retrain

from retrain.settings import PrunerName, load_settings

SPEEDUP_TARGET = 2.0
OUT = Path(__file__).resolve().parents[1] / "BENCHMARKS.md"
SEQUENTIAL = "studies one after another, tuning.pruner=none, fold datasets rebuilt in every trial"


def compare(normal: list[RetrainMeasurement], sequential: list[RetrainMeasurement]) -> str:
    ratios = [s.wall_s / n.wall_s for n, s in zip(normal, sequential, strict=True)]
    f1_normal = statistics.median(r.holdout_macro_f1["ensemble"] for r in normal)
    f1_sequential = statistics.median(r.holdout_macro_f1["ensemble"] for r in sequential)
    speed_met = statistics.median(ratios) >= SPEEDUP_TARGET
    f1_met = f1_normal >= f1_sequential
    lines = [
        "| | normal | sequential reference |",
        "|---|---|---|",
        f"| wall s | {median_and_spread([r.wall_s for r in normal])} "
        f"| {median_and_spread([r.wall_s for r in sequential])} |",
        f"| training stage s | {median_and_spread([r.stage_s['training'] for r in normal])} "
        f"| {median_and_spread([r.stage_s['training'] for r in sequential])} |",
        f"| CPU utilisation while training % | "
        f"{median_and_spread([r.stage_cpu['training'] * 100 for r in normal])} "
        f"| {median_and_spread([r.stage_cpu['training'] * 100 for r in sequential])} |",
        "| trials complete / pruned (lightgbm, xgboost, random_forest) | "
        + " | ".join(
            ", ".join(f"{m.complete}/{m.pruned}" for m in runs[0].models.values())
            for runs in (normal, sequential)
        )
        + " |",
        f"| holdout macro-F1, ensemble | {f1_normal:.4f} | {f1_sequential:.4f} |",
        "| holdout macro-F1, members (lightgbm, xgboost, random_forest) | "
        + " | ".join(
            ", ".join(f"{runs[0].holdout_macro_f1[m]:.4f}" for m in runs[0].models)
            for runs in (normal, sequential)
        )
        + " |",
        "",
        f"Speed ratio (reference wall / normal wall, per round): {median_and_spread(ratios)}; "
        f"target >= {SPEEDUP_TARGET:.0f}x: {'met' if speed_met else '**missed**'}. "
        f"Holdout macro-F1 equal or better than the reference: {'met' if f1_met else '**missed**'} "
        f"({f1_normal - f1_sequential:+.4f}).",
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument(
        "--trials", type=int, default=50, help="trials per model, the same in both (default: the retrain's)"
    )
    parser.add_argument(
        "--pruner",
        choices=get_args(PrunerName),
        help="the normal run's (default: configured)",
    )
    parser.add_argument("--csv", type=Path, default=LATEST_BTC)
    parser.add_argument("--days", type=int, default=180)
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    configs = {
        "normal": {"tuning": {"n_trials": args.trials, **({"pruner": args.pruner} if args.pruner else {})}},
        "sequential": {"tuning": {"n_trials": args.trials, "pruner": "none"}},
    }
    results: dict[str, list[RetrainMeasurement]] = {"normal": [], "sequential": []}
    for round_number in range(args.rounds):
        order = ["normal", "sequential"] if round_number % 2 == 0 else ["sequential", "normal"]
        for name in order:
            results[name].append(
                measured_retrain(
                    args.csv,
                    args.days,
                    configs[name],
                    dry_run=True,
                    sequential_reference=name == "sequential",
                )
            )
            print(f"round {round_number + 1} {name}: {results[name][-1].wall_s:.0f} s", flush=True)
    first = results["normal"][0]
    body = (
        f"Data: {args.csv.name}, last {args.days} days ({first.window}); {args.trials} trials per model "
        f"in both; {args.rounds} rounds, alternating which goes first. Normal pruner: "
        f"{args.pruner or load_settings().tuning.pruner}. Reference switches: "
        f"{SEQUENTIAL}.\n\n"
        f"{compare(results['normal'], results['sequential'])}\n"
    )
    pruner = f", {args.pruner.replace('_', ' ')} pruner" if args.pruner else ""
    title = f"Against the sequential reference ({args.days} days, {args.trials} trials{pruner})"
    publish(args.out, title, "bench/sequential_reference.py", body)


if __name__ == "__main__":
    main()
