"""Candles -> the model's feature table, with no look-ahead and no price levels.

Every feature at candle `t` (open time) depends only on candles up to and including `t`, so the
live bot, which computes features when candle `t` has closed, sees exactly what training saw.
Features are scale-free (returns, ratios, oscillators), so a model trained on BTC/USDT candles reads
BTC/JPY candles the same way.

Gap policy. Validated candles may lack a few candles (a short exchange halt). `build`:
  1. reindexes to the full 15-minute grid: missing candles become NaN rows (never back- or
     forward-filled);
  2. computes every feature on that grid: rolling windows that touch a NaN row give NaN, and
     exponential smoothers (EMA, Wilder) skip the NaN rows;
  3. drops (a) the warm-up rows, the first `max_lookback` of the grid; (b) every row whose look-back
     window (the `max_lookback` candles before it, and itself) holds a missing candle; (c) the
     missing rows themselves; and, as a safety net, (d) any row still holding a non-finite value
     (e.g. a volume ratio over a window without a single trade), logged as a warning.
`max_lookback` is `warmup_spans` (4) times the longest smoothing span (Wilder smoothing over n
candles counts as an EMA of span 2n - 1), and at least every rolling window, so the rows dropped
after the start or after a gap cover the initialisation transient of every EMA and Wilder smoother:
after 4 spans an EMA keeps about e^-8 (0.03%) of its starting value.

Feature groups (`features.groups`; the default, `base`, is the original set, unchanged):
- `higher_timeframes`: 1-hour and 4-hour bars resampled from the same candles (clock-aligned, a bar with a
  missing candle is missing), their trend, volatility and range position over the last closed bars. A
  bar is used only from its last candle on (when it has closed), so no row sees a candle after it;
- `volume_price_divergence`: rolling correlation of log price and volume (price rising on falling volume
  is negative);
- `time_since_large_move`: candles since the last one-candle return beyond a multiple of the standard
  deviation of the returns before it (capped, as a fraction of the cap), and that move's sign.
The groups a model was trained with are recorded in it (`ProductionEnsemble.feature_params`):
`FeatureManager.for_model(model)` builds its columns.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from retrain.data.candles import CANDLE_INTERVAL, to_full_grid
from retrain.errors import ConfigError, DatasetError, FeatureMismatchError
from retrain.settings import FeatureSettings

logger = logging.getLogger(__name__)

FEATURE_SET_VERSION = "1"
"""Bump whenever a feature's computation changes without a parameter changing."""


