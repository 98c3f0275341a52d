"""Per-fold training data: imbalance handling of the fold's fit part, then the learner's library datasets.

Building them (nearest neighbours for SMOTE, feature binning for the boosters) costs as much as a
small model, and it is the same for every trial, so by default each fold's data is built once and
reused by all trials. With reuse switched off the very same code runs inside every trial: the
sequential reference for benchmarks.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from retrain.settings import ImbalanceName, SmoteSettings
from retrain.training.learners import Learner
from retrain.training.resampling import fit_rows
from retrain.training.split import Fold


class FoldData:
    """Builds (and, when `reuse`, keeps) the training data of each fold for one learner.

    Used by one study at a time: a study runs its trials one after another.
    """

    def __init__(
        self,
        learner: Learner[Any],
        X: np.ndarray,
        y: np.ndarray,
        *,
        smote: SmoteSettings,
        seed: int,
        reuse: bool,
        imbalance: ImbalanceName = "smote",
    ) -> None:
        self._learner = learner
        self._X = X
        self._y = y
        self._smote = smote
        self._imbalance = imbalance
        self._seed = seed
        self._reuse = reuse
        self._built: dict[int, Any] = {}

    def get(self, fold: Fold, threads: int) -> Any:
        if fold.number in self._built:
            return self._built[fold.number]
        rows = fit_rows(
            self._X[fold.fit],
            self._y[fold.fit],
            imbalance=self._imbalance,
            smote=self._smote,
            seed=self._seed,
        )
        valid = (self._X[fold.valid], self._y[fold.valid])
        data = self._learner.datasets(rows.X, rows.y, valid, threads, weight=rows.weight)
        if self._reuse:
            self._built[fold.number] = data
        return data
