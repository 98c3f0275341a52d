"""Demo candles generated in code: seeded, realistic enough to train on, with a known directional edge.

Log returns follow a GARCH(1,1) with Student-t innovations (volatility clustering, fat tails). Volume
follows an intraday U-shape and rises with the size of the move. Everything made from this source is
marked as demo data (`describe()["demo"] is True`).

The planted signal (strength `edge` = `data.demo_edge`, environment RETRAIN_DATA__DEMO_EDGE): after
candle t closes, the *driver* is the volume-weighted mean log return of the last `DRIVER_CANDLES` (4)
candles, in units of the recent volatility (root mean square of the last `VOLATILITY_CANDLES` (16) log
returns), times 2 so that it has about unit spread:

    D_t = 2 * sum(v_s * r_s) / sum(v_s) / rms(r_(t-15) .. r_t),   s = t-3 .. t

Everything in D_t is observable from the candles at the close of t (`planted_driver` computes it from a
candle table). The next candle's return gets a drift *against* the driver, scaled to the current
volatility sigma_(t+1):  r_(t+1) = -edge * sigma_(t+1) * clip(D_t, -2, 2) + sigma_(t+1) * z_(t+1).
The driver rolls with the candles, so a strong volume-weighted move is partly given back over the next
hour (the label horizon's worth of candles): a short-term reversal that a model can learn from its
return, volume and volatility features. A reversal rather than a trend on purpose: a trend would
hand the same edge to the `persistence` baseline (the last known label is the last hour's move), and
the demo should show a model that beats every naive rule. With `edge = 0` the returns are a
martingale difference: the direction of the next move is unpredictable, from anything.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

from retrain.data.candles import CANDLE_INTERVAL, CANDLES_PER_DAY, last_closed_candle
from retrain.errors import InvalidInputError

_START_PRICE = 10_000_000.0  # JPY, the order of BTC/JPY
_GARCH_OMEGA, _GARCH_ALPHA, _GARCH_BETA = 2.0e-7, 0.08, 0.90
_T_DOF = 4.0
_UNCONDITIONAL_SD = math.sqrt(_GARCH_OMEGA / (1 - _GARCH_ALPHA - _GARCH_BETA))
_MEAN_ABS_RETURN = _UNCONDITIONAL_SD / math.sqrt(2.0)  # E|t_4| = 1, and t_4 has variance 2
DRIVER_CANDLES = 4
VOLATILITY_CANDLES = 16
DRIVER_CLIP = 2.0
DEFAULT_EDGE = 0.4


class DemoSource:
    """Synthetic BTC/JPY-like 15-minute candles ending at the last closed candle before `end`."""

    kind = "demo"
    checks_freshness = False

    def __init__(self, seed: int = 7, end: pd.Timestamp | None = None, edge: float = DEFAULT_EDGE) -> None:
        if not 0.0 <= edge <= 1.0:
            raise InvalidInputError(
                f"the demo edge must be in [0, 1] (0 = no directional signal); got {edge}"
            )
        self.seed = seed
        self.edge = edge
        self.end = last_closed_candle(end if end is not None else pd.Timestamp.now(tz="UTC"))

    def fetch(self, days: int) -> pd.DataFrame:
        n = days * CANDLES_PER_DAY
        rng = np.random.default_rng(self.seed)
        timestamps = pd.date_range(end=self.end, periods=n, freq=CANDLE_INTERVAL, tz="UTC")
        hour = timestamps.hour.to_numpy() + timestamps.minute.to_numpy() / 60
        intraday = 1.0 + 0.5 * np.cos(2 * np.pi * (hour - 13) / 24)  # busiest around 13:00 UTC
        shocks = rng.standard_t(_T_DOF, size=n) / np.sqrt(_T_DOF / (_T_DOF - 2))
        volume_noise = rng.lognormal(0.0, 0.35, n)
        returns, volume = self._returns_and_volume(shocks, 12.0 * intraday * volume_noise)
        close = _START_PRICE * np.exp(np.cumsum(returns))
        open_ = np.concatenate(([_START_PRICE], close[:-1]))
        wick = np.abs(rng.standard_t(_T_DOF, size=(2, n))) * np.abs(returns).mean() * 0.8
        high = np.maximum(open_, close) * (1 + wick[0])
        low = np.minimum(open_, close) * (1 - wick[1])
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

    def _returns_and_volume(
        self, shocks: np.ndarray, base_volume: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """GARCH returns with the planted drift, and each candle's volume (which the driver weighs by)."""
        n = len(shocks)
        returns, volume = np.zeros(n), np.zeros(n)
        variance = _UNCONDITIONAL_SD**2
        previous = 0.0
        for i in range(n):
            variance = _GARCH_OMEGA + _GARCH_ALPHA * previous**2 + _GARCH_BETA * variance
            sigma = math.sqrt(variance)
            drift = 0.0
            if self.edge and i >= VOLATILITY_CANDLES:
                driver = _driver(returns[i - VOLATILITY_CANDLES : i], volume[i - DRIVER_CANDLES : i])
                drift = -self.edge * sigma * min(max(driver, -DRIVER_CLIP), DRIVER_CLIP)
            noise = sigma * shocks[i]
            returns[i] = drift + noise
            volume[i] = base_volume[i] * (0.5 + abs(returns[i]) / _MEAN_ABS_RETURN)
            previous = noise
        return returns, volume

    def describe(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "demo": True,
            "seed": self.seed,
            "edge": self.edge,
            "symbol": "DEMO-BTC/JPY",
            "end": str(self.end),
        }


def _driver(recent_returns: np.ndarray, recent_volume: np.ndarray) -> float:
    """D_t from the last VOLATILITY_CANDLES returns and the last DRIVER_CANDLES volumes (module docstring)."""
    rms = math.sqrt(float(np.mean(recent_returns**2)))
    weights = float(recent_volume.sum())
    if rms == 0.0 or weights == 0.0:
        return 0.0
    weighted = float(np.dot(recent_returns[-DRIVER_CANDLES:], recent_volume)) / weights
    return 2.0 * weighted / rms


def planted_driver(candles: pd.DataFrame) -> pd.Series:
    """The driver D_t of every candle, computed from its close and volume as an observer could (NaN for
    the first candles, whose windows are incomplete); the next candle drifts against its sign."""
    log_return = np.log(candles["close"]).diff()
    volume = candles["volume"]
    weighted = (log_return * volume).rolling(DRIVER_CANDLES).sum() / volume.rolling(DRIVER_CANDLES).sum()
    rms = np.sqrt((log_return**2).rolling(VOLATILITY_CANDLES).mean())
    return (2.0 * weighted / rms).rename("demo_driver")
