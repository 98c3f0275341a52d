"""The candle table every source returns, and the interface sources implement.

A *raw* candle table has the columns `CANDLE_COLUMNS` (timestamp first) in any dtype: validation
(`retrain.data.validation`) checks and converts it. A *validated* table has a UTC `DatetimeIndex`
named `timestamp` on the 15-minute grid and float64 columns `PRICE_COLUMNS + ("volume",)`.
"""

from __future__ import annotations

from typing import Any, Protocol

import numpy as np
import pandas as pd

from retrain.errors import CandleValidationError

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


def parse_timestamps(values: pd.Series) -> pd.Series:
    """ISO-8601 strings, epoch milliseconds or typed datetimes -> UTC timestamps; bad values become NaT."""
    if pd.api.types.is_datetime64_any_dtype(values):
        return values.dt.tz_localize("UTC") if values.dt.tz is None else values.dt.tz_convert("UTC")
    numeric = pd.to_numeric(values, errors="coerce")
    if len(values) and numeric.notna().all():
        return pd.to_datetime(numeric, unit="ms", utc=True, errors="coerce")
    return pd.to_datetime(values, utc=True, errors="coerce", format="ISO8601")


def to_full_grid(candles: pd.DataFrame) -> pd.DataFrame:
    """Check a validated candle table and reindex it to every 15-minute slot from first to last.

    Missing candles become all-NaN rows, so positional shifts and windows mean *time*, not rows.
    """
    index = candles.index
    if not isinstance(index, pd.DatetimeIndex) or index.tz is None or str(index.tz) != "UTC":
        raise CandleValidationError(
            f"expected a validated candle table indexed by UTC timestamps, got index {index.dtype}; "
            "validate the candles first (retrain.data.validation) or set_index('timestamp')"
        )
    missing = [column for column in VALUE_COLUMNS if column not in candles.columns]
    if missing:
        raise CandleValidationError(f"candle table lacks columns {missing}; expected {list(VALUE_COLUMNS)}")
    if not (index.is_monotonic_increasing and index.is_unique):
        raise CandleValidationError("candle timestamps must be sorted and unique; validate the candles first")
    off_grid = index[index != index.floor(CANDLE_INTERVAL)]
    if len(off_grid):
        raise CandleValidationError(f"candle at {off_grid[0]} is not on the 15-minute grid")
    values = candles[list(VALUE_COLUMNS)].to_numpy(dtype=np.float64)
    bad_rows = ~np.isfinite(values).all(axis=1)
    if bad_rows.any():
        raise CandleValidationError(f"candle at {index[bad_rows.argmax()]} holds a NaN or infinite value")
    if len(index) == 0:
        return candles[list(VALUE_COLUMNS)].astype(np.float64)
    grid = pd.date_range(index[0], index[-1], freq=CANDLE_INTERVAL, unit=index.unit, name="timestamp")
    return candles[list(VALUE_COLUMNS)].astype(np.float64).reindex(grid)
