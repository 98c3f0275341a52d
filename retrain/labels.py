"""BUY/HOLD/SELL labels from what the price does over the next `horizon` candles.

Three definitions (`labels.method`), each looking exactly `horizon` candles ahead, so the purge gap,
the persistence baseline (the label of t - horizon is the newest one known at t) and the horizon-held
trading read-out mean the same for all of them:
- fixed: the close-to-close forward return beyond +-threshold (`make_labels`);
- volatility: the same with threshold = multiple x realised volatility x sqrt(horizon), the volatility
  being the standard deviation of the `volatility_window` one-candle log returns up to and including
  candle t: it uses no candle after t, so only the label itself looks ahead;
- triple_barrier (Lopez de Prado): from the close of t, BUY when a later candle's high goes beyond the
  take-profit barrier before any low goes beyond the stop-loss barrier, SELL the other way round, HOLD
  when neither is touched within `horizon` candles (the time limit). When one candle touches both and
  neither was touched before, the order inside the candle is unknown: the label is HOLD, the
  conservative choice (no direction is taught that the candles cannot establish).

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
from retrain.settings import LabelSettings

CLASSES: tuple[str, ...] = ("SELL", "HOLD", "BUY")
"""Class names; a label's integer code is its position here."""
SELL, HOLD, BUY = 0, 1, 2
CODES: tuple[int, ...] = tuple(range(len(CLASSES)))
"""Class codes (SELL, HOLD, BUY = 0, 1, 2): the column order of every `predict_proba`."""


def _check_horizon(horizon: int) -> None:
    if not isinstance(horizon, int | np.integer) or horizon < 1:
        raise ConfigError(f"label horizon must be a whole number of candles >= 1, got {horizon!r}")


def _forward_window_has_gap(close: pd.Series, horizon: int) -> pd.Series:
    """True where any candle in (t, t + horizon] of the full grid is missing."""
    missing = close.isna().astype(np.int64)
    return missing.rolling(horizon, min_periods=1).sum().shift(-horizon) > 0


def forward_return(candles: pd.DataFrame, horizon: int) -> pd.Series:
    """close[t + horizon] / close[t] - 1 per candle of `candles`; NaN where the window is incomplete."""
    _check_horizon(horizon)
    close = to_full_grid(candles)["close"]
    returns = (close.shift(-horizon) / close - 1.0).mask(_forward_window_has_gap(close, horizon))
    return returns.reindex(candles.index).rename(f"forward_return_{horizon}")


def realised_volatility(candles: pd.DataFrame, window: int) -> pd.Series:
    """Standard deviation of the `window` one-candle log returns ending at each candle (its own included);
    NaN where that window holds a missing candle or reaches before the first one."""
    if not isinstance(window, int | np.integer) or window < 2:
        raise ConfigError(f"volatility window must be a whole number of candles >= 2, got {window!r}")
    close = to_full_grid(candles)["close"]
    volatility = np.log(close).diff().rolling(window).std()
    return volatility.reindex(candles.index).rename(f"volatility_{window}")


def make_labels(candles: pd.DataFrame, horizon: int, threshold: float) -> pd.Series:
    """int8 class codes: BUY above +threshold, SELL below -threshold, else HOLD; unlabelable rows dropped."""
    if not 0 < threshold < 1:
        raise ConfigError(f"label threshold must be a fraction in (0, 1), got {threshold!r}")
    returns = forward_return(candles, horizon).dropna()
    codes = np.full(len(returns), HOLD, dtype=np.int8)
    codes[returns.to_numpy() > threshold] = BUY
    codes[returns.to_numpy() < -threshold] = SELL
    return pd.Series(codes, index=returns.index, name="label")


def _codes(returns: pd.Series, threshold: pd.Series) -> pd.Series:
    """BUY beyond +threshold, SELL beyond -threshold, else HOLD, on the rows where both are known."""
    known = returns.notna() & threshold.notna()
    values, bound = returns[known].to_numpy(), threshold[known].to_numpy()
    codes = np.full(len(values), HOLD, dtype=np.int8)
    codes[values > bound] = BUY
    codes[values < -bound] = SELL
    return pd.Series(codes, index=returns.index[known], name="label")


def volatility_labels(candles: pd.DataFrame, horizon: int, multiple: float, window: int) -> pd.Series:
    """Like `make_labels` with a threshold of `multiple` x realised volatility x sqrt(`horizon`) per row."""
    if not multiple > 0:
        raise ConfigError(f"volatility multiple must be positive, got {multiple!r}")
    threshold = multiple * realised_volatility(candles, window) * np.sqrt(horizon)
    return _codes(forward_return(candles, horizon), threshold)


def triple_barrier_labels(
    candles: pd.DataFrame, horizon: int, upper: pd.Series | float, lower: pd.Series | float
) -> pd.Series:
    """Which barrier the candles after t touch first: BUY for high[t+k] / close[t] - 1 beyond `upper`, SELL
    for low[t+k] / close[t] - 1 beyond -`lower` (both positive fractions, per row or fixed), HOLD at the time
    limit or when one candle touches both first. Rows without `horizon` later candles are dropped."""
    _check_horizon(horizon)
    grid = to_full_grid(candles)
    close = grid["close"]
    up = pd.Series(upper, index=candles.index, dtype=np.float64).reindex(grid.index).to_numpy()
    down = pd.Series(lower, index=candles.index, dtype=np.float64).reindex(grid.index).to_numpy()
    if (up[np.isfinite(up)] <= 0).any() or (down[np.isfinite(down)] <= 0).any():
        raise ConfigError("triple-barrier take-profit and stop-loss must be positive fractions")
    codes = np.full(len(grid), HOLD, dtype=np.int8)
    decided = np.zeros(len(grid), dtype=bool)
    for step in range(1, horizon + 1):
        high = (grid["high"].shift(-step) / close - 1.0).to_numpy()
        low = (grid["low"].shift(-step) / close - 1.0).to_numpy()
        hit_up, hit_down = ~decided & (high > up), ~decided & (low < -down)
        codes[hit_up & ~hit_down] = BUY
        codes[hit_down & ~hit_up] = SELL
        decided |= hit_up | hit_down
    known = ~_forward_window_has_gap(close, horizon).to_numpy() & close.notna().to_numpy()
    known &= close.shift(-horizon).notna().to_numpy()  # the last `horizon` rows have no full window
    known &= np.isfinite(up) & np.isfinite(down)
    labels = pd.Series(codes, index=grid.index, name="label")[known]
    return labels[labels.index.isin(candles.index)]


def label_lookback(settings: LabelSettings) -> int:
    """Candles before a row that its label needs (the volatility window, when the label uses one)."""
    uses_volatility = settings.method == "volatility" or (
        settings.method == "triple_barrier" and settings.barrier_unit == "volatility"
    )
    return settings.volatility_window if uses_volatility else 0


def labels_for(candles: pd.DataFrame, settings: LabelSettings) -> pd.Series:
    """The label codes `settings` define (see the module docstring); unlabelable rows dropped."""
    if settings.method == "fixed":
        return make_labels(candles, settings.horizon, settings.threshold)
    if settings.method == "volatility":
        return volatility_labels(
            candles, settings.horizon, settings.volatility_multiple, settings.volatility_window
        )
    if settings.barrier_unit == "fraction":
        return triple_barrier_labels(candles, settings.horizon, settings.take_profit, settings.stop_loss)
    width = realised_volatility(candles, settings.volatility_window) * np.sqrt(settings.horizon)
    return triple_barrier_labels(
        candles,
        settings.horizon,
        settings.take_profit_multiple * width,
        settings.stop_loss_multiple * width,
    )
