"""Fuzzing candle files: random corruptions of real candles never crash validation.

Each example cuts a slice of one to three days from a real shared file, applies a few random
corruptions (rows dropped, duplicated, swapped or reordered; bad cells; shifted or re-encoded
timestamps; scaled prices; renamed, dropped or repeated columns), writes it as a CSV, and may then
damage the file itself (truncated, garbage bytes, empty, header only or missing). The file is loaded
through the `csv` source's path (`load_candles`) and through `retrain data check`'s
(`read_candle_file` + `validate_candles`). The only exceptions allowed are `CandleValidationError`,
whose report names at least one problem, each of them in the message, and `DataSourceError` for a file
that is not readable as a CSV at all, naming the file. Candles that pass form a clean table.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from functools import cache
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, event, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from retrain.data.candles import (
    CANDLE_COLUMNS,
    CANDLE_INTERVAL,
    CANDLES_PER_DAY,
    PRICE_COLUMNS,
    VALUE_COLUMNS,
)
from retrain.data.csv_source import read_candle_file
from retrain.data.loading import load_candles
from retrain.data.validation import DataQualityReport, validate_candles
from retrain.errors import CandleValidationError, DataSourceError
from retrain.settings import DataSettings
from tests.conftest import SHARED_DATA

FILES = (
    "BTCUSDT_BINANCE_15m_20220801_20230731.csv",  # the 2023-03-24 halt gap
    "BTCUSDT_FTX_15m_20211110_20220528.csv",  # partial buckets, USD-notional volume
    "BTCUSDT_BYBIT_15m_20241101_20250528.csv",
)
HALT = pd.Timestamp("2023-03-24T12:45:00Z")

BAD_NUMBERS = st.one_of(
    st.sampled_from(
        ["", "nan", "NaN", "inf", "-inf", "-1", "0", "-0", "1e308", "1e400", "-1e400", "null", "None"]
        + ["1,5", "0x10", " 12 ", "1_000", "١٢٣", "True", "12e", "--3", "5%"]
    ),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.text(max_size=12),
)
BAD_TIMESTAMPS = st.one_of(
    st.sampled_from(
        ["", "yesterday", "2024-13-45", "0", "-1", "1e30", "99999999999999999999", "nan", "inf"]
        + ["0001-01-01T00:00:00Z", "9999-12-31T23:45:00Z", "2023-03-24 12:00:00+09:00", "2023-03-24"]
        + ["1679661900000", "1679661900", "2023-03-24T12:00:00.000001Z", "24/03/2023 12:00"]
    ),
    st.integers(-(10**16), 10**16).map(str),  # epoch milliseconds, up to 300,000 years either side
    st.text(max_size=20),
)
COLUMN_NAMES = st.one_of(
    st.sampled_from(["Open", " close", "time", "date", "Timestamp", "vol", "", "open ", "timestamp"]),
    st.text(max_size=8),
)


@cache
def _recording(name: str) -> pd.DataFrame:
    """The whole file as the CSV source reads it (every cell a string)."""
    return read_candle_file(SHARED_DATA / name)


def _slice(data: st.DataObject) -> tuple[pd.DataFrame, int]:
    name = data.draw(st.sampled_from(FILES), label="file")
    frame = _recording(name)
    days = data.draw(st.integers(1, 3), label="days")
    rows = days * CANDLES_PER_DAY
    starts = st.integers(0, len(frame) - rows)
    if name == FILES[0]:
        halt = int(np.searchsorted(pd.to_datetime(frame["timestamp"], utc=True), HALT))
        starts = st.one_of(starts, st.integers(max(0, halt - rows + 1), halt))
    start = data.draw(starts, label="first row")
    return frame.iloc[start : start + rows].reset_index(drop=True), days


def _row(data: st.DataObject, frame: pd.DataFrame, label: str) -> int:
    return data.draw(st.integers(0, max(0, len(frame) - 1)), label=label)


def _present(frame: pd.DataFrame, columns: tuple[str, ...]) -> list[str]:
    return [column for column in columns if column in frame.columns]


def _as_read(frame: pd.DataFrame) -> pd.DataFrame:
    """The frame as `read_csv` would give it back: a fresh row index, and a repeated column name
    suffixed `.1`, `.2`..."""
    seen: dict[str, int] = {}
    names = []
    for name in map(str, frame.columns):
        names.append(f"{name}.{seen[name]}" if name in seen else name)
        seen[name] = seen.get(name, 0) + 1
    return frame.set_axis(names, axis=1).reset_index(drop=True)


def drop_rows(data: st.DataObject, frame: pd.DataFrame) -> pd.DataFrame:
    start, count = _row(data, frame, "drop from"), data.draw(st.integers(1, 20), label="rows dropped")
    return frame.drop(index=frame.index[start : start + count])


def duplicate_rows(data: st.DataObject, frame: pd.DataFrame) -> pd.DataFrame:
    start, count = _row(data, frame, "repeat from"), data.draw(st.integers(1, 5), label="rows repeated")
    return pd.concat([frame.iloc[: start + count], frame.iloc[start:]])


def swap_rows(data: st.DataObject, frame: pd.DataFrame) -> pd.DataFrame:
    first, second = _row(data, frame, "swap row"), _row(data, frame, "with row")
    order = np.arange(len(frame))
    order[[first, second]] = order[[second, first]]
    return frame.iloc[order]


def reorder_values(data: st.DataObject, frame: pd.DataFrame) -> pd.DataFrame:
    """A block's candles permuted while its timestamps stay in order."""
    start, count = _row(data, frame, "reorder from"), data.draw(st.integers(2, 200), label="rows reordered")
    columns = _present(frame, VALUE_COLUMNS)
    block = frame.index[start : start + count]
    seed = data.draw(st.integers(0, 2**32 - 1), label="seed")
    frame = frame.copy()
    frame.loc[block, columns] = frame.loc[block, columns].sample(frac=1.0, random_state=seed).to_numpy()
    return frame


