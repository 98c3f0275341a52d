"""The rules that turn one pass's measurements into breaches: typed, with the value and the limit.

A breach is not yet an alert: `retrain.monitor.state.decide` alerts only on breaches that hold.
"""

from __future__ import annotations

from datetime import datetime

import pandas as pd
from pydantic import BaseModel, ConfigDict

from retrain.data.candles import CANDLE_INTERVAL
from retrain.monitor.drift import DriftReport
from retrain.monitor.realised import WindowScores
from retrain.settings import MonitorAlertKind, MonitorSettings, MonitorWindow

DEGRADED: MonitorAlertKind = "model.degraded"
DRIFTED: MonitorAlertKind = "features.drifted"
STALE: MonitorAlertKind = "data.stale"
EXPIRED: MonitorAlertKind = "model.expired"


class Breach(BaseModel):
    """One limit broken in one pass."""

    model_config = ConfigDict(frozen=True)

    kind: MonitorAlertKind
    message: str
    value: float | None = None
    limit: float | None = None


def data_age_minutes(last_candle: pd.Timestamp, now: pd.Timestamp) -> float:
    """Minutes since the last candle closed (its open time + 15 minutes)."""
    return float((now - (last_candle + CANDLE_INTERVAL)) / pd.Timedelta(minutes=1))


def check_data_freshness(
    last_candle: pd.Timestamp | None, now: pd.Timestamp, settings: MonitorSettings
) -> Breach | None:
    """`data.stale` when the last closed candle is older than the limit, or there is none."""
    limit = settings.max_data_age_minutes
    if last_candle is None:
        return Breach(kind=STALE, message="no candle could be loaded", limit=limit)
    age = data_age_minutes(last_candle, now)
    if age <= limit:
        return None
    return Breach(
        kind=STALE,
        message=f"the last candle ({last_candle.isoformat()}) closed {age:,.0f} minutes ago; "
        f"at most {limit:g} are allowed (exchange halted or feed stuck?)",
        value=age,
        limit=limit,
    )


def check_model_age(created_at: datetime, now: pd.Timestamp, settings: MonitorSettings) -> Breach | None:
    """`model.expired` when production was stored longer ago than `max_model_age_days`."""
    age_days = (now - pd.Timestamp(created_at)) / pd.Timedelta(days=1)
    limit = settings.max_model_age_days
    if age_days <= limit:
        return None
    return Breach(
        kind=EXPIRED,
        message=f"the production model is {age_days:.1f} days old; retrains should replace it within "
        f"{limit:g} days (is the weekly deployment running and promoting?)",
        value=age_days,
        limit=limit,
    )


def check_degradation(windows: dict[MonitorWindow, WindowScores], settings: MonitorSettings) -> Breach | None:
    """`model.degraded` when the model's realised macro-F1 does not beat persistence by the margin."""
    window = settings.degradation_window
    scores = windows[window]
    if scores.rows < settings.min_degradation_rows or scores.macro_f1 is None:
        return None
    margin = scores.macro_f1 - (scores.persistence_macro_f1 or 0.0)
    if margin >= settings.min_margin_over_persistence:
        return None
    return Breach(
        kind=DEGRADED,
        message=f"realised macro-F1 over {window} is {scores.macro_f1:.4f}, {margin:+.4f} against "
        f"persistence ({scores.persistence_macro_f1:.4f}) on {scores.rows} matured rows; at least "
        f"{settings.min_margin_over_persistence:+.4f} is required",
        value=margin,
        limit=settings.min_margin_over_persistence,
    )


def check_drift(report: DriftReport | None, settings: MonitorSettings) -> Breach | None:
    """`features.drifted` when the share of drifted features reaches `drift_share`."""
    if report is None or report.share_drifted < settings.drift_share:
        return None
    return Breach(
        kind=DRIFTED,
        message=f"{len(report.drifted_features)} feature(s) drifted ({report.share_drifted:.0%} of those "
        f"tested, limit {settings.drift_share:.0%}) over the last {report.rows} rows: "
        f"{', '.join(report.drifted_features)}",
        value=report.share_drifted,
        limit=settings.drift_share,
    )
