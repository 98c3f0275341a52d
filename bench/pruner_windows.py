"""Which pruner, in real runs: each pruner's retrain against the unpruned one, on several windows.

`pruner_replay.py` replays pruners on the trials of an unpruned study, but in a real pruned study TPE
learns from the pruned trials and proposes others. This runs the dry-run retrain itself for every
window: once unpruned (`tuning.pruner=none`) and once per `--pruners` setting of
`tuning.pruner`, with the same seeds, trials and candles. Reported per run: the wall time, the
trials pruned, each model's best CV macro-F1 and the ensemble's holdout macro-F1, with their change
from the unpruned run; then per pruner the mean and worst change over every (window, model) study.

Run: .venv/bin/python bench/pruner_windows.py [--windows latest W1 W2] [--pruners percentile successive_halving]
     [--trials 50] [--days 180]
"""

from __future__ import annotations

import argparse
import logging
import statistics
from pathlib import Path
from typing import get_args

from bench_report import publish
from measured_run import DATA_DIR, RetrainMeasurement, measured_retrain
from pruner_replay import WINDOWS, window_files

from retrain.settings import PrunerName, load_settings

OUT = Path(__file__).resolve().parents[1] / "BENCHMARKS.md"
PRUNERS: tuple[str, ...] = get_args(PrunerName)
UNPRUNED = "unpruned"


def run(window: str, pruner: str, days: int, trials: int) -> RetrainMeasurement:
    overrides: dict[str, dict[str, object]] = (
        {"tuning": {"n_trials": trials, "pruner": "none"}}
        if pruner == UNPRUNED
        else {"tuning": {"n_trials": trials, "pruner": pruner}}
    )
    return measured_retrain(DATA_DIR / WINDOWS[window], days, overrides, dry_run=True)


def _cv_changes(run: RetrainMeasurement, unpruned: RetrainMeasurement) -> list[float]:
    return [run.models[m].cv_macro_f1 - unpruned.models[m].cv_macro_f1 for m in unpruned.models]


def runs_table(results: dict[str, dict[str, RetrainMeasurement]], models: list[str]) -> str:
    lines = [
        f"| window | pruner | wall s | trials pruned ({', '.join(models)}) | best CV macro-F1 (change) "
        "| holdout macro-F1, ensemble (change) |",
        "|---|---|---|---|---|---|",
    ]
    for window, runs in results.items():
        unpruned = runs[UNPRUNED]
        for pruner, measured in runs.items():
            cv = ", ".join(
                f"{measured.models[m].cv_macro_f1:.4f} ({change:+.4f})"
                for m, change in zip(models, _cv_changes(measured, unpruned), strict=True)
            )
            holdout = measured.holdout_macro_f1["ensemble"]
            holdout_change = holdout - unpruned.holdout_macro_f1["ensemble"]
            pruned = "/".join(str(measured.models[m].pruned) for m in models)
            lines.append(
                f"| {window} | {pruner} | {measured.wall_s:.0f} | {pruned} | {cv} "
                f"| {holdout:.4f} ({holdout_change:+.4f}) |"
            )
    return "\n".join(lines)


def summary_table(results: dict[str, dict[str, RetrainMeasurement]], pruners: list[str]) -> str:
    lines = [
        "| pruner | wall, unpruned / pruned, median | CV change, mean / worst | holdout change, mean / worst |",
        "|---|---|---|---|",
    ]
    for pruner in pruners:
        speedups = [runs[UNPRUNED].wall_s / runs[pruner].wall_s for runs in results.values()]
        cv = [c for runs in results.values() for c in _cv_changes(runs[pruner], runs[UNPRUNED])]
        holdout = [
            runs[pruner].holdout_macro_f1["ensemble"] - runs[UNPRUNED].holdout_macro_f1["ensemble"]
            for runs in results.values()
        ]
        lines.append(
            f"| {pruner} | {statistics.median(speedups):.2f}x ({min(speedups):.2f}..{max(speedups):.2f}) "
            f"| {statistics.mean(cv):+.4f} / {min(cv):+.4f} "
            f"| {statistics.mean(holdout):+.4f} / {min(holdout):+.4f} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--windows", nargs="+", default=["latest", "W1", "W2"], choices=list(WINDOWS))
    parser.add_argument("--pruners", nargs="+", default=list(PRUNERS), choices=list(PRUNERS))
    parser.add_argument("--trials", type=int, default=50)
    parser.add_argument("--days", type=int, default=180)
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    results: dict[str, dict[str, RetrainMeasurement]] = {}
    for window in args.windows:
        results[window] = {}
        for pruner in (UNPRUNED, *args.pruners):
            results[window][pruner] = run(window, pruner, args.days, args.trials)
            print(f"{window} {pruner}: {results[window][pruner].wall_s:.0f} s", flush=True)
    body = (
        f"Data: the last {args.days} days of "
        f"{window_files(args.windows)}; {args.trials} trials per model; "
        "changes are against the unpruned run of the same window.\n\n"
        f"{summary_table(results, args.pruners)}\n\n{runs_table(results, load_settings().training.models)}\n"
    )
    title = f"Pruners in real runs ({', '.join(args.windows)}; {args.days} days, {args.trials} trials)"
    publish(args.out, title, "bench/pruner_windows.py", body)


if __name__ == "__main__":
    main()
