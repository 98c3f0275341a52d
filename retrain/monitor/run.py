"""One monitor pass: load production (verified), fetch the candles since its holdout ended, score the
matured labels, test drift, check freshness and age, and decide which breaches alert.

Prefect-free: `flows/monitor.py` runs it hourly with artifacts and events, `retrain monitor` once.
"""

from __future__ import annotations

import logging
import math
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field

from retrain.data.candles import CANDLE_INTERVAL, CandleSource, last_closed_candle
from retrain.data.loading import load_candles, make_source
from retrain.errors import (
    CandleValidationError,
    DatasetError,
    DataSourceError,
    FeatureMismatchError,
    ModelStoreError,
)
from retrain.features import FeatureManager
from retrain.labels import forward_return, make_labels
from retrain.monitor.checks import (
    Breach,
    check_data_freshness,
    check_degradation,
    check_drift,
    check_model_age,
    data_age_minutes,
)
from retrain.monitor.drift import DriftReport, feature_drift
from retrain.monitor.realised import WINDOW_DAYS, WindowScores, realised_scores
from retrain.monitor.reference import PredictionMix, load_version_reference, prediction_mix
from retrain.monitor.state import decide, load_state, save_state, state_path
from retrain.monitor.trend import append_pass, history_path
from retrain.settings import MonitorAlertKind, MonitorWindow, Settings
from retrain.store import ModelMetadata, load_production
from retrain.store.layout import StoreLayout

logger = logging.getLogger(__name__)

_MARGIN_DAYS = 1
"""Extra day fetched, so a short gap near the start cannot leave the first new rows without warm-up."""


class DataStatus(BaseModel):
    model_config = ConfigDict(frozen=True)

    source: dict[str, Any] = Field(default_factory=dict)
    first_candle: datetime | None = None
    last_candle: datetime | None = None
    age_minutes: float | None = Field(None, description="minutes since the last candle closed")
    candles: int = 0
    error: str | None = Field(None, description="why no candle could be used")


class MonitorReport(BaseModel):
    """Everything one pass measured and decided; `--json` prints it."""

    model_config = ConfigDict(frozen=True)

    checked_at: datetime
    version: str
    market: str
    model_created_at: datetime
    model_age_days: float
    holdout_end: datetime
    data: DataStatus
    realised: dict[MonitorWindow, WindowScores]
    recent_mix: PredictionMix | None = Field(None, description="prediction mix over the drift window")
    reference_mix: PredictionMix | None = Field(None, description="prediction mix on the model's holdout")
    drift: DriftReport | None = None
    drifted_features: list[str] = Field(default_factory=list)
    breaches: list[Breach] = Field(default_factory=list, description="limits broken in this pass")
    alerts: list[MonitorAlertKind] = Field(default_factory=list, description="breaches that alert now")
    streaks: dict[MonitorAlertKind, int] = Field(default_factory=dict)
    notes: list[str] = Field(default_factory=list)
    duration_s: float = 0.0

    def trend_row(self) -> dict[str, Any]:
        """The pass in one flat row (trend history, table artifacts)."""
        row: dict[str, Any] = {"checked_at": self.checked_at.isoformat(), "version": self.version}
        for window, scores in self.realised.items():
            row[f"{window}_rows"] = scores.rows
            row[f"{window}_macro_f1"] = _rounded(scores.macro_f1)
            row[f"{window}_persistence_macro_f1"] = _rounded(scores.persistence_macro_f1)
        row["share_drifted"] = _rounded(self.drift.share_drifted) if self.drift else None
        row["data_age_minutes"] = _rounded(self.data.age_minutes, 1)
        row["model_age_days"] = _rounded(self.model_age_days, 2)
        row["breaches"] = [breach.kind for breach in self.breaches]
        row["alerts"] = list(self.alerts)
        return row


def _rounded(value: float | None, digits: int = 4) -> float | None:
    return None if value is None else round(value, digits)


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


