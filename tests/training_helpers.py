"""Train one model from a whole `Settings`, as the training stage does, for tests that build settings."""

from __future__ import annotations

from typing import Any

import pandas as pd

from retrain.settings import Settings
from retrain.training import TrainedModel, train_model


def train(
    model: str, X_train: pd.DataFrame, y_train: pd.Series, settings: Settings, **kwargs: Any
) -> TrainedModel:
    return train_model(
        model,
        X_train,
        y_train,
        training=settings.training,
        tuning=settings.tuning,
        split=settings.split,
        labels=settings.labels,
        **kwargs,
    )
