"""A trading read-out of BUY/HOLD/SELL signals: what following them naively would have earned.

macro-F1 says how often the model is right; it does not say whether being right pays after fees. This
read-out runs the simplest strategy that trusts the signals, so a model that trades too often, or is
right only on small moves, shows it. It is a sanity check, not a backtest of the live bot.

The strategy, precisely (candle t = 0 .. n-1, fee rate f):
- position p_t = +1 on BUY, -1 on SELL, 0 on HOLD, taken at the close of candle t and held over the
  next candle, whose simple return is R_t (`next_return[t]`); p_-1 = 0 and the position is closed to
  flat after the last candle.
- a change of position costs f per unit changed, as a multiplicative factor (1 - f) ** |p_t - p_-1|:
  an entry or an exit costs one unit, a flip from long to short costs two (an exit and an entry).
- equity starts at 1 and after candle t is
  E_t = E_(t-1) * (1 - f) ** |p_t - p_(t-1)| * (1 + p_t * R_t); the final exit fee (1 - f) ** |p_(n-1)|
  is applied to the last point, so `equity_curve[-1] == 1 + total_return`. A short is re-sized to one
  unit of equity every candle (its per-candle return is -R_t), which keeps long and short symmetric.
- a trade is a maximal run of candles with the same non-zero position; its return is
  (1 - f) * prod(1 + p * R_s over the run) * (1 - f) - 1 (entry and exit fee), so the product of
  (1 + trade return) over all trades equals the final equity.
- hit rate = share of trades with a return > 0 (None without trades); exposure = share of candles
  with a non-zero position; max drawdown = the largest fall of equity from its running peak
  (the start counts as a peak), as a positive fraction.

`horizon_pnl` is the economic measure the promotion gate uses: the value of the signals after fees
when each one is traded the way a `horizon`-candle label means it, against standing aside (0). It is
additive over rows, so its rows can be block-bootstrapped (`retrain.bootstrap`). Precisely, with
signals p_t in {-1, 0, +1} (SELL, HOLD, BUY), horizon h and fee rate f:
- every signal opens a tranche of 1/h of the capital at the close of candle t, long for BUY, short for
  SELL (HOLD opens nothing), held over the next h candles t+1 .. t+h and closed at the close of t+h;
- overlapping signals stack: the net position held over candle t+1 is
  P_t = (p_t + p_(t-1) + ... + p_(t-h+1)) / h, so h BUYs in a row hold the whole capital long, and a
  BUY and a SELL within h candles cancel; the bot trades that one net position;
- fees: f per unit of the net position changed, P_t - P_(t-1) = (p_t - p_(t-h)) / h: opening a tranche
  costs f/h, closing it f/h, a flip of a tranche 2f/h, and a tranche rolled into a new signal of the
  same direction costs nothing (no trade is needed);
- row t earns P_t * R_t - f * |P_t - P_(t-1)|, with R_t = `next_return[t]`, the return of candle t+1:
  simple returns on a fixed notional, not compounded, so the rows sum to the strategy's total;
- a run of consecutive candles ends at a gap in the rows (`new_run`) or at the last row: every tranche
  still open is closed there (fee f * |P_t| on that row), and the next run starts flat. Tranches
  opened in the last h - 1 rows of a run are therefore held for fewer than h candles.
Standing aside (always HOLD) earns 0 on every row. Simple, not compounded, returns keep each row's
contribution independent of the rows before it; over a holdout's few percent the two differ little.
The gate judges the signals the model's `predict` gives, which is what the bot acts on: the argmax, or
HOLD below a confidence threshold chosen on out-of-fold rows (`signals.confidence_threshold`).
"""

from __future__ import annotations

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from retrain.errors import InvalidInputError
from retrain.labels import BUY, CLASSES, HOLD, SELL

_POSITION_BY_CODE = np.zeros(len(CLASSES), dtype=np.int64)
_POSITION_BY_CODE[[SELL, HOLD, BUY]] = [-1, 0, 1]


class TradingSummary(BaseModel):
    """The read-out's numbers, without the equity curve (small enough for metadata and reports)."""

    model_config = ConfigDict(frozen=True)

    total_return: float = Field(description="compounded return of the strategy, net of fees")
    hit_rate: float | None = Field(description="share of trades with a positive return; None without trades")
    n_trades: int = Field(description="maximal runs of the same non-zero position")
    max_drawdown: float = Field(description="largest fall of equity from its running peak, as a fraction")
    exposure: float = Field(description="share of candles with a non-zero position")
    fee_rate: float
    n_candles: int


class TradingReadout(TradingSummary):
    """The read-out with its equity curve (one point per candle), for plots."""

    equity_curve: list[float]

    def summary(self) -> TradingSummary:
        return TradingSummary(**self.model_dump(exclude={"equity_curve"}))


