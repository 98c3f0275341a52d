"""A control the gate must refuse: real candles whose every move has a random direction.

`scramble_directions` flips each candle's move as a whole, with probability 1/2 (seeded): in log terms
relative to the candle's open, its body (open -> close), its high and low, and its gap from the previous
close. A flipped candle is the mirror image of the real one: the body and the gap change sign, and the
high and the low swap (high' = open' * open / low, low' = open' * open / high). The price path is then
rebuilt from the first open, each open from the previous rebuilt close and the gap.

What stays real: the size of every move (|body|, |gap|), every candle's range high/low, the volatility
clustering they make, the volume and the timestamps (gaps in the candles included). What becomes noise:
the direction, so no model can predict which way the next move goes. A model that scores well here has
learned *when* prices move, not *which way*, which is worth nothing to a bot that trades direction.

Command line: `python -m retrain.data.scramble IN OUT --seed N` reads a candle file (CSV or Parquet,
`timestamp,open,high,low,close,volume`) and writes the scrambled copy as CSV.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

import numpy as np
import pandas as pd

from retrain.data.candles import PRICE_COLUMNS
from retrain.data.csv_source import parse_timestamps, read_candle_file
from retrain.errors import InvalidInputError, RetrainError

logger = logging.getLogger(__name__)


def scramble_directions(candles: pd.DataFrame, seed: int) -> pd.DataFrame:
    """A copy of `candles` (in time order, positive prices) with each candle's direction flipped at
    random; the other columns (timestamp, volume) are kept as they are."""
    prices = _prices(candles)
    log_open, log_high, log_low, log_close = (np.log(prices[:, i]) for i in range(4))
    body = log_close - log_open
    up, down = log_high - log_open, log_low - log_open  # up >= max(0, body), down <= min(0, body)
    gap = np.concatenate(([0.0], log_open[1:] - log_close[:-1]))
    flip = np.random.default_rng(seed).random(len(candles)) < 0.5
    sign = np.where(flip, -1.0, 1.0)
    new_up, new_down = np.where(flip, -down, up), np.where(flip, -up, down)
    # open'_i = open_0 + sum of (gap' + body') before i, + gap'_i
    steps = sign * gap + np.concatenate(([0.0], sign[:-1] * body[:-1]))
    new_open = log_open[0] + np.cumsum(steps)
    scrambled = candles.copy()
    scrambled["open"] = np.exp(new_open)
    scrambled["high"] = np.exp(new_open + new_up)
    scrambled["low"] = np.exp(new_open + new_down)
    scrambled["close"] = np.exp(new_open + sign * body)
    return scrambled


def _prices(candles: pd.DataFrame) -> np.ndarray:
    missing = [column for column in PRICE_COLUMNS if column not in candles.columns]
    if missing or candles.empty:
        raise InvalidInputError(f"candles need the columns {list(PRICE_COLUMNS)} and rows; missing {missing}")
    try:
        prices = candles[list(PRICE_COLUMNS)].apply(pd.to_numeric).to_numpy(dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise InvalidInputError(f"candle prices must be numbers: {exc}") from exc
    bad = ~(np.isfinite(prices).all(axis=1) & (prices > 0).all(axis=1))
    if bad.any():
        raise InvalidInputError(
            f"{int(bad.sum())} candle(s) have a missing, infinite or non-positive price, the first at row "
            f"{int(np.flatnonzero(bad)[0])}; validate the file (`retrain data check`) first"
        )
    return prices


def scramble_file(source: Path, target: Path, seed: int) -> Path:
    """Read a candle file, scramble it (in timestamp order) and write it as CSV at `target`."""
    raw = read_candle_file(source)
    if "timestamp" not in raw.columns:
        raise InvalidInputError(f"{source} has no 'timestamp' column")
    stamps = parse_timestamps(raw["timestamp"])
    if stamps.isna().any() or not stamps.is_monotonic_increasing:
        raise InvalidInputError(f"{source}: timestamps must be valid and in increasing order")
    scrambled = scramble_directions(raw, seed)
    target.parent.mkdir(parents=True, exist_ok=True)
    scrambled.to_csv(target, index=False)
    logger.info("wrote %d direction-scrambled candles (seed %d) to %s", len(scrambled), seed, target)
    return target


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m retrain.data.scramble",
        description="Write a copy of a candle file with every candle's direction flipped at random.",
    )
    parser.add_argument("source", type=Path, help="candle file (CSV or Parquet)")
    parser.add_argument("target", type=Path, help="CSV file to write")
    parser.add_argument("--seed", type=int, default=0, help="random seed of the flips (default 0)")
    args = parser.parse_args(argv)
    try:
        scramble_file(args.source, args.target, args.seed)
    except RetrainError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(args.target)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
