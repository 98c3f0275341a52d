"""How a model did in the week after a cutoff, as the live bot met that week: its signals against the
labels that matured, next to the naive baselines and the trading read-out on the same rows."""

from __future__ import annotations

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict

from retrain.dataset import Dataset
from retrain.ensemble import ProductionEnsemble
from retrain.evaluation import naive_baselines, score_predictions
from retrain.labels import CLASSES, HOLD
from retrain.trading import TradingSummary, trading_readout

BASELINES = ("persistence", "always_hold")


class LiveScores(BaseModel):
    """One predictor's live week."""

    model_config = ConfigDict(frozen=True)

    macro_f1: float
    per_class_f1: dict[str, float]
    trading: TradingSummary


def signals(model: ProductionEnsemble | None, rows: Dataset) -> np.ndarray:
    """The model's class codes for the week; without a model the bot stands aside (HOLD everywhere)."""
    if model is None:
        return np.full(len(rows), HOLD, dtype=np.int64)
    return np.asarray(model.predict(rows.X)).astype(np.int64)


def baseline_signals(rows: Dataset, history: pd.Series, seed: int) -> dict[str, np.ndarray]:
    """Persistence (the last label known at each row) and always-hold on the week's rows."""
    every = naive_baselines(rows.y, history, rows.horizon, seed)
    return {name: every[name] for name in BASELINES}


def score_live(predicted: np.ndarray, rows: Dataset, fee_rate: float) -> LiveScores:
    scores = score_predictions(rows.y.to_numpy(), predicted)
    return LiveScores(
        macro_f1=scores.macro_f1,
        per_class_f1={name: scores.per_class[name].f1 for name in CLASSES},
        trading=trading_readout(predicted, rows.next_return.to_numpy(), fee_rate).summary(),
    )
