"""Class balance of each label method (`labels.method`) on the four Binance BTC calendar windows.

Chooses the default parameters of the volatility-scaled and triple-barrier labels: for each, the value on
a grid whose pooled HOLD share over the four windows is closest to today's fixed +-0.5% labels, so a
candidate changes *which* rows are BUY/SELL, not how many (measured on the labels alone, never on a
model's results). `--scan` prints the grid, the default run prints the per-window balance.

Run: .venv/bin/python bench/label_methods.py [--data-dir ../shared/data] [--scan]
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from retrain.labels import CLASSES, labels_for
from retrain.settings import LabelSettings

FILES = (
    "BTCUSDT_BINANCE_15m_20211101_20220731.csv",
    "BTCUSDT_BINANCE_15m_20220801_20230731.csv",
    "BTCUSDT_BINANCE_15m_20230801_20240731.csv",
    "BTCUSDT_BINANCE_15m_20240801_20250731.csv",
)
DEFAULT_DATA_DIR = Path(__file__).resolve().parents[2] / "shared" / "data"
METHODS: dict[str, dict[str, Any]] = {
    "fixed": {"method": "fixed"},
    "volatility": {"method": "volatility"},
    "triple_barrier": {"method": "triple_barrier"},
    "triple_barrier_vol": {"method": "triple_barrier", "barrier_unit": "volatility"},
}
GRID: dict[str, tuple[str, tuple[float, ...]]] = {
    "volatility": ("volatility_multiple", (0.8, 0.9, 1.0, 1.1, 1.2, 1.3, 1.4, 1.5)),
    "triple_barrier": ("take_profit stop_loss", (0.005, 0.006, 0.007, 0.0075, 0.008, 0.009, 0.01)),
    "triple_barrier_vol": (
        "take_profit_multiple stop_loss_multiple",
        (1.0, 1.2, 1.4, 1.5, 1.6, 1.8, 2.0),
    ),
}


def read_candles(path: Path) -> pd.DataFrame:
    frame = pd.read_csv(path)
    frame["timestamp"] = pd.to_datetime(frame["timestamp"], utc=True)
    return frame.set_index("timestamp")


def counts(labels: pd.Series) -> np.ndarray:
    return np.bincount(labels.to_numpy(), minlength=len(CLASSES))


def balance(windows: dict[str, pd.DataFrame], settings: LabelSettings) -> dict[str, np.ndarray]:
    return {name: counts(labels_for(candles, settings)) for name, candles in windows.items()}


def shares(row: np.ndarray) -> str:
    return " / ".join(f"{100 * c / row.sum():.1f}" for c in row)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, default=DEFAULT_DATA_DIR)
    parser.add_argument("--scan", action="store_true", help="print the grid the defaults were chosen from")
    args = parser.parse_args()
    windows = {f"W{i + 1}": read_candles(args.data_dir / name) for i, name in enumerate(FILES)}
    print(f"shares in % ({' / '.join(CLASSES)}), horizon 4 candles\n")
    if args.scan:
        target = sum(balance(windows, LabelSettings()).values())
        print(f"target (fixed +-0.5%, pooled): {shares(target)}\n")
        print("| method | parameter | value | pooled | HOLD gap (points) |\n|---|---|---:|---|---:|")
        for method, (keys, values) in GRID.items():
            for value in values:
                settings = LabelSettings(**METHODS[method], **dict.fromkeys(keys.split(), value))
                pooled = sum(balance(windows, settings).values())
                gap = 100 * (pooled[1] / pooled.sum() - target[1] / target.sum())
                print(f"| {method} | {keys} | {value:g} | {shares(pooled)} | {gap:+.1f} |")
        return
    print("| method | " + " | ".join(windows) + " | pooled |\n|---|" + "---|" * (len(windows) + 1))
    for method, fields in METHODS.items():
        per_window = balance(windows, LabelSettings(**fields))
        cells = [shares(row) for row in per_window.values()] + [shares(sum(per_window.values()))]
        print(f"| {method} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
