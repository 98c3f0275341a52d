"""Which configuration gives the weekly policy an edge: candidate settings replayed on the BTC calendar windows.

For every candidate (a set of settings overrides, today's defaults first) and every window, the
backtest of `bench/backtest_windows.py` over the window's last `--weeks` weekly cutoffs, and one dry-run
retrain on a direction-scrambled copy of the same window (the control of `bench/controls.py`). Per
candidate and window the table gives:

- the ungated policy's live macro-F1 minus persistence (each week's freshly trained model, deployed
  whatever the gate said: the candidate's own quality), mean over weeks with a 90% block-bootstrap
  interval, and the gated policy's;
- the gate's economic measure in the live weeks: the ungated signals held for the label horizon, after
  fees, summed over the live rows (`retrain.trading.horizon_pnl`), with a 90% block-bootstrap interval;
- the trading read-out (1-candle positions after fees, compounded) of the ungated and gated policies;
- the gate's promotions, and whether the scrambled copy got through the gate (a candidate that lets one
  through is out: it rewards predicting when price moves, not which way);
- wall seconds per backtest week.

Macro-F1 is measured against each candidate's own labels, so it compares label methods only loosely;
the economic measure and the returns are on prices and compare every candidate.

Only the four Binance BTC/USDT calendar windows (W1-W4) are used: the 4-year file's last months, ETH,
Bybit and FTX stay for evaluation. Screen with small `--trials`/`--weeks` and, for candidates that do not
concern the ensemble, `--models lightgbm` (each members list and budget gets its own section); confirm a winner at
the default budget.

Run: .venv/bin/python bench/edge.py [--candidates today labels_volatility ...] [--windows W1 W2 W3 W4]
     [--weeks 2] [--trials 2] [--days 180] [--models lightgbm]
"""

from __future__ import annotations

import argparse
import logging
import tempfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from backtest_windows import first_cutoff
from bench_report import publish
from controls import decide
from measured_run import DATA_DIR
from pruner_replay import WINDOWS

from retrain.backtest import BacktestPlan, BacktestResult, run_and_report
from retrain.backtest.replay import read_week_rows
from retrain.bootstrap import Interval, block_indices
from retrain.data.scramble import scramble_file
from retrain.settings import Settings, load_settings
from retrain.trading import horizon_pnl

OUT = Path(__file__).resolve().parents[1] / "RESULTS.md"
SECTION = "Edge research: candidate configurations on the BTC calendar windows"
ALL_MODELS = ("lightgbm", "xgboost", "random_forest")
CALENDAR_WINDOWS = ("W1", "W2", "W3", "W4")
CONFIDENCE = 0.9
RESAMPLES = 1000
BLOCK = 16

CANDIDATES: dict[str, dict[str, Any]] = {
    "today": {},
    "labels_volatility": {"labels.method": "volatility"},
    "labels_triple_barrier": {"labels.method": "triple_barrier"},
    "labels_triple_barrier_vol": {"labels.method": "triple_barrier", "labels.barrier_unit": "volatility"},
    "features_htf": {"features.groups": ["base", "higher_timeframes"]},
    "features_all": {
        "features.groups": ["base", "higher_timeframes", "volume_price_divergence", "time_since_large_move"]
    },
    "imbalance_class_weight": {"training.imbalance": "class_weight"},
    "smote_half": {"training.smote.minority_ratio": 0.5},
    "calibrated": {"signals.calibration": "isotonic"},
    "confidence_threshold": {"signals.confidence_threshold": "auto"},
    "ensemble_equal": {"ensemble.weights": "equal"},
    "ensemble_stacked": {"ensemble.weights": "stacked"},
}
"""Each candidate as dotted settings keys; `today` is the shipped configuration."""


def nested(dotted: Mapping[str, Any]) -> dict[str, Any]:
    """{"a.b.c": 1} -> {"a": {"b": {"c": 1}}}, merging keys that share a prefix."""
    tree: dict[str, Any] = {}
    for key, value in dotted.items():
        *parents, leaf = key.split(".")
        node = tree
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = value
    return tree


def merged(base: Mapping[str, Any], extra: Mapping[str, Any]) -> dict[str, Any]:
    """`base` with `extra` laid over it, section by section."""
    out = dict(base)
    for key, value in extra.items():
        out[key] = merged(out[key], value) if isinstance(value, Mapping) and key in out else value
    return out


def economic_interval(week_rows: Sequence[pd.DataFrame], settings: Settings, seed: int) -> Interval:
    """The ungated signals' value after fees over every live row (held for the label horizon, as the
    gate measures it), with a moving-block bootstrap interval of the total."""
    totals, draws = [], []
    for number, rows in enumerate(week_rows):
        pnl = horizon_pnl(
            rows["ungated"].to_numpy(dtype=np.int64),
            rows["next_return"].to_numpy(),
            settings.labels.horizon,
            settings.evaluation.fee_rate,
        )
        totals.append(float(pnl.sum()))
        draws.append(pnl[block_indices(len(pnl), min(BLOCK, len(pnl)), RESAMPLES, seed + number)].sum(axis=1))
    tail = (1.0 - CONFIDENCE) / 2.0
    lower, upper = np.quantile(np.sum(draws, axis=0), [tail, 1.0 - tail])
    total = float(np.sum(totals))
    return Interval(
        estimate=total, lower=float(lower), upper=float(upper), confidence=CONFIDENCE, a=total, b=0.0
    )


