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
