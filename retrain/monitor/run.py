"""One monitor pass: load production (verified), fetch the candles since its holdout ended, score the
matured labels, test drift, check freshness and age, and decide which breaches alert.

Prefect-free: `flows/monitor.py` runs it hourly with artifacts and events, `retrain monitor` once.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from retrain.data.candles import CANDLE_INTERVAL, CandleSource, last_closed_candle, parse_timestamps
from retrain.data.loading import load_candles, make_source
from retrain.errors import (
    CandleValidationError,
    DatasetError,
    DataSourceError,
    FeatureMismatchError,
    ModelStoreError,
)
from retrain.features import FeatureManager
from retrain.labels import forward_return, label_lookback, labels_for
from retrain.monitor.checks import (
    check_data_freshness,
    check_degradation,
    check_drift,
    check_model_age,
    data_age_minutes,
)
from retrain.monitor.drift import DriftReport, feature_drift
from retrain.monitor.realised import WINDOW_DAYS, WindowScores, realised_scores
from retrain.monitor.reference import (
    REFERENCE_FILE,
    DriftReference,
    PredictionMix,
    load_version_reference,
    prediction_mix,
)
from retrain.monitor.report import DataStatus, MonitorReport
from retrain.monitor.state import decide, load_state, save_state, state_path
from retrain.monitor.trend import append_pass, history_path
from retrain.settings import LabelSettings, MonitorWindow, Settings
from retrain.store import ModelMetadata, load_production

logger = logging.getLogger(__name__)

_MARGIN_DAYS = 1
"""Extra day fetched, so a short gap near the start cannot leave the first new rows without warm-up."""


class _NoFreshnessCheck:
    """A source whose staleness the pass measures itself: stale data is a finding, not a failure."""

    checks_freshness = False

    def __init__(self, source: CandleSource) -> None:
        self._source = source
        self.kind = source.kind

    def fetch(self, days: int) -> pd.DataFrame:
        return self._source.fetch(days)

    def describe(self) -> dict[str, Any]:
        return self._source.describe()


def _holdout_end(metadata: ModelMetadata) -> pd.Timestamp:
    holdout = metadata.performance_metrics.get("holdout")
    if isinstance(holdout, dict) and holdout.get("end"):
        return pd.Timestamp(holdout["end"]).tz_convert("UTC")
    if metadata.training_info is not None:
        return pd.Timestamp(metadata.training_info.data_end).tz_convert("UTC")
    raise ModelStoreError(
        f"production version {metadata.version} records neither a holdout end nor a training window, "
        "so the monitor cannot tell which rows are new to it; promote a model trained by this retrain"
    )


def days_to_fetch(since: pd.Timestamp, end: pd.Timestamp, warmup_candles: int, horizon: int) -> int:
    """Whole days back from `end` that cover the feature warm-up and persistence's history before `since`."""
    first_needed = since - (warmup_candles + horizon) * CANDLE_INTERVAL
    return math.ceil((end - first_needed + CANDLE_INTERVAL) / pd.Timedelta(days=1)) + _MARGIN_DAYS


def _market(settings: Settings, source: dict[str, Any]) -> str:
    if source.get("symbol"):
        return str(source["symbol"])
    if source.get("path"):
        return Path(source["path"]).stem
    return settings.data.symbol


@dataclass(frozen=True)
class _Production:
    """The verified production model and what the pass needs to know about it."""

    model: Any
    metadata: ModelMetadata
    features: FeatureManager
    """The feature set it was trained on (recorded in the model)."""
    labels: LabelSettings
    """The label definition it was trained on (recorded in its metadata): realised scores use its labels."""
    since: pd.Timestamp
    """End of its holdout: every later row is new to it."""

    @property
    def horizon(self) -> int:
        return self.labels.horizon


def _production_labels(settings: Settings, metadata: ModelMetadata) -> LabelSettings:
    info = metadata.training_info
    if info is None:
        return settings.labels
    if info.labels is not None:
        return LabelSettings(**info.labels)
    return LabelSettings(horizon=info.label_horizon, threshold=info.label_threshold)


def _load_production(settings: Settings) -> _Production:
    loaded = load_production(settings.paths.models_dir)
    model, metadata = loaded.model, loaded.metadata
    try:
        features = FeatureManager.for_model(model)
    except FeatureMismatchError as exc:
        raise FeatureMismatchError(f"production version {metadata.version}: {exc}") from exc
    model_hash = getattr(model, "feature_definition_hash", "") or metadata.feature_hash
    if model_hash and model_hash != features.definition_hash:
        raise FeatureMismatchError(
            f"production version {metadata.version} was trained on feature set {model_hash[:12]}, this code "
            f"computes {features.definition_hash[:12]}: deploy the code that trained it, or retrain"
        )
    return _Production(
        model=model,
        metadata=metadata,
        features=features,
        labels=_production_labels(settings, metadata),
        since=_holdout_end(metadata),
    )


def _window_end(source: CandleSource, now: pd.Timestamp) -> pd.Timestamp:
    """Where the source's window will end: a live exchange counts `days` back from the last candle
    closed at `now`, a replay (CSV, demo) from its own last candle, which may be older."""
    end = last_closed_candle(now)
    if source.checks_freshness:
        return end
    raw = source.fetch(1)
    stamps = parse_timestamps(raw["timestamp"]).dropna() if "timestamp" in raw.columns else pd.Series()
    return min(end, stamps.max()) if len(stamps) else end


