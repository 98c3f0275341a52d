"""Candles from a live exchange through ccxt: paginated, retried with backoff, cached locally.

The window is the last N days ending at the last *closed* candle; the still-open candle is never
returned or cached. Only what the local cache (`retrain.data.candle_cache`) lacks is downloaded:
from the start of the last cached candle's UTC day onward, so the last day is refreshed too.

bitbank serves 15-minute candles in one page per UTC day, and answers its "not found" error for a
day it has not published yet (early in the day). For the day of the last closed candle that means
"no candles yet"; for an older day it is an error naming the day.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import urlsplit, urlunsplit

import ccxt
import pandas as pd

from retrain.data.candle_cache import CandleCache, empty_candles, merge_candles
from retrain.data.candles import CANDLE_COLUMNS, CANDLE_INTERVAL, CANDLES_PER_DAY, last_closed_candle
from retrain.errors import ConfigError, ExchangeError, TransientExchangeError
from retrain.settings import DataSettings

logger = logging.getLogger(__name__)

T = TypeVar("T")

RETRYABLE_ERRORS: tuple[type[Exception], ...] = (ccxt.NetworkError, ccxt.BadResponse)
"""Worth another try: ccxt's NetworkError covers RequestTimeout, ExchangeNotAvailable (HTTP 5xx) and
DDoSProtection/RateLimitExceeded (HTTP 429); BadResponse is an answer that is not valid JSON."""

UNPUBLISHED_DAY_CODES: dict[str, int] = {"bitbank": 10000}
"""Exchanges paging candles by UTC day, and the error code they answer for a day not published yet."""


def rebase_url(url: str, base: str) -> str:
    """`url` moved onto `base`'s scheme and host, keeping its own path under `base`'s path."""
    target, own = urlsplit(base), urlsplit(url)
    return urlunsplit(
        (target.scheme, target.netloc, target.path.rstrip("/") + own.path, own.query, own.fragment)
    )


def rebase_api_urls(api: Any, base: str) -> Any:
    """Every URL in an exchange's `urls['api']` (a string or nested dicts of them) moved onto `base`."""
    if isinstance(api, str):
        return rebase_url(api, base)
    if isinstance(api, dict):
        return {key: rebase_api_urls(value, base) for key, value in api.items()}
    return api


def build_exchange(settings: DataSettings) -> ccxt.Exchange:
    """The configured ccxt exchange (sync API), pointed at `settings.api_url` when one is set."""
    if settings.exchange not in ccxt.exchanges:
        raise ConfigError(
            f"data.exchange = {settings.exchange!r} is not a ccxt exchange id; expected one of "
            f"ccxt.exchanges, e.g. 'bitbank' or 'binance'"
        )
    exchange: ccxt.Exchange = getattr(ccxt, settings.exchange)(
        {
            "timeout": int(settings.request_timeout_s * 1000),
            "enableRateLimit": True,
            "enableLastJsonResponse": True,  # lets a page that is not JSON be told from an empty one
        }
    )
    if not exchange.has.get("fetchOHLCV"):
        raise ConfigError(
            f"data.exchange = {settings.exchange!r} does not serve candles (no fetchOHLCV in ccxt)"
        )
    if settings.timeframe not in (exchange.timeframes or {}):
        raise ConfigError(
            f"data.exchange = {settings.exchange!r} has no {settings.timeframe!r} candles; it offers "
            f"{sorted(exchange.timeframes or {})}"
        )
    if settings.api_url:
        exchange.urls = {**exchange.urls, "api": rebase_api_urls(exchange.urls["api"], settings.api_url)}
    return exchange


def _page_limit(exchange: ccxt.Exchange) -> int | None:
    """The most candles one request may ask for, when ccxt knows it for this exchange."""
    spot = (exchange.features or {}).get("spot") or {}
    limit = (spot.get("fetchOHLCV") or {}).get("limit")
    return limit if isinstance(limit, int) else None


def _ms(stamp: pd.Timestamp) -> int:
    return int(stamp.timestamp() * 1000)


def _utc(ms: int) -> pd.Timestamp:
    return pd.Timestamp(ms, unit="ms", tz="UTC")


def _candle_frame(rows: list[list[Any]]) -> pd.DataFrame:
    if not rows:
        return empty_candles()
    frame = pd.DataFrame(rows, columns=list(CANDLE_COLUMNS))
    frame["timestamp"] = pd.to_datetime(frame["timestamp"], unit="ms", utc=True)
    return frame.astype({column: "float64" for column in CANDLE_COLUMNS[1:]})


