"""The candle table every source returns, and the interface sources implement.

A *raw* candle table has the columns `CANDLE_COLUMNS` (timestamp first) in any dtype: validation
(`retrain.data.validation`) checks and converts it. A *validated* table has a UTC `DatetimeIndex`
named `timestamp` on the 15-minute grid and float64 columns `PRICE_COLUMNS + ("volume",)`.
"""

from __future__ import annotations

from typing import Any, Protocol

import pandas as pd

CANDLE_COLUMNS: tuple[str, ...] = ("timestamp", "open", "high", "low", "close", "volume")
PRICE_COLUMNS: tuple[str, ...] = ("open", "high", "low", "close")
VALUE_COLUMNS: tuple[str, ...] = (*PRICE_COLUMNS, "volume")
CANDLE_INTERVAL = pd.Timedelta(minutes=15)
CANDLES_PER_DAY = int(pd.Timedelta(days=1) / CANDLE_INTERVAL)


class CandleSource(Protocol):
    """Something that returns the last `days` days of closed 15-minute candles (raw table)."""

    kind: str
    """'exchange', 'csv' or 'demo'."""
    checks_freshness: bool
    """True when the last candle must be recent (a live exchange), so validation checks staleness."""

    def fetch(self, days: int) -> pd.DataFrame:
        """Return a raw candle table covering the last `days` days, oldest first."""
        ...

    def describe(self) -> dict[str, Any]:
        """What the data came from, for metadata and reports (JSON-serialisable)."""
        ...


def last_closed_candle(now: pd.Timestamp) -> pd.Timestamp:
    """Open time of the most recent candle that has closed at `now` (UTC)."""
    return now.tz_convert("UTC").floor(CANDLE_INTERVAL) - CANDLE_INTERVAL