def _fetch(
    settings: Settings, source: CandleSource | None, production: _Production, warmup: int, now: pd.Timestamp
) -> tuple[pd.DataFrame | None, DataStatus]:
    """The validated candles since before the holdout's end, up to the last candle closed at `now`,
    or None with the reason."""
    source = source or make_source(settings.data)
    try:
        end = _window_end(source, now)
        data = settings.data.model_copy(
            update={"days": days_to_fetch(production.since, end, warmup, production.horizon)}
        )
        validated = load_candles(data, source=_NoFreshnessCheck(source), now=now)
    except (DataSourceError, CandleValidationError) as exc:
        return None, DataStatus(source={"kind": source.kind}, error=str(exc))
    candles = validated.candles[validated.candles.index <= last_closed_candle(now)]
    if candles.empty:
        return None, DataStatus(source=validated.source, error=f"no candle closed by {now.isoformat()}")
    return candles, DataStatus(
        source=validated.source,
        first_candle=candles.index[0].to_pydatetime(),
        last_candle=candles.index[-1].to_pydatetime(),
        age_minutes=data_age_minutes(candles.index[-1], now),
        candles=len(candles),
    )


@dataclass
class _Measures:
    realised: dict[MonitorWindow, WindowScores] = field(
        default_factory=lambda: {window: WindowScores(rows=0) for window in WINDOW_DAYS}
    )
    drift: DriftReport | None = None
    recent_mix: PredictionMix | None = None
    notes: list[str] = field(default_factory=list)


def _measure(
    settings: Settings,
    production: _Production,
    features: FeatureManager,
    candles: pd.DataFrame,
    reference: DriftReference | None,
) -> _Measures:
    """Realised scores, the recent prediction mix and drift, from the candles since the holdout."""
    measures = _Measures()
    monitor, model, since = settings.monitor, production.model, production.since
    end = candles.index[-1]
    try:
        X = features.build(candles)
    except DatasetError as exc:
        measures.notes.append(f"no feature rows: {exc}")
        return measures
    measures.realised = realised_scores(
        model,
        X,
        labels_for(candles, production.labels),
        forward_return(candles, 1),
        since=since,
        end=end,
        horizon=production.horizon,
        fee_rate=settings.evaluation.fee_rate,
        seed=settings.training.seed,
    )
    recent = X[(X.index > since) & (X.index > end - pd.Timedelta(days=monitor.drift_window_days))]
    if len(recent):
        measures.recent_mix = prediction_mix(
            np.asarray(model.predict_proba(recent[list(model.feature_names)]))
        )
    if reference is None:
        measures.notes.append(
            f"version {production.metadata.version} has no {REFERENCE_FILE}; drift not tested"
        )
    elif len(recent) < monitor.drift_min_rows:
        measures.notes.append(
            f"{len(recent)} feature rows since the holdout in the drift window; drift needs {monitor.drift_min_rows}"
        )
    else:
        measures.drift = feature_drift(
            recent,
            reference,
            fdr=monitor.drift_fdr,
            min_psi=monitor.drift_min_psi,
            ignore=monitor.drift_ignore,
        )
    return measures


def monitor_pass(
    settings: Settings, *, source: CandleSource | None = None, now: pd.Timestamp | None = None
) -> MonitorReport:
    """One pass (see the module docstring); updates `<models_dir>/monitor_state.json` and the trend.

    Raises `NoProductionModelError` or `ModelIntegrityError` when there is no verified model to watch;
    unusable candles are not an error but a `data.stale` breach.
    """
    started = time.perf_counter()
    now = pd.Timestamp.now(tz="UTC") if now is None else pd.Timestamp(now).tz_convert("UTC")
    monitor, models_dir = settings.monitor, Path(settings.paths.models_dir)
    production = _load_production(settings)
    metadata, features = production.metadata, production.features
    warmup = max(features.max_lookback, label_lookback(production.labels))
    candles, data = _fetch(settings, source, production, warmup, now)
    reference = load_version_reference(models_dir, metadata)
    if candles is None:
        measures = _Measures(notes=[f"no usable candles: {data.error}"])
    else:
        measures = _measure(settings, production, features, candles, reference)

    found = [
        check_data_freshness(pd.Timestamp(data.last_candle) if data.last_candle else None, now, monitor),
        check_model_age(metadata.created_at, now, monitor),
        check_degradation(measures.realised, monitor),
        check_drift(measures.drift, monitor),
    ]
    breaches = [breach for breach in found if breach is not None]
    path = state_path(models_dir)
    state = load_state(path).for_version(metadata.version)
    alerts, state = decide(state, breaches, now.to_pydatetime(), monitor)
    save_state(state, path)

    report = MonitorReport(
        checked_at=now.to_pydatetime(),
        version=metadata.version,
        market=_market(settings, data.source),
        model_created_at=metadata.created_at,
        model_age_days=(now - pd.Timestamp(metadata.created_at)) / pd.Timedelta(days=1),
        holdout_end=production.since.to_pydatetime(),
        data=data,
        realised=measures.realised,
        recent_mix=measures.recent_mix,
        reference_mix=reference.holdout_mix if reference else None,
        drift=measures.drift,
        drifted_features=measures.drift.drifted_features if measures.drift else [],
        breaches=breaches,
        alerts=[alert.kind for alert in alerts],
        streaks={kind: value.streak for kind, value in state.kinds.items()},
        notes=measures.notes,
        duration_s=time.perf_counter() - started,
    )
    append_pass(history_path(models_dir), report.trend_row())
    for note in report.notes:
        logger.info("monitor: %s", note)
    logger.info(
        "monitor %s: breaches %s, alerts %s", metadata.version, [b.kind for b in breaches], report.alerts
    )
    return report
