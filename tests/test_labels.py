"""Labels: the fixed encoding, strict thresholds, and rows without a full forward window dropped."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from retrain.data.candles import CANDLE_INTERVAL
from retrain.errors import ConfigError
from retrain.labels import BUY, CLASSES, HOLD, SELL, forward_return, make_labels

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