def bad_number(data: st.DataObject, frame: pd.DataFrame) -> pd.DataFrame:
    columns = _present(frame, VALUE_COLUMNS)
    if not columns or frame.empty:
        return frame
    column = data.draw(st.sampled_from(columns), label="column")
    frame = frame.copy()
    frame.iloc[_row(data, frame, "bad cell row"), frame.columns.get_loc(column)] = data.draw(
        BAD_NUMBERS, label="value"
    )
    return frame


def bad_timestamp(data: st.DataObject, frame: pd.DataFrame) -> pd.DataFrame:
    if "timestamp" not in frame.columns or frame.empty:
        return frame
    frame = frame.copy()
    frame.iloc[_row(data, frame, "bad timestamp row"), frame.columns.get_loc("timestamp")] = data.draw(
        BAD_TIMESTAMPS, label="timestamp"
    )
    return frame


def shift_timestamps(data: st.DataObject, frame: pd.DataFrame) -> pd.DataFrame:
    if "timestamp" not in frame.columns:
        return frame
    start, count = _row(data, frame, "shift from"), data.draw(st.integers(1, 300), label="rows shifted")
    minutes = data.draw(st.integers(-20_000, 20_000), label="minutes")
    stamps = pd.to_datetime(frame["timestamp"], utc=True, errors="coerce", format="ISO8601")
    shifted = stamps.iloc[start : start + count] + pd.Timedelta(minutes=minutes)
    frame = frame.copy()
    frame.loc[shifted.index, "timestamp"] = shifted.dt.strftime("%Y-%m-%dT%H:%M:%SZ")
    return frame


def epoch_timestamps(data: st.DataObject, frame: pd.DataFrame) -> pd.DataFrame:
    """Rows from one on written as epoch milliseconds (a file appended to by another tool)."""
    if "timestamp" not in frame.columns:
        return frame
    start = _row(data, frame, "epoch from")
    stamps = pd.to_datetime(frame["timestamp"].iloc[start:], utc=True, errors="coerce", format="ISO8601")
    frame = frame.copy()
    milliseconds = stamps.dt.tz_convert(None).dt.as_unit("ms").to_numpy().view("int64")
    frame.loc[stamps.index, "timestamp"] = [
        "" if pd.isna(ts) else str(ms) for ts, ms in zip(stamps, milliseconds, strict=True)
    ]
    return frame


def scale_prices(data: st.DataObject, frame: pd.DataFrame) -> pd.DataFrame:
    columns = _present(frame, PRICE_COLUMNS)
    if not columns:
        return frame
    start = _row(data, frame, "scale from")
    factor = data.draw(
        st.sampled_from([100.0, 0.01, 1000.0, 1e-8, 1.02, 0.97, -1.0, 0.0, 1e300]), label="factor"
    )
    frame = frame.copy()
    for column in columns:
        numbers = pd.to_numeric(frame[column].iloc[start:], errors="coerce") * factor
        frame.loc[numbers.index, column] = numbers.map(repr)
    return frame


