"""A local stand-in for bitbank's public REST API, replaying real recorded candles.

It answers the two endpoints ccxt's bitbank class calls for candles: market loading
(`GET /spot/pairs`) and the per-UTC-day candlestick page (`GET /{pair}/candlestick/{type}/{YYYYMMDD}`),
in bitbank's own JSON format (values as strings, timestamp in ms last). Only candles that have opened
by the server's `now` are published, so the page of the current day ends with the still-open candle,
as on the real exchange. Faults (HTTP 500/429, a held response, malformed JSON, bitbank's "not found"
answer for a day that is not published yet, a page in reverse order, every candle twice, one candle
twice with different prices) are queued and consumed one per candlestick request.

Use it as a context manager: `with FakeBitbank(candles, now=clock) as fake: ... fake.url ...`.
"""

from __future__ import annotations

import enum
import json
import threading
from collections import Counter, deque
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import Any

import pandas as pd

from retrain.data.candles import CANDLE_INTERVAL, parse_timestamps
from retrain.data.csv_source import read_candle_file

NOT_FOUND_CODE = 10000
"""bitbank's error code for a URL it does not serve; it answers it (HTTP 404) for a day not yet published."""

_SHUTDOWN_POLL_S = 0.02
"""How often the serving loop checks for shutdown; http.server's default 0.5 s would slow every test."""

_MALFORMED_BODY = b'{"success":1,"data":{"candlestick":[{"type":"15min","ohlcv":[["1'
"""A page cut off mid-way, as a dropped connection behind a proxy can deliver it."""


class Fault(enum.Enum):
    """A misbehaviour the server can show instead of a normal candlestick answer."""

    HTTP_500 = "http_500"
    HTTP_429 = "http_429"
    TIMEOUT = "timeout"
    MALFORMED_JSON = "malformed_json"
    UNPUBLISHED = "unpublished"
    REVERSED = "reversed"
    DUPLICATED = "duplicated"
    CONFLICTING = "conflicting"


class Clock:
    """A settable UTC clock shared by the fake server and the code under test."""

    def __init__(self, now: pd.Timestamp) -> None:
        self.now = now

    def __call__(self) -> pd.Timestamp:
        return self.now

    def advance(self, delta: pd.Timedelta) -> None:
        self.now = self.now + delta


def load_recording(path: Path) -> pd.DataFrame:
    """A recorded candle file (ISO timestamps) as floats with UTC timestamps, oldest first."""
    raw = read_candle_file(path)
    frame = raw.astype({column: float for column in ("open", "high", "low", "close", "volume")})
    frame["timestamp"] = parse_timestamps(raw["timestamp"])
    return frame.sort_values("timestamp", ignore_index=True)


def retime(candles: pd.DataFrame, last_day: pd.Timestamp) -> pd.DataFrame:
    """Shift candles by whole days so the recording's last candle falls on `last_day` (UTC).

    Whole days keep each candle's time of day, so intraday patterns stay where they were recorded.
    """
    shift = last_day.tz_convert("UTC").floor("D") - candles["timestamp"].iloc[-1].floor("D")
    return candles.assign(timestamp=candles["timestamp"] + shift)


def day_path(pair: str, day: pd.Timestamp | str, candle_type: str = "15min") -> str:
    """The request path of one day's candlestick page, e.g. `/btc_jpy/candlestick/15min/20240731`."""
    stamp = day if isinstance(day, str) else day.tz_convert("UTC").strftime("%Y%m%d")
    return f"/{pair}/candlestick/{candle_type}/{stamp}"


def _pair_info(pair: str) -> dict[str, Any]:
    base, quote = pair.split("_")
    return {
        "name": pair,
        "base_asset": base,
        "quote_asset": quote,
        "maker_fee_rate_base": "0",
        "taker_fee_rate_base": "0",
        "maker_fee_rate_quote": "-0.0002",
        "taker_fee_rate_quote": "0.0012",
        "unit_amount": "0.0001",
        "limit_max_amount": "1000",
        "market_max_amount": "10",
        "market_allowance_rate": "0.2",
        "price_digits": 0,
        "amount_digits": 4,
        "is_enabled": True,
        "stop_order": False,
        "stop_order_and_cancel": False,
    }


