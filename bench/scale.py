"""How the retrain's cost grows with the data: time per 10,000 candles at 90, 180, 365 and 730 days.

For each length the last N days of the 4-year Binance BTC/USDT recording are written to a temporary
CSV of exactly that length (so reading the file scales with N too), and the whole retrain runs as a
dry run with a small fixed budget. With at most 10 trials per model every length tries the same
parameter sets (Optuna's TPE samples its first 10 trials at random from the seed), so the training
stage does the same work per trial on more rows. A first, unmeasured 1-trial run loads the libraries.
Target: cost per candle roughly constant (the largest per-candle figure at most 25% above the
smallest) for the data, feature and training stages.

Run: .venv/bin/python bench/scale.py [--days 90 180 365 730] [--trials 5] [--runs 2]
"""

from __future__ import annotations

import argparse
import logging
import statistics
import tempfile
from pathlib import Path

import numpy as np
from bench_report import median_and_spread, publish
from measured_run import LATEST_BTC, RetrainMeasurement, measured_retrain

from retrain.data.candles import CANDLES_PER_DAY
from retrain.data.csv_source import read_candle_file

SPREAD_TARGET = 0.25
OUT = Path(__file__).resolve().parents[1] / "BENCHMARKS.md"
STAGES = {
    "data (fetch + validate)": "fetch_validate",
    "features + labels": "features_labels",
    "training": "training",
}
LINEAR_STAGES = {"fetch_validate", "features_labels"}
"""Stages whose time is a fixed part plus a part per candle; training is not: its boosting rounds
grow with the data, so splitting off a fixed part would mean nothing."""


def per_10k(run: RetrainMeasurement, stage: str) -> float:
    return run.stage_s[stage] / run.candles * 10_000


def fixed_part_row(label: str, stage: str, results: dict[int, list[RetrainMeasurement]]) -> str:
    """The stage time as a fixed part plus a part per candle (least squares over the lengths' medians):
    tells a per-call overhead (which makes short windows look dear per candle) from growth per candle."""
    candles = np.array([statistics.median(r.candles for r in runs) for runs in results.values()], dtype=float)
    seconds = np.array([statistics.median(r.stage_s[stage] for r in runs) for runs in results.values()])
    per_candle, fixed = np.polyfit(candles, seconds, 1)
    variable = (seconds - fixed) / candles * 10_000
    return (
        f"| {label}, without its fixed part ({fixed * 1000:.0f} ms), s per 10k candles | "
        + " | ".join(f"{value:.4g}" for value in variable)
        + f" | {variable.max() / variable.min():.2f} | - |"
    )


def scale_table(results: dict[int, list[RetrainMeasurement]]) -> str:
    header = ["stage", *(f"{days} days" for days in results), "largest / smallest", "within 25%"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for label, stage in STAGES.items():
        values = [[per_10k(r, stage) for r in runs] for runs in results.values()]
        medians = [statistics.median(v) for v in values]
        cells = [median_and_spread(v) for v in values]
        spread = max(medians) / min(medians)
        ok = spread <= 1 + SPREAD_TARGET
        lines.append(
            f"| {label}, s per 10k candles | "
            + " | ".join(cells)
            + f" | {spread:.2f} | {'yes' if ok else '**no**'} |"
        )
        if stage in LINEAR_STAGES:
            lines.append(fixed_part_row(label, stage, results))
    for model in next(iter(results.values()))[0].models:
        cells = [
            median_and_spread([r.models[model].tuning_s / r.candles * 10_000 for r in runs])
            for runs in results.values()
        ]
        lines.append(f"| of which {model} tuning, s per 10k candles | " + " | ".join(cells) + " | - | - |")
        if next(iter(results.values()))[0].models[model].rounds_per_fit is None:
            continue
        rounds = {
            days: [r.models[model].rounds_per_fit or 0.0 for r in runs] for days, runs in results.items()
        }
        cells = [median_and_spread(values) for values in rounds.values()]
        lines.append(f"| {model} rounds per fold fit | " + " | ".join(cells) + " | - | - |")
        per_round = [
            [
                r.models[model].tuning_s / r.candles * 10_000 / (r.models[model].rounds_per_fit or 1.0) * 100
                for r in runs
            ]
            for runs in results.values()
        ]
        medians = [statistics.median(values) for values in per_round]
        lines.append(
            f"| {model} tuning, s per 10k candles per 100 rounds | "
            + " | ".join(median_and_spread(values) for values in per_round)
            + f" | {max(medians) / min(medians):.2f} | - |"
        )
    candles = [str(runs[0].candles) for runs in results.values()]
    lines.append("| candles | " + " | ".join(candles) + " | - | - |")
    walls = [median_and_spread([r.wall_s for r in runs]) for runs in results.values()]
    lines.append("| whole dry run, s | " + " | ".join(walls) + " | - | - |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, nargs="+", default=[90, 180, 365, 730])
    parser.add_argument(
        "--trials", type=int, default=5, help="trials per model (at most 10: same trials at every length)"
    )
    parser.add_argument("--runs", type=int, default=2, help="runs per length")
    parser.add_argument("--csv", type=Path, default=LATEST_BTC)
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    recording = read_candle_file(args.csv)
    results: dict[int, list[RetrainMeasurement]] = {}
    with tempfile.TemporaryDirectory(prefix="retrain-scale-") as scratch:
        for days in args.days:
            path = Path(scratch, f"last_{days}_days.csv")
            recording.tail(days * CANDLES_PER_DAY).to_csv(path, index=False)
            overrides = {"tuning": {"n_trials": args.trials}}
            if not results:  # a first, unmeasured run pays for the lazy imports of every stage
                measured_retrain(path, days, {"tuning": {"n_trials": 1}}, dry_run=True)
            results[days] = [measured_retrain(path, days, overrides, dry_run=True) for _ in range(args.runs)]
            print(f"{days} days: {statistics.median(r.wall_s for r in results[days]):.0f} s", flush=True)
    body = (
        f"Data: the last N days of {args.csv.name}; {args.trials} trials per model; {args.runs} runs per "
        f"length, medians (min..max, runs).\n\n{scale_table(results)}\n"
    )
    title = f"Scale ({', '.join(map(str, args.days))} days, {args.trials} trials)"
    publish(args.out, title, "bench/scale.py", body)


if __name__ == "__main__":
    main()
