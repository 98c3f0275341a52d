"""SMOTE oversampling of the rows a model is fitted on, and of nothing else.

Only a fold's fit part (or, for the final fit, the training rows) reaches this module: validation
and test rows are scored as they are, so the scores reflect the real class balance.
"""

from __future__ import annotations

import logging

import numpy as np
from imblearn.over_sampling import SMOTE

from retrain.settings import SmoteSettings

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
