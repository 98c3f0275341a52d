"""Measure the continuity figures behind `data.continuity` on every shared candle file (and demo data).

For each file: the worst open gap between adjacent candles (|open / previous close - 1|), the largest
open gap after missing candles (not checked, shown for reference), the worst close-to-close move in
rolling MADs, and the lowest rolling MAD; then the margin of the configured thresholds over the worst.
Run: `.venv/bin/python bench/continuity.py` (about 10 s).
"""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd

from retrain.data.csv_source import read_candle_file
from retrain.data.demo import DemoSource
from retrain.data.validation import continuity_measures, validate_candles
from retrain.settings import ContinuityPolicy, DataSettings, load_settings

SHARED_DATA = Path(__file__).resolve().parent.parent.parent / "shared" / "data"
DEMO_SEEDS = range(1, 11)
DEMO_DAYS = 365
UNBOUNDED = ContinuityPolicy(max_open_gap=math.inf, max_move_mads=math.inf)


def measure(name: str, raw: pd.DataFrame, policy: ContinuityPolicy) -> dict[str, object]:
    table, _ = validate_candles(raw, DataSettings(continuity=UNBOUNDED))
    measures = continuity_measures(table, policy)
    adjacent = measures[measures["steps"] == 1]
    open_gaps = (table["open"] / table["close"].shift(1) - 1).abs().iloc[1:]
    after_gaps = open_gaps[(measures["steps"] > 1).to_numpy()]
    return {
        "file": name,
        "worst open gap": f"{adjacent['open_gap'].max():.3%}",
        "at": _iso(adjacent["open_gap"].idxmax()),
        "open gap after missing candles": ", ".join(f"{g:.3%}" for g in after_gaps) or "-",
        "worst move (MADs)": f"{measures['move_mads'].max():.1f}",
        "move at": _iso(measures["move_mads"].idxmax()),
        "lowest MAD": f"{measures['mad'].min():.2e}",
    }


def _iso(ts: pd.Timestamp) -> str:
    return ts.strftime("%Y-%m-%d %H:%M")


def main() -> None:
    policy = load_settings().data.continuity
    rows = [measure(path.name, read_candle_file(path), policy) for path in sorted(SHARED_DATA.glob("*.csv"))]
    demo_end = pd.Timestamp("2025-01-01T00:00:00Z")
    rows += [
        measure(
            f"demo seed {seed}, {DEMO_DAYS} d", DemoSource(seed=seed, end=demo_end).fetch(DEMO_DAYS), policy
        )
        for seed in DEMO_SEEDS
    ]
    table = pd.DataFrame(rows)
    print(table.to_string(index=False))
    real = table[~table["file"].str.startswith("demo")]
    worst_gap = max(float(v.rstrip("%")) / 100 for v in real["worst open gap"])
    worst_mads = max(float(v) for v in table["worst move (MADs)"])
    print(
        f"\nmax_open_gap {policy.max_open_gap:.2%}: {policy.max_open_gap / worst_gap:.1f}x the worst real open "
        f"gap ({worst_gap:.3%})\nmax_move_mads {policy.max_move_mads:g}: {policy.max_move_mads / worst_mads:.1f}x "
        f"the worst move ({worst_mads:.1f} MADs, window {policy.mad_window}, floor {policy.min_mad:g})"
    )


if __name__ == "__main__":
    main()
