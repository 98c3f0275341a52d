"""Candle validation: every check runs before anything trains, and every problem is reported at once.

`validate_candles` turns a *raw* candle table (strings from a CSV, or typed values from the demo and
exchange sources) into a *validated* one, or raises `CandleValidationError` whose message and
`report` list every hard problem with its timestamps. Tolerable findings become report warnings.

Tolerated-gap policy (`DataSettings.gaps`, a `GapPolicy`): an exchange halt leaves a run of missing
candles, e.g. the Binance spot halt of 2023-03-24 (12:45-13:45 UTC, 5 candles). A run of at most
`max_gap_candles` missing candles, with at most `max_missing_share` of the 15-minute grid missing in
total, is a warning. Those candles stay *absent* from the validated table: never filled, because a
forward-filled halt would invent flat prices and zero returns the market never had. The feature and
label code drops every row whose look-back window or label horizon touches a missing candle, so no
feature or label spans a hole. Longer gaps, or more missing candles in total, are hard problems: the
data must be refetched or the policy deliberately widened.

Continuity policy (`DataSettings.continuity`, a `ContinuityPolicy`): on a real market each candle opens
where the previous one closed, and a 15-minute move is rarely more than a few dozen times the typical
one. Two hard checks catch rows that are each valid but do not belong together (a block of rows
reordered with its timestamps rewritten in order, a series spliced in from another market, a price unit
change part-way): `open_gap` (|open / previous close - 1| above `max_open_gap`) and `price_jump` (a
close-to-close log return more than `max_move_mads` rolling median absolute deviations from the rolling
median). Across missing candles the open is *not* compared with the last close before the gap (the
market moved meanwhile); the close-to-close return across the gap is divided by sqrt(candles spanned),
the random-walk scaling, before the MAD check, so a splice or unit change at a gap is still caught. Both
checks run on the rows whose timestamp and four prices are usable, and only when the rows are unique
and in time order (otherwise the order is already a hard problem).
"""

from __future__ import annotations

import logging
from datetime import datetime

import numpy as np
import pandas as pd
from numpy.lib.stride_tricks import sliding_window_view
from pydantic import BaseModel, computed_field

from retrain.data.candles import (
    CANDLE_COLUMNS,
    CANDLE_INTERVAL,
    PRICE_COLUMNS,
    VALUE_COLUMNS,
    parse_timestamps,
)
from retrain.errors import CandleValidationError
from retrain.settings import ContinuityPolicy, DataSettings

logger = logging.getLogger(__name__)

SHOWN_TIMESTAMPS = 10
"""Offending timestamps listed per finding; the total is always given."""

_TIMESTAMP_UNIT = "us"

_EARLIEST = pd.Timestamp("0001-01-01T00:00:00Z")
_LATEST = pd.Timestamp("9999-12-31T23:59:59.999999Z")
"""Python's datetime range, which reports hold: pandas parses "-1" as the year -1 (an ISO-8601
expanded year) and epoch milliseconds into years up to 294,000, which must be unusable, not a crash."""

_MAD_CHUNK = 4096
"""Rolling-MAD windows computed at once: bounds the memory of the window copies (4096 x 96 floats)."""


class Finding(BaseModel):
    """One failed check. `timestamps` holds the first offending timestamps (or `row N`, counting data
    rows from 1, where the timestamp itself is unusable); `count` is how many there are in total."""

    check: str
    message: str
    timestamps: list[str] = []
    count: int = 0


class Gap(BaseModel):
    """A run of missing candles: `start` and `end` are the open times of the first and last missing one."""

    start: datetime
    end: datetime
    missing_candles: int


