"""ExchangeSource and its Parquet cache against a fake bitbank on 127.0.0.1 replaying real candles."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pytest
from fake_bitbank import Clock, FakeBitbank, Fault, day_path, load_recording, retime

from retrain.data.candle_cache import CandleCache
from retrain.data.candles import CANDLE_COLUMNS, CANDLE_INTERVAL, CANDLES_PER_DAY, last_closed_candle
from retrain.data.exchange import ExchangeSource, rebase_api_urls
from retrain.errors import ConfigError, DataSourceError, ExchangeError
from retrain.settings import DataSettings

RECORDING = "BTCUSDT_BINANCE_15m_20230801_20240731.csv"
NOW = pd.Timestamp("2025-03-10 10:07", tz="UTC")  # the candle opened at 10:00 is still open
CLIENT_TIMEOUT_S = 5.0  # generous: a loaded machine must not turn a normal answer into a timeout
SHORT_TIMEOUT_S = 0.5  # for the held-answer fault only; the fake holds it far longer

MakeSource = Callable[..., ExchangeSource]


@pytest.fixture(scope="module")
def recording(shared_data: Path) -> pd.DataFrame:
    """Real candles re-timed to end a few days after NOW; the fake publishes only those opened by now."""
    return retime(load_recording(shared_data / RECORDING), NOW + pd.Timedelta(days=3))


@pytest.fixture
def clock() -> Clock:
    return Clock(NOW)


@pytest.fixture
def fake(recording: pd.DataFrame, clock: Clock) -> Iterator[FakeBitbank]:
    with FakeBitbank(recording, now=clock, hold_s=20 * SHORT_TIMEOUT_S) as server:
        yield server


@pytest.fixture
def sleeps() -> list[float]:
    return []


@pytest.fixture
def make_source(fake: FakeBitbank, clock: Clock, sleeps: list[float], tmp_path: Path) -> MakeSource:
    def make(**overrides: object) -> ExchangeSource:
        values: dict[str, object] = {
            "api_url": fake.url,
            "cache_dir": tmp_path / "cache",
            "request_timeout_s": CLIENT_TIMEOUT_S,
            "backoff_base_s": 0.0,
            **overrides,
        }
        return ExchangeSource(DataSettings.model_validate(values), now=clock, sleep=sleeps.append)

    return make


def expected_window(recording: pd.DataFrame, now: pd.Timestamp, days: int) -> pd.DataFrame:
    end = last_closed_candle(now)
    start = end - (days * CANDLES_PER_DAY - 1) * CANDLE_INTERVAL
    stamps = recording["timestamp"]
    return recording[(stamps >= start) & (stamps <= end)].reset_index(drop=True)[list(CANDLE_COLUMNS)]


def cached(source: ExchangeSource) -> pd.DataFrame:
    return pd.read_parquet(source.cache.path)


def test_fetch_covers_n_days_across_daily_pages_with_the_replayed_candles(
    make_source: MakeSource, fake: FakeBitbank, recording: pd.DataFrame
) -> None:
    candles = make_source().fetch(10)

    pd.testing.assert_frame_equal(candles, expected_window(recording, NOW, 10))
    assert len(candles) == 10 * CANDLES_PER_DAY
    days = pd.date_range(NOW.floor("D") - pd.Timedelta(days=10), NOW.floor("D"), freq="D")
    assert fake.candle_requests() == {day_path("btc_jpy", day): 1 for day in days}


def test_open_candle_is_neither_returned_nor_cached(make_source: MakeSource, recording: pd.DataFrame) -> None:
    open_candle = NOW.floor(CANDLE_INTERVAL)
    assert (recording["timestamp"] == open_candle).any()  # the fake does publish it, as bitbank does
    source = make_source()

    candles = source.fetch(1)

    assert candles["timestamp"].iloc[-1] == open_candle - CANDLE_INTERVAL
    assert cached(source)["timestamp"].max() == open_candle - CANDLE_INTERVAL


def test_warm_cache_downloads_only_the_last_cached_day_and_new_days(
    make_source: MakeSource, fake: FakeBitbank, clock: Clock, recording: pd.DataFrame
) -> None:
    make_source().fetch(5)
    fake.reset_counts()
    clock.advance(pd.Timedelta(days=1))
    source = make_source()

    candles = source.fetch(5)

    assert fake.candle_requests() == {
        day_path("btc_jpy", NOW): 1,
        day_path("btc_jpy", NOW + pd.Timedelta(days=1)): 1,
    }
    pd.testing.assert_frame_equal(candles, expected_window(recording, clock.now, 5))
    described = source.describe()
    assert described["candles_from_cache"] == CANDLES_PER_DAY * 5 - CANDLES_PER_DAY - 40
    assert described["candles_from_network"] == CANDLES_PER_DAY + 40
    assert described["demo"] is False


def test_refetched_last_cached_day_overrides_the_cached_candles(
    make_source: MakeSource, clock: Clock, recording: pd.DataFrame
) -> None:
    source = make_source()
    source.fetch(2)
    stale = cached(source)
    stale.loc[stale.index[-1], ["high", "close"]] = [1.0, 1.0]  # as if cached while still forming
    source.cache.save(stale, last_closed=last_closed_candle(clock.now))
    clock.advance(pd.Timedelta(hours=1))

    candles = make_source().fetch(2)

    pd.testing.assert_frame_equal(candles, expected_window(recording, clock.now, 2))


def test_cache_file_is_replaced_without_leaving_temp_files(make_source: MakeSource, clock: Clock) -> None:
    source = make_source()
    source.fetch(2)
    clock.advance(pd.Timedelta(hours=6))

    source.fetch(2)

    files = sorted(path.name for path in source.cache.path.parent.iterdir())
    assert files == [source.cache.path.name, source.cache.lock_path.name]
    assert cached(source)["timestamp"].max() == last_closed_candle(clock.now)


def test_failed_cache_write_keeps_the_previous_file(tmp_path: Path, recording: pd.DataFrame) -> None:
    cache = CandleCache(tmp_path, "bitbank", "BTC/JPY", "15m")
    candles = recording.iloc[:10]
    cache.save(candles, last_closed=candles["timestamp"].iloc[-1])
    unwritable = candles.assign(volume=[object()] * len(candles))

    with pytest.raises(pa.ArrowException):
        cache.save(unwritable, last_closed=candles["timestamp"].iloc[-1])

    assert sorted(path.name for path in tmp_path.iterdir()) == [cache.path.name]
    pd.testing.assert_frame_equal(pd.read_parquet(cache.path), candles.reset_index(drop=True))


def test_cache_drops_candles_after_the_last_closed_one(tmp_path: Path, recording: pd.DataFrame) -> None:
    cache = CandleCache(tmp_path, "bitbank", "BTC/JPY", "15m")
    candles = recording.iloc[:10]
    last_closed = candles["timestamp"].iloc[6]

    cache.save(candles, last_closed=last_closed)

    assert cache.load(last_closed=candles["timestamp"].iloc[-1])["timestamp"].max() == last_closed


@pytest.mark.parametrize("fault", [Fault.HTTP_500, Fault.HTTP_429, Fault.TIMEOUT, Fault.MALFORMED_JSON])
def test_transient_fault_is_retried_then_succeeds(
    make_source: MakeSource, fake: FakeBitbank, recording: pd.DataFrame, sleeps: list[float], fault: Fault
) -> None:
    fake.inject(fault, fault)
    timeout = SHORT_TIMEOUT_S if fault is Fault.TIMEOUT else CLIENT_TIMEOUT_S

    candles = make_source(backoff_base_s=0.5, request_timeout_s=timeout).fetch(1)

    pd.testing.assert_frame_equal(candles, expected_window(recording, NOW, 1))
    assert fake.pending_faults() == 0
    assert sleeps == [0.5, 1.0]


def test_persistent_failure_raises_exchange_error_after_max_retries_with_growing_backoff(
    make_source: MakeSource, fake: FakeBitbank, sleeps: list[float]
) -> None:
    today = day_path("btc_jpy", NOW)
    fake.inject(*[Fault.HTTP_500] * 10, path=today)
    source = make_source(max_retries=4, backoff_base_s=1.0, backoff_max_s=5.0)

    with pytest.raises(ExchangeError) as raised:
        source.fetch(1)

    message = str(raised.value)
    assert "bitbank BTC/JPY" in message and "2025-03-10" in message and "after 5 attempts" in message
    assert "ExchangeNotAvailable" in message
    assert fake.requests[today] == 5
    assert sleeps == [1.0, 2.0, 4.0, 5.0]
    assert not source.cache.path.exists()


def test_unpublished_current_day_is_tolerated_and_fetched_next_run(
    make_source: MakeSource, fake: FakeBitbank, clock: Clock, recording: pd.DataFrame
) -> None:
    clock.now = pd.Timestamp("2025-03-10 00:20", tz="UTC")  # the last closed candle opened at 00:00 today
    fake.inject(Fault.UNPUBLISHED, path=day_path("btc_jpy", clock.now))
    source = make_source()

    candles = source.fetch(2)

    assert candles["timestamp"].iloc[-1] == pd.Timestamp("2025-03-09 23:45", tz="UTC")
    assert source.describe()["unpublished_days"] == ["2025-03-10"]
    fake.reset_counts()
    clock.advance(pd.Timedelta(minutes=15))
    candles = make_source().fetch(2)
    pd.testing.assert_frame_equal(candles, expected_window(recording, clock.now, 2))
    assert set(fake.candle_requests()) == {day_path("btc_jpy", "20250309"), day_path("btc_jpy", "20250310")}


def test_unpublished_past_day_is_an_error_naming_the_day(make_source: MakeSource, fake: FakeBitbank) -> None:
    fake.inject(Fault.UNPUBLISHED, path=day_path("btc_jpy", "20250308"))
    source = make_source()

    with pytest.raises(ExchangeError, match="2025-03-08") as raised:
        source.fetch(3)

    assert "bitbank BTC/JPY" in str(raised.value)
    assert not source.cache.path.exists()


def test_corrupt_cache_is_reported_and_rebuilt(
    make_source: MakeSource, fake: FakeBitbank, recording: pd.DataFrame, caplog: pytest.LogCaptureFixture
) -> None:
    source = make_source()
    source.cache.path.parent.mkdir(parents=True)
    source.cache.path.write_bytes(b"PAR1 this is not a parquet file")

    with caplog.at_level(logging.WARNING, logger="retrain.data.candle_cache"):
        candles = source.fetch(2)

    assert any(str(source.cache.path) in record.getMessage() for record in caplog.records)
    pd.testing.assert_frame_equal(candles, expected_window(recording, NOW, 2))
    pd.testing.assert_frame_equal(cached(source), expected_window(recording, NOW, 2))
    assert len(fake.candle_requests()) == 3


def test_cache_ending_before_the_window_is_replaced_not_resumed(
    make_source: MakeSource, fake: FakeBitbank, clock: Clock, recording: pd.DataFrame
) -> None:
    make_source().fetch(1)
    clock.advance(pd.Timedelta(days=3))
    fake.reset_counts()
    source = make_source()

    source.fetch(1)

    assert set(fake.candle_requests()) == {
        day_path("btc_jpy", clock.now - pd.Timedelta(days=1)),
        day_path("btc_jpy", clock.now),
    }
    pd.testing.assert_frame_equal(cached(source), expected_window(recording, clock.now, 1))


def test_second_run_cannot_take_a_held_cache_lock(tmp_path: Path) -> None:
    holder = CandleCache(tmp_path, "bitbank", "BTC/JPY", "15m")
    waiter = CandleCache(tmp_path, "bitbank", "BTC/JPY", "15m", lock_timeout_s=0.05)

    with holder.locked(), pytest.raises(DataSourceError, match="locked by another run"), waiter.locked():
        pass


def test_api_url_moves_every_api_url_onto_the_override() -> None:
    urls = {
        "public": "https://public.{hostname}",
        "rest": {"spot": "https://api.binance.com/api/v3", "futures": "https://fapi.binance.com/fapi/v1"},
    }

    assert rebase_api_urls(urls, "http://127.0.0.1:8080/proxy/") == {
        "public": "http://127.0.0.1:8080/proxy",
        "rest": {
            "spot": "http://127.0.0.1:8080/proxy/api/v3",
            "futures": "http://127.0.0.1:8080/proxy/fapi/v1",
        },
    }


def test_unknown_exchange_id_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="not-an-exchange"):
        ExchangeSource(DataSettings(exchange="not-an-exchange"))