def trading_readout(signals: np.ndarray, next_return: np.ndarray, fee_rate: float) -> TradingReadout:
    """Follow `signals` (class codes SELL=0, HOLD=1, BUY=2) over `next_return`; see the module docstring."""
    signals = np.asarray(signals)
    next_return = np.asarray(next_return, dtype=np.float64)
    _check_inputs(signals, next_return, fee_rate)
    position = _POSITION_BY_CODE[signals]
    units_traded = np.abs(np.diff(position, prepend=0))
    growth = (1.0 - fee_rate) ** units_traded * (1.0 + position * next_return)
    equity = np.cumprod(growth)
    equity[-1] *= (1.0 - fee_rate) ** abs(position[-1])
    trade_returns = _trade_returns(position, next_return, fee_rate)
    return TradingReadout(
        total_return=float(equity[-1] - 1.0),
        hit_rate=float(np.mean(trade_returns > 0)) if len(trade_returns) else None,
        n_trades=len(trade_returns),
        max_drawdown=_max_drawdown(equity),
        exposure=float(np.mean(position != 0)),
        fee_rate=fee_rate,
        n_candles=len(position),
        equity_curve=equity.tolist(),
    )


def horizon_pnl(
    signals: np.ndarray,
    next_return: np.ndarray,
    horizon: int,
    fee_rate: float,
    new_run: np.ndarray | None = None,
) -> np.ndarray:
    """Per-row profit and loss, after fees, of trading each signal for `horizon` candles (see the module
    docstring); `new_run[t]` is True where row t does not directly follow row t-1 (a gap in the candles).
    """
    signals = np.asarray(signals)
    next_return = np.asarray(next_return, dtype=np.float64)
    _check_inputs(signals, next_return, fee_rate)
    if not isinstance(horizon, int | np.integer) or horizon < 1:
        raise InvalidInputError(f"horizon must be a whole number of candles >= 1; got {horizon!r}")
    n = len(signals)
    starts_run = np.zeros(n, dtype=bool) if new_run is None else np.asarray(new_run, dtype=bool)
    if starts_run.shape != (n,):
        raise InvalidInputError(f"new_run must have one flag per row ({n}); got shape {starts_run.shape}")
    starts_run = starts_run.copy()
    starts_run[0] = True
    run_start = np.maximum.accumulate(np.where(starts_run, np.arange(n), 0))
    ends_run = np.append(starts_run[1:], True)
    signal_sum = np.concatenate(([0.0], np.cumsum(_POSITION_BY_CODE[signals], dtype=np.float64)))
    rows = np.arange(n)
    position = (signal_sum[rows + 1] - signal_sum[np.maximum(rows + 1 - horizon, run_start)]) / horizon
    previous = np.where(starts_run, 0.0, np.concatenate(([0.0], position[:-1])))
    traded = np.abs(position - previous) + np.where(ends_run, np.abs(position), 0.0)
    return position * next_return - fee_rate * traded


def _check_inputs(signals: np.ndarray, next_return: np.ndarray, fee_rate: float) -> None:
    if signals.shape != next_return.shape or signals.ndim != 1 or not len(signals):
        raise InvalidInputError(
            f"signals and next_return must be non-empty 1-D arrays of the same length; got shapes "
            f"{signals.shape} and {next_return.shape}"
        )
    if signals.dtype.kind not in "iu" or signals.min() < 0 or signals.max() >= len(CLASSES):
        raise InvalidInputError(
            f"signals must be integer class codes (positions in {CLASSES}); got dtype {signals.dtype} "
            f"with values {np.unique(signals)[:10].tolist()}"
        )
    bad = np.flatnonzero(~np.isfinite(next_return))
    if len(bad):
        raise InvalidInputError(
            f"next_return has {len(bad)} NaN/inf value(s), the first at position {bad[0]}; every signal "
            "needs the return of the candle after it"
        )
    if not 0.0 <= fee_rate < 1.0:
        raise InvalidInputError(f"fee_rate must be in [0, 1); got {fee_rate}")


def _trade_returns(position: np.ndarray, next_return: np.ndarray, fee_rate: float) -> np.ndarray:
    """Return of each maximal run of the same non-zero position, entry and exit fee included."""
    bounds = np.append(np.flatnonzero(np.diff(position, prepend=0) != 0), len(position))
    returns = [
        (1.0 - fee_rate) ** 2 * np.prod(1.0 + position[start] * next_return[start:end]) - 1.0
        for start, end in zip(bounds[:-1], bounds[1:], strict=True)
        if position[start] != 0
    ]
    return np.asarray(returns, dtype=np.float64)


def _max_drawdown(equity: np.ndarray) -> float:
    peaks = np.maximum.accumulate(np.concatenate(([1.0], equity)))[1:]
    return float(np.max(1.0 - equity / peaks))
