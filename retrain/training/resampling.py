"""Class imbalance handling of the rows a model is fitted on, and of nothing else.

`training.imbalance` chooses SMOTE oversampling (the default), balanced sample weights, or neither.
Only a fold's fit part (or, for the final fit, the training rows) reaches this module: the weights
are computed from those rows' class counts, and validation and test rows are scored as they are
(unweighted, not resampled), so the scores reflect the real class balance.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
from imblearn.over_sampling import SMOTE
from sklearn.utils.class_weight import compute_sample_weight

from retrain.settings import ImbalanceName, SmoteSettings

logger = logging.getLogger(__name__)


def oversample(
    X: np.ndarray, y: np.ndarray, smote: SmoteSettings, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """Raise every minority class with at least two rows to `minority_ratio` x the majority count (seeded SMOTE).

    A class with a single row cannot be interpolated and is left as it is; `k_neighbors` shrinks
    when the smallest oversampled class is too small for it.
    """
    if not smote.enabled:
        return X, y
    classes, counts = np.unique(y, return_counts=True)
    target = int(counts.max() * smote.minority_ratio)
    targets = {int(c): target for c, n in zip(classes, counts, strict=True) if 2 <= n < target}
    if not targets:
        return X, y
    smallest = min(int(n) for c, n in zip(classes, counts, strict=True) if int(c) in targets)
    k_neighbors = min(smote.k_neighbors, smallest - 1)
    if k_neighbors < smote.k_neighbors:
        logger.info(
            "SMOTE k_neighbors lowered from %d to %d: a class has %d rows",
            smote.k_neighbors,
            k_neighbors,
            smallest,
        )
    sampler = SMOTE(sampling_strategy=targets, k_neighbors=k_neighbors, random_state=seed)
    X_res, y_res = sampler.fit_resample(X, y)
    return np.ascontiguousarray(X_res), np.asarray(y_res, dtype=y.dtype)


@dataclass(frozen=True)
class FitRows:
    """The rows a learner fits on, with a weight per row (None: every row counts once)."""

    X: np.ndarray
    y: np.ndarray
    weight: np.ndarray | None = None


def fit_rows(
    X: np.ndarray, y: np.ndarray, *, imbalance: ImbalanceName, smote: SmoteSettings, seed: int
) -> FitRows:
    """The fit rows after the configured imbalance handling; `X`/`y` must be fit rows only.

    class_weight gives each row n / (classes x rows of its class) (scikit-learn's "balanced"), so every
    class weighs the same in the loss without the synthetic rows SMOTE interpolates.
    """
    if imbalance == "class_weight":
        return FitRows(X, y, compute_sample_weight("balanced", y))
    if imbalance == "smote":
        X, y = oversample(X, y, smote, seed)
    return FitRows(X, y)
