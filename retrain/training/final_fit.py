"""The final fit of a model on every training row (the holdout excluded), with its tuned parameters.

There is no validation slice left to early-stop on, and the holdout must stay unseen, so boosters
train for a fixed number of rounds taken from the CV: the median of the best trial's per-fold best
rounds (robust to one fold stopping very early or very late).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from retrain.members import Member
from retrain.settings import ImbalanceName, SmoteSettings
from retrain.training.learners import Learner
from retrain.training.resampling import fit_rows


def final_rounds(fold_best_rounds: list[int]) -> int | None:
    """Boosting rounds for the final fit; None for a model without rounds."""
    if not fold_best_rounds:
        return None
    return max(1, round(float(np.median(fold_best_rounds))))


def fit_final(
    learner: Learner[Any],
    X: np.ndarray,
    y: np.ndarray,
    params: dict[str, Any],
    *,
    rounds: int | None,
    smote: SmoteSettings,
    seed: int,
    threads: int,
    imbalance: ImbalanceName = "smote",
) -> Member:
    rows = fit_rows(X, y, imbalance=imbalance, smote=smote, seed=seed)
    data = learner.datasets(rows.X, rows.y, None, threads, weight=rows.weight)
    return learner.fit(data, params, threads, rounds=rounds)
