"""Class balance of the BUY/HOLD/SELL labels on the shared BTC candles, per label horizon.

Picks the default `labels.horizon`: too short and almost every label is HOLD; too long and labels
overlap and are noisier. The models need enough BUY and SELL rows, and the 14-day holdout needs a
few dozen of each class (`gate.min_class_support`), so the table also shows the minority class's
rows per 14 days, on average and in the worst complete 14-day block of the file.

Run: .venv/bin/python bench/label_balance.py [--data-dir ../shared/data] [--threshold 0.005]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd

from retrain.data.candles import CANDLES_PER_DAY
from retrain.labels import CLASSES, make_labels

FILES = (
    "BTCUSDT_BINANCE_15m_20211101_20220731.csv",
    "BTCUSDT_BINANCE_15m_20220801_20230731.csv",
    "BTCUSDT_BINANCE_15m_20230801_20240731.csv",
    "BTCUSDT_BINANCE_15m_20240801_20250731.csv",
    "BTCUSDT_BYBIT_15m_20241101_20250528.csv",
)
HORIZONS = (1, 4, 16)
HOLDOUT_DAYS = 14
DEFAULT_DATA_DIR = Path(__file__).resolve().parents[2] / "shared" / "data"


def read_candles(path: Path) -> pd.DataFrame:
    frame = pd.read_csv(path)
    frame["timestamp"] = pd.to_datetime(frame["timestamp"], utc=True)
    return frame.set_index("timestamp")


def balance_row(labels: pd.Series) -> dict[str, float]:
    """Class shares, and minority-class rows per 14 days (mean, and worst complete 14-day block)."""
    counts = np.bincount(labels.to_numpy(), minlength=len(CLASSES))
    shares = counts / counts.sum()
    block = (labels.index - labels.index[0]) // pd.Timedelta(days=HOLDOUT_DAYS)
    per_block = pd.crosstab(block, labels.to_numpy()).reindex(columns=range(len(CLASSES)), fill_value=0)
    complete = per_block[per_block.sum(axis=1) >= 0.9 * HOLDOUT_DAYS * CANDLES_PER_DAY]
    return {
        **{f"{name} %": 100 * share for name, share in zip(CLASSES, shares, strict=True)},
        "minority %": 100 * shares.min(),
        "minority rows / 14 d": shares.min() * HOLDOUT_DAYS * CANDLES_PER_DAY,
        "worst 14 d minority rows": float(complete.min(axis=1).min()),
    }


def balance_table(data_dir: Path, threshold: float) -> pd.DataFrame:
    rows = []
    for name in FILES:
        candles = read_candles(data_dir / name)
        for horizon in HORIZONS:
            labels = make_labels(candles, horizon, threshold)
            rows.append({"file": name.removesuffix(".csv"), "horizon": horizon, **balance_row(labels)})
    return pd.DataFrame(rows)


def to_markdown(table: pd.DataFrame) -> str:
    header = "| " + " | ".join(table.columns) + " |"
    rule = "|" + "|".join("---" if c == "file" else "---:" for c in table.columns) + "|"
    lines = [header, rule]
    for row in table.itertuples(index=False):
        cells = [f"{value:.1f}" if isinstance(value, float) else str(value) for value in row]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, default=DEFAULT_DATA_DIR)
    parser.add_argument("--threshold", type=float, default=0.005)
    args = parser.parse_args()
    print(f"threshold +-{args.threshold:.2%}, horizons in 15-minute candles\n")
    print(to_markdown(balance_table(args.data_dir, args.threshold)))


if __name__ == "__main__":
    main()