def monitor_pass(
    settings: Settings, *, source: CandleSource | None = None, now: pd.Timestamp | None = None
) -> MonitorReport:
    """One pass (see the module docstring); updates `<models_dir>/monitor_state.json` and the trend."""
    started = time.perf_counter()
    now = pd.Timestamp.now(tz="UTC") if now is None else pd.Timestamp(now).tz_convert("UTC")
    monitor = settings.monitor
    models_dir = Path(settings.paths.models_dir)
    loaded = load_production(models_dir)
    model, metadata = loaded.model, loaded.metadata
    features = FeatureManager()
    model_hash = getattr(model, "feature_definition_hash", metadata.feature_hash)
    if model_hash and model_hash != features.definition_hash:
        raise FeatureMismatchError(
            f"production version {metadata.version} was trained on feature set {model_hash[:12]}, this code "
            f"computes {features.definition_hash[:12]}: deploy the code that trained it, or retrain"
        )
    info = metadata.training_info
    horizon = info.label_horizon if info else settings.labels.horizon
    threshold = info.label_threshold if info else settings.labels.threshold
    since = _holdout_end(metadata)
    end = last_closed_candle(now)
    notes: list[str] = []

    days = days_to_fetch(since, end, features.max_lookback, horizon)
    data_settings = settings.data.model_copy(update={"days": days})
    candles: pd.DataFrame | None = None
    try:
        validated = load_candles(
            data_settings, source=_NoFreshnessCheck(source or make_source(data_settings)), now=now
        )
        candles = validated.candles[validated.candles.index <= end]
        source_info = validated.source
        data = DataStatus(
            source=source_info,
            first_candle=candles.index[0].to_pydatetime() if len(candles) else None,
            last_candle=candles.index[-1].to_pydatetime() if len(candles) else None,
            age_minutes=data_age_minutes(candles.index[-1], now) if len(candles) else None,
            candles=len(candles),
        )
    except (DataSourceError, CandleValidationError) as exc:
        source_info = {"kind": settings.data.source}
        data = DataStatus(source=source_info, error=str(exc))
        notes.append(f"no usable candles: {exc}")

    realised: dict[MonitorWindow, WindowScores] = {window: WindowScores(rows=0) for window in WINDOW_DAYS}
    drift: DriftReport | None = None
    recent_mix: PredictionMix | None = None
    reference = load_version_reference(StoreLayout(models_dir).version_dir(metadata.version))
    if candles is not None and len(candles):
        try:
            X = features.build(candles)
        except DatasetError as exc:
            X = None
            notes.append(f"no feature rows: {exc}")
        if X is not None:
            realised = realised_scores(
                model,
                X,
                make_labels(candles, horizon, threshold),
                forward_return(candles, 1),
                since=since,
                end=end,
                horizon=horizon,
                fee_rate=settings.evaluation.fee_rate,
                seed=settings.training.seed,
            )
            recent = X[(X.index > since) & (X.index > end - pd.Timedelta(days=monitor.drift_window_days))]
            if len(recent):
                recent_mix = prediction_mix(
                    np.asarray(model.predict_proba(recent[list(model.feature_names)]))
                )
            if reference is None:
                notes.append(
                    f"version {metadata.version} has no drift reference (drift_reference.json); drift not tested"
                )
            elif len(recent) < monitor.drift_min_rows:
                notes.append(
                    f"{len(recent)} feature rows since the holdout in the drift window; drift needs "
                    f"{monitor.drift_min_rows}"
                )
            else:
                drift = feature_drift(
                    recent,
                    reference,
                    fdr=monitor.drift_fdr,
                    min_psi=monitor.drift_min_psi,
                    ignore=monitor.drift_ignore,
                )

    last_candle = pd.Timestamp(data.last_candle) if data.last_candle else None
    found = [
        check_data_freshness(last_candle, now, monitor),
        check_model_age(metadata.created_at, now, monitor),
        check_degradation(realised, monitor),
        check_drift(drift, monitor),
    ]
    breaches = [breach for breach in found if breach is not None]
    path = state_path(models_dir)
    alerts, state = decide(
        load_state(path).for_version(metadata.version), breaches, now.to_pydatetime(), monitor
    )
    save_state(state, path)

    report = MonitorReport(
        checked_at=now.to_pydatetime(),
        version=metadata.version,
        market=_market(settings, source_info),
        model_created_at=metadata.created_at,
        model_age_days=(now - pd.Timestamp(metadata.created_at)) / pd.Timedelta(days=1),
        holdout_end=since.to_pydatetime(),
        data=data,
        realised=realised,
        recent_mix=recent_mix,
        reference_mix=reference.holdout_mix if reference else None,
        drift=drift,
        drifted_features=drift.drifted_features if drift else [],
        breaches=breaches,
        alerts=[alert.kind for alert in alerts],
        streaks={kind: value.streak for kind, value in state.kinds.items()},
        notes=notes,
        duration_s=time.perf_counter() - started,
    )
    append_pass(history_path(models_dir), report.trend_row())
    for note in notes:
        logger.info("monitor: %s", note)
    logger.info(
        "monitor %s: breaches %s, alerts %s", metadata.version, [b.kind for b in breaches], report.alerts
    )
    return report
