"""What one monitor pass found, for `--json`, the terminal, the trend history and the Prefect artifacts."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from retrain.monitor.checks import Breach
from retrain.monitor.drift import DriftReport
from retrain.monitor.realised import WindowScores
from retrain.monitor.reference import PredictionMix
from retrain.settings import MonitorAlertKind, MonitorWindow


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

    def window_rows(self) -> list[dict[str, Any]]:
        """One row per realised window, the model next to its baselines (the pass's table artifact)."""
        return [
            {
                "window": window,
                "rows": scores.rows,
                "macro_f1": _rounded(scores.macro_f1),
                "persistence": _rounded(scores.persistence_macro_f1),
                "always_hold": _rounded(scores.always_hold_macro_f1),
                "total_return": _rounded(scores.trading.total_return) if scores.trading else None,
                "trades": scores.trading.n_trades if scores.trading else None,
                "BUY/HOLD/SELL": _mix(scores.prediction_mix),
            }
            for window, scores in self.realised.items()
        ]

    def format_text(self) -> str:
        lines = [
            f"Production {self.version} ({self.market}), {self.model_age_days:.1f} days old; "
            f"checked {self.checked_at:%Y-%m-%d %H:%M} UTC",
            f"Last candle {self.data.last_candle or 'none'} ({_rounded(self.data.age_minutes, 0)} min old)"
            + (f"; {self.data.error}" if self.data.error else ""),
            "Realised on matured labels (macro-F1 / persistence / always-hold, rows):",
        ]
        for row in self.window_rows():
            lines.append(
                f"  {row['window']:<16} {row['macro_f1']} / {row['persistence']} / {row['always_hold']}, "
                f"{row['rows']} rows; signals {row['BUY/HOLD/SELL']}"
            )
        lines.append(f"Prediction mix: recent {_mix(self.recent_mix)}, holdout {_mix(self.reference_mix)}")
        if self.drift is not None:
            lines.append(
                f"Drift: {len(self.drifted_features)} of {len(self.drift.features)} features "
                f"({self.drift.share_drifted:.0%}) over {self.drift.rows} rows: {', '.join(self.drifted_features) or '-'}"
            )
        lines += [f"Breach: {breach.kind}: {breach.message}" for breach in self.breaches]
        lines += [f"Note: {note}" for note in self.notes]
        lines.append(f"Alerts: {', '.join(self.alerts) or 'none'}")
        return "\n".join(lines)


def _mix(mix: PredictionMix | None) -> str | None:
    if mix is None:
        return None
    shares = "/".join(f"{mix.shares[name]:.0%}" for name in ("BUY", "HOLD", "SELL"))
    return f"{shares} (confidence {mix.mean_confidence:.2f})"


def _rounded(value: float | None, digits: int = 4) -> float | None:
    return None if value is None else round(value, digits)