class DataQualityReport(BaseModel):
    """What validation found, for the terminal (`format_text`), the Prefect UI (`to_markdown`) and JSON."""

    rows: int
    first_timestamp: datetime | None = None
    last_timestamp: datetime | None = None
    expected_rows: int = 0
    missing_candles: int = 0
    gaps: list[Gap] = []
    longest_gap_candles: int = 0
    missing_share: float = 0.0
    requested_days: int | None = None
    coverage: float | None = None
    staleness_minutes: float | None = None
    problems: list[Finding] = []
    warnings: list[Finding] = []

    @computed_field
    @property
    def usable(self) -> bool:
        return not self.problems

    def format_text(self) -> str:
        lines = [f"Rows: {self.rows:,}"]
        if self.first_timestamp is not None and self.last_timestamp is not None:
            lines.append(f"Span: {_iso(self.first_timestamp)} -> {_iso(self.last_timestamp)}")
            lines.append(
                f"15-minute grid: {self.expected_rows:,} expected, {self.missing_candles:,} missing "
                f"({self.missing_share:.4%}) in {len(self.gaps):,} gap(s), longest {self.longest_gap_candles}"
            )
        if self.coverage is not None:
            lines.append(f"Coverage of the requested {self.requested_days} days: {self.coverage:.1%}")
        if self.staleness_minutes is not None:
            lines.append(f"Last candle closed {self.staleness_minutes:.0f} minutes before now")
        if self.gaps:
            lines.append("Gaps:")
            lines += [f"  {_gap_text(gap)}" for gap in self.gaps[:SHOWN_TIMESTAMPS]]
            if len(self.gaps) > SHOWN_TIMESTAMPS:
                lines.append(f"  ... and {len(self.gaps) - SHOWN_TIMESTAMPS:,} more")
        for title, findings in (("Problems", self.problems), ("Warnings", self.warnings)):
            lines.append(f"{title}:" if findings else f"{title}: none")
            lines += [f"  {_finding_text(finding)}" for finding in findings]
        lines.append("Verdict: usable" if self.usable else "Verdict: NOT usable")
        return "\n".join(lines)

    def to_markdown(self) -> str:
        verdict = "usable" if self.usable else "**NOT usable**"
        rows = [
            ("Verdict", verdict),
            ("Rows", f"{self.rows:,}"),
            ("First candle", _iso(self.first_timestamp) if self.first_timestamp else "-"),
            ("Last candle", _iso(self.last_timestamp) if self.last_timestamp else "-"),
            ("Expected rows (15-minute grid)", f"{self.expected_rows:,}"),
            ("Missing candles", f"{self.missing_candles:,} ({self.missing_share:.4%})"),
            ("Gaps / longest", f"{len(self.gaps):,} / {self.longest_gap_candles} candles"),
        ]
        if self.coverage is not None:
            rows.append((f"Coverage of {self.requested_days} days", f"{self.coverage:.1%}"))
        if self.staleness_minutes is not None:
            rows.append(("Minutes since the last candle closed", f"{self.staleness_minutes:.0f}"))
        lines = ["## Candle quality", "", "| | |", "|---|---|", *(f"| {k} | {v} |" for k, v in rows)]
        if self.gaps:
            lines += ["", "### Gaps", "", "| start | end | missing candles |", "|---|---|---|"]
            lines += [
                f"| {_iso(g.start)} | {_iso(g.end)} | {g.missing_candles} |"
                for g in self.gaps[:SHOWN_TIMESTAMPS]
            ]
        for title, findings in (("Problems", self.problems), ("Warnings", self.warnings)):
            if findings:
                lines += ["", f"### {title}", ""]
                lines += [f"- {_finding_text(finding)}" for finding in findings]
        return "\n".join(lines)


