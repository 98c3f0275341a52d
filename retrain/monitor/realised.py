"""Realised scores of the production model on labels that have matured since it was trained.

A label at candle t needs the `horizon` candles after it; once they have closed, the model's
prediction at t can be scored like a holdout row. Every window is scored next to the naive baselines
of `retrain.evaluation` (persistence, always-hold) on the same rows, since a macro-F1 alone means
little on a market whose class mix moves from week to week.

Windows end at `end` (the last closed candle) and never reach back to `since` (the end of the
model's holdout), so no row the model was trained or evaluated on is counted:
  last_day: (end - 1 day, end]; last_7_days: (end - 7 days, end]; since_promotion: (since, end].
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field

from retrain.ensemble import signal_codes
from retrain.errors import InvalidInputError
from retrain.evaluation import naive_baselines, score_predictions
from retrain.monitor.reference import PredictionMix, prediction_mix
from retrain.settings import MonitorWindow
from retrain.trading import TradingSummary, trading_readout

logger = logging.getLogger(__name__)

WINDOW_DAYS: dict[MonitorWindow, int | None] = {"last_day": 1, "last_7_days": 7, "since_promotion": None}
"""Length of each window in days; None: back to the end of the holdout."""


class WindowScores(BaseModel):
    """One window's realised scores; every score is None when the window has no matured row."""

    model_config = ConfigDict(frozen=True)

    rows: int
    start: datetime | None = Field(None, description="first scored row")
    end: datetime | None = Field(None, description="last scored row")
    macro_f1: float | None = None
    persistence_macro_f1: float | None = None
    always_hold_macro_f1: float | None = None
    trading: TradingSummary | None = None
    prediction_mix: PredictionMix | None = None


def window_start(window: MonitorWindow, *, since: pd.Timestamp, end: pd.Timestamp) -> pd.Timestamp:
    """Rows strictly after this timestamp belong to `window`."""
    days = WINDOW_DAYS[window]
    return since if days is None else max(since, end - pd.Timedelta(days=days))


def realised_scores(
    model: Any,
    X: pd.DataFrame,
    labels: pd.Series,
    next_return: pd.Series,
    *,
    since: pd.Timestamp,
    end: pd.Timestamp,
    horizon: int,
    fee_rate: float,
    seed: int,
) -> dict[MonitorWindow, WindowScores]:
    """Scores of `model` per window on the rows that have features, a matured label and a next return.

    `labels` must reach back before `since` (persistence repeats the label of t - horizon); `model`
    is a `ProductionEnsemble` or anything with `feature_names` and `predict_proba`.
    """
    index = X.index.intersection(labels.index).intersection(next_return.dropna().index)
    index = index[(index > since) & (index <= end)].sort_values()
    if index.empty:
        return {window: WindowScores(rows=0) for window in WINDOW_DAYS}
    proba = np.asarray(model.predict_proba(X.loc[index, list(model.feature_names)]))
    codes = signal_codes(model, proba)
    scores = {}
    for window in WINDOW_DAYS:
        rows = index > window_start(window, since=since, end=end)
        scores[window] = _score_window(
            labels,
            index[rows],
            proba[rows],
            codes[rows],
            next_return,
            horizon=horizon,
            fee_rate=fee_rate,
            seed=seed,
        )
    return scores


def _score_window(
    labels: pd.Series,
    index: pd.DatetimeIndex,
    proba: np.ndarray,
    y_pred: np.ndarray,
    next_return: pd.Series,
    *,
    horizon: int,
    fee_rate: float,
    seed: int,
) -> WindowScores:
    if index.empty:
        return WindowScores(rows=0)
    y_true = labels.loc[index]
    history = labels[labels.index < index[0]]
    if history.empty:
        raise InvalidInputError(
            f"no label before {index[0]}: persistence needs the labels before the scored rows; "
            "fetch candles from before the end of the holdout"
        )
    baselines = naive_baselines(y_true, history, horizon, seed)
    codes = y_true.to_numpy()
    return WindowScores(
        rows=len(index),
        start=index[0].to_pydatetime(),
        end=index[-1].to_pydatetime(),
        macro_f1=score_predictions(codes, y_pred, proba).macro_f1,
        persistence_macro_f1=score_predictions(codes, baselines["persistence"]).macro_f1,
        always_hold_macro_f1=score_predictions(codes, baselines["always_hold"]).macro_f1,
        trading=trading_readout(y_pred, next_return.loc[index].to_numpy(), fee_rate).summary(),
        prediction_mix=prediction_mix(proba, y_pred),
    )
