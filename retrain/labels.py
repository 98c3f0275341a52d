"""BUY/HOLD/SELL labels from the forward return over a fixed number of candles.

The class encoding is fixed and public: a model's predicted code `c` means `CLASSES[c]`, in training,
in evaluation and in the live bot. Never reorder `CLASSES`.

Forward returns use the *time* grid: the return at `t` is close[t + horizon candles] / close[t] - 1,
and it is NaN when any candle in (t, t + horizon] is missing, so a halt never passes off a longer
move as a `horizon`-candle move. Rows without a forward return (the last `horizon` candles, and the
ones whose window crosses a gap) get no label at all: they are dropped, never labelled HOLD.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from retrain.data.candles import to_full_grid
from retrain.errors import ConfigError

CLASSES: tuple[str, ...] = ("SELL", "HOLD", "BUY")
"""Class names; a label's integer code is its position here."""
SELL, HOLD, BUY = 0, 1, 2
CODES: tuple[int, ...] = tuple(range(len(CLASSES)))
"""Class codes (SELL, HOLD, BUY = 0, 1, 2): the column order of every `predict_proba`."""


def forward_return(candles: pd.DataFrame, horizon: int) -> pd.Series:
    """close[t + horizon] / close[t] - 1 per candle of `candles`; NaN where the window is incomplete."""
    if not isinstance(horizon, int | np.integer) or horizon < 1:
        raise ConfigError(f"label horizon must be a whole number of candles >= 1, got {horizon!r}")
    close = to_full_grid(candles)["close"]
    missing = close.isna().astype(np.int64)
    window_has_gap = missing.rolling(horizon, min_periods=1).sum().shift(-horizon) > 0
    returns = (close.shift(-horizon) / close - 1.0).mask(window_has_gap)
    return returns.reindex(candles.index).rename(f"forward_return_{horizon}")


def make_labels(candles: pd.DataFrame, horizon: int, threshold: float) -> pd.Series:
    """int8 class codes: BUY above +threshold, SELL below -threshold, else HOLD; unlabelable rows dropped."""
    if not 0 < threshold < 1:
        raise ConfigError(f"label threshold must be a fraction in (0, 1), got {threshold!r}")
    returns = forward_return(candles, horizon).dropna()
    codes = np.full(len(returns), HOLD, dtype=np.int8)
    codes[returns.to_numpy() > threshold] = BUY
    codes[returns.to_numpy() < -threshold] = SELL
    return pd.Series(codes, index=returns.index, name="label")
