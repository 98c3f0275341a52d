"""Direction-scrambled candles: real sizes, ranges, volume and timestamps, random directions, valid OHLC."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from retrain.data.csv_source import read_candle_file
from retrain.data.scramble import main, scramble_directions
from retrain.data.validation import validate_candles
from retrain.errors import InvalidInputError
from retrain.settings import DataSettings

RECORDING = "BTCUSDT_BINANCE_15m_20230801_20240731.csv"
ROWS = 4 * 96 * 7  # four weeks


@pytest.fixture(scope="module")
def real(shared_data: Path) -> pd.DataFrame:
    raw = read_candle_file(shared_data / RECORDING).iloc[:ROWS]
    return validate_candles(raw, DataSettings())[0]


@pytest.fixture(scope="module")
def scrambled(real: pd.DataFrame) -> pd.DataFrame:
    return scramble_directions(real, seed=1)


def _log(frame: pd.DataFrame) -> pd.DataFrame:
    return np.log(frame[["open", "high", "low", "close"]])


def test_keeps_every_moves_size_range_gap_and_the_volume(real: pd.DataFrame, scrambled: pd.DataFrame) -> None:
    before, after = _log(real), _log(scrambled)

    np.testing.assert_allclose(
        (after.close - after.open).abs(), (before.close - before.open).abs(), atol=1e-12
    )
    np.testing.assert_allclose(after.high - after.low, before.high - before.low, atol=1e-12)
    gap_before = (before.open - before.close.shift()).abs().iloc[1:]
    gap_after = (after.open - after.close.shift()).abs().iloc[1:]
    np.testing.assert_allclose(gap_after, gap_before, atol=1e-9)
    pd.testing.assert_series_equal(scrambled["volume"], real["volume"])
    pd.testing.assert_index_equal(scrambled.index, real.index)


def test_flips_about_half_of_the_directions(real: pd.DataFrame, scrambled: pd.DataFrame) -> None:
    moved = real.close != real.open
    flipped = np.sign(scrambled.close - scrambled.open) != np.sign(real.close - real.open)

    assert flipped[moved].mean() == pytest.approx(0.5, abs=0.03)


def test_a_flipped_candle_is_the_mirror_of_the_real_one(real: pd.DataFrame, scrambled: pd.DataFrame) -> None:
    before, after = _log(real), _log(scrambled)
    flipped = (np.sign(after.close - after.open) != np.sign(before.close - before.open)) & (
        real.close != real.open
    )

    np.testing.assert_allclose(
        (after.high - after.open)[flipped], (before.open - before.low)[flipped], atol=1e-12
    )
    np.testing.assert_allclose(
        (after.open - after.low)[flipped], (before.high - before.open)[flipped], atol=1e-12
    )


def test_scrambled_candles_are_consistent_and_pass_validation(scrambled: pd.DataFrame) -> None:
    assert (scrambled.high >= scrambled[["open", "close"]].max(axis=1)).all()
    assert (scrambled.low <= scrambled[["open", "close"]].min(axis=1)).all()
    assert (scrambled.low > 0).all()

    validated, report = validate_candles(scrambled.reset_index(), DataSettings())

    assert len(validated) == len(scrambled)
    assert report.warnings == []


@pytest.mark.parametrize("seed", [2, 3, 4])
def test_directions_do_not_predict_the_next_direction(real: pd.DataFrame, seed: int) -> None:
    """The sign of a candle's move says nothing about the sign of the next one (signs, not returns: one
    crash candle followed by a rebound dominates a Pearson autocorrelation of fat-tailed returns)."""
    directions = np.sign(np.log(scramble_directions(real, seed=seed).close).diff())

    assert abs(directions.autocorr()) < 0.06  # about 3 standard errors over 2,688 candles


def test_same_seed_same_copy_other_seed_other_copy(real: pd.DataFrame, scrambled: pd.DataFrame) -> None:
    pd.testing.assert_frame_equal(scramble_directions(real, seed=1), scrambled)
    assert not scramble_directions(real, seed=2).close.equals(scrambled.close)


def test_command_line_writes_a_scrambled_csv_that_validates(shared_data: Path, tmp_path: Path) -> None:
    source = tmp_path / "real.csv"
    read_candle_file(shared_data / RECORDING).iloc[:500].to_csv(source, index=False)
    target = tmp_path / "out" / "scrambled.csv"

    assert main([str(source), str(target), "--seed", "3"]) == 0

    written = read_candle_file(target)
    validated, _ = validate_candles(written, DataSettings())
    assert len(validated) == 500
    assert written["timestamp"].equals(read_candle_file(source)["timestamp"])


def test_refuses_non_positive_prices_naming_the_row() -> None:
    candles = pd.DataFrame({"open": [1.0, 2.0], "high": [1.0, 2.0], "low": [1.0, 0.0], "close": [1.0, 2.0]})

    with pytest.raises(InvalidInputError, match="first at row 1"):
        scramble_directions(candles, seed=0)


def test_command_line_reports_a_bad_file_without_a_traceback(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    assert main([str(tmp_path / "missing.csv"), str(tmp_path / "out.csv")]) == 1
    assert "candle file not found" in capsys.readouterr().err
