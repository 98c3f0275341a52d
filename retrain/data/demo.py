"""Demo candles generated in code: seeded, and realistic enough to train on.

Log returns follow a GARCH(1,1) with Student-t innovations (volatility clustering, fat tails) plus a
weak short-term momentum term, so that features carry a little signal, as on real markets. Volume
follows an intraday U-shape and rises with the size of the move. Everything made from this source is
marked as demo data (`describe()["demo"] is True`).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from retrain.data.candles import CANDLE_INTERVAL, CANDLES_PER_DAY, last_closed_candle

_START_PRICE = 10_000_000.0  # JPY, the order of BTC/JPY
_GARCH_OMEGA, _GARCH_ALPHA, _GARCH_BETA = 2.0e-7, 0.08, 0.90
_T_DOF = 4.0
_MOMENTUM = 0.06


class DemoSource:
    """Synthetic BTC/JPY-like 15-minute candles ending at the last closed candle before `end`."""

    kind = "demo"
    checks_freshness = False

    def __init__(self, seed: int = 7, end: pd.Timestamp | None = None) -> None:
        self.seed = seed
        self.end = last_closed_candle(end if end is not None else pd.Timestamp.now(tz="UTC"))

    def fetch(self, days: int) -> pd.DataFrame:
        n = days * CANDLES_PER_DAY
        rng = np.random.default_rng(self.seed)
        timestamps = pd.date_range(end=self.end, periods=n, freq=CANDLE_INTERVAL, tz="UTC")
        returns = self._returns(rng, n)
        close = _START_PRICE * np.exp(np.cumsum(returns))
        open_ = np.concatenate(([_START_PRICE], close[:-1]))
        wick = np.abs(rng.standard_t(_T_DOF, size=(2, n))) * np.abs(returns).mean() * 0.8
        high = np.maximum(open_, close) * (1 + wick[0])
        low = np.minimum(open_, close) * (1 - wick[1])
        hour = timestamps.hour.to_numpy() + timestamps.minute.to_numpy() / 60
        intraday = 1.0 + 0.5 * np.cos(2 * np.pi * (hour - 13) / 24)  # busiest around 13:00 UTC
        move = np.abs(returns) / np.abs(returns).mean()
        volume = 12.0 * intraday * (0.5 + move) * rng.lognormal(0.0, 0.35, n)
        return pd.DataFrame(
            {
                "timestamp": timestamps,
                "open": open_,
                "high": high,
                "low": low,
                "close": close,
                "volume": volume,
            }
        )

    @staticmethod
    def _returns(rng: np.random.Generator, n: int) -> np.ndarray:
        shocks = rng.standard_t(_T_DOF, size=n) / np.sqrt(_T_DOF / (_T_DOF - 2))
        returns = np.empty(n)
        variance = _GARCH_OMEGA / (1 - _GARCH_ALPHA - _GARCH_BETA)
        previous = 0.0
        for i in range(n):
            variance = _GARCH_OMEGA + _GARCH_ALPHA * previous**2 + _GARCH_BETA * variance
            returns[i] = _MOMENTUM * previous + np.sqrt(variance) * shocks[i]
            previous = returns[i]
        return returns

    def describe(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "demo": True,
            "seed": self.seed,
            "symbol": "DEMO-BTC/JPY",
            "end": str(self.end),
        }
