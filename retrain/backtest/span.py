"""The candles and the dataset of a whole backtest span, loaded and built once, sliced per week.

Features have no look-ahead, so the span's feature rows before a cutoff are the rows a weekly retrain at
that cutoff would build from its own `data.days` of candles, once the slice drops what that retrain
could not have: rows in its warm-up, and rows whose label (or next-candle return) looks past the cutoff.
What remains differs from a per-week build only by the memory of exponential smoothing, which starts
from older candles here (tests/test_backtest.py measures it).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from retrain.data.candle_cache import CandleCache
from retrain.data.candles import CANDLE_INTERVAL
from retrain.data.csv_source import read_candle_file
from retrain.data.demo import DemoSource
from retrain.data.validation import validate_candles
from retrain.dataset import Dataset, build_dataset
from retrain.errors import BacktestError
from retrain.features import FeatureManager, FeatureParams
from retrain.settings import DataSettings, FeatureSettings, LabelSettings

LIVE_WEEK = pd.Timedelta(days=7)


def _span_raw(
    data: DataSettings, first: pd.Timestamp, last: pd.Timestamp
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """The raw candles from `first` to `last` of the configured source, without any network access."""
    if data.source == "csv":
        if data.csv_path is None:
            raise BacktestError("--source csv needs a candle file (--data PATH or data.csv_path)")
        raw = read_candle_file(Path(data.csv_path))
        description = {"kind": "csv", "path": str(Path(data.csv_path).resolve())}
    elif data.source == "exchange":
        cache = CandleCache(data.cache_dir, data.exchange, data.symbol, data.timeframe)
        if not cache.path.exists():
            raise BacktestError(
                f"no exchange cache at {cache.path}: a backtest replays cached candles and never downloads; "
                "run a retrain with the exchange source first, or use --source csv"
            )
        raw = pd.read_parquet(cache.path)
        description = {"kind": "exchange-cache", "exchange": data.exchange, "symbol": data.symbol}
    else:
        days = int((last - first) / pd.Timedelta(days=1)) + 2
        source = DemoSource(seed=data.demo_seed, end=last + 2 * CANDLE_INTERVAL)
        raw = source.fetch(days)
        description = source.describe()
    stamps = pd.to_datetime(raw["timestamp"], utc=True, errors="coerce", format="ISO8601")
    return raw[(stamps >= first) & (stamps <= last)].reset_index(drop=True), description


@dataclass(frozen=True)
class CandleSpan:
    """Validated candles from the first week's training window to the last live week's end, and the
    dataset built on them once."""

    candles: pd.DataFrame
    dataset: Dataset
    description: dict[str, Any]
    days: int
    max_lookback: int

    @classmethod
    def load(
        cls,
        data: DataSettings,
        labels: LabelSettings,
        start: pd.Timestamp,
        weeks: int,
        features: FeatureSettings | None = None,
    ) -> CandleSpan:
        """The span for `weeks` weekly cutoffs from `start`: `data.days` before the first one, a live week
        (and the last label's horizon) after the last one."""
        first = start - pd.Timedelta(days=data.days)
        last = start + weeks * LIVE_WEEK + labels.horizon * CANDLE_INTERVAL
        raw, description = _span_raw(data, first, last)
        if raw.empty:
            raise BacktestError(
                f"the {data.source} source has no candles between {first:%Y-%m-%d} and {last:%Y-%m-%d}; "
                "choose --start and --weeks inside the data"
            )
        candles, _ = validate_candles(raw, data)
        if candles.index[0] > first or candles.index[-1] < last - CANDLE_INTERVAL:
            raise BacktestError(
                f"the data covers {candles.index[0]:%Y-%m-%d %H:%M} .. {candles.index[-1]:%Y-%m-%d %H:%M} UTC; "
                f"{weeks} week(s) from {start:%Y-%m-%d} with {data.days} training days need "
                f"{first:%Y-%m-%d %H:%M} .. {last:%Y-%m-%d %H:%M}"
            )
        manager = FeatureManager(FeatureParams.from_settings(features) if features else None)
        return cls(
            candles=candles,
            dataset=build_dataset(candles, labels, manager),
            description=description,
            days=data.days,
            max_lookback=manager.max_lookback,
        )

    def training_candles(self, cutoff: pd.Timestamp) -> pd.DataFrame:
        """The raw candle table a weekly retrain at `cutoff` would have fetched: `days` days before it."""
        window = self.candles[
            (self.candles.index >= cutoff - pd.Timedelta(days=self.days)) & (self.candles.index < cutoff)
        ]
        return window.reset_index()

    def training_dataset(self, cutoff: pd.Timestamp, horizon: int) -> Dataset:
        """The dataset of the retrain at `cutoff`: no warm-up row, no label or return past the cutoff."""
        first = cutoff - pd.Timedelta(days=self.days) + self.max_lookback * CANDLE_INTERVAL
        last_labelled = cutoff - (horizon + 1) * CANDLE_INTERVAL
        return self._rows((self.dataset.X.index >= first) & (self.dataset.X.index <= last_labelled))

    def live_rows(self, cutoff: pd.Timestamp) -> Dataset:
        """The week after `cutoff`, as the bot met it; its labels mature within the horizon after it."""
        index = self.dataset.X.index
        return self._rows((index >= cutoff) & (index < cutoff + LIVE_WEEK))

    def history_labels(self, cutoff: pd.Timestamp) -> pd.Series:
        """Every label known by `cutoff`'s week, for the persistence baseline's look-up."""
        return self.dataset.y[self.dataset.y.index < cutoff]

    def _rows(self, mask: Any) -> Dataset:
        d = self.dataset
        return Dataset(
            X=d.X[mask],
            y=d.y[mask],
            next_return=d.next_return[mask],
            feature_names=d.feature_names,
            definition_hash=d.definition_hash,
            horizon=d.horizon,
            threshold=d.threshold,
            labels=d.labels,
            feature_params=d.feature_params,
        )


class SpanSource:
    """A candle source replaying the span up to one cutoff: the retrain's fetch stage validates it as usual."""

    kind = "backtest"
    checks_freshness = False

    def __init__(self, span: CandleSpan, cutoff: pd.Timestamp) -> None:
        self.span = span
        self.cutoff = cutoff

    def fetch(self, days: int) -> pd.DataFrame:
        return self.span.training_candles(self.cutoff)

    def describe(self) -> dict[str, Any]:
        return {**self.span.description, "backtest_cutoff": str(self.cutoff)}
