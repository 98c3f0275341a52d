"""The weekly policy replayed on the shared Binance BTC/USDT calendar windows, and what a backtest week costs.

For each window, `retrain backtest` over its last `--weeks` weekly cutoffs (each retrain on the
`data.days` before its cutoff, the live week after it scored). The table puts the gated policy's live
macro-F1 minus persistence (mean over weeks, block-bootstrap interval) next to the ungated policy and
the first model kept, with the gate's hit rate and the trading read-outs. Then one plain weekly retrain
at the first cutoff of the first window, for the cost target: a backtest week at most 1.1x a retrain.

Run: .venv/bin/python bench/backtest_windows.py [--windows W1 W2 W3 W4] [--weeks 4] [--trials 5]
"""

from __future__ import annotations

import argparse
import logging
import statistics
import tempfile
import time
from pathlib import Path

import pandas as pd
from bench_report import publish
from measured_run import DATA_DIR
from pruner_replay import WINDOWS

from retrain.backtest import BacktestPlan, BacktestResult, run_and_report
from retrain.data.csv_source import read_candle_file
from retrain.pipeline import run_pipeline
from retrain.settings import Settings, load_settings

OUT = Path(__file__).resolve().parents[1] / "RESULTS.md"
COST_TARGET = 1.1


def first_cutoff(path: Path, weeks: int) -> pd.Timestamp:
    """The cutoff `weeks` weeks before the file's end, at UTC midnight, leaving a day for the last labels."""
    last = pd.to_datetime(read_candle_file(path)["timestamp"].iloc[-1], utc=True)
    return (last - pd.Timedelta(days=7 * weeks + 1)).floor("D")


def window_row(window: str, result: BacktestResult, seconds: float) -> str:
    s = result.summary
    diff = s.live_minus_persistence
    hit = f"{s.gate_hits}/{s.gate_decided}" if s.gate_decided else "n/a"

    def interval(name: str) -> str:
        i = diff[name]
        return f"{i.estimate:+.4f} [{i.lower:+.4f}, {i.upper:+.4f}]"

    returns = s.total_return
    return (
        f"| {window} | {s.weeks} | {s.promotions} | {interval('policy')} | {interval('ungated')} "
        f"| {interval('never_retrain')} | {hit} | {returns['policy']:+.1%} | {returns['ungated']:+.1%} "
        f"| {returns['persistence']:+.1%} | {returns['buy_and_hold']:+.1%} | {seconds / s.weeks:.0f} |"
    )


def retrain_seconds(settings: Settings, path: Path, cutoff: pd.Timestamp) -> float:
    """Wall time of one plain weekly retrain on the `data.days` before `cutoff` (into a fresh store)."""
    with tempfile.TemporaryDirectory(prefix="retrain-cost-") as scratch:
        frame = read_candle_file(path)
        stamps = pd.to_datetime(frame["timestamp"], utc=True)
        frame[stamps < cutoff].to_csv(Path(scratch) / "until-cutoff.csv", index=False)
        data = settings.data.model_copy(
            update={"source": "csv", "csv_path": Path(scratch) / "until-cutoff.csv"}
        )
        paths = settings.paths.model_copy(update={"models_dir": Path(scratch) / "models", "runs_dir": None})
        started = time.perf_counter()
        run_pipeline(settings.model_copy(update={"data": data, "paths": paths}))
        return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--windows", nargs="+", default=["W1", "W2", "W3", "W4"], choices=sorted(WINDOWS))
    parser.add_argument("--weeks", type=int, default=4)
    parser.add_argument("--trials", type=int, default=5)
    parser.add_argument("--days", type=int, help="training days per week (default: data.days)")
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    rows, per_week = [], []
    for window in args.windows:
        path = DATA_DIR / WINDOWS[window]
        settings = load_settings(
            data={"source": "csv", "csv_path": str(path)}, tuning={"n_trials": args.trials}
        )
        start = first_cutoff(path, args.weeks)
        with tempfile.TemporaryDirectory(prefix=f"retrain-backtest-{window}-") as out:
            started = time.perf_counter()
            result = run_and_report(settings, BacktestPlan(start=start, weeks=args.weeks, out=Path(out)))
            seconds = time.perf_counter() - started
        per_week.append(seconds / args.weeks)
        rows.append(window_row(f"{window} (from {start:%Y-%m-%d})", result, seconds))
        print(rows[-1], flush=True)
        if window == args.windows[0]:
            retrain_s = retrain_seconds(settings, path, start)
            cost_ratio = (seconds / args.weeks) / retrain_s
    body = "\n".join(
        [
            f"{args.weeks} weekly cutoffs per window, {args.trials} trials per model and week, the configured "
            "gate and days; macro-F1 differences are live macro-F1 minus persistence's on the same live rows, "
            "mean over the weeks with a 90% moving-block bootstrap interval (blocks of 16 rows within each "
            "week). Hits: weeks where the gate's decision was right in the live week (promoted and the "
            "challenger beat the champion, or refused and the champion was at least as good), of the "
            "weeks that had a champion. Returns: the trading read-out (1-candle positions after fees) "
            "compounded over the live weeks.",
            "",
            "| window | weeks | promotions | policy minus persistence | ungated | never retrain | gate hits "
            "| policy return | ungated | persistence | buy and hold | s per week |",
            "|---|---|---|---|---|---|---|---|---|---|---|---|",
            *rows,
            "",
            f"Cost: a backtest week took {per_week[0]:.0f} s on {args.windows[0]}, one plain weekly retrain at its "
            f"first cutoff {retrain_s:.0f} s: **{cost_ratio:.2f}x** (target <= {COST_TARGET}x; one run each). "
            f"Median backtest week over the windows: {statistics.median(per_week):.0f} s.",
        ]
    )
    publish(
        args.out,
        "Backtest of the weekly policy on the BTC calendar windows",
        "bench/backtest_windows.py",
        body,
    )


if __name__ == "__main__":
    main()
