"""Labels: the fixed encoding, strict thresholds, rows without a full forward window dropped, and the
volatility-scaled and triple-barrier methods on hand-made candles."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from retrain.data.candles import CANDLE_INTERVAL
from retrain.errors import ConfigError
from retrain.labels import (
    BUY,
    CLASSES,
    HOLD,
    SELL,
    forward_return,
    labels_for,
    make_labels,
    realised_volatility,
    triple_barrier_labels,
    volatility_labels,
)
from retrain.settings import LabelSettings

START = pd.Timestamp("2024-01-01", tz="UTC")


def _candles(closes: list[float], missing: tuple[int, ...] = ()) -> pd.DataFrame:
    """Flat candles at each close; the grid positions in `missing` are left out (a halt)."""
    index = pd.date_range(START, periods=len(closes), freq=CANDLE_INTERVAL, name="timestamp")
    prices = np.asarray(closes, dtype=np.float64)
    frame = pd.DataFrame(
        {"open": prices, "high": prices, "low": prices, "close": prices, "volume": 1.0}, index=index
    )
    return frame.drop(index[list(missing)])


def test_encoding_is_exactly_sell_hold_buy() -> None:
    assert CLASSES == ("SELL", "HOLD", "BUY")
    assert (SELL, HOLD, BUY) == (0, 1, 2)
    assert [CLASSES.index(name) for name in ("SELL", "HOLD", "BUY")] == [SELL, HOLD, BUY]


@pytest.mark.parametrize(
    ("next_close", "expected"),
    [
        (9.0, HOLD),  # +12.5% exactly: not above the threshold
        (9.001, BUY),
        (7.0, HOLD),  # -12.5% exactly: not below minus the threshold
        (6.999, SELL),
        (8.0, HOLD),
    ],
)
def test_labels_at_the_threshold_boundaries(next_close: float, expected: int) -> None:
    labels = make_labels(_candles([8.0, next_close]), horizon=1, threshold=0.125)
    assert labels.tolist() == [expected]


def test_labels_compare_the_close_horizon_candles_ahead() -> None:
    closes = [100.0, 101.0, 99.0, 100.2, 98.0, 102.0, 100.0]
    labels = make_labels(_candles(closes), horizon=2, threshold=0.005)
    # 100->99 SELL, 101->100.2 SELL, 99->98 SELL, 100.2->102 BUY, 98->100 BUY
    assert labels.tolist() == [SELL, SELL, SELL, BUY, BUY]
    assert labels.dtype == np.int8


def test_last_horizon_rows_are_dropped_not_labelled_hold() -> None:
    candles = _candles([100.0] * 10)
    labels = make_labels(candles, horizon=3, threshold=0.005)
    assert labels.index.equals(candles.index[:7])
    assert forward_return(candles, 3).iloc[-3:].isna().all()


def test_rows_whose_forward_window_crosses_a_gap_are_dropped() -> None:
    candles = _candles([100.0 + i for i in range(12)], missing=(6,))
    labels = make_labels(candles, horizon=2, threshold=0.005)
    grid = pd.date_range(START, periods=12, freq=CANDLE_INTERVAL)
    assert list(labels.index) == list(grid[[0, 1, 2, 3, 7, 8, 9]])


def test_forward_return_is_the_close_ratio_over_the_horizon() -> None:
    candles = _candles([100.0, 110.0, 121.0, 90.0])
    returns = forward_return(candles, 1)
    np.testing.assert_allclose(returns.iloc[:3], [0.1, 0.1, 90.0 / 121.0 - 1.0])
    assert returns.index.equals(candles.index)


@pytest.mark.parametrize(("horizon", "threshold"), [(0, 0.005), (2, 0.0), (2, -0.01), (2, 1.5)])
def test_invalid_horizon_or_threshold_is_refused(horizon: int, threshold: float) -> None:
    with pytest.raises(ConfigError):
        make_labels(_candles([1.0, 2.0, 3.0]), horizon=horizon, threshold=threshold)


def _bars(rows: list[tuple[float, float, float]]) -> pd.DataFrame:
    """Candles from (high, low, close) triples; each opens at the previous close."""
    index = pd.date_range(START, periods=len(rows), freq=CANDLE_INTERVAL, name="timestamp")
    high, low, close = (np.asarray(column, dtype=np.float64) for column in zip(*rows, strict=True))
    opens = np.concatenate([[close[0]], close[:-1]])
    return pd.DataFrame({"open": opens, "high": high, "low": low, "close": close, "volume": 1.0}, index=index)


def test_default_settings_give_exactly_the_fixed_labels(shared_data) -> None:  # noqa: ANN001
    frame = pd.read_csv(shared_data / "BTCUSDT_BINANCE_15m_20230801_20240731.csv", nrows=3000)
    candles = frame.assign(timestamp=pd.to_datetime(frame["timestamp"], utc=True)).set_index("timestamp")
    expected = make_labels(candles, horizon=4, threshold=0.005)
    pd.testing.assert_series_equal(labels_for(candles, LabelSettings()), expected)


def test_volatility_labels_scale_the_threshold_with_recent_moves() -> None:
    """The same +0.5% move is BUY after calm candles (+-0.1%) and HOLD after wild ones (+-2%)."""
    calm = [100.0 * (1.001 if i % 2 else 1.0) for i in range(9)]
    wild = [100.0 * (1.02 if i % 2 else 1.0) for i in range(9)]
    for closes, expected in ((calm, BUY), (wild, HOLD)):
        candles = _candles([*closes, closes[-1] * 1.005])
        labels = volatility_labels(candles, horizon=1, multiple=1.0, window=8)
        assert labels.index.equals(candles.index[8:9])  # the first 8 rows lack 8 past returns
        assert labels.tolist() == [expected]


def test_volatility_threshold_is_multiple_times_volatility_times_root_horizon() -> None:
    closes = [100.0, 101.0, 100.0, 101.0, 100.0]  # one-candle log returns +-0.995%
    sigma = float(np.std(np.diff(np.log(closes)), ddof=1))
    threshold = 1.5 * sigma * np.sqrt(2)  # about 2.44%
    for move, expected in ((0.024, HOLD), (0.025, BUY), (-0.025, SELL)):
        candles = _candles([*closes, 100.0, 100.0 * (1 + move)])
        labels = volatility_labels(candles, horizon=2, multiple=1.5, window=4)
        assert labels.index.equals(candles.index[4:5])
        assert labels.tolist() == [expected], (move, threshold)


def test_volatility_uses_no_candle_after_the_row() -> None:
    candles = _candles([100.0, 101.0, 100.0, 101.0, 100.0, 100.5, 99.0, 120.0])
    before = realised_volatility(candles, 4)
    after = realised_volatility(
        candles.assign(close=candles["close"].where(candles.index < candles.index[5], 50.0)), 4
    )
    pd.testing.assert_series_equal(before.iloc[:5], after.iloc[:5])


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        # (high, low, close) of the 3 candles after the entry at 100; barriers +1% / -1%
        ([(100.5, 99.5, 100.0), (101.2, 99.8, 100.9), (100.0, 98.0, 98.5)], BUY),  # up first, ends down
        ([(100.2, 98.9, 99.5), (102.0, 99.5, 101.8), (102.0, 101.0, 101.5)], SELL),  # down first, ends up
        ([(100.5, 99.5, 100.2), (100.9, 99.2, 100.9), (100.95, 100.1, 100.9)], HOLD),  # time limit
        ([(101.5, 98.5, 100.0), (103.0, 100.0, 102.0), (104.0, 102.0, 103.0)], HOLD),  # both in one candle
        ([(100.5, 99.5, 100.0), (101.0, 99.0, 100.0), (100.0, 100.0, 100.0)], HOLD),  # touching is not beyond
    ],
)
def test_triple_barrier_labels_follow_the_first_barrier_touched(
    path: list[tuple[float, float, float]], expected: int
) -> None:
    candles = _bars([(100.0, 100.0, 100.0), *path])
    labels = triple_barrier_labels(candles, horizon=3, upper=0.01, lower=0.01)
    assert labels.index.equals(candles.index[:1])  # the last 3 rows have no full window
    assert labels.tolist() == [expected]


def test_triple_barrier_barriers_may_differ_per_side() -> None:
    candles = _bars([(100.0, 100.0, 100.0), (101.5, 99.7, 100.0), (100.0, 97.0, 97.0)])  # +1.5%/-0.3%, -3%
    assert triple_barrier_labels(candles, 2, upper=0.01, lower=0.005).tolist() == [BUY]
    assert triple_barrier_labels(candles, 2, upper=0.02, lower=0.005).tolist() == [SELL]
    assert triple_barrier_labels(candles, 2, upper=0.01, lower=0.0025).tolist() == [HOLD]  # both at once


def test_triple_barrier_drops_the_last_horizon_rows_and_windows_crossing_a_gap() -> None:
    candles = _candles([100.0 + i for i in range(12)], missing=(6,))
    labels = triple_barrier_labels(candles, horizon=2, upper=0.5, lower=0.5)
    grid = pd.date_range(START, periods=12, freq=CANDLE_INTERVAL)
    assert list(labels.index) == list(grid[[0, 1, 2, 3, 7, 8, 9]])
    assert (labels == HOLD).all()


def test_triple_barrier_in_volatility_units_scales_the_barriers() -> None:
    closes = [100.0, 101.0, 100.0, 101.0, 100.0]  # sigma 1.15%, width at horizon 1 = 1.15%
    settings = LabelSettings(
        method="triple_barrier", horizon=1, barrier_unit="volatility", volatility_window=4,
        take_profit_multiple=1.0, stop_loss_multiple=2.0,
    )  # fmt: skip
    up = _bars([(c, c, c) for c in closes] + [(101.2, 100.0, 101.0)])
    down = _bars([(c, c, c) for c in closes] + [(100.0, 98.8, 99.0)])
    assert labels_for(up, settings).tolist() == [BUY]  # +1.2% beyond 1 x 1.15%
    assert labels_for(down, settings).tolist() == [HOLD]  # -1.2% short of 2 x 1.15%


@pytest.mark.parametrize("method", ["fixed", "volatility", "triple_barrier"])
def test_every_method_leaves_the_last_horizon_rows_unlabelled(method: str) -> None:
    closes = [100.0 * (1.003 if i % 3 else 0.998) for i in range(40)]
    candles = _candles(closes)
    labels = labels_for(candles, LabelSettings(method=method, horizon=4, volatility_window=8))
    assert labels.index[-1] == candles.index[-5]
    assert set(labels.unique()) <= {SELL, HOLD, BUY}


def test_non_positive_barriers_are_refused() -> None:
    with pytest.raises(ConfigError, match="positive"):
        triple_barrier_labels(_candles([1.0, 2.0, 3.0]), 1, upper=0.0, lower=0.01)


def test_label_definition_names_only_what_shapes_the_method() -> None:
    assert LabelSettings().definition() == {"horizon": 4, "threshold": 0.005}  # as before label methods
    assert LabelSettings(volatility_window=48).definition() == LabelSettings().definition()
    barrier = LabelSettings(method="triple_barrier")
    assert barrier.definition() == LabelSettings(method="triple_barrier", volatility_window=48).definition()
    assert barrier.definition() != LabelSettings(method="triple_barrier", take_profit=0.01).definition()
