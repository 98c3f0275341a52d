"""Candle validation: each check on small hand-made tables and seeded demo candles."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd
import pytest

from retrain.data.demo import DemoSource
from retrain.data.validation import DataQualityReport, Finding, validate_candles
from retrain.errors import CandleValidationError
from retrain.settings import DataSettings, GapPolicy

END = pd.Timestamp("2024-06-01T00:00:00Z")
SETTINGS = DataSettings()


def _demo(days: int = 2) -> pd.DataFrame:
    return DemoSource(seed=3, end=END).fetch(days)


def _as_text(frame: pd.DataFrame) -> pd.DataFrame:
    """The table as `read_candle_file` gives a CSV: every cell a string, ISO-8601 timestamps."""
    text = frame.astype(str)
    text["timestamp"] = frame["timestamp"].dt.strftime("%Y-%m-%dT%H:%M:%SZ")
    return text


def _iso(frame: pd.DataFrame, row: int) -> str:
    return frame["timestamp"].iloc[row].strftime("%Y-%m-%dT%H:%M:%SZ")


def _problems(raw: pd.DataFrame, settings: DataSettings = SETTINGS, **kwargs: object) -> dict[str, Finding]:
    with pytest.raises(CandleValidationError) as caught:
        validate_candles(raw, settings, **kwargs)
    report = caught.value.report
    assert isinstance(report, DataQualityReport)
    assert not report.usable
    return {finding.check: finding for finding in report.problems}


def test_demo_candles_become_a_sorted_utc_float_table() -> None:
    raw = _demo()
    table, report = validate_candles(raw, SETTINGS)
    assert report.usable and not report.problems and not report.warnings
    assert isinstance(table.index, pd.DatetimeIndex)
    assert table.index.name == "timestamp"
    assert str(table.index.tz) == "UTC"
    assert table.index.is_monotonic_increasing
    assert list(table.columns) == ["open", "high", "low", "close", "volume"]
    assert (table.dtypes == "float64").all()
    assert report.rows == report.expected_rows == len(table) == len(raw)
    np.testing.assert_array_equal(table["close"].to_numpy(), raw["close"].to_numpy())


def test_text_table_read_from_csv_is_converted_to_numbers() -> None:
    raw = _demo()
    table, _ = validate_candles(_as_text(raw), SETTINGS)
    np.testing.assert_allclose(table["high"].to_numpy(), raw["high"].to_numpy(), rtol=1e-12)
    assert table.index[0] == raw["timestamp"].iloc[0]


def test_epoch_millisecond_timestamps_are_parsed_as_utc() -> None:
    raw = _as_text(_demo())
    raw["timestamp"] = (_demo()["timestamp"].astype("int64") // 1000).astype(str)
    table, _ = validate_candles(raw, SETTINGS)
    assert table.index[-1] == pd.Timestamp("2024-05-31T23:45:00Z")


def test_naive_datetimes_are_taken_as_utc() -> None:
    raw = _demo()
    raw["timestamp"] = raw["timestamp"].dt.tz_localize(None)
    table, _ = validate_candles(raw, SETTINGS)
    assert table.index[-1] == pd.Timestamp("2024-05-31T23:45:00Z")


def test_short_gap_is_a_warning_and_the_missing_candles_stay_absent() -> None:
    raw = _demo(days=30)
    missing = raw["timestamp"].iloc[50:55]
    table, report = validate_candles(raw.drop(index=range(50, 55)), SETTINGS)
    assert report.usable
    assert [w.check for w in report.warnings] == ["gaps"]
    assert len(report.gaps) == 1
    gap = report.gaps[0]
    assert (gap.start, gap.end, gap.missing_candles) == (missing.iloc[0], missing.iloc[-1], 5)
    assert report.missing_candles == report.longest_gap_candles == 5
    assert report.expected_rows == len(raw)
    assert len(table) == len(raw) - 5
    assert not table.index.isin(missing).any()


def test_gap_longer_than_the_policy_is_a_hard_problem() -> None:
    raw = _demo(days=30)
    problems = _problems(raw.drop(index=range(100, 120)))
    assert set(problems) == {"gap_too_long"}
    assert problems["gap_too_long"].timestamps == [_iso(raw, 100)]
    assert "20" in problems["gap_too_long"].message


def test_gap_policy_comes_from_the_settings() -> None:
    lenient = DataSettings(gaps=GapPolicy(max_gap_candles=20, max_missing_share=0.05))
    _, report = validate_candles(_demo(days=30).drop(index=range(100, 120)), lenient)
    assert report.usable and report.longest_gap_candles == 20


def test_too_many_missing_candles_in_total_is_a_hard_problem() -> None:
    raw = _demo()
    problems = _problems(raw.drop(index=range(1, len(raw) - 1, 10)))
    assert set(problems) == {"missing_share"}
    assert problems["missing_share"].count == 19


def test_missing_column_is_named() -> None:
    problems = _problems(_demo().drop(columns=["volume"]))
    assert set(problems) == {"missing_column"}
    assert "volume" in problems["missing_column"].message


@pytest.mark.parametrize(
    "raw",
    [pd.DataFrame(), pd.DataFrame(columns=["timestamp", "open", "high", "low", "close", "volume"])],
    ids=["no-columns", "header-only"],
)
def test_empty_table_is_a_hard_problem(raw: pd.DataFrame) -> None:
    assert set(_problems(raw)) == {"empty"}


def test_unparseable_timestamp_is_reported_by_row_number() -> None:
    raw = _as_text(_demo())
    raw.loc[7, "timestamp"] = "yesterday"
    problems = _problems(raw)
    assert problems["timestamp_unparseable"].timestamps == ["row 8"]
    assert "'yesterday'" in problems["timestamp_unparseable"].message


def test_a_row_without_a_usable_timestamp_is_named_by_its_row_number() -> None:
    raw = _as_text(_demo())
    raw.loc[7, ["timestamp", "close"]] = ["?", "x"]
    problems = _problems(raw)
    assert problems["text_in_number_column"].timestamps == ["row 8"]


def test_one_corrupt_cell_in_an_epoch_file_flags_only_its_row() -> None:
    raw = _as_text(_demo())
    raw["timestamp"] = (_demo()["timestamp"].astype("int64") // 1000).astype(str)
    raw.loc[3, "timestamp"] = "oops"
    problems = _problems(raw)
    assert problems["timestamp_unparseable"].count == 1


def test_text_in_a_number_column_names_the_column_and_the_row() -> None:
    raw = _as_text(_demo())
    raw.loc[12, "close"] = "n/a"
    problems = _problems(raw)
    finding = problems["text_in_number_column"]
    assert "'close'" in finding.message and "'n/a'" in finding.message
    assert finding.timestamps == [_iso(_demo(), 12)]


@pytest.mark.parametrize(
    ("value", "check"), [(np.nan, "nan"), ("NaN", "nan"), ("", "nan"), (np.inf, "inf"), ("-inf", "inf")]
)
def test_nan_and_inf_values_are_hard_problems(value: object, check: str) -> None:
    raw = _demo().astype({"low": object})
    raw.loc[9, "low"] = value
    problems = _problems(raw)
    assert problems[check].timestamps == [_iso(raw, 9)]
    assert "'low'" in problems[check].message


def test_duplicate_timestamps_are_a_hard_problem() -> None:
    raw = _demo()
    problems = _problems(pd.concat([raw.iloc[:11], raw.iloc[10:]], ignore_index=True))
    assert problems["duplicate_timestamp"].timestamps == [_iso(raw, 10)]


def test_shuffled_rows_are_a_hard_problem() -> None:
    problems = _problems(_demo().sample(frac=1.0, random_state=0))
    assert set(problems) == {"unsorted"}
    assert problems["unsorted"].count > 50


def test_timestamp_off_the_15_minute_grid_is_a_hard_problem() -> None:
    raw = _demo()
    raw.loc[20, "timestamp"] += pd.Timedelta(minutes=1)
    problems = _problems(raw)
    assert problems["off_grid"].timestamps == [_iso(raw, 20)]


def _swap_high_low(raw: pd.DataFrame) -> None:
    high, low = raw.at[5, "high"], raw.at[5, "low"]
    raw.at[5, "high"], raw.at[5, "low"] = low, high


def _close_above_high(raw: pd.DataFrame) -> None:
    raw.loc[5, "close"] = raw.loc[5, "high"] * 1.01


def _zero_price(raw: pd.DataFrame) -> None:
    raw.loc[5, ["open", "low"]] = 0.0


def _negative_volume(raw: pd.DataFrame) -> None:
    raw.loc[5, "volume"] = -1.0


@pytest.mark.parametrize(
    ("corrupt", "check"),
    [
        (_swap_high_low, "high_below_low"),
        (_close_above_high, "open_close_outside_range"),
        (_zero_price, "non_positive_price"),
        (_negative_volume, "negative_volume"),
    ],
)
def test_inconsistent_candle_values_are_hard_problems(
    corrupt: Callable[[pd.DataFrame], None], check: str
) -> None:
    raw = _demo()
    corrupt(raw)
    problems = _problems(raw)
    assert problems[check].timestamps == [_iso(raw, 5)]


def test_zero_volume_is_accepted_as_during_a_halt() -> None:
    raw = _demo()
    raw.loc[3:6, "volume"] = 0.0
    _, report = validate_candles(raw, SETTINGS)
    assert report.usable


def test_coverage_of_the_requested_window_is_reported() -> None:
    _, report = validate_candles(_demo(days=10), SETTINGS, days=10)
    assert report.coverage == pytest.approx(1.0)


def test_coverage_below_the_minimum_is_a_hard_problem() -> None:
    problems = _problems(_demo(days=9), days=10)
    assert set(problems) == {"coverage"}
    assert "90.0%" in problems["coverage"].message


def test_stale_last_candle_is_a_hard_problem_when_freshness_is_checked() -> None:
    raw = _demo()
    late = END + pd.Timedelta(minutes=SETTINGS.stale_after_minutes + 1)
    problems = _problems(raw, now=late, check_freshness=True)
    assert problems["stale"].timestamps == ["2024-05-31T23:45:00Z"]
    _, unchecked = validate_candles(raw, SETTINGS, now=late)
    assert unchecked.staleness_minutes is None


def test_fresh_last_candle_passes_and_reports_its_age() -> None:
    _, report = validate_candles(_demo(), SETTINGS, now=END + pd.Timedelta(minutes=3), check_freshness=True)
    assert report.staleness_minutes == pytest.approx(3.0)


def test_every_problem_is_listed_at_once() -> None:
    raw = _as_text(_demo(days=30))
    raw.loc[4, "close"] = "abc"
    raw.loc[8, "volume"] = "-5"
    raw.loc[15, "timestamp"] = raw.loc[14, "timestamp"]
    raw.loc[30, "high"] = "inf"
    raw.loc[40, "timestamp"] = "2024-13-45"
    with pytest.raises(CandleValidationError) as caught:
        validate_candles(raw, SETTINGS)
    checks = {finding.check for finding in caught.value.report.problems}
    assert checks == {
        "text_in_number_column",
        "negative_volume",
        "duplicate_timestamp",
        "inf",
        "timestamp_unparseable",
    }
    for check in checks:
        assert f"[{check}]" in str(caught.value)


def test_a_finding_shows_ten_timestamps_and_the_total() -> None:
    raw = _demo()
    raw.loc[0:29, "volume"] = -1.0
    with pytest.raises(CandleValidationError) as caught:
        validate_candles(raw, SETTINGS)
    (finding,) = caught.value.report.problems
    assert finding.timestamps == [_iso(raw, row) for row in range(10)]
    assert finding.count == 30
    assert "(+20 more)" in str(caught.value)


def test_report_round_trips_through_json() -> None:
    _, report = validate_candles(_demo(days=30).drop(index=[30, 31]), SETTINGS, days=30)
    restored = DataQualityReport.model_validate_json(report.model_dump_json())
    assert restored.gaps == report.gaps
    assert restored.warnings == report.warnings
    assert '"usable":true' in report.model_dump_json()


def test_text_and_markdown_show_the_gaps_and_the_problems() -> None:
    demo = _demo(days=30)
    raw = demo.drop(index=[30, 31])
    raw.loc[40, "volume"] = -1.0
    with pytest.raises(CandleValidationError) as caught:
        validate_candles(raw, SETTINGS)
    report = caught.value.report
    gap = f"{_iso(demo, 30)} -> {_iso(demo, 31)}"
    for text in (report.format_text(), report.to_markdown()):
        assert "negative_volume" in text and _iso(demo, 40) in text
    assert gap in report.format_text()
    assert f"| {_iso(demo, 30)} | {_iso(demo, 31)} | 2 |" in report.to_markdown()
    assert "NOT usable" in report.format_text() and "NOT usable" in report.to_markdown()