@dataclass(frozen=True)
class FeatureParams:
    """Every parameter of the feature set; candle counts are 15-minute candles (96 = one day)."""

    return_lags: tuple[int, ...] = (1, 2, 4, 8, 16, 32, 96)
    lagged_return_shifts: tuple[int, ...] = (1, 2, 3)
    rsi_periods: tuple[int, ...] = (7, 14)
    macd: tuple[int, int, int] = (12, 26, 9)
    atr_period: int = 14
    bollinger_window: int = 20
    bollinger_k: float = 2.0
    ema_spans: tuple[int, ...] = (9, 21, 50, 100)
    ema_crosses: tuple[tuple[int, int], ...] = ((9, 21), (21, 50), (50, 100))
    volume_ratio_windows: tuple[int, ...] = (16, 96)
    volume_z_window: int = 96
    donchian_windows: tuple[int, ...] = (20, 96)
    adx_period: int = 14
    volatility_windows: tuple[int, ...] = (16, 96)
    skew_window: int = 96
    price_z_windows: tuple[int, ...] = (48, 192)
    warmup_spans: int = 4
    groups: tuple[str, ...] = ("base",)
    higher_timeframes: tuple[int, ...] = (4, 16)
    higher_timeframe_bars: int = 12
    divergence_windows: tuple[int, ...] = (16, 96)
    large_move_multiple: float = 4.0
    large_move_window: int = 96
    large_move_cap: int = 384

    def __post_init__(self) -> None:
        counts = [
            *self.return_lags, *self.lagged_return_shifts, *self.rsi_periods, *self.macd, self.atr_period,
            self.bollinger_window, *self.ema_spans, *(s for pair in self.ema_crosses for s in pair),
            *self.volume_ratio_windows, self.volume_z_window, *self.donchian_windows, self.adx_period,
            *self.volatility_windows, self.skew_window, *self.price_z_windows, self.warmup_spans,
            *self.higher_timeframes, self.higher_timeframe_bars, *self.divergence_windows,
            self.large_move_window, self.large_move_cap,
        ]  # fmt: skip
        bad = [c for c in counts if not isinstance(c, int) or c < 1]
        if bad:
            raise ConfigError(f"feature parameters must be whole candle counts >= 1, got {bad}")
        unknown = sorted(set(self.groups) - set(GROUPS))
        if unknown or not self.groups:
            raise ConfigError(
                f"feature groups must be a non-empty selection of {list(GROUPS)}, got {self.groups}"
            )
        if not self.large_move_multiple > 0:
            raise ConfigError(f"large_move_multiple must be positive, got {self.large_move_multiple}")
        if self.macd[0] >= self.macd[1]:
            raise ConfigError(f"MACD fast span must be below the slow span, got macd={self.macd}")
        if not self.bollinger_k > 0:
            raise ConfigError(f"bollinger_k must be positive, got {self.bollinger_k}")

    @classmethod
    def from_settings(cls, settings: FeatureSettings) -> FeatureParams:
        """The parameters `features:` in the configuration selects (the base set's own are fixed)."""
        return cls(
            groups=tuple(settings.groups),
            higher_timeframes=tuple(settings.higher_timeframes),
            higher_timeframe_bars=settings.higher_timeframe_bars,
            divergence_windows=tuple(settings.divergence_windows),
            large_move_multiple=settings.large_move_multiple,
            large_move_window=settings.large_move_window,
            large_move_cap=settings.large_move_cap,
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable form, recorded with a model (`from_dict` reads it back)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> FeatureParams:
        """Read `to_dict`'s output, also after a JSON round trip (lists back to tuples)."""

        def as_tuple(value: Any) -> Any:
            return tuple(as_tuple(v) for v in value) if isinstance(value, list | tuple) else value

        try:
            return cls(**{key: as_tuple(value) for key, value in values.items()})
        except TypeError as exc:
            raise ConfigError(f"recorded feature parameters this code does not know: {exc}") from exc


GROUPS: tuple[str, ...] = ("base", "higher_timeframes", "volume_price_divergence", "time_since_large_move")
"""Feature groups in column order: a model's columns are its groups' columns in this order."""


@dataclass(frozen=True)
class FeatureDef:
    """One output column: its name, the family that computes it, and that family's parameters."""

    name: str
    family: str
    params: dict[str, int | float] = field(default_factory=dict)


class _Indicators:
    """Shared intermediate series (EMAs, Wilder averages) computed once per build, on the full grid."""

    def __init__(self, grid: pd.DataFrame) -> None:
        self.high, self.low = grid["high"], grid["low"]
        self.close, self.volume = grid["close"], grid["volume"]
        self.index = grid.index
        self._memo: dict[tuple[Any, ...], pd.Series] = {}

    def _cached(self, key: tuple[Any, ...], compute: Callable[[], pd.Series]) -> pd.Series:
        if key not in self._memo:
            self._memo[key] = compute()
        return self._memo[key]

    def log_close(self) -> pd.Series:
        return self._cached(("log_close",), lambda: np.log(self.close))

    def ret1(self) -> pd.Series:
        """One-candle log return; NaN on the first candle after a missing one."""
        return self._cached(("ret1",), lambda: self.log_close().diff())

    def ema(self, span: int) -> pd.Series:
        return self._cached(("ema", span), lambda: self.close.ewm(span=span, adjust=False).mean())

    @staticmethod
    def wilder(series: pd.Series, period: int) -> pd.Series:
        return series.ewm(alpha=1.0 / period, adjust=False).mean()

    def true_range(self) -> pd.Series:
        def compute() -> pd.Series:
            previous = self.close.shift(1)
            spans = np.maximum(self.high - self.low, np.abs(self.high - previous))
            return np.maximum(spans, np.abs(self.low - previous))  # NaN after a gap, skipped by Wilder

        return self._cached(("true_range",), compute)

    def atr(self, period: int) -> pd.Series:
        return self._cached(("atr", period), lambda: self.wilder(self.true_range(), period))

    def bars(self, timeframe: int) -> pd.DataFrame:
        """Clock-aligned bars of `timeframe` candles, indexed by their *last* candle (when they close);
        a bar missing any candle is all NaN."""

        def compute() -> pd.DataFrame:
            frame = pd.DataFrame({"high": self.high, "low": self.low, "close": self.close})
            resampler = frame.resample(
                timeframe * CANDLE_INTERVAL, origin="epoch", label="left", closed="left"
            )
            bars = resampler.agg({"high": "max", "low": "min", "close": "last"})
            complete = resampler["close"].count() == timeframe
            bars = bars.where(complete)
            bars.index = bars.index + (timeframe - 1) * CANDLE_INTERVAL
            return bars

        key = ("bars", timeframe)
        if key not in self._memo:
            self._memo[key] = compute()  # type: ignore[assignment]
        return self._memo[key]  # type: ignore[return-value]

    def on_candles(self, bar_values: pd.Series, timeframe: int) -> pd.Series:
        """A per-bar series on the candle grid: each closed bar's value from its last candle until the next
        bar closes, never before (no look-ahead) and never carried over a missing bar."""
        return bar_values.reindex(self.index).ffill(limit=timeframe - 1)

    def directional_index(self, period: int) -> tuple[pd.Series, pd.Series]:
        """Wilder's +DI and -DI as fractions (0..1)."""

        def compute(sign: int) -> pd.Series:
            up = self.high.diff()
            down = -self.low.diff()
            move = up if sign > 0 else down
            other = down if sign > 0 else up
            directional = move.where((move > other) & (move > 0), 0.0).where(move.notna())
            return self.wilder(directional, period) / self.atr(period)

        return (
            self._cached(("plus_di", period), lambda: compute(+1)),
            self._cached(("minus_di", period), lambda: compute(-1)),
        )


def _safe_ratio(numerator: pd.Series, denominator: pd.Series) -> pd.Series:
    """numerator / denominator, NaN (not inf) where the denominator is zero."""
    return numerator / denominator.where(denominator != 0)


def _log_return(ind: _Indicators, lag: int) -> pd.Series:
    return ind.log_close().diff(lag)


def _lagged_return(ind: _Indicators, shift: int) -> pd.Series:
    return ind.ret1().shift(shift)


def _candle_range(ind: _Indicators) -> pd.Series:
    return np.log(ind.high / ind.low)


def _rsi(ind: _Indicators, period: int) -> pd.Series:
    """Wilder RSI as a fraction: average gain / (average gain + average loss)."""
    delta = ind.close.diff()
    gain = ind.wilder(delta.clip(lower=0.0), period)
    loss = ind.wilder((-delta).clip(lower=0.0), period)
    return _safe_ratio(gain, gain + loss)


def _macd_parts(ind: _Indicators, fast: int, slow: int, signal: int) -> tuple[pd.Series, pd.Series]:
    line = ind.ema(fast) - ind.ema(slow)
    return line, line.ewm(span=signal, adjust=False).mean()


def _macd_line(ind: _Indicators, fast: int, slow: int, signal: int) -> pd.Series:
    return _macd_parts(ind, fast, slow, signal)[0] / ind.close


def _macd_signal(ind: _Indicators, fast: int, slow: int, signal: int) -> pd.Series:
    return _macd_parts(ind, fast, slow, signal)[1] / ind.close


def _macd_hist(ind: _Indicators, fast: int, slow: int, signal: int) -> pd.Series:
    line, signal_line = _macd_parts(ind, fast, slow, signal)
    return (line - signal_line) / ind.close


def _atr(ind: _Indicators, period: int) -> pd.Series:
    return ind.atr(period) / ind.close


def _bollinger_bands(ind: _Indicators, window: int, k: float) -> tuple[pd.Series, pd.Series, pd.Series]:
    rolling = ind.close.rolling(window)
    middle, spread = rolling.mean(), k * rolling.std(ddof=0)
    return middle - spread, middle, middle + spread


def _bollinger_pctb(ind: _Indicators, window: int, k: float) -> pd.Series:
    lower, _, upper = _bollinger_bands(ind, window, k)
    return _safe_ratio(ind.close - lower, upper - lower)


def _bollinger_width(ind: _Indicators, window: int, k: float) -> pd.Series:
    lower, middle, upper = _bollinger_bands(ind, window, k)
    return (upper - lower) / middle


def _ema_distance(ind: _Indicators, span: int) -> pd.Series:
    return ind.close / ind.ema(span) - 1.0


def _ema_cross(ind: _Indicators, fast: int, slow: int) -> pd.Series:
    return ind.ema(fast) / ind.ema(slow) - 1.0


def _volume_ratio(ind: _Indicators, window: int) -> pd.Series:
    return _safe_ratio(ind.volume, ind.volume.rolling(window).mean())


def _volume_log_z(ind: _Indicators, window: int) -> pd.Series:
    """z-score of log1p(volume / its rolling mean): scale-free, and finite on zero-volume candles."""
    log_volume = np.log1p(_volume_ratio(ind, window))
    rolling = log_volume.rolling(window)
    return _safe_ratio(log_volume - rolling.mean(), rolling.std())


def _donchian_position(ind: _Indicators, window: int) -> pd.Series:
    highest = ind.high.rolling(window).max()
    lowest = ind.low.rolling(window).min()
    return _safe_ratio(ind.close - lowest, highest - lowest)


def _plus_di(ind: _Indicators, period: int) -> pd.Series:
    return ind.directional_index(period)[0]


def _minus_di(ind: _Indicators, period: int) -> pd.Series:
    return ind.directional_index(period)[1]


def _adx(ind: _Indicators, period: int) -> pd.Series:
    plus, minus = ind.directional_index(period)
    return ind.wilder(_safe_ratio((plus - minus).abs(), plus + minus), period)


def _volatility(ind: _Indicators, window: int) -> pd.Series:
    return ind.ret1().rolling(window).std()


def _return_skew(ind: _Indicators, window: int) -> pd.Series:
    return ind.ret1().rolling(window).skew()


def _price_zscore(ind: _Indicators, window: int) -> pd.Series:
    """z-score of log close in its window (log: a constant price scale only shifts the mean)."""
    rolling = ind.log_close().rolling(window)
    return _safe_ratio(ind.log_close() - rolling.mean(), rolling.std())


def _htf_trend(ind: _Indicators, timeframe: int, bars: int) -> pd.Series:
    """Log return over the last `bars` closed bars."""
    close = ind.bars(timeframe)["close"]
    return ind.on_candles(np.log(close / close.shift(bars)), timeframe)


def _htf_volatility(ind: _Indicators, timeframe: int, bars: int) -> pd.Series:
    """Standard deviation of the bar log returns over the last `bars` closed bars."""
    close = ind.bars(timeframe)["close"]
    return ind.on_candles(np.log(close).diff().rolling(bars).std(), timeframe)


def _htf_range_position(ind: _Indicators, timeframe: int, bars: int) -> pd.Series:
    """Where the last closed bar's close sits in the range of the last `bars` closed bars (0 low, 1 high)."""
    frame = ind.bars(timeframe)
    highest, lowest = frame["high"].rolling(bars).max(), frame["low"].rolling(bars).min()
    return ind.on_candles(_safe_ratio(frame["close"] - lowest, highest - lowest), timeframe)


def _price_volume_corr(ind: _Indicators, window: int) -> pd.Series:
    """Correlation of log price and volume over the window: negative when price and volume diverge."""
    return ind.log_close().rolling(window).corr(ind.volume)


def _large_moves(ind: _Indicators, multiple: float, window: int) -> pd.Series:
    """True where the one-candle return is beyond `multiple` standard deviations of the `window` before it."""
    ret = ind.ret1()
    return ret.abs() > multiple * ret.rolling(window).std().shift(1)


def _since_large_move(ind: _Indicators, multiple: float, window: int, cap: int) -> pd.Series:
    """Candles since the last large move (0 on the move itself), capped at `cap`, as a fraction of `cap`."""
    position = pd.Series(np.arange(len(ind.index), dtype=np.float64), index=ind.index)
    last = position.where(_large_moves(ind, multiple, window)).ffill()
    return ((position - last).fillna(cap).clip(upper=cap) / cap).where(ind.close.notna())


def _large_move_sign(ind: _Indicators, multiple: float, window: int, cap: int) -> pd.Series:
    """+1 or -1: the direction of the last large move within `cap` candles; 0 without one."""
    moves = _large_moves(ind, multiple, window)
    sign = np.sign(ind.ret1()).where(moves).ffill(limit=cap).fillna(0.0)
    return sign.where(ind.close.notna())


def _hour_angle(ind: _Indicators) -> np.ndarray:
    return 2 * np.pi * (ind.index.hour.to_numpy() * 60 + ind.index.minute.to_numpy()) / (24 * 60)


def _weekday_angle(ind: _Indicators) -> np.ndarray:
    return 2 * np.pi * ind.index.day_of_week.to_numpy() / 7


def _time_of_day_sin(ind: _Indicators) -> pd.Series:
    return pd.Series(np.sin(_hour_angle(ind)), index=ind.index)


def _time_of_day_cos(ind: _Indicators) -> pd.Series:
    return pd.Series(np.cos(_hour_angle(ind)), index=ind.index)


def _day_of_week_sin(ind: _Indicators) -> pd.Series:
    return pd.Series(np.sin(_weekday_angle(ind)), index=ind.index)


def _day_of_week_cos(ind: _Indicators) -> pd.Series:
    return pd.Series(np.cos(_weekday_angle(ind)), index=ind.index)


def _smoothing_lookback(warmup_spans: int, span: int) -> int:
    return warmup_spans * span


def _wilder_lookback(warmup_spans: int, period: int) -> int:
    """Wilder smoothing over `period` is an EMA of span 2 * period - 1."""
    return warmup_spans * (2 * period - 1)


_FAMILIES: dict[str, tuple[Callable[..., pd.Series], Callable[..., int]]] = {
    # family: (compute(ind, **params), lookback(warmup_spans, **params) in candles)
    "log_return": (_log_return, lambda w, lag: lag),
    "lagged_return": (_lagged_return, lambda w, shift: shift + 1),
    "candle_range": (_candle_range, lambda w: 0),
    "rsi": (_rsi, lambda w, period: _wilder_lookback(w, period)),
    "macd_line": (_macd_line, lambda w, fast, slow, signal: _smoothing_lookback(w, slow + signal)),
    "macd_signal": (_macd_signal, lambda w, fast, slow, signal: _smoothing_lookback(w, slow + signal)),
    "macd_hist": (_macd_hist, lambda w, fast, slow, signal: _smoothing_lookback(w, slow + signal)),
    "atr": (_atr, lambda w, period: _wilder_lookback(w, period)),
    "bollinger_pctb": (_bollinger_pctb, lambda w, window, k: window),
    "bollinger_width": (_bollinger_width, lambda w, window, k: window),
    "ema_distance": (_ema_distance, lambda w, span: _smoothing_lookback(w, span)),
    "ema_cross": (_ema_cross, lambda w, fast, slow: _smoothing_lookback(w, max(fast, slow))),
    "volume_ratio": (_volume_ratio, lambda w, window: window),
    "volume_log_z": (_volume_log_z, lambda w, window: 2 * window),
    "donchian_position": (_donchian_position, lambda w, window: window),
    "plus_di": (_plus_di, lambda w, period: _wilder_lookback(w, period)),
    "minus_di": (_minus_di, lambda w, period: _wilder_lookback(w, period)),
    "adx": (_adx, lambda w, period: 2 * _wilder_lookback(w, period)),
    "volatility": (_volatility, lambda w, window: window + 1),
    "return_skew": (_return_skew, lambda w, window: window + 1),
    "price_zscore": (_price_zscore, lambda w, window: window),
    "htf_trend": (_htf_trend, lambda w, timeframe, bars: timeframe * (bars + 2)),
    "htf_volatility": (_htf_volatility, lambda w, timeframe, bars: timeframe * (bars + 2)),
    "htf_range_position": (_htf_range_position, lambda w, timeframe, bars: timeframe * (bars + 1)),
    "price_volume_corr": (_price_volume_corr, lambda w, window: window),
    "since_large_move": (_since_large_move, lambda w, multiple, window, cap: cap + window + 1),
    "large_move_sign": (_large_move_sign, lambda w, multiple, window, cap: cap + window + 1),
    "time_of_day_sin": (_time_of_day_sin, lambda w: 0),
    "time_of_day_cos": (_time_of_day_cos, lambda w: 0),
    "day_of_week_sin": (_day_of_week_sin, lambda w: 0),
    "day_of_week_cos": (_day_of_week_cos, lambda w: 0),
}


def _timeframe_name(timeframe: int) -> str:
    minutes = timeframe * int(CANDLE_INTERVAL / pd.Timedelta(minutes=1))
    return f"{minutes // 60}h" if minutes % 60 == 0 else f"{minutes}m"


def _added_definitions(p: FeatureParams, group: str) -> tuple[FeatureDef, ...]:
    if group == "higher_timeframes":
        return tuple(
            FeatureDef(f"htf_{kind}_{_timeframe_name(tf)}_{p.higher_timeframe_bars}", f"htf_{family}",
                       {"timeframe": tf, "bars": p.higher_timeframe_bars})
            for tf in p.higher_timeframes
            for kind, family in (("trend", "trend"), ("volatility", "volatility"), ("range_pos", "range_position"))
        )  # fmt: skip
    if group == "volume_price_divergence":
        return tuple(
            FeatureDef(f"price_volume_corr_{w}", "price_volume_corr", {"window": w})
            for w in p.divergence_windows
        )
    moves = {"multiple": p.large_move_multiple, "window": p.large_move_window, "cap": p.large_move_cap}
    return (
        FeatureDef(f"since_large_move_{p.large_move_window}", "since_large_move", moves),
        FeatureDef(f"large_move_sign_{p.large_move_window}", "large_move_sign", moves),
    )


def feature_definitions(params: FeatureParams) -> tuple[FeatureDef, ...]:
    """The ordered feature list that `params` describes: each selected group's columns, in `GROUPS` order."""
    selected = [group for group in GROUPS if group in params.groups]
    base = _base_definitions(params) if "base" in selected else ()
    return base + tuple(d for group in selected if group != "base" for d in _added_definitions(params, group))


def _base_definitions(params: FeatureParams) -> tuple[FeatureDef, ...]:
    """The original feature set (group `base`)."""
    p = params
    fast, slow, signal = p.macd
    macd = {"fast": fast, "slow": slow, "signal": signal}
    bollinger = {"window": p.bollinger_window, "k": p.bollinger_k}
    return (
        *(FeatureDef(f"logret_{lag}", "log_return", {"lag": lag}) for lag in p.return_lags),
        *(FeatureDef(f"logret_1_lag{s}", "lagged_return", {"shift": s}) for s in p.lagged_return_shifts),
        FeatureDef("candle_range", "candle_range"),
        *(FeatureDef(f"rsi_{n}", "rsi", {"period": n}) for n in p.rsi_periods),
        FeatureDef(f"macd_line_{fast}_{slow}_{signal}", "macd_line", macd),
        FeatureDef(f"macd_signal_{fast}_{slow}_{signal}", "macd_signal", macd),
        FeatureDef(f"macd_hist_{fast}_{slow}_{signal}", "macd_hist", macd),
        FeatureDef(f"atr_{p.atr_period}", "atr", {"period": p.atr_period}),
        FeatureDef(f"bb_pctb_{p.bollinger_window}", "bollinger_pctb", bollinger),
        FeatureDef(f"bb_width_{p.bollinger_window}", "bollinger_width", bollinger),
        *(FeatureDef(f"ema_dist_{s}", "ema_distance", {"span": s}) for s in p.ema_spans),
        *(FeatureDef(f"ema_cross_{a}_{b}", "ema_cross", {"fast": a, "slow": b}) for a, b in p.ema_crosses),
        *(FeatureDef(f"volume_ratio_{w}", "volume_ratio", {"window": w}) for w in p.volume_ratio_windows),
        FeatureDef(f"volume_log_z_{p.volume_z_window}", "volume_log_z", {"window": p.volume_z_window}),
        *(FeatureDef(f"donchian_pos_{w}", "donchian_position", {"window": w}) for w in p.donchian_windows),
        FeatureDef(f"adx_{p.adx_period}", "adx", {"period": p.adx_period}),
        FeatureDef(f"plus_di_{p.adx_period}", "plus_di", {"period": p.adx_period}),
        FeatureDef(f"minus_di_{p.adx_period}", "minus_di", {"period": p.adx_period}),
        *(FeatureDef(f"volatility_{w}", "volatility", {"window": w}) for w in p.volatility_windows),
        FeatureDef(f"return_skew_{p.skew_window}", "return_skew", {"window": p.skew_window}),
        *(FeatureDef(f"price_z_{w}", "price_zscore", {"window": w}) for w in p.price_z_windows),
        FeatureDef("time_of_day_sin", "time_of_day_sin"),
        FeatureDef("time_of_day_cos", "time_of_day_cos"),
        FeatureDef("day_of_week_sin", "day_of_week_sin"),
        FeatureDef("day_of_week_cos", "day_of_week_cos"),
    )


class FeatureManager:
    """Builds the feature table; its `definition_hash` identifies the feature set a model needs."""

    def __init__(self, params: FeatureParams | None = None) -> None:
        self.params = params or FeatureParams()
        self.definitions = feature_definitions(self.params)
        names = [d.name for d in self.definitions]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ConfigError(f"feature parameters produce duplicate feature names {duplicates}")
        self.feature_names: list[str] = names
        self.max_lookback: int = max(
            _FAMILIES[d.family][1](self.params.warmup_spans, **d.params) for d in self.definitions
        )
        self.definition_hash: str = self._hash()

    def _hash(self) -> str:
        canonical = json.dumps(
            {
                "version": FEATURE_SET_VERSION,
                "warmup_spans": self.params.warmup_spans,
                "max_lookback": self.max_lookback,
                "features": [asdict(d) for d in self.definitions],
            },
            sort_keys=True,
        )
        return hashlib.sha256(canonical.encode()).hexdigest()

    def build(self, candles: pd.DataFrame) -> pd.DataFrame:
        """Feature table for `candles` (validated), columns `feature_names`, gap policy applied."""
        grid = to_full_grid(candles)
        if len(grid) <= self.max_lookback:
            raise DatasetError(
                f"features need more than {self.max_lookback} candles of warm-up "
                f"({self.max_lookback * CANDLE_INTERVAL}), got a span of {len(grid)} candles"
            )
        indicators = _Indicators(grid)
        columns = {d.name: _FAMILIES[d.family][0](indicators, **d.params) for d in self.definitions}
        table = pd.DataFrame(columns, index=grid.index, dtype=np.float64)

        present = grid["close"].notna()
        gap_in_window = (~present).astype(np.int64).rolling(self.max_lookback + 1, min_periods=1).sum() > 0
        warmed_up = np.arange(len(grid)) >= self.max_lookback
        table = table[present & ~gap_in_window & warmed_up]
        finite = np.isfinite(table.to_numpy()).all(axis=1)
        if not finite.all():
            dropped = table.index[~finite]
            logger.warning(
                "dropped %d feature rows holding NaN/inf (first at %s): a window without trades or moves",
                len(dropped), dropped[0],
            )  # fmt: skip
            table = table[finite]
        logger.debug("features: %d of %d grid rows kept", len(table), len(grid))
        return table

    @classmethod
    def for_model(cls, model: Any) -> FeatureManager:
        """The feature set `model` was trained on, from the parameters recorded in it (a model pickled before
        they were recorded gets the base set); refused if it does not give the model's definition hash."""
        recorded = getattr(model, "feature_params", None)
        manager = cls(FeatureParams.from_dict(recorded) if recorded else None)
        expected = getattr(model, "feature_definition_hash", "")
        if expected and expected != manager.definition_hash:
            raise FeatureMismatchError(
                f"the model was trained on feature set {expected[:12]}, its recorded parameters give "
                f"{manager.definition_hash[:12]}: deploy the code that trained it, or retrain"
            )
        return manager

    def generate_features(self, market_data: pd.DataFrame) -> pd.DataFrame:
        """The trading bot's entry point: candles in, feature table out (one row per usable candle).

        `market_data` is either a validated candle table (UTC `DatetimeIndex`) or a raw one with a
        `timestamp` column, as the exchange returns it; a raw table is validated first and refused with
        `CandleValidationError` naming every problem. The bot predicts on the last row.
        """
        if "timestamp" in market_data.columns:
            from retrain.data.validation import validate_candles
            from retrain.settings import DataSettings

            market_data, _ = validate_candles(market_data, DataSettings())
        return self.build(market_data)

    def describe(self) -> dict[str, Any]:
        """JSON-serialisable summary for model metadata."""
        return {
            "feature_set_version": FEATURE_SET_VERSION,
            "definition_hash": self.definition_hash,
            "max_lookback": self.max_lookback,
            "feature_names": list(self.feature_names),
            "params": asdict(self.params),
        }
