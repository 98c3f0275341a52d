"""Random forest (scikit-learn) on quantile-binned features: no boosting rounds, so no early stopping.

The trees split bin codes instead of raw values. scikit-learn's exact splitter sorts every feature
at every node and tries a threshold between each pair of distinct values; with 64 codes per feature
it does about half the work for the same fold scores on 180 days of 15-minute candles (measured:
bench/README.md, "How the 10-minute target was reached"). The boosters bin their inputs likewise.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
from sklearn.ensemble import RandomForestClassifier
from sklearn.preprocessing import KBinsDiscretizer

from retrain.members import RandomForestMember
from retrain.training.learners.base import MAX_BIN, Learner

FOREST_BINS = MAX_BIN + 1
"""Quantile bins per feature; features with fewer distinct values keep fewer bins."""


@dataclass(frozen=True)
class ForestData:
    X: np.ndarray
    y: np.ndarray
    bins: KBinsDiscretizer
    weight: np.ndarray | None = None


def fit_bins(X: np.ndarray) -> KBinsDiscretizer:
    """Quantile bin edges of the fit rows; a feature with few distinct values just gets fewer bins.

    Every row counts (`subsample=None`): a random subsample would make the model depend on more than the seed.
    """
    bins = KBinsDiscretizer(
        n_bins=FOREST_BINS,
        encode="ordinal",
        strategy="quantile",
        quantile_method="linear",
        subsample=None,
        dtype=np.float32,
    )
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Bins whose width are too small", category=UserWarning)
        return bins.fit(X)


class RandomForestLearner(Learner[ForestData]):
    name = "random_forest"
    fixed_params = frozenset({"random_state", "n_jobs", "bootstrap"})

    def datasets(
        self,
        X_fit: np.ndarray,
        y_fit: np.ndarray,
        valid: tuple[np.ndarray, np.ndarray] | None,
        threads: int,
        weight: np.ndarray | None = None,
    ) -> ForestData:
        bins = fit_bins(X_fit)
        return ForestData(X=np.ascontiguousarray(bins.transform(X_fit)), y=y_fit, bins=bins, weight=weight)

    def fit(
        self, data: ForestData, params: dict[str, Any], threads: int, rounds: int | None
    ) -> RandomForestMember:
        forest = RandomForestClassifier(**params, bootstrap=True, random_state=self.seed, n_jobs=threads)
        return RandomForestMember(forest.fit(data.X, data.y, sample_weight=data.weight), bins=data.bins)
