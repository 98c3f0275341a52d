"""The demo source's planted directional signal: absent at demo_edge 0, present at the default, and
configurable from the settings and the environment."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from retrain.data.demo import DEFAULT_EDGE, DemoSource, planted_driver
from retrain.data.loading import make_source
from retrain.errors import InvalidInputError
from retrain.settings import load_settings

END = pd.Timestamp("2025-03-01", tz="UTC")
DAYS = 60  # 5,760 candles: the correlation's standard error is about 0.013


def _driver_and_next_return(edge: float, seed: int = 7) -> tuple[pd.Series, pd.Series]:
    candles = DemoSource(seed, end=END, edge=edge).fetch(DAYS)
    next_return = np.log(candles["close"]).diff().shift(-1)
    return planted_driver(candles), next_return


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_without_an_edge_the_driver_does_not_predict_the_next_move(seed: int) -> None:
    driver, next_return = _driver_and_next_return(0.0, seed)

    assert abs(driver.corr(next_return)) < 0.05


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_at_the_default_edge_the_next_move_goes_against_the_driver(seed: int) -> None:
    driver, next_return = _driver_and_next_return(DEFAULT_EDGE, seed)

    assert driver.corr(next_return) < -0.2


def test_without_an_edge_returns_are_not_autocorrelated() -> None:
    candles = DemoSource(3, end=END, edge=0.0).fetch(DAYS)

    assert abs(np.log(candles["close"]).diff().autocorr()) < 0.05


def test_the_edge_changes_direction_but_not_the_size_of_moves_much() -> None:
    plain = np.log(DemoSource(4, end=END, edge=0.0).fetch(DAYS)["close"]).diff().std()
    planted = np.log(DemoSource(4, end=END, edge=DEFAULT_EDGE).fetch(DAYS)["close"]).diff().std()

    assert planted == pytest.approx(plain, rel=0.15)


def test_demo_candles_are_seeded_and_name_their_edge() -> None:
    first = DemoSource(5, end=END, edge=0.2).fetch(3)
    again = DemoSource(5, end=END, edge=0.2).fetch(3)

    pd.testing.assert_frame_equal(first, again)
    assert DemoSource(5, end=END, edge=0.2).describe()["edge"] == 0.2


def test_demo_edge_comes_from_the_settings_and_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    assert make_source(load_settings(data={"source": "demo"}).data).edge == DEFAULT_EDGE
    monkeypatch.setenv("RETRAIN_DATA__DEMO_EDGE", "0")

    assert make_source(load_settings(data={"source": "demo"}).data).edge == 0.0


def test_refuses_an_edge_outside_zero_to_one() -> None:
    with pytest.raises(InvalidInputError, match="demo edge"):
        DemoSource(edge=-0.1)
