"""`retrain data check PATH`: the real recorded files pass; corrupted copies fail naming the problem."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from retrain.cli import app
from retrain.data.demo import DemoSource

HALT_GAP = "2023-03-24T12:45:00Z -> 2023-03-24T13:45:00Z (5 missing candle(s))"
FILES_WITH_HALT = {
    "BTCUSDT_BINANCE_15m_20211101_20251022.csv",
    "BTCUSDT_BINANCE_15m_20220801_20230731.csv",
    "ETHUSDT_BINANCE_15m_20220101_20260305.csv",
}
SLICE_SOURCE = "BTCUSDT_BINANCE_15m_20230801_20240731.csv"

runner = CliRunner()


def _check(*args: str) -> tuple[int, str]:
    result = runner.invoke(app, ["data", "check", *args])
    return result.exit_code, result.output


def test_every_shared_file_is_usable_and_the_halt_gap_is_reported(shared_data: Path) -> None:
    files = sorted(shared_data.glob("*.csv"))
    assert len(files) >= 8
    for path in files:
        code, output = _check(str(path))
        assert code == 0, f"{path.name}:\n{output}"
        assert "Verdict: usable" in output
        assert (HALT_GAP in output) == (path.name in FILES_WITH_HALT), f"{path.name}:\n{output}"


def test_json_report_lists_the_halt_gap(shared_data: Path) -> None:
    path = shared_data / "BTCUSDT_BINANCE_15m_20220801_20230731.csv"
    result = runner.invoke(app, ["data", "check", str(path), "--json"])
    assert result.exit_code == 0
    report = json.loads(result.stdout)
    assert report["usable"] is True
    assert report["gaps"] == [
        {"start": "2023-03-24T12:45:00Z", "end": "2023-03-24T13:45:00Z", "missing_candles": 5}
    ]
    assert report["rows"] == 35_035 and report["expected_rows"] == 35_040


def test_days_checks_only_the_last_days_of_the_file(shared_data: Path) -> None:
    path = shared_data / "BTCUSDT_BINANCE_15m_20220801_20230731.csv"
    result = runner.invoke(app, ["data", "check", str(path), "--days", "30", "--json"])
    assert result.exit_code == 0
    report = json.loads(result.stdout)
    assert report["rows"] == 30 * 96
    assert report["last_timestamp"] == "2023-07-31T23:45:00Z"
    assert report["coverage"] == 1.0


@pytest.fixture()
def candle_slice(shared_data: Path) -> pd.DataFrame:
    """300 real candles as the CSV source reads them (text cells)."""
    return pd.read_csv(shared_data / SLICE_SOURCE, dtype=str, nrows=300)


def _duplicate_row(frame: pd.DataFrame) -> pd.DataFrame:
    return pd.concat([frame.iloc[:101], frame.iloc[100:]], ignore_index=True)


def _shuffle_rows(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.sample(frac=1.0, random_state=1)


def _blank_close(frame: pd.DataFrame) -> pd.DataFrame:
    frame.loc[100, "close"] = None
    return frame


def _high_below_low(frame: pd.DataFrame) -> pd.DataFrame:
    frame.loc[100, ["high", "low"]] = [frame.at[100, "low"], frame.at[100, "high"]]
    return frame


def _negative_volume(frame: pd.DataFrame) -> pd.DataFrame:
    frame.loc[100, "volume"] = "-3.5"
    return frame


def _drop_volume(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.drop(columns=["volume"])


def _text_in_close(frame: pd.DataFrame) -> pd.DataFrame:
    frame.loc[100, "close"] = "error"
    return frame


ROW_100 = "2023-08-02T01:00:00Z"


@pytest.mark.parametrize(
    ("corrupt", "expected"),
    [
        (_duplicate_row, ["[duplicate_timestamp]", ROW_100]),
        (_shuffle_rows, ["[unsorted]"]),
        (_blank_close, ["[nan]", "'close'", ROW_100]),
        (_high_below_low, ["[high_below_low]", ROW_100]),
        (_negative_volume, ["[negative_volume]", ROW_100]),
        (_drop_volume, ["[missing_column]", "volume"]),
        (_text_in_close, ["[text_in_number_column]", "'close'", "'error'", ROW_100]),
    ],
    ids=lambda value: getattr(value, "__name__", ""),
)
def test_corrupted_file_is_unusable_and_the_problem_is_named(
    candle_slice: pd.DataFrame,
    tmp_path: Path,
    corrupt: Callable[[pd.DataFrame], pd.DataFrame],
    expected: list[str],
) -> None:
    path = tmp_path / "candles.csv"
    corrupt(candle_slice.copy()).to_csv(path, index=False)
    code, output = _check(str(path))
    assert code == 1, output
    assert "Verdict: NOT usable" in output
    for fragment in expected:
        assert fragment in output


def test_empty_file_is_unusable(tmp_path: Path) -> None:
    path = tmp_path / "empty.csv"
    path.write_text("")
    code, output = _check(str(path))
    assert code == 1
    assert "[empty]" in output


def test_unreadable_file_is_unusable(tmp_path: Path) -> None:
    path = tmp_path / "candles.parquet"
    path.write_bytes(b"not parquet")
    code, output = _check(str(path))
    assert code == 1
    assert "cannot read candle file" in output


def test_unreadable_file_gives_a_json_answer_with_json(tmp_path: Path) -> None:
    path = tmp_path / "candles.parquet"
    path.write_bytes(b"not parquet")
    result = runner.invoke(app, ["data", "check", str(path), "--json"])
    assert result.exit_code == 1
    assert json.loads(result.stdout)["usable"] is False


@pytest.mark.parametrize(
    "args",
    [["does-not-exist.csv"], ["{file}", "--bogus"], ["{file}", "--days", "0"], ["{file}", "--days", "x"], []],
    ids=["nonexistent-path", "bad-option", "days-zero", "days-not-a-number", "no-path"],
)
def test_usage_errors_exit_2(tmp_path: Path, args: list[str]) -> None:
    file = tmp_path / "candles.csv"
    file.write_text("timestamp,open,high,low,close,volume\n")
    code, output = _check(*(arg.format(file=file) for arg in args))
    assert code == 2, output


def test_parquet_file_with_typed_columns_is_checked(tmp_path: Path) -> None:
    path = tmp_path / "demo.parquet"
    DemoSource(seed=5, end=pd.Timestamp("2024-06-01T00:00:00Z")).fetch(3).to_parquet(path)
    code, output = _check(str(path))
    assert code == 0, output
    assert "Rows: 288" in output


PRICES = ["open", "high", "low", "close"]
W2_FILE = "BTCUSDT_BINANCE_15m_20220801_20230731.csv"
ETH_FILE = "ETHUSDT_BINANCE_15m_20220101_20260305.csv"
SPLICE_AT = "2024-07-01T00:00:00Z"


def _problems_of(path: Path) -> dict[str, dict[str, object]]:
    result = runner.invoke(app, ["data", "check", str(path), "--json"])
    assert result.exit_code == 1, result.output
    report = json.loads(result.stdout)
    assert report["usable"] is False
    return {problem["check"]: problem for problem in report["problems"]}


def _last_days(shared_data: Path, name: str, days: int) -> pd.DataFrame:
    """The file's last `days` days as the CSV source reads them, prices as numbers."""
    frame = pd.read_csv(shared_data / name, dtype={"timestamp": str})
    return frame.iloc[-days * 96 :].reset_index(drop=True)


