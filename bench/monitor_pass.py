"""What one monitor pass costs: a real model, promoted, watched 7 days after its holdout ended.

A retrain (`--trials` per model) on the 180 days before a cutoff of the latest shared BTC candles is
promoted into a fresh store; then `retrain.monitor.monitor_pass` runs `--runs` times on the candles up
to 7 days after the model's holdout (CSV source, as `retrain monitor --source csv` does). Reports the
median wall time of a pass and its parts: nothing is trained, only loaded, fetched, featured and scored.
Target: a few seconds.

Run: .venv/bin/python bench/monitor_pass.py [--runs 5] [--trials 2]
"""

from __future__ import annotations

import argparse
import logging
import statistics
import tempfile
import time
from pathlib import Path

import pandas as pd
from bench_report import median_and_spread, publish
from measured_run import LATEST_BTC
from model_in_use import OPEN_GATE

from retrain.data.csv_source import read_candle_file
from retrain.monitor.run import monitor_pass
from retrain.pipeline import run_pipeline
from retrain.settings import load_settings

OUT = Path(__file__).resolve().parents[1] / "BENCHMARKS.md"
WATCHED = pd.Timedelta(days=7)
TARGET_S = 5.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--trials", type=int, default=2)
    parser.add_argument("--days", type=int, default=180)
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    frame = read_candle_file(LATEST_BTC)
    stamps = pd.to_datetime(frame["timestamp"], utc=True)
    cutoff = stamps.iloc[-1] - WATCHED
    with tempfile.TemporaryDirectory(prefix="retrain-monitor-bench-") as scratch:
        root = Path(scratch)
        frame[stamps < cutoff].to_csv(root / "trained.csv", index=False)
        frame.to_csv(root / "watched.csv", index=False)
        store = {"models_dir": str(root / "models")}
        trained = run_pipeline(
            load_settings(
                data={"source": "csv", "csv_path": str(root / "trained.csv"), "days": args.days},
                tuning={"n_trials": args.trials},
                paths=store,
                gate=OPEN_GATE,
            )
        )
        watch = load_settings(data={"source": "csv", "csv_path": str(root / "watched.csv")}, paths=store)
        seconds, reports = [], []
        for _ in range(args.runs):
            started = time.perf_counter()
            reports.append(monitor_pass(watch, now=stamps.iloc[-1] + pd.Timedelta(minutes=20)))
            seconds.append(time.perf_counter() - started)
    last = reports[-1]
    rows = {window: scores.rows for window, scores in last.realised.items()}
    body = "\n".join(
        [
            f"Model: a retrain ({args.trials} trials per model, {args.days} days) of {LATEST_BTC.name} up to "
            f"{cutoff:%Y-%m-%d %H:%M} UTC, {trained.status}; watched on the candles after its holdout up to the "
            f"file's end ({rows}).",
            "",
            "| figure | value | target |",
            "|---|---|---|",
            f"| one pass, wall s | {median_and_spread(seconds)} | <= {TARGET_S:g} |",
            f"| met | {'yes' if statistics.median(seconds) <= TARGET_S else '**no**'} | |",
            f"| drift tested on | {len(last.drift.features) if last.drift else 0} features | |",
        ]
    )
    publish(args.out, "Monitor pass (7 days since the holdout)", "bench/monitor_pass.py", body)


if __name__ == "__main__":
    main()