def run_candidate(name: str, window: str, args: argparse.Namespace) -> dict[str, Any]:
    """The backtest of one candidate on one window, and its scrambled control."""
    path = DATA_DIR / WINDOWS[window]
    candidate = nested(CANDIDATES[name])
    budget = {
        "tuning": {"n_trials": args.trials},
        "data": {"days": args.days},
        "training": {"models": args.models},
    }
    settings = load_settings(
        **merged(merged(candidate, budget), {"data": {"source": "csv", "csv_path": str(path)}})
    )
    start = first_cutoff(path, args.weeks)
    with tempfile.TemporaryDirectory(prefix=f"retrain-edge-{name}-{window}-") as out:
        plan = BacktestPlan(start=start, weeks=args.weeks, out=Path(out))
        started = time.perf_counter()
        result: BacktestResult = run_and_report(settings, plan)
        seconds = time.perf_counter() - started
        rows = [read_week_rows(plan, record.week) for record in result.weeks]
        economic = economic_interval(rows, settings, settings.training.seed)
    with tempfile.TemporaryDirectory(prefix="retrain-edge-scrambled-") as scratch:
        scrambled = scramble_file(path, Path(scratch) / f"{window}.csv", 0)
        control = decide(
            merged(merged(candidate, budget), {"data": {"source": "csv", "csv_path": str(scrambled)}})
        )
    summary = result.summary
    return {
        "candidate": name,
        "window": window,
        "ungated": summary.live_minus_persistence["ungated"],
        "policy": summary.live_minus_persistence["policy"],
        "economic": economic,
        "ungated_return": summary.total_return["ungated"],
        "policy_return": summary.total_return["policy"],
        "promotions": summary.promotions,
        "weeks": summary.weeks,
        "scrambled": control["outcome"],
        "seconds_per_week": seconds / summary.weeks,
    }


def _interval(i: Interval) -> str:
    return f"{i.estimate:+.4f} [{i.lower:+.4f}, {i.upper:+.4f}]"


def row_markdown(r: dict[str, Any]) -> str:
    return (
        f"| {r['candidate']} | {r['window']} | {_interval(r['ungated'])} | {_interval(r['policy'])} "
        f"| {_interval(r['economic'])} | {r['ungated_return']:+.1%} | {r['policy_return']:+.1%} "
        f"| {r['promotions']}/{r['weeks']} | {r['scrambled']} | {r['seconds_per_week']:.0f} |"
    )


def pooled_markdown(rows: Sequence[dict[str, Any]], candidates: Sequence[str]) -> list[str]:
    """One line per candidate over its windows: means of the window estimates, and the verdict."""
    lines = [
        "| candidate | ungated minus persistence, mean of windows | windows with interval above 0 "
        "| value after fees, mean of windows | windows with interval above 0 | promotions "
        "| scrambled promoted | verdict |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name in candidates:
        mine = [r for r in rows if r["candidate"] == name]
        leaked = sum(r["scrambled"] == "promote" for r in mine)
        f1_up = sum(r["ungated"].lower > 0 for r in mine)
        value_up = sum(r["economic"].lower > 0 for r in mine)
        verdict = (
            "out (a scrambled copy passed the gate)"
            if leaked
            else ("edge in every window" if value_up == len(mine) and f1_up == len(mine) else "no edge shown")
        )
        lines.append(
            f"| {name} | {np.mean([r['ungated'].estimate for r in mine]):+.4f} | {f1_up}/{len(mine)} "
            f"| {np.mean([r['economic'].estimate for r in mine]):+.4f} | {value_up}/{len(mine)} "
            f"| {sum(r['promotions'] for r in mine)}/{sum(r['weeks'] for r in mine)} | {leaked}/{len(mine)} "
            f"| {verdict} |"
        )
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--candidates", nargs="+", default=list(CANDIDATES), choices=list(CANDIDATES))
    parser.add_argument("--windows", nargs="+", default=list(CALENDAR_WINDOWS), choices=CALENDAR_WINDOWS)
    parser.add_argument("--weeks", type=int, default=2)
    parser.add_argument("--trials", type=int, default=2)
    parser.add_argument("--days", type=int, default=180)
    parser.add_argument("--models", nargs="+", default=list(ALL_MODELS), choices=ALL_MODELS)
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    rows = []
    for name in args.candidates:
        for window in args.windows:
            rows.append(run_candidate(name, window, args))
            print(row_markdown(rows[-1]), flush=True)
    body = [
        f"{args.weeks} weekly cutoffs per window (the window's last weeks), {args.trials} trials per model and "
        f"week, {args.days} training days, members {', '.join(args.models)}, the configured gate. "
        "Candidates (dotted settings over the defaults): "
        + "; ".join(f"`{n}` = {CANDIDATES[n] or 'the shipped configuration'}" for n in args.candidates)
        + ".",
        "",
        "Macro-F1 columns: live macro-F1 minus persistence's on the same live rows and the candidate's own "
        f"labels, mean over weeks, {CONFIDENCE:.0%} moving-block bootstrap interval. Value after fees: the "
        "ungated signals held for the label horizon (the gate's economic measure) summed over the live rows, "
        "with its interval. Returns: 1-candle positions after fees, compounded over the live weeks. "
        "Scrambled: the gate's outcome on a direction-scrambled copy of the window (seed 0).",
        "",
        *pooled_markdown(rows, args.candidates),
        "",
        "| candidate | window | ungated minus persistence | gated policy minus persistence "
        "| ungated value after fees | ungated return | policy return | promotions | scrambled | s per week |",
        "|---|---|---|---|---|---|---|---|---|---|",
        *(row_markdown(r) for r in rows),
    ]
    budget = f"{', '.join(args.models)}; {args.trials} trials, {args.weeks} weeks"
    publish(args.out, f"{SECTION} ({budget})", "bench/edge.py", "\n".join(body))


if __name__ == "__main__":
    main()
