"""Candles from a CSV or Parquet file: `timestamp,open,high,low,close,volume`.

Timestamps may be ISO-8601 strings or epoch milliseconds. "The last N days" counts back from the
file's last candle, so old recordings (like `../shared/data`) can be replayed. The file is read
without type coercion: validation reports text in a number column instead of this module guessing.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from retrain.data.candles import CANDLE_INTERVAL, CANDLES_PER_DAY, parse_timestamps
from retrain.errors import DataSourceError


def read_candle_file(path: Path) -> pd.DataFrame:
    """Read a candle file as it is (strings for CSV), raising `DataSourceError` if unreadable."""
    if not path.exists():
        raise DataSourceError(f"candle file not found: {path}")
    try:
        if path.suffix.lower() in {".parquet", ".pq"}:
            return pd.read_parquet(path)
        return pd.read_csv(path, dtype=str, keep_default_na=False, na_values=[""])
    except pd.errors.EmptyDataError:
        return pd.DataFrame()
    except (OSError, ValueError) as exc:
        raise DataSourceError(f"cannot read candle file {path}: {exc}") from exc


class CsvSource:
    """Replays a recorded candle file; the window ends at the file's last candle."""

    kind = "csv"
    checks_freshness = False

    def __init__(self, path: Path) -> None:
        self.path = Path(path)

    def fetch(self, days: int) -> pd.DataFrame:
        raw = read_candle_file(self.path)
        if "timestamp" not in raw.columns or raw.empty:
            return raw
        stamps = parse_timestamps(raw["timestamp"])
        if stamps.isna().all():
            return raw
        first_kept = stamps.max() - (days * CANDLES_PER_DAY - 1) * CANDLE_INTERVAL
        return raw[~(stamps < first_kept)].reset_index(drop=True)

    def describe(self) -> dict[str, Any]:
        return {"kind": self.kind, "demo": False, "path": str(self.path.resolve())}