class FakeBitbank:
    """Threaded HTTP server on 127.0.0.1 (free port) serving `candles` as bitbank would.

    `now` is called on every request: candles whose open time is after it are not published yet.
    `requests` counts requests per path. `hold_s` is how long a TIMEOUT fault holds its answer
    (set it above the client's timeout).
    """

    def __init__(
        self,
        candles: pd.DataFrame,
        *,
        now: Callable[[], pd.Timestamp],
        pair: str = "btc_jpy",
        hold_s: float = 2.0,
    ) -> None:
        self.pair = pair
        self.now = now
        self.hold_s = hold_s
        self.requests: Counter[str] = Counter()
        self._candles = candles.set_index("timestamp").sort_index()
        self._faults: deque[Fault] = deque()
        self._path_faults: dict[str, deque[Fault]] = {}
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, args=(_SHUTDOWN_POLL_S,), name="fake-bitbank", daemon=True
        )

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def inject(self, *faults: Fault, path: str | None = None) -> None:
        """Queue faults for the next candlestick requests (only those to `path`, when given)."""
        with self._lock:
            queue = self._faults if path is None else self._path_faults.setdefault(path, deque())
            queue.extend(faults)

    def pending_faults(self) -> int:
        """Faults queued but not yet served."""
        with self._lock:
            return len(self._faults) + sum(len(queue) for queue in self._path_faults.values())

    def candle_requests(self) -> dict[str, int]:
        """Request counts of candlestick pages only, by path."""
        with self._lock:
            return {path: n for path, n in self.requests.items() if "/candlestick/" in path}

    def reset_counts(self) -> None:
        with self._lock:
            self.requests.clear()

    def __enter__(self) -> FakeBitbank:
        self._thread.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._stopping.set()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()

    def _take_fault(self, path: str) -> Fault | None:
        """Count the request; for a candlestick page, pop the fault queued for it, if any."""
        with self._lock:
            self.requests[path] += 1
            if "/candlestick/" not in path:
                return None
            for queue in (self._path_faults.get(path), self._faults):
                if queue:
                    return queue.popleft()
        return None

    def _day_page(self, candle_type: str, day: str, fault: Fault | None = None) -> tuple[int, dict[str, Any]]:
        now = self.now().tz_convert("UTC")
        start = pd.Timestamp(day, tz="UTC") if len(day) == 8 and day.isdigit() else None
        if candle_type != "15min" or start is None or start > now:
            return 404, {"success": 0, "data": {"code": NOT_FOUND_CODE}}
        last_open = min(start + pd.Timedelta(days=1) - CANDLE_INTERVAL, now.floor(CANDLE_INTERVAL))
        rows = self._candles.loc[start:last_open]
        ohlcv = [
            [str(o), str(h), str(lo), str(c), str(v), int(ts.timestamp() * 1000)]
            for ts, o, h, lo, c, v in rows[["open", "high", "low", "close", "volume"]].itertuples()
        ]
        if fault is Fault.REVERSED:
            ohlcv.reverse()
        elif fault is Fault.DUPLICATED:
            ohlcv = [row for row in ohlcv for _ in range(2)]
        elif fault is Fault.CONFLICTING and ohlcv:
            middle = len(ohlcv) // 2
            # a plausible twin (every price 0.2% higher): validation alone cannot tell it from the real one
            twin = [*(str(float(price) * 1.002) for price in ohlcv[middle][:4]), *ohlcv[middle][4:]]
            ohlcv.insert(middle + 1, twin)
        published = int(now.timestamp() * 1000)
        return 200, {
            "success": 1,
            "data": {"candlestick": [{"type": candle_type, "ohlcv": ohlcv}], "timestamp": published},
        }

    def _answer(self, path: str, fault: Fault | None = None) -> tuple[int, dict[str, Any]]:
        parts = path.strip("/").split("/")
        if parts == ["spot", "pairs"]:
            return 200, {"success": 1, "data": {"pairs": [_pair_info(self.pair)]}}
        if len(parts) == 4 and parts[0] == self.pair and parts[1] == "candlestick":
            return self._day_page(parts[2], parts[3], fault)
        return 404, {"success": 0, "data": {"code": NOT_FOUND_CODE}}

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
                path = self.path.split("?", 1)[0]
                fault = fake._take_fault(path)
                if fault is Fault.HTTP_500:
                    self._send(500, b"<html><body>500 Internal Server Error</body></html>", "text/html")
                elif fault is Fault.HTTP_429:
                    self._send(429, b"<html><body>429 Too Many Requests</body></html>", "text/html")
                elif fault is Fault.TIMEOUT:
                    fake._stopping.wait(fake.hold_s)
                    self._send_json(*fake._answer(path))
                elif fault is Fault.MALFORMED_JSON:
                    self._send(200, _MALFORMED_BODY, "application/json")
                elif fault is Fault.UNPUBLISHED:
                    self._send_json(404, {"success": 0, "data": {"code": NOT_FOUND_CODE}})
                else:
                    self._send_json(*fake._answer(path, fault))

            def _send_json(self, status: int, body: dict[str, Any]) -> None:
                self._send(status, json.dumps(body).encode(), "application/json")

            def _send(self, status: int, body: bytes, content_type: str) -> None:
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", content_type)
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up waiting (a TIMEOUT fault): nothing left to answer

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 (http.server's signature)
                """Quiet: tests read `requests` instead of a log."""

        return Handler