def _write(frame: pd.DataFrame, path: Path) -> Path:
    frame.to_csv(path, index=False)
    return path


def test_every_shared_file_passes_the_continuity_checks(shared_data: Path) -> None:
    """No real file trips `data.continuity` (the measured margins are in its field descriptions)."""
    for path in sorted(shared_data.glob("*.csv")):
        result = runner.invoke(app, ["data", "check", str(path), "--json"])
        report = json.loads(result.stdout)
        assert result.exit_code == 0 and report["problems"] == [], f"{path.name}: {report['problems']}"


def test_last_three_weeks_reordered_with_timestamps_rewritten_is_refused(
    shared_data: Path, tmp_path: Path
) -> None:
    """The issue's case: every row of the last 21 days is a real candle, at a timestamp kept in order."""
    frame = _last_days(shared_data, SLICE_SOURCE, 60)
    block = frame.index[-21 * 96 :]
    values = ["open", "high", "low", "close", "volume"]
    frame.loc[block, values] = frame.loc[block, values].sample(frac=1.0, random_state=0).to_numpy()
    problems = _problems_of(_write(frame, tmp_path / "reordered.csv"))
    assert "open_gap" in problems
    named = pd.to_datetime(problems["open_gap"]["timestamps"], utc=True)
    assert (named >= pd.Timestamp(frame.at[block[0], "timestamp"])).all()
    assert problems["open_gap"]["count"] > len(block) // 2


def test_series_spliced_from_another_market_is_refused_at_the_splice(
    shared_data: Path, tmp_path: Path
) -> None:
    """ETH/USDT candles pasted into BTC/USDT from 2024-07-01 on, at the same timestamps."""
    frame = _last_days(shared_data, SLICE_SOURCE, 60).set_index("timestamp")
    eth = pd.read_csv(shared_data / ETH_FILE, dtype={"timestamp": str}).set_index("timestamp")
    spliced = frame.index[frame.index >= SPLICE_AT]
    frame.loc[spliced] = eth.loc[spliced, frame.columns].to_numpy()
    problems = _problems_of(_write(frame.reset_index(), tmp_path / "spliced.csv"))
    assert set(problems) == {"open_gap", "price_jump"}
    assert problems["open_gap"]["timestamps"] == problems["price_jump"]["timestamps"] == [SPLICE_AT]


def test_price_unit_change_in_the_middle_is_refused_at_the_change(shared_data: Path, tmp_path: Path) -> None:
    frame = _last_days(shared_data, SLICE_SOURCE, 60)
    changed = frame["timestamp"] >= SPLICE_AT
    frame.loc[changed, PRICES] *= 100
    problems = _problems_of(_write(frame, tmp_path / "x100.csv"))
    assert set(problems) == {"open_gap", "price_jump"}
    assert problems["open_gap"]["timestamps"] == problems["price_jump"]["timestamps"] == [SPLICE_AT]


def test_price_unit_change_right_after_the_halt_gap_is_refused(shared_data: Path, tmp_path: Path) -> None:
    """Across the 2023-03-24 halt the open is not compared with the close before it: the move check,
    scaled to the 6 candles the move spans, names the first candle after the gap."""
    frame = pd.read_csv(shared_data / W2_FILE, dtype={"timestamp": str})
    after_halt = "2023-03-24T14:00:00Z"
    frame.loc[frame["timestamp"] >= after_halt, PRICES] *= 100
    problems = _problems_of(_write(frame, tmp_path / "x100-after-halt.csv"))
    assert set(problems) == {"price_jump"}
    assert problems["price_jump"]["timestamps"] == [after_halt]