def _refuse_conflicting_twins(exchange: str, rows: list[list[Any]]) -> None:
    """A page holding two different candles for one timestamp is a bad answer (retried like one): which
    of the two is real cannot be told, and keeping either would train on a guess. Exact repeats are
    harmless and dropped when pages are merged."""
    seen: dict[Any, list[Any]] = {}
    for row in rows:
        twin = seen.setdefault(row[0], row)
        if twin is not row and list(twin) != list(row):
            raise ccxt.BadResponse(
                f"{exchange} answered two different candles for {_utc(row[0]):%Y-%m-%d %H:%M} UTC "
                f"({twin[1:]} and {row[1:]}) in one page"
            )


@dataclass(frozen=True)
class _Download:
    candles: pd.DataFrame
    pages: int
    unpublished_days: list[str]


class ExchangeSource:
    """The last N days of closed 15-minute candles of `settings.symbol` on `settings.exchange`."""

    kind = "exchange"
    checks_freshness = True

    def __init__(
        self,
        settings: DataSettings,
        *,
        now: Callable[[], pd.Timestamp] | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.settings = settings
        self._now = now or (lambda: pd.Timestamp.now(tz="UTC"))
        self._sleep = sleep
        self._exchange = build_exchange(settings)
        self.cache = CandleCache(settings.cache_dir, settings.exchange, settings.symbol, settings.timeframe)
        self._last_run: dict[str, Any] = {}

    def fetch(self, days: int) -> pd.DataFrame:
        end = last_closed_candle(self._now())
        start = end - (days * CANDLES_PER_DAY - 1) * CANDLE_INTERVAL
        with self.cache.locked():
            cached = self._usable_cache(self.cache.load(last_closed=end), start)
            since = start if cached.empty else max(start, cached["timestamp"].iloc[-1].floor("D"))
            download = self._download(since, end)
            merged = merge_candles(cached, download.candles)
            self.cache.save(merged, last_closed=end)
        window = merged[merged["timestamp"] >= start].reset_index(drop=True)
        if window.empty:
            raise ExchangeError(
                f"{self._name()}: no candles between {start:%Y-%m-%d %H:%M} and {end:%Y-%m-%d %H:%M} UTC; "
                f"the exchange published none for that window"
            )
        from_network = int(window["timestamp"].isin(download.candles["timestamp"]).sum())
        self._last_run = {
            "start": str(start),
            "end": str(end),
            "candles_from_cache": len(window) - from_network,
            "candles_from_network": from_network,
            "pages_requested": download.pages,
            "unpublished_days": download.unpublished_days,
        }
        logger.info(
            "%s: %d candles %s .. %s (%d from cache, %d downloaded in %d pages)",
            self._name(),
            len(window),
            start,
            end,
            len(window) - from_network,
            from_network,
            download.pages,
        )
        return window

    def describe(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "demo": False,
            "exchange": self.settings.exchange,
            "symbol": self.settings.symbol,
            "timeframe": self.settings.timeframe,
            "api_url": self.settings.api_url,
            "cache_file": str(self.cache.path.resolve()),
            **self._last_run,
        }

    def _name(self) -> str:
        return f"{self.settings.exchange} {self.settings.symbol}"

    @staticmethod
    def _usable_cache(cached: pd.DataFrame, start: pd.Timestamp) -> pd.DataFrame:
        """The cache if it reaches from the window start into the window, else nothing.

        Resuming from a cache that starts after the window start would leave the head of the window
        unfetched; keeping one that ends before it would leave a hole between old and new candles that
        a later, longer window would trust. Either way the whole window is downloaded again.
        """
        if cached.empty or cached["timestamp"].iloc[0] > start or cached["timestamp"].iloc[-1] < start:
            return empty_candles()
        return cached

    def _download(self, since: pd.Timestamp, end: pd.Timestamp) -> _Download:
        """All closed candles from `since` to `end`, page by page."""
        self._load_markets(since, end)
        if self.settings.symbol not in self._exchange.markets:
            raise ExchangeError(
                f"data.symbol = {self.settings.symbol!r} is not listed on {self.settings.exchange}; "
                f"expected a unified ccxt symbol such as 'BTC/JPY'"
            )
        rows: list[list[Any]] = []
        pages = 0
        unpublished_days: list[str] = []
        cursor = since
        while cursor <= end:
            pages += 1
            page = self._page(cursor, end)
            if page is None:
                day = f"{cursor:%Y-%m-%d}"
                unpublished_days.append(day)
                logger.info("%s: day %s is not published yet; no candles for it", self._name(), day)
                page = []
            fresh = [row for row in page if _ms(cursor) <= row[0] <= _ms(end)]
            rows.extend(fresh)
            # An empty answer means nothing from `cursor` to the end of the page: go on at the next UTC day.
            cursor = (
                _utc(fresh[-1][0]) + CANDLE_INTERVAL if fresh else cursor.floor("D") + pd.Timedelta(days=1)
            )
        candles = merge_candles(empty_candles(), _candle_frame(rows))
        return _Download(candles=candles, pages=pages, unpublished_days=unpublished_days)

    def _load_markets(self, since: pd.Timestamp, end: pd.Timestamp) -> None:
        try:
            self._retried(since, end, self._exchange.load_markets)
        except ccxt.BaseError as exc:
            raise ExchangeError(
                f"{self._name()}: loading the exchange's markets failed: {type(exc).__name__}: {exc}"
            ) from exc

    def _page(self, since: pd.Timestamp, end: pd.Timestamp) -> list[list[Any]] | None:
        """One page of candles from `since`; None when the exchange has not published that day yet."""
        try:
            return self._retried(since, end, lambda: self._ohlcv(since))
        except ccxt.BaseError as exc:
            if not self._is_unpublished_day():
                raise ExchangeError(
                    f"{self._name()}: fetching 15m candles from {since:%Y-%m-%d %H:%M} UTC (window ends "
                    f"{end:%Y-%m-%d %H:%M} UTC) failed: {type(exc).__name__}: {exc}"
                ) from exc
            if since.floor("D") < end.floor("D"):
                raise TransientExchangeError(
                    f"{self._name()}: the exchange has not published the past day {since:%Y-%m-%d} (UTC), "
                    f"which lies inside the requested window; it answered {exc}. Retry later, or check the "
                    f"exchange's status page"
                ) from exc
            return None

    def _ohlcv(self, since: pd.Timestamp) -> list[list[Any]]:
        self._exchange.last_json_response = None
        rows = self._exchange.fetch_ohlcv(
            self.settings.symbol, self.settings.timeframe, _ms(since), _page_limit(self._exchange)
        )
        if not isinstance(self._exchange.last_json_response, dict | list):
            body = str(self._exchange.last_http_response or "")[:120]
            raise ccxt.BadResponse(
                f"{self._exchange.id} answered with a body that is not valid JSON: {body!r}"
            )
        _refuse_conflicting_twins(self._exchange.id, rows)
        return rows

    def _is_unpublished_day(self) -> bool:
        """Whether the last answer is the exchange's error for a candle day it has not published."""
        code = UNPUBLISHED_DAY_CODES.get(self._exchange.id)
        answer = self._exchange.last_json_response
        data = answer.get("data") if isinstance(answer, dict) else None
        return code is not None and isinstance(data, dict) and data.get("code") == code

    def _retried(self, since: pd.Timestamp, end: pd.Timestamp, request: Callable[[], T]) -> T:
        """`request()`, retried with exponential backoff on timeouts, HTTP 5xx/429 and malformed answers."""
        settings = self.settings
        attempt = 0
        while True:
            try:
                return request()
            except RETRYABLE_ERRORS as exc:
                if attempt >= settings.max_retries:
                    raise TransientExchangeError(
                        f"{self._name()}: fetching 15m candles from {since:%Y-%m-%d %H:%M} UTC (window ends "
                        f"{end:%Y-%m-%d %H:%M} UTC) failed after {attempt + 1} attempt{'s' if attempt else ''}; "
                        f"last error: {type(exc).__name__}: {exc}"
                    ) from exc
                delay = min(settings.backoff_base_s * 2**attempt, settings.backoff_max_s)
                attempt += 1
                logger.warning(
                    "%s: request from %s failed (%s: %s); retry %d of %d in %.1f s",
                    self._name(),
                    since,
                    type(exc).__name__,
                    exc,
                    attempt,
                    settings.max_retries,
                    delay,
                )
                self._sleep(delay)
