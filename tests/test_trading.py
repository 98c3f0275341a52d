"""The trading read-out and the horizon-held economic measure on tiny examples computed by hand."""

from __future__ import annotations

import numpy as np
import pytest

from retrain.errors import InvalidInputError
from retrain.labels import BUY, HOLD, SELL
from retrain.trading import TradingSummary, horizon_pnl, trading_readout

FEE = 0.001


def test_readout_matches_hand_computed_returns_fees_trades_and_drawdown() -> None:
    signals = np.array([BUY, BUY, HOLD, SELL, BUY])
    next_return = np.array([0.01, -0.02, 0.05, -0.03, 0.02])

    readout = trading_readout(signals, next_return, FEE)

    keep = 1 - FEE
    expected_equity = np.cumprod(
        [
            keep * 1.01,  # enter long
            0.98,  # hold long
            keep * 1.0,  # exit to flat: the 5% move is not taken
            keep * 1.03,  # enter short, price falls 3%
            keep**2 * 1.02 * keep,  # flip to long (two units), then the final exit to flat
        ]
    )
    np.testing.assert_allclose(readout.equity_curve, expected_equity)
    assert readout.total_return == pytest.approx(expected_equity[-1] - 1)
    assert readout.n_trades == 3
    assert readout.hit_rate == pytest.approx(2 / 3)  # the first long lost, the short and last long won
    assert readout.exposure == pytest.approx(4 / 5)
    assert readout.max_drawdown == pytest.approx(1 - expected_equity[2] / expected_equity[0])


def test_entry_flip_and_exit_each_cost_fees_per_unit_of_position_change() -> None:
    readout = trading_readout(np.array([BUY, SELL]), np.zeros(2), FEE)

    # entry 1 unit + flip 2 units + final exit 1 unit
    assert readout.total_return == pytest.approx((1 - FEE) ** 4 - 1)
    assert readout.n_trades == 2
    assert readout.hit_rate == 0.0


def test_fees_lower_the_return_and_the_curve_ends_at_the_total_return() -> None:
    rng = np.random.default_rng(3)
    signals = rng.integers(0, 3, size=200)
    next_return = rng.normal(0, 0.01, size=200)

    with_fees = trading_readout(signals, next_return, FEE)
    without_fees = trading_readout(signals, next_return, 0.0)

    assert with_fees.total_return < without_fees.total_return
    assert with_fees.equity_curve[-1] == pytest.approx(1 + with_fees.total_return)


def test_always_hold_makes_no_trades_and_no_return() -> None:
    readout = trading_readout(np.full(4, HOLD), np.array([0.1, -0.2, 0.3, 0.0]), FEE)

    assert readout.n_trades == 0
    assert readout.hit_rate is None
    assert readout.total_return == 0.0
    assert readout.max_drawdown == 0.0
    assert readout.exposure == 0.0


def test_drawdown_counts_the_starting_equity_as_a_peak() -> None:
    readout = trading_readout(np.array([BUY, BUY]), np.array([-0.1, 0.05]), 0.0)

    assert readout.max_drawdown == pytest.approx(0.1)


def test_summary_leaves_out_the_equity_curve() -> None:
    readout = trading_readout(np.array([BUY, HOLD]), np.array([0.01, 0.0]), FEE)

    summary = readout.summary()

    assert type(summary) is TradingSummary
    assert "equity_curve" not in summary.model_dump()
    assert summary.total_return == readout.total_return


def test_refuses_a_missing_next_return_naming_its_position() -> None:
    with pytest.raises(InvalidInputError, match="position 1"):
        trading_readout(np.array([BUY, SELL]), np.array([0.01, np.nan]), FEE)


def test_refuses_signals_that_are_not_class_codes() -> None:
    with pytest.raises(InvalidInputError, match="class codes"):
        trading_readout(np.array([BUY, 3]), np.zeros(2), FEE)


def test_refuses_signals_and_returns_of_different_lengths() -> None:
    with pytest.raises(InvalidInputError, match="same length"):
        trading_readout(np.array([BUY, SELL]), np.zeros(3), FEE)


