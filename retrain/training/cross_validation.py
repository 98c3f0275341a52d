"""Score one parameter set on the CV folds: fit on each fold, predict its test window, macro-F1."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from retrain.metrics import macro_f1
from retrain.training.fold_data import FoldData
from retrain.training.learners import Learner
from retrain.training.split import Fold

FoldCallback = Callable[[int, list[float], list[int]], None]
"""Called after each fold with (step, macro-F1 of the folds so far, their best rounds); may raise
`optuna.TrialPruned` to stop the evaluation."""


@dataclass(frozen=True)
class CVResult:
    fold_macro_f1: list[float]
    fold_best_rounds: list[int]
    """Best boosting round of each fold; empty for models without rounds (random forest)."""
    oof_proba: np.ndarray
    """Class probabilities of every test row, folds in time order (rows of `CrossValidator.oof_positions`)."""

    @property
    def macro_f1(self) -> float:
        return float(np.mean(self.fold_macro_f1))


class CrossValidator:
    def __init__(
        self, learner: Learner[Any], X: np.ndarray, y: np.ndarray, folds: list[Fold], data: FoldData
    ) -> None:
        self._learner = learner
        self._X = X
        self._y = y
        self._folds = folds
        self._data = data

    @property
    def n_folds(self) -> int:
        return len(self._folds)

    @property
    def oof_positions(self) -> np.ndarray:
        return np.concatenate([fold.test for fold in self._folds])

    def run(
        self, params: dict[str, Any], threads: Callable[[], int], after_fold: FoldCallback | None = None
    ) -> CVResult:
        scores: list[float] = []
        rounds: list[int] = []
        probas: list[np.ndarray] = []
        for step, fold in enumerate(self._folds):
            n_threads = threads()
            member = self._learner.fit(self._data.get(fold, n_threads), params, n_threads, rounds=None)
            proba = member.predict_proba(self._X[fold.test])
            probas.append(proba)
            scores.append(macro_f1(self._y[fold.test], proba.argmax(axis=1)))
            if member.best_iteration is not None:
                rounds.append(member.best_iteration)
            if after_fold is not None:
                after_fold(step, scores, rounds)
        return CVResult(fold_macro_f1=scores, fold_best_rounds=rounds, oof_proba=np.concatenate(probas))
