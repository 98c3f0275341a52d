"""Random forest (scikit-learn): bootstrapped trees, no boosting rounds and so no early stopping."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from sklearn.ensemble import RandomForestClassifier

from retrain.members import RandomForestMember
from retrain.training.learners.base import Learner


@dataclass(frozen=True)
class ForestData:
    X: np.ndarray
    y: np.ndarray


class RandomForestLearner(Learner[ForestData]):
    name = "random_forest"
    fixed_params = frozenset({"random_state", "n_jobs", "bootstrap"})

    def datasets(
        self, X_fit: np.ndarray, y_fit: np.ndarray, valid: tuple[np.ndarray, np.ndarray] | None, threads: int
    ) -> ForestData:
        # The trees split float32 values: converting once here spares a copy in every fit.
        return ForestData(X=np.ascontiguousarray(X_fit, dtype=np.float32), y=y_fit)

    def fit(
        self, data: ForestData, params: dict[str, Any], threads: int, rounds: int | None
    ) -> RandomForestMember:
        forest = RandomForestClassifier(**params, bootstrap=True, random_state=self.seed, n_jobs=threads)
        return RandomForestMember(forest.fit(data.X, data.y))