def test_horizon_pnl_stacks_overlapping_signals_and_charges_fees_on_the_net_position_change() -> None:
    signals = np.array([BUY, BUY, HOLD, SELL])
    next_return = np.array([0.01, -0.02, 0.03, -0.04])

    pnl = horizon_pnl(signals, next_return, horizon=2, fee_rate=FEE)

    # net positions (each signal holds 1/2 for 2 candles): 0.5, 1.0, 0.5, -0.5
    # traded: 0.5 (enter), 0.5 (second tranche), 0.5 (first tranche expires), 1.0 (second expires, short
    # opens), then 0.5 (the short closes at the end of the rows)
    expected = [
        0.5 * 0.01 - FEE * 0.5,
        1.0 * -0.02 - FEE * 0.5,
        0.5 * 0.03 - FEE * 0.5,
        -0.5 * -0.04 - FEE * (1.0 + 0.5),
    ]
    np.testing.assert_allclose(pnl, expected)


def test_horizon_pnl_rolls_repeated_signals_without_fees() -> None:
    pnl = horizon_pnl(np.full(4, BUY), np.zeros(4), horizon=2, fee_rate=FEE)

    # enter half, enter the other half, roll, roll, then exit the whole position after the last row
    np.testing.assert_allclose(pnl, [-FEE * 0.5, -FEE * 0.5, 0.0, -FEE * 1.0])


def test_horizon_pnl_a_buy_and_a_sell_within_the_horizon_cancel() -> None:
    pnl = horizon_pnl(np.array([BUY, SELL, HOLD]), np.array([0.01, 0.02, 0.03]), horizon=2, fee_rate=FEE)

    # positions 0.5, 0.0, -0.5: the SELL's tranche outlives the BUY's by one candle
    np.testing.assert_allclose(pnl, [0.5 * 0.01 - FEE * 0.5, -FEE * 0.5, -0.5 * 0.03 - FEE * (0.5 + 0.5)])


def test_horizon_pnl_closes_every_tranche_at_a_gap_and_restarts_flat() -> None:
    new_run = np.array([False, False, True])

    pnl = horizon_pnl(np.full(3, BUY), np.full(3, 0.01), horizon=2, fee_rate=FEE, new_run=new_run)

    # run 1: positions 0.5, 1.0, then exit 1.0; run 2: enter 0.5 and exit 0.5 on its only row
    np.testing.assert_allclose(
        pnl, [0.5 * 0.01 - FEE * 0.5, 1.0 * 0.01 - FEE * (0.5 + 1.0), 0.5 * 0.01 - FEE * (0.5 + 0.5)]
    )


def test_horizon_pnl_of_a_one_candle_horizon_is_the_read_out_without_compounding() -> None:
    signals = np.array([BUY, BUY, HOLD, SELL, BUY])
    next_return = np.array([0.01, -0.02, 0.05, -0.03, 0.02])

    pnl = horizon_pnl(signals, next_return, horizon=1, fee_rate=FEE)

    position = np.array([1, 1, 0, -1, 1])
    traded = np.abs(np.diff(position, prepend=0)) + np.array([0, 0, 0, 0, 1])
    np.testing.assert_allclose(pnl, position * next_return - FEE * traded)


def test_standing_aside_earns_nothing_on_every_row() -> None:
    pnl = horizon_pnl(np.full(5, HOLD), np.array([0.1, -0.2, 0.3, 0.0, 0.05]), horizon=4, fee_rate=FEE)

    np.testing.assert_array_equal(pnl, np.zeros(5))


def test_horizon_pnl_refuses_a_horizon_below_one_and_misshapen_run_flags() -> None:
    with pytest.raises(InvalidInputError, match="horizon"):
        horizon_pnl(np.array([BUY]), np.zeros(1), horizon=0, fee_rate=FEE)
    with pytest.raises(InvalidInputError, match="new_run"):
        horizon_pnl(np.array([BUY, BUY]), np.zeros(2), horizon=2, fee_rate=FEE, new_run=np.array([True]))
