"""Leak-free time splits: the holdout at the end, then purged time-series CV folds over the rest.

Labels look `horizon` candles ahead, so a training row just before a test window carries information
from inside it. Every boundary below (train | holdout, fit | validation, train | test) therefore drops
`gap` rows (the purge gap, at least the label horizon) on the earlier side.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.model_selection import TimeSeriesSplit

from retrain.errors import TrainingError


@dataclass(frozen=True)
class HoldoutSplit:
    """Training rows (holdout and purge removed) and the holdout, the most recent rows."""

    X_train: pd.DataFrame
    y_train: pd.Series
    X_holdout: pd.DataFrame
    y_holdout: pd.Series
    purged: pd.DatetimeIndex


@dataclass(frozen=True)
class Fold:
    """Positional row indices of one CV fold: fit (to train on), valid (early stopping), test (scoring)."""

    number: int
    fit: np.ndarray
    valid: np.ndarray
    test: np.ndarray


def _check_time_index(X: pd.DataFrame, y: pd.Series) -> None:
    if not isinstance(X.index, pd.DatetimeIndex):
        raise TrainingError(f"features need a DatetimeIndex, got {type(X.index).__name__}")
    if not X.index.equals(y.index):
        raise TrainingError("features and labels must share the same index (same timestamps, same order)")
    if not (X.index.is_monotonic_increasing and X.index.is_unique):
        raise TrainingError("the timestamps must be unique and increasing (oldest first)")


def split_holdout(X: pd.DataFrame, y: pd.Series, holdout_days: int, gap: int) -> HoldoutSplit:
    """Hold out the last `holdout_days` days and purge the `gap` rows just before them."""
    _check_time_index(X, y)
    if len(X) == 0:
        raise TrainingError("no rows to split: the feature table is empty")
    cutoff = X.index[-1] - pd.Timedelta(days=holdout_days)
    n_train_side = int(X.index.searchsorted(cutoff, side="right"))
    n_train = n_train_side - gap
    if n_train <= 0:
        raise TrainingError(
            f"nothing left to train on: {len(X)} rows from {X.index[0]} to {X.index[-1]} minus a "
            f"{holdout_days}-day holdout and a {gap}-row purge; fetch more days or shorten split.holdout_days"
        )
    return HoldoutSplit(
        X_train=X.iloc[:n_train],
        y_train=y.iloc[:n_train],
        X_holdout=X.iloc[n_train_side:],
        y_holdout=y.iloc[n_train_side:],
        purged=X.index[n_train:n_train_side],
    )


def make_folds(n_rows: int, n_splits: int, gap: int, validation_fraction: float) -> list[Fold]:
    """Expanding-window folds; the validation slice is the end of each training part, purged on both sides.

    The test part starts `gap` rows after the validation slice (TimeSeriesSplit's own gap) and the
    validation slice starts `gap` rows after the fit part.
    """
    try:
        splits = list(TimeSeriesSplit(n_splits=n_splits, gap=gap).split(np.empty((n_rows, 1))))
    except ValueError as exc:
        raise TrainingError(
            f"cannot make {n_splits} time-series folds with a {gap}-row gap from {n_rows} rows: {exc}"
        ) from exc
    folds = []
    for number, (train, test) in enumerate(splits, start=1):
        n_valid = max(1, round(len(train) * validation_fraction))
        n_fit = len(train) - n_valid - gap
        if n_fit < 1:
            raise TrainingError(
                f"fold {number} has {len(train)} training rows: too few for a {n_valid}-row validation slice "
                f"and a {gap}-row purge; use more data or fewer split.n_splits"
            )
        folds.append(Fold(number=number, fit=train[:n_fit], valid=train[-n_valid:], test=test))
    return folds
