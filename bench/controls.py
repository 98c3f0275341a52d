"""Controls the gate must refuse, and the demo it must pass: what `retrain run` decides on them.

- Direction-scrambled copies of real candles (`retrain.data.scramble`, one per seed): every candle's
  move flipped at random, so volatility, ranges and volume stay real and direction is noise. Target:
  0 promotions, every seed, every file.
- The demo source at `data.demo_edge: 0` (no directional signal: must not promote) and at the default
  edge (a planted, learnable reversal: the README's demo promotes).

Each run is the whole retrain into an empty store (the decision a first `retrain run` takes; nothing
is promoted, `dry_run`), with a reduced budget (`--trials`).

Run: .venv/bin/python bench/controls.py [--files W3 W4] [--seeds 5] [--trials 5] [--days 180]
"""

from __future__ import annotations

import argparse
import logging
import tempfile
import time
from pathlib import Path
from typing import Any

from bench_report import publish
from measured_run import DATA_DIR
from pruner_replay import WINDOWS

from retrain.data.scramble import scramble_file
from retrain.gate import ECONOMIC_CHECK, GateCheck
from retrain.pipeline import run_pipeline
from retrain.run_dir import RunDir
from retrain.settings import load_settings

OUT = Path(__file__).resolve().parents[1] / "RESULTS.md"


def _check(checks: list[GateCheck], name: str) -> str:
    for check in checks:
        if check.name == name:
            interval = f" [{check.lower:+.3f}, {check.upper:+.3f}]" if check.lower is not None else ""
            return f"{check.value:+.3f}{interval} {check.verdict}"
    return "n/a"


def decide(overrides: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """One dry-run retrain into a fresh store; the gate's outcome and its two telling checks."""
    with tempfile.TemporaryDirectory(prefix="retrain-control-") as models_dir:
        settings = load_settings(**overrides, paths={"models_dir": models_dir})
        started = time.perf_counter()
        outcome = run_pipeline(settings, dry_run=True)
        checks = RunDir(Path(outcome.run_dir)).read_decision().checks
    return {
        "outcome": outcome.outcome,
        "macro_f1": outcome.macro_f1,
        "persistence": _check(checks, "margin_over_persistence"),
        "economic": _check(checks, ECONOMIC_CHECK),
        "seconds": time.perf_counter() - started,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", nargs="+", default=["W3", "W4"], choices=sorted(WINDOWS))
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--trials", type=int, default=5)
    parser.add_argument("--days", type=int, default=180)
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    budget = {"tuning": {"n_trials": args.trials}}
    rows = []
    with tempfile.TemporaryDirectory(prefix="retrain-scrambled-") as scratch:
        for window in args.files:
            for seed in range(args.seeds):
                scrambled = scramble_file(
                    DATA_DIR / WINDOWS[window], Path(scratch) / f"{window}-{seed}.csv", seed
                )
                data = {"source": "csv", "csv_path": str(scrambled), "days": args.days}
                rows.append(
                    {"control": f"{window} scrambled, seed {seed}", **decide({**budget, "data": data})}
                )
                print(rows[-1], flush=True)
    for edge in (0.0, None):
        data = {"source": "demo", "days": args.days} | ({"demo_edge": edge} if edge is not None else {})
        label = f"demo, demo_edge {edge}" if edge is not None else "demo, default demo_edge"
        rows.append({"control": label, **decide({**budget, "data": data})})
        print(rows[-1], flush=True)
    scrambled_promoted = sum(row["outcome"] == "promote" for row in rows if "scrambled" in row["control"])
    lines = [
        f"{args.trials} trials per model, the last {args.days} days of each file, the default gate. "
        f"Scrambled copies promoted: **{scrambled_promoted} of {args.seeds * len(args.files)}** (target 0).",
        "",
        "| control | outcome | ensemble macro-F1 | minus persistence [90% interval] | value after fees "
        "[interval] | wall s |",
        "|---|---|---|---|---|---|",
    ]
    lines += [
        f"| {r['control']} | {r['outcome']} | {r['macro_f1']:.4f} | {r['persistence']} | {r['economic']} "
        f"| {r['seconds']:.0f} |"
        for r in rows
    ]
    publish(
        args.out, "Controls: direction-scrambled candles and the demo", "bench/controls.py", "\n".join(lines)
    )


if __name__ == "__main__":
    main()
