"""The first stage of a retrain: pick the configured source, fetch the window, validate it."""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from retrain.data.candles import CandleSource
from retrain.data.csv_source import CsvSource
from retrain.data.demo import DemoSource
from retrain.data.validation import DataQualityReport, validate_candles
from retrain.errors import ConfigError
from retrain.settings import DataSettings

logger = logging.getLogger(__name__)


def make_source(data: DataSettings) -> CandleSource:
    """Build the source named by `data.source`."""
    if data.source == "demo":
        return DemoSource(seed=data.demo_seed, edge=data.demo_edge)
    if data.source == "csv":
        if data.csv_path is None:
            raise ConfigError("data.source is 'csv' but data.csv_path is not set (RETRAIN_DATA__CSV_PATH)")
        return CsvSource(Path(data.csv_path))
    from retrain.data.exchange import ExchangeSource  # ccxt is slow to import; only the exchange needs it

    return ExchangeSource(data)


@dataclass(frozen=True)
class ValidatedCandles:
    """Candles that passed validation, with the report and where they came from."""

    candles: pd.DataFrame
    report: DataQualityReport
    source: dict[str, Any]

    @property
    def data_hash(self) -> str:
        """SHA-256 of the candle values and timestamps: identifies the exact training data."""
        hashed = pd.util.hash_pandas_object(self.candles, index=True).to_numpy()
        return hashlib.sha256(hashed.tobytes()).hexdigest()


def load_candles(
    data: DataSettings, *, source: CandleSource | None = None, now: pd.Timestamp | None = None
) -> ValidatedCandles:
    """Fetch `data.days` days from the configured (or given) source and validate them.

    Raises `CandleValidationError` listing every hard problem; nothing downstream runs on bad data.
    """
    source = source or make_source(data)
    raw = source.fetch(data.days)
    candles, report = validate_candles(
        raw, data, days=data.days, now=now, check_freshness=source.checks_freshness
    )
    info = source.describe()
    logger.info(
        "%d candles from %s (%s .. %s), %d missing",
        len(candles),
        info.get("kind"),
        report.first_timestamp,
        report.last_timestamp,
        report.missing_candles,
    )
    return ValidatedCandles(candles=candles, report=report, source=info)