def validate_candles(
    raw: pd.DataFrame,
    settings: DataSettings,
    *,
    days: int | None = None,
    now: pd.Timestamp | None = None,
    check_freshness: bool = False,
) -> tuple[pd.DataFrame, DataQualityReport]:
    """Check a raw candle table and return it validated (UTC index `timestamp`, float64 values, sorted,
    missing candles left absent) with its report. Raises `CandleValidationError` on any hard problem.

    `days` asks for the coverage check of that window; `check_freshness` (live exchanges) asks for the
    staleness check of the last candle against `now` (default: the current time, UTC).
    """
    raw = raw.reset_index(drop=True)
    stamps, timestamp_problems = _timestamps(raw)
    values, value_problems = _values(raw, stamps)
    problems = _schema_problems(raw) + timestamp_problems + value_problems
    report = DataQualityReport(rows=len(raw), requested_days=days)
    valid = stamps.dropna()
    in_order = True
    if not valid.empty:
        first, last = valid.min(), valid.max()
        report.first_timestamp, report.last_timestamp = first.to_pydatetime(), last.to_pydatetime()
        order_problems = _order_problems(valid)
        in_order = not any(f.check in {"duplicate_timestamp", "unsorted"} for f in order_problems)
        problems += order_problems
        grid_warnings, grid_problems = _grid_findings(valid, report, settings)
        report.warnings += grid_warnings
        problems += grid_problems
        if days is not None:
            report.coverage, found = _coverage(first, last, days, settings)
            problems += found
        if check_freshness:
            now = pd.Timestamp.now(tz="UTC") if now is None else now.tz_convert("UTC")
            report.staleness_minutes, found = _staleness(last, now, settings)
            problems += found
    problems += _ohlc_problems(values, stamps)
    if in_order:
        problems += _continuity_problems(values, stamps, settings.continuity)
    report.problems = problems
    for finding in report.warnings:
        logger.warning("candle validation: %s", _finding_text(finding))
    if problems:
        message = f"{len(problems)} problem(s) make the candles unusable:\n" + "\n".join(
            f"  {_finding_text(finding)}" for finding in problems
        )
        raise CandleValidationError(message, report)
    logger.info(
        "validated %d candles from %s to %s", report.rows, report.first_timestamp, report.last_timestamp
    )
    table = values.set_axis(pd.DatetimeIndex(stamps, name="timestamp"))
    return table, report


def _schema_problems(raw: pd.DataFrame) -> list[Finding]:
    problems = []
    if len(raw) == 0:
        problems.append(Finding(check="empty", message="the candle table has no rows (an empty file?)"))
    missing = [column for column in CANDLE_COLUMNS if column not in raw.columns]
    if missing and len(raw.columns):
        problems.append(
            Finding(
                check="missing_column",
                message=f"missing column(s) {', '.join(missing)}; expected {', '.join(CANDLE_COLUMNS)} "
                f"(found {', '.join(map(str, raw.columns))})",
                count=len(missing),
            )
        )
    return problems


def _timestamps(raw: pd.DataFrame) -> tuple[pd.Series, list[Finding]]:
    """Parsed UTC timestamps aligned with the raw rows (NaT where unusable), and the unusable ones."""
    if "timestamp" not in raw.columns:
        return pd.Series(pd.NaT, index=raw.index, dtype=f"datetime64[{_TIMESTAMP_UNIT}, UTC]"), []
    column = raw["timestamp"]
    stamps = _parse(column).dt.as_unit(_TIMESTAMP_UNIT)
    stamps = stamps.where(stamps.between(_EARLIEST, _LATEST))
    positions = np.flatnonzero(stamps.isna().to_numpy())
    if len(positions) == 0:
        return stamps, []
    examples = ", ".join(repr(column.iloc[i]) for i in positions[:3])
    finding = Finding(
        check="timestamp_unparseable",
        message=f"{len(positions):,} timestamp(s) are missing, unparseable or outside the years 1-9999 "
        f"(e.g. {examples}); "
        "expected ISO-8601 UTC like 2025-01-01T00:15:00Z or epoch milliseconds",
        timestamps=[f"row {i + 1}" for i in positions[:SHOWN_TIMESTAMPS]],
        count=len(positions),
    )
    return stamps, [finding]


