"""The holdout and CV splits never let a model see, or learn from labels reaching into, the rows it is scored on."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from retrain.errors import TrainingError
from retrain.training import make_folds, split_holdout

STEP = pd.Timedelta(minutes=15)
GAP = 4
HOLDOUT_DAYS = 2


def _frame(days: int = 12) -> tuple[pd.DataFrame, pd.Series]:
    index = pd.date_range("2026-03-01", periods=days * 96, freq=STEP, tz="UTC", name="timestamp")
    rng = np.random.default_rng(0)
    X = pd.DataFrame(rng.normal(size=(len(index), 3)), index=index, columns=["a", "b", "c"])
    y = pd.Series(rng.integers(0, 3, len(index)), index=index, dtype="int8")
    return X, y


def test_holdout_is_the_last_holdout_days() -> None:
    X, y = _frame()
    split = split_holdout(X, y, HOLDOUT_DAYS, GAP)
    assert len(split.X_holdout) == HOLDOUT_DAYS * 96
    assert split.X_holdout.index[-1] == X.index[-1]
    assert split.y_holdout.index.equals(split.X_holdout.index)


def test_rows_just_before_the_holdout_are_purged_from_training() -> None:
    X, y = _frame()
    split = split_holdout(X, y, HOLDOUT_DAYS, GAP)
    assert len(split.purged) == GAP
    assert split.X_train.index[-1] + GAP * STEP < split.X_holdout.index[0]
    assert len(split.X_train) + GAP + len(split.X_holdout) == len(X)
    assert split.y_train.index.equals(split.X_train.index)


def test_holdout_rows_never_appear_in_any_fold() -> None:
    X, y = _frame()
    split = split_holdout(X, y, HOLDOUT_DAYS, GAP)
    folds = make_folds(len(split.X_train), n_splits=5, gap=GAP, validation_fraction=0.15)
    used = split.X_train.index[np.concatenate([np.r_[f.fit, f.valid, f.test] for f in folds])]
    assert not used.isin(split.X_holdout.index).any()
    assert not used.isin(split.purged).any()


def test_every_test_window_starts_a_purge_gap_after_the_fit_and_validation_rows() -> None:
    X, _ = _frame()
    folds = make_folds(len(X), n_splits=5, gap=GAP, validation_fraction=0.15)
    assert len(folds) == 5
    for fold in folds:
        seen = X.index[np.r_[fold.fit, fold.valid]]
        assert seen.max() + GAP * STEP < X.index[fold.test].min()


def test_validation_slice_is_the_end_of_the_training_part_after_a_purge_gap() -> None:
    X, _ = _frame()
    for fold in make_folds(len(X), n_splits=5, gap=GAP, validation_fraction=0.15):
        assert X.index[fold.fit].max() + GAP * STEP < X.index[fold.valid].min()
        assert fold.valid[-1] + GAP + 1 == fold.test[0]
        assert len(fold.valid) == round((len(fold.fit) + GAP + len(fold.valid)) * 0.15)


def test_folds_are_expanding_windows_in_time_order() -> None:
    folds = make_folds(1200, n_splits=5, gap=GAP, validation_fraction=0.15)
    assert [f.number for f in folds] == [1, 2, 3, 4, 5]
    assert all(a.test[-1] < b.test[0] for a, b in zip(folds, folds[1:], strict=False))
    assert all(
        len(a.fit) < len(b.fit) and a.fit[0] == b.fit[0] == 0 for a, b in zip(folds, folds[1:], strict=False)
    )


def test_too_few_rows_for_the_folds_raise_a_training_error() -> None:
    with pytest.raises(TrainingError, match="fold 1"):
        make_folds(30, n_splits=5, gap=GAP, validation_fraction=0.15)
    with pytest.raises(TrainingError, match="cannot make 5 time-series folds"):
        make_folds(8, n_splits=5, gap=GAP, validation_fraction=0.15)


def test_a_holdout_covering_all_the_data_raises_a_training_error() -> None:
    X, y = _frame(days=2)
    with pytest.raises(TrainingError, match="nothing left to train on"):
        split_holdout(X, y, holdout_days=2, gap=GAP)


def test_unsorted_timestamps_are_refused() -> None:
    X, y = _frame()
    with pytest.raises(TrainingError, match="increasing"):
        split_holdout(X.iloc[::-1], y.iloc[::-1], HOLDOUT_DAYS, GAP)
