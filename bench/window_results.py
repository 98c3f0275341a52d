"""Holdout scores of the full retrain on each shared Binance BTC/USDT window (180 days each).

For every calendar window the last 180 days are fetched through the CSV source and the whole
pipeline runs with the configured (default) budget, as a dry run: nothing is promoted. The table
puts the ensemble's holdout macro-F1 next to its members and the naive baselines, so it shows
whether the models learn anything beyond "do nothing" and "repeat the last known label".
The 2024-08..2025-07 window is for evaluation only: defaults were not tuned on it.

Run: .venv/bin/python bench/window_results.py [--trials N] [--windows W1 W2 ...] [--out RESULTS.md]
"""

from __future__ import annotations

import argparse
import logging
import resource
import tempfile
import time
from pathlib import Path

from bench_report import machine_summary, write_section

from retrain.pipeline import run_pipeline
from retrain.run_dir import RunDir
from retrain.settings import load_settings
from retrain.training.threads import available_cores

DATA_DIR = Path(__file__).resolve().parents[2] / "shared" / "data"
WINDOWS = {
    "W1": "BTCUSDT_BINANCE_15m_20211101_20220731.csv",
    "W2": "BTCUSDT_BINANCE_15m_20220801_20230731.csv",
    "W3": "BTCUSDT_BINANCE_15m_20230801_20240731.csv",
    "W4": "BTCUSDT_BINANCE_15m_20240801_20250731.csv",
}
EVALUATION_ONLY = {"W4"}
COLUMNS = (
    "ensemble",
    "lightgbm",
    "xgboost",
    "random_forest",
    "always_hold",
    "persistence",
    "class_prior_random",
)


def run_window(name: str, path: Path, trials: int | None, days: int) -> dict[str, object]:
    with tempfile.TemporaryDirectory(prefix=f"retrain-{name}-") as models_dir:
        overrides = {
            "data": {"source": "csv", "csv_path": str(path), "days": days},
            "paths": {"models_dir": models_dir},
        }
        if trials is not None:
            overrides["tuning"] = {"n_trials": trials}
        settings = load_settings(**overrides)
        started, cpu_started = time.perf_counter(), time.process_time()
        outcome = run_pipeline(settings, dry_run=True)
        seconds = time.perf_counter() - started
        cpu_share = (time.process_time() - cpu_started) / (seconds * available_cores(settings.training.cores))
        evaluation = RunDir(Path(outcome.run_dir)).read_evaluation()
    scores = {n: e.scores.macro_f1 for n, e in {**evaluation.models, **evaluation.baselines}.items()}
    return {
        "window": name + (" (evaluation only)" if name in EVALUATION_ONLY else ""),
        "holdout": f"{evaluation.holdout_start:%Y-%m-%d} .. {evaluation.holdout_end:%Y-%m-%d}",
        "support": "/".join(str(v) for v in evaluation.class_support.values()),
        "seconds": seconds,
        "cpu": cpu_share,
        "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        **scores,
    }


def table(rows: list[dict[str, object]]) -> str:
    header = ["window", "holdout", "SELL/HOLD/BUY", *COLUMNS, "wall s", "CPU use", "peak RSS MiB"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row in rows:
        cells = [row["window"], row["holdout"], row["support"], *(f"{row[c]:.4f}" for c in COLUMNS)]
        cells += [f"{row['seconds']:.0f}", f"{row['cpu']:.0%}", f"{row['peak_rss_mib']:.0f}"]
        lines.append("| " + " | ".join(map(str, cells)) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=None, help="trials per model (default: config)")
    parser.add_argument("--days", type=int, default=180)
    parser.add_argument("--windows", nargs="+", default=list(WINDOWS), choices=list(WINDOWS))
    parser.add_argument("--data-dir", type=Path, default=DATA_DIR)
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parents[1] / "RESULTS.md")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    rows = []
    for name in args.windows:
        rows.append(run_window(name, args.data_dir / WINDOWS[name], args.trials, args.days))
        print(table(rows[-1:]), flush=True)
    body = table(rows)
    print(body)
    trials = args.trials or load_settings().tuning.n_trials
    command = "bench/window_results.py" + (f" --trials {args.trials}" if args.trials else "")
    write_section(
        args.out,
        f"Holdout macro-F1 per window ({args.days} days, {trials} trials per model)",
        f"{machine_summary()}\n\nCommand: `.venv/bin/python {command}`\n\n{body}\n",
    )


if __name__ == "__main__":
    main()