def _parse(column: pd.Series) -> pd.Series:
    """Typed datetimes as they are (naive = UTC); text through `parse_timestamps`.

    `parse_timestamps` reads a column as epoch ms only when every value is numeric, so one corrupt cell
    would fail a whole epoch-ms file: when some values fail, numeric and other values are parsed apart.
    """
    if pd.api.types.is_datetime64_any_dtype(column):
        if column.dt.tz is None:
            return column.dt.tz_localize("UTC")
        return column.dt.tz_convert("UTC")
    stamps = parse_timestamps(column).dt.as_unit(_TIMESTAMP_UNIT)
    if stamps.notna().all():
        return stamps
    is_epoch = pd.to_numeric(column, errors="coerce").notna()
    for part in (is_epoch, ~is_epoch):
        if part.any():
            stamps[part] = parse_timestamps(column[part])
    return stamps


def _values(raw: pd.DataFrame, stamps: pd.Series) -> tuple[pd.DataFrame, list[Finding]]:
    """The value columns as float64, and the text, NaN and inf cells found in each."""
    problems = []
    values = pd.DataFrame(index=raw.index)
    for column in VALUE_COLUMNS:
        if column not in raw.columns:
            continue
        original = raw[column]
        numbers = pd.Series(
            pd.to_numeric(original, errors="coerce").to_numpy(dtype="float64", na_value=np.nan),
            index=raw.index,
        )
        text = numbers.isna() & original.notna()
        if text.any():
            text[text] = ~original[text].astype(str).str.strip().str.lower().isin(["", "nan"])
        if text.any():
            examples = ", ".join(repr(v) for v in original[text].unique()[:3])
            problems.append(
                _rows_finding(
                    "text_in_number_column",
                    f"column '{column}' holds {text.sum():,} non-numeric value(s) (e.g. {examples}); "
                    "expected numbers",
                    text,
                    stamps,
                )
            )
        nan = numbers.isna() & ~text
        if nan.any():
            problems.append(
                _rows_finding("nan", f"column '{column}' has {nan.sum():,} empty/NaN value(s)", nan, stamps)
            )
        inf = pd.Series(np.isinf(numbers.to_numpy()), index=raw.index)
        if inf.any():
            problems.append(
                _rows_finding("inf", f"column '{column}' has {inf.sum():,} infinite value(s)", inf, stamps)
            )
        values[column] = numbers
    return values, problems


def _order_problems(valid: pd.Series) -> list[Finding]:
    """Duplicates, unsorted rows and timestamps off the 15-minute grid (on the parsed timestamps)."""
    problems = []
    repeated = valid[valid.duplicated()]
    if not repeated.empty:
        shown = repeated.drop_duplicates()
        problems.append(
            Finding(
                check="duplicate_timestamp",
                message=f"{len(shown):,} timestamp(s) appear more than once ({len(repeated):,} extra rows); "
                "each candle must appear once",
                timestamps=_isos(shown),
                count=len(shown),
            )
        )
    steps = valid.diff()
    descending = valid[steps < pd.Timedelta(0)]
    if not descending.empty:
        problems.append(
            Finding(
                check="unsorted",
                message=f"rows are not in time order: {len(descending):,} row(s) come after a later candle; "
                "the file looks corrupted (rows must be oldest first)",
                timestamps=_isos(descending),
                count=len(descending),
            )
        )
    off_grid = valid[valid != valid.dt.floor(CANDLE_INTERVAL)]
    if not off_grid.empty:
        problems.append(
            Finding(
                check="off_grid",
                message=f"{len(off_grid):,} timestamp(s) are not on the 15-minute grid "
                "(expected hh:00, hh:15, hh:30 or hh:45 exactly, UTC candle open times)",
                timestamps=_isos(off_grid),
                count=len(off_grid),
            )
        )
    return problems


