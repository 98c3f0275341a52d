"""Local Parquet store of closed candles fetched from an exchange, so a weekly run downloads only what is new.

One file per exchange + symbol + timeframe. The file only ever holds *closed* candles, is replaced
atomically (a reader sees the old file or the new one, never half of one), and is guarded by a file
lock so that two runs never interleave their read-fetch-write. A file that cannot be read or does not
hold a candle table is reported and treated as empty, so the next save rebuilds it.
"""

from __future__ import annotations

import io
import logging
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pandas as pd
import pyarrow as pa
from filelock import FileLock, Timeout

from retrain.data.candles import CANDLE_COLUMNS, VALUE_COLUMNS
from retrain.errors import DataSourceError
from retrain.files import write_atomically

logger = logging.getLogger(__name__)


def empty_candles() -> pd.DataFrame:
    """A candle table with no rows, in the dtypes the cache uses."""
    frame = pd.DataFrame({column: pd.Series(dtype="float64") for column in CANDLE_COLUMNS})
    return frame.astype({"timestamp": "datetime64[us, UTC]"})


def merge_candles(older: pd.DataFrame, newer: pd.DataFrame) -> pd.DataFrame:
    """Union of two candle tables by timestamp, oldest first; on a shared timestamp `newer` wins."""
    frames = [frame for frame in (older, newer) if not frame.empty]
    if not frames:
        return empty_candles()
    merged = pd.concat(frames, ignore_index=True)
    merged = merged.drop_duplicates(subset="timestamp", keep="last")
    return merged.sort_values("timestamp", ignore_index=True)


def _file_name(exchange: str, symbol: str, timeframe: str) -> str:
    safe_symbol = re.sub(r"[^A-Za-z0-9]+", "-", symbol).strip("-")
    return f"{exchange}_{safe_symbol}_{timeframe}.parquet"


class CandleCache:
    """The cached closed candles of one exchange, symbol and timeframe under `directory`."""

    def __init__(
        self, directory: Path, exchange: str, symbol: str, timeframe: str, *, lock_timeout_s: float = 600.0
    ) -> None:
        self.directory = Path(directory)
        self.path = self.directory / _file_name(exchange, symbol, timeframe)
        self.lock_path = self.path.with_name(self.path.name + ".lock")
        self.lock_timeout_s = lock_timeout_s

    @contextmanager
    def locked(self) -> Iterator[None]:
        """Hold the cache's file lock: a second run waits here instead of interleaving writes."""
        self.directory.mkdir(parents=True, exist_ok=True)
        lock = FileLock(self.lock_path, timeout=self.lock_timeout_s)
        try:
            lock.acquire()
        except Timeout as exc:
            raise DataSourceError(
                f"candle cache {self.path} is locked by another run (lock file {self.lock_path}) for more "
                f"than {self.lock_timeout_s:.0f} s; wait for it to finish or remove a stale lock file"
            ) from exc
        try:
            yield
        finally:
            lock.release()

    def load(self, *, last_closed: pd.Timestamp) -> pd.DataFrame:
        """Cached candles up to `last_closed`, oldest first; empty if there is no usable file."""
        if not self.path.exists():
            return empty_candles()
        try:
            frame = pd.read_parquet(self.path)
            candles = self._checked(frame)
        except (OSError, ValueError, TypeError, pa.ArrowException) as exc:
            logger.warning(
                "candle cache %s is unreadable or corrupt (%s); it will be rebuilt", self.path, exc
            )
            return empty_candles()
        return candles[candles["timestamp"] <= last_closed].reset_index(drop=True)

    def save(self, candles: pd.DataFrame, *, last_closed: pd.Timestamp) -> None:
        """Replace the cache atomically with `candles`, dropping any candle after `last_closed`."""
        closed = candles[candles["timestamp"] <= last_closed].sort_values("timestamp", ignore_index=True)
        buffer = io.BytesIO()
        closed[list(CANDLE_COLUMNS)].to_parquet(buffer, index=False)
        write_atomically(self.path, buffer.getvalue(), durable=True)
        logger.debug("candle cache %s saved: %d candles", self.path, len(closed))

    def _checked(self, frame: pd.DataFrame) -> pd.DataFrame:
        """The frame as a candle table, or ValueError naming what makes it not one."""
        missing = [column for column in CANDLE_COLUMNS if column not in frame.columns]
        if missing:
            raise ValueError(f"missing columns {missing}")
        stamps = frame["timestamp"]
        if not isinstance(stamps.dtype, pd.DatetimeTZDtype) or str(stamps.dtype.tz) != "UTC":
            raise ValueError(f"timestamp column has dtype {stamps.dtype}, expected UTC datetimes")
        if stamps.isna().any():
            raise ValueError("timestamp column holds missing values")
        values = frame[list(VALUE_COLUMNS)]
        if not all(pd.api.types.is_float_dtype(dtype) for dtype in values.dtypes):
            raise ValueError(f"value columns have dtypes {dict(values.dtypes)}, expected float64")
        return merge_candles(empty_candles(), frame[list(CANDLE_COLUMNS)])
