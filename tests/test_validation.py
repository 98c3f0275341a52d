"""Candle validation: each check on small hand-made tables and seeded demo candles."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd
import pytest

from retrain.data.demo import DemoSource
from retrain.data.validation import DataQualityReport, Finding, validate_candles
from retrain.errors import CandleValidationError
from retrain.settings import ContinuityPolicy, DataSettings, GapPolicy

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


@pytest.mark.parametrize(
    "value",
    ["-1", "-2024", "-99999999999999", "9000000000000000"],
    ids=["year-1", "year-2024", "ms-1199", "ms+287k"],
)
def test_timestamp_outside_the_years_1_to_9999_is_unusable_not_a_crash(value: str) -> None:
    """Found by the fuzzer: pandas reads "-1" as the ISO-8601 year -1 and huge epoch milliseconds as
    years far beyond 9999, which no report (Python datetime) can hold."""
    raw = _as_text(_demo())
    raw.loc[7, "timestamp"] = value
    problems = _problems(raw)
    assert problems["timestamp_unparseable"].timestamps == ["row 8"]
    assert repr(value) in problems["timestamp_unparseable"].message


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


def _open_at(raw: pd.DataFrame, row: int, factor: float) -> None:
    """Candle `row` opens `factor` times the previous close (its range widened to hold the open)."""
    raw.loc[row, "open"] = raw.loc[row - 1, "close"] * factor
    raw.loc[row, "high"] = max(raw.loc[row, "high"], raw.loc[row, "open"])
    raw.loc[row, "low"] = min(raw.loc[row, "low"], raw.loc[row, "open"])


def _scale_from(raw: pd.DataFrame, row: int, factor: float) -> None:
    """Every price from candle `row` on multiplied by `factor`, as a price unit change would write them."""
    raw.loc[row:, ["open", "high", "low", "close"]] *= factor


def test_candle_opening_away_from_the_previous_close_is_a_hard_problem() -> None:
    raw = _demo()
    _open_at(raw, 50, 1.03)
    problems = _problems(raw)
    assert set(problems) == {"open_gap"}
    assert problems["open_gap"].timestamps == [_iso(raw, 50)]
    assert "3.00%" in problems["open_gap"].message and "max_open_gap" in problems["open_gap"].message


def test_open_after_missing_candles_is_not_compared_with_the_close_before_the_gap() -> None:
    raw = _demo(days=30)
    _open_at(raw, 55, 1.03)
    _, report = validate_candles(raw.drop(index=range(50, 55)), SETTINGS)
    assert report.usable
    assert [w.check for w in report.warnings] == ["gaps"]


def test_close_to_close_move_beyond_the_mad_bound_is_a_hard_problem() -> None:
    """A genuine-looking candle from the old price level to x100: its open follows the previous close,
    so only the move check can see it."""
    raw = _demo(days=10)
    _scale_from(raw, 300, 100.0)
    raw.loc[300, ["open", "low"]] = raw.loc[299, "close"]
    problems = _problems(raw)
    assert set(problems) == {"price_jump"}
    assert problems["price_jump"].timestamps == [_iso(raw, 300)]
    assert problems["price_jump"].count == 1
    assert "max_move_mads" in problems["price_jump"].message


def test_price_unit_change_across_missing_candles_is_still_caught_by_the_move_check() -> None:
    raw = _demo(days=30)
    _scale_from(raw, 55, 100.0)
    problems = _problems(raw.drop(index=range(50, 55)))
    assert set(problems) == {"price_jump"}
    assert problems["price_jump"].timestamps == [_iso(raw, 55)]


def test_price_unit_change_names_both_continuity_checks_at_the_change() -> None:
    raw = _demo(days=10)
    _scale_from(raw, 400, 0.01)
    problems = _problems(raw)
    assert set(problems) == {"open_gap", "price_jump"}
    assert problems["open_gap"].timestamps == problems["price_jump"].timestamps == [_iso(raw, 400)]


@pytest.mark.parametrize(("step", "usable"), [(1.002, True), (1.01, False)], ids=["0.2%", "1%"])
def test_move_in_a_window_of_unchanged_prices_is_measured_against_the_mad_floor(
    step: float, usable: bool
) -> None:
    """Unchanged prices have a MAD of 0: the `min_mad` floor (5e-5) makes a 0.2% step 40 MADs, not
    infinitely many, while a 1% step (200 MADs) is still a jump."""
    raw = _demo()
    price = raw.loc[0, "open"]
    raw.loc[:, ["open", "high", "low", "close"]] = price
    raw.loc[150:, ["open", "high", "low", "close"]] = price * step
    raw.loc[150, ["open", "low"]] = price
    if usable:
        assert validate_candles(raw, SETTINGS)[1].usable
    else:
        assert _problems(raw)["price_jump"].timestamps == [_iso(raw, 150)]


def test_continuity_thresholds_come_from_the_settings() -> None:
    raw = _demo()
    _open_at(raw, 50, 1.01)
    validate_candles(raw, SETTINGS)
    strict = DataSettings(continuity=ContinuityPolicy(max_open_gap=0.005))
    assert set(_problems(raw, strict)) == {"open_gap"}