def _grid_findings(
    valid: pd.Series, report: DataQualityReport, settings: DataSettings
) -> tuple[list[Finding], list[Finding]]:
    """Fill the grid and gap figures of `report`; return (warnings, problems) under the gap policy."""
    interval = CANDLE_INTERVAL.to_timedelta64()
    on_grid = np.unique(valid[valid == valid.dt.floor(CANDLE_INTERVAL)].dt.tz_localize(None).to_numpy())
    if len(on_grid) == 0:
        return [], []
    steps = np.diff(on_grid) // interval
    holes = np.flatnonzero(steps > 1)
    missing = steps[holes] - 1
    report.expected_rows = int((on_grid[-1] - on_grid[0]) // interval) + 1
    report.missing_candles = int(missing.sum())
    report.missing_share = report.missing_candles / report.expected_rows
    report.longest_gap_candles = int(missing.max(initial=0))
    report.gaps = [
        Gap(
            start=pd.Timestamp(on_grid[i] + interval, tz="UTC"),
            end=pd.Timestamp(on_grid[i + 1] - interval, tz="UTC"),
            missing_candles=int(n),
        )
        for i, n in zip(holes, missing, strict=True)
    ]
    if not report.gaps:
        return [], []
    policy = settings.gaps
    policy_text = (
        f"policy: gaps of up to {policy.max_gap_candles} candles, "
        f"at most {policy.max_missing_share:.2%} of the grid missing"
    )
    problems = []
    too_long = [gap for gap in report.gaps if gap.missing_candles > policy.max_gap_candles]
    if too_long:
        problems.append(
            Finding(
                check="gap_too_long",
                message=f"{len(too_long):,} gap(s) longer than {policy.max_gap_candles} candles "
                f"(longest {report.longest_gap_candles}): {_gap_text(too_long[0])}; refetch the data "
                f"({policy_text})",
                timestamps=[_iso(gap.start) for gap in too_long[:SHOWN_TIMESTAMPS]],
                count=len(too_long),
            )
        )
    if report.missing_share > policy.max_missing_share:
        problems.append(
            Finding(
                check="missing_share",
                message=f"{report.missing_candles:,} of {report.expected_rows:,} candles "
                f"({report.missing_share:.2%}) are missing ({policy_text})",
                timestamps=[_iso(gap.start) for gap in report.gaps[:SHOWN_TIMESTAMPS]],
                count=len(report.gaps),
            )
        )
    if problems:
        return [], problems
    warning = Finding(
        check="gaps",
        message=f"{len(report.gaps):,} tolerated gap(s), {report.missing_candles:,} missing candle(s), "
        f"longest {report.longest_gap_candles}: kept as missing rows; rows whose look-back window or "
        f"label horizon touches a missing candle are dropped downstream ({policy_text})",
        timestamps=[_iso(gap.start) for gap in report.gaps[:SHOWN_TIMESTAMPS]],
        count=len(report.gaps),
    )
    return [warning], []


def _coverage(
    first: pd.Timestamp, last: pd.Timestamp, days: int, settings: DataSettings
) -> tuple[float, list[Finding]]:
    """Share of the requested window that the first-to-last span covers (capped at 1)."""
    span = last - first + CANDLE_INTERVAL
    coverage = min(1.0, span / pd.Timedelta(days=days))
    if coverage >= settings.min_coverage:
        return coverage, []
    return coverage, [
        Finding(
            check="coverage",
            message=f"the candles span {span} ({coverage:.1%} of the requested {days} days, "
            f"{_iso(first)} -> {_iso(last)}); at least {settings.min_coverage:.0%} is required",
            timestamps=[_iso(first)],
            count=1,
        )
    ]


def _staleness(last: pd.Timestamp, now: pd.Timestamp, settings: DataSettings) -> tuple[float, list[Finding]]:
    """Minutes between the last candle's close and `now`; too many means the feed stopped."""
    minutes = (now - (last + CANDLE_INTERVAL)) / pd.Timedelta(minutes=1)
    if minutes <= settings.stale_after_minutes:
        return minutes, []
    return minutes, [
        Finding(
            check="stale",
            message=f"the last candle ({_iso(last)}) closed {minutes:,.0f} minutes before {_iso(now)}; "
            f"at most {settings.stale_after_minutes} minutes are allowed (exchange halted or feed stuck?)",
            timestamps=[_iso(last)],
            count=1,
        )
    ]


def _ohlc_problems(values: pd.DataFrame, stamps: pd.Series) -> list[Finding]:
    """Price consistency (low <= open, close <= high; prices > 0) and volume >= 0; NaN rows are skipped."""
    problems = []
    if all(column in values.columns for column in PRICE_COLUMNS):
        high_below_low = values["high"] < values["low"]
        if high_below_low.any():
            problems.append(
                _rows_finding(
                    "high_below_low",
                    f"{high_below_low.sum():,} candle(s) have high < low",
                    high_below_low,
                    stamps,
                )
            )
        body_low = values[["open", "close"]].min(axis=1)
        body_high = values[["open", "close"]].max(axis=1)
        outside = (body_low < values["low"]) | (body_high > values["high"])
        if outside.any():
            problems.append(
                _rows_finding(
                    "open_close_outside_range",
                    f"{outside.sum():,} candle(s) have open or close outside [low, high]",
                    outside,
                    stamps,
                )
            )
    for column in PRICE_COLUMNS:
        if column in values.columns:
            non_positive = values[column] <= 0
            if non_positive.any():
                problems.append(
                    _rows_finding(
                        "non_positive_price",
                        f"column '{column}' has {non_positive.sum():,} price(s) <= 0; expected > 0",
                        non_positive,
                        stamps,
                    )
                )
    if "volume" in values.columns:
        negative = values["volume"] < 0
        if negative.any():
            problems.append(
                _rows_finding(
                    "negative_volume", f"{negative.sum():,} candle(s) have volume < 0", negative, stamps
                )
            )
    return problems


def continuity_measures(candles: pd.DataFrame, policy: ContinuityPolicy) -> pd.DataFrame:
    """Per candle after the first of a sorted, unique table (UTC `DatetimeIndex`, positive float prices):
    `steps` (15-minute intervals since the previous candle), `open_gap` (|open / previous close - 1|,
    NaN after missing candles), `mad` (the rolling MAD of the log returns, before the `min_mad` floor)
    and `move_mads` (the close-to-close log return, divided by sqrt(steps), in rolling MADs from the
    rolling median; see the module docstring)."""
    index = candles.index
    steps = np.maximum(1.0, np.round((index[1:] - index[:-1]) / CANDLE_INTERVAL))
    close = candles["close"].to_numpy(dtype="float64")
    open_gap = np.abs(candles["open"].to_numpy(dtype="float64")[1:] / close[:-1] - 1)
    open_gap[steps > 1] = np.nan
    moves = np.diff(np.log(close)) / np.sqrt(steps)
    median, mad = _rolling_median_and_mad(moves, policy.mad_window)
    move_mads = np.abs(moves - median) / np.maximum(mad, policy.min_mad)
    return pd.DataFrame(
        {"steps": steps, "open_gap": open_gap, "mad": mad, "move_mads": move_mads}, index=index[1:]
    )


def _rolling_median_and_mad(values: np.ndarray, window: int) -> tuple[np.ndarray, np.ndarray]:
    """Median and MAD of the `window` values centred on each value; near the ends the first or last
    full window is used, and the whole series when it is shorter than `window`."""
    from scipy.stats import median_abs_deviation  # scipy.stats takes seconds to import: only when validating

    n = len(values)
    if n == 0:
        return np.empty(0), np.empty(0)
    width = min(window, n)
    windows = sliding_window_view(values, width)
    medians = np.empty(len(windows))
    mads = np.empty(len(windows))
    for start in range(0, len(windows), _MAD_CHUNK):
        chunk = windows[start : start + _MAD_CHUNK]
        medians[start : start + len(chunk)] = np.median(chunk, axis=1)
        mads[start : start + len(chunk)] = median_abs_deviation(chunk, axis=1)
    first = np.clip(np.arange(n) - width // 2, 0, n - width)
    return medians[first], mads[first]


def _continuity_problems(values: pd.DataFrame, stamps: pd.Series, policy: ContinuityPolicy) -> list[Finding]:
    """Open against the previous close, and close-to-close moves against the rolling MAD bound."""
    if not all(column in values.columns for column in PRICE_COLUMNS):
        return []
    prices = values[list(PRICE_COLUMNS)]
    usable = stamps.notna() & np.isfinite(prices).all(axis=1) & (prices > 0).all(axis=1)
    if usable.sum() < 2:
        return []
    candles = prices[usable].set_axis(pd.DatetimeIndex(stamps[usable]))
    measures = continuity_measures(candles, policy)
    problems = []
    jumps = measures["open_gap"] > policy.max_open_gap
    if jumps.any():
        problems.append(
            _stamps_finding(
                "open_gap",
                f"{jumps.sum():,} candle(s) open more than {policy.max_open_gap:.2%} away from the previous "
                f"candle's close (largest {measures['open_gap'].max():.2%}): rows reordered, or prices "
                "spliced from another series or unit? Refetch the data (data.continuity.max_open_gap)",
                measures.index[jumps.to_numpy()],
            )
        )
    moves = measures["move_mads"] > policy.max_move_mads
    if moves.any():
        worst = measures.loc[moves, "move_mads"]
        problems.append(
            _stamps_finding(
                "price_jump",
                f"{moves.sum():,} close-to-close move(s) exceed {policy.max_move_mads:g} rolling median "
                f"absolute deviations of the log returns (largest {worst.max():,.0f}, a close of "
                f"{_move_text(candles['close'], worst.idxmax())}): a price unit change or a series "
                "spliced from another market? Refetch the data (data.continuity.max_move_mads)",
                measures.index[moves.to_numpy()],
            )
        )
    return problems


def _move_text(close: pd.Series, at: pd.Timestamp) -> str:
    position = close.index.get_loc(at)
    return f"{close.iloc[position]:,.6g} after {close.iloc[position - 1]:,.6g}"


def _stamps_finding(check: str, message: str, at: pd.DatetimeIndex) -> Finding:
    return Finding(
        check=check, message=message, timestamps=[_iso(ts) for ts in at[:SHOWN_TIMESTAMPS]], count=len(at)
    )


def _rows_finding(check: str, message: str, mask: pd.Series, stamps: pd.Series) -> Finding:
    """A finding about the rows in `mask`, named by timestamp (or row number where it is unusable)."""
    positions = np.flatnonzero(mask.to_numpy())
    shown = stamps.iloc[positions[:SHOWN_TIMESTAMPS]]
    labels = [f"row {i + 1}" if pd.isna(ts) else _iso(ts) for i, ts in zip(positions, shown, strict=False)]
    return Finding(check=check, message=message, timestamps=labels, count=len(positions))


def _finding_text(finding: Finding) -> str:
    text = f"[{finding.check}] {finding.message}"
    if finding.timestamps:
        more = finding.count - len(finding.timestamps)
        text += f"; at {', '.join(finding.timestamps)}" + (f" (+{more:,} more)" if more > 0 else "")
    return text


def _gap_text(gap: Gap) -> str:
    return f"{_iso(gap.start)} -> {_iso(gap.end)} ({gap.missing_candles} missing candle(s))"


def _isos(stamps: pd.Series) -> list[str]:
    return [_iso(ts) for ts in stamps.iloc[:SHOWN_TIMESTAMPS]]


def _iso(ts: datetime) -> str:
    return pd.Timestamp(ts).tz_convert("UTC").isoformat().replace("+00:00", "Z")