def rename_column(data: st.DataObject, frame: pd.DataFrame) -> pd.DataFrame:
    column = data.draw(st.sampled_from(list(frame.columns) or ["timestamp"]), label="renamed column")
    return frame.rename(columns={column: data.draw(COLUMN_NAMES, label="new name")})


def drop_column(data: st.DataObject, frame: pd.DataFrame) -> pd.DataFrame:
    return frame.drop(
        columns=[data.draw(st.sampled_from(CANDLE_COLUMNS), label="dropped column")], errors="ignore"
    )


def repeat_column(data: st.DataObject, frame: pd.DataFrame) -> pd.DataFrame:
    """A column written twice under the same name (read back as `name` and `name.1`)."""
    if frame.columns.empty:
        return frame
    column = data.draw(st.sampled_from(list(frame.columns)), label="repeated column")
    return pd.concat([frame, frame[[column]]], axis=1)


ROW_CORRUPTIONS: tuple[Callable[[st.DataObject, pd.DataFrame], pd.DataFrame], ...] = (
    drop_rows,
    duplicate_rows,
    swap_rows,
    reorder_values,
    bad_number,
    bad_timestamp,
    shift_timestamps,
    epoch_timestamps,
    scale_prices,
    rename_column,
    drop_column,
    repeat_column,
)


def _damage_file(data: st.DataObject, text: bytes) -> bytes:
    damage = data.draw(
        st.sampled_from(["none", "truncate", "garbage", "empty", "header only", "no header"]), label="file"
    )
    lines = text.splitlines(keepends=True)
    if damage == "truncate":
        return text[: data.draw(st.integers(0, len(text)), label="bytes kept")]
    if damage == "garbage":
        at = data.draw(st.integers(0, len(text)), label="garbage at")
        return text[:at] + data.draw(st.binary(min_size=1, max_size=20), label="garbage") + text[at:]
    if damage == "empty":
        return b""
    if damage == "header only":
        return b"".join(lines[:1])
    if damage == "no header":
        return b"".join(lines[1:])
    return text


def _assert_clean(table: pd.DataFrame) -> None:
    """What every caller of validated candles relies on."""
    index = table.index
    assert isinstance(index, pd.DatetimeIndex) and str(index.tz) == "UTC"
    assert index.is_unique and index.is_monotonic_increasing
    assert (index == index.floor(CANDLE_INTERVAL)).all()
    assert list(table.columns) == list(VALUE_COLUMNS)
    values = table.to_numpy(dtype="float64")
    assert np.isfinite(values).all()
    assert (table[list(PRICE_COLUMNS)] > 0).all().all() and (table["volume"] >= 0).all()
    assert (table["high"] >= table[["open", "close", "low"]].max(axis=1)).all()
    assert (table["low"] <= table[["open", "close"]].min(axis=1)).all()


def _assert_verdict(path: Path, days: int) -> None:
    data = DataSettings(source="csv", csv_path=path, days=days)
    loads: tuple[Callable[[], pd.DataFrame], ...] = (
        lambda: load_candles(data).candles,
        lambda: validate_candles(read_candle_file(path), data)[0],
    )
    for load in loads:
        try:
            table = load()
        except CandleValidationError as exc:
            event("refused")
            report = exc.report
            assert isinstance(report, DataQualityReport) and not report.usable
            assert report.problems, str(exc)
            for problem in report.problems:
                assert f"[{problem.check}]" in str(exc)
        except DataSourceError as exc:
            event("unreadable")
            assert str(path) in str(exc)
        else:
            event("usable")
            _assert_clean(table)


@hypothesis_settings(
    max_examples=200, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow]
)
@given(data=st.data())
def test_corrupted_real_candles_get_a_verdict_naming_the_problems(data: st.DataObject) -> None:
    frame, days = _slice(data)
    corruptions = data.draw(st.lists(st.sampled_from(ROW_CORRUPTIONS), max_size=3), label="corruptions")
    for corrupt in corruptions:
        frame = _as_read(corrupt(data, frame))
    text = _damage_file(data, frame.to_csv(index=False).encode())
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "candles.csv"
        path.write_bytes(text)
        _assert_verdict(path, days)


@pytest.mark.parametrize("name", FILES)
def test_uncorrupted_slices_pass(name: str) -> None:
    """The fuzzer's starting point is valid, so what it refuses is what it corrupted."""
    frame = _recording(name).iloc[-3 * CANDLES_PER_DAY :]
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "candles.csv"
        frame.to_csv(path, index=False)
        assert load_candles(DataSettings(source="csv", csv_path=path, days=3)).report.usable
