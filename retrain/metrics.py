"""The project's one definition of macro-F1, used by tuning, ensemble weights, evaluation and the gate."""

from __future__ import annotations

import numpy as np
from sklearn.metrics import f1_score

from retrain.labels import CODES


def macro_f1(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """Macro-F1 over all three classes: a class never predicted scores 0 instead of being skipped."""
    return float(f1_score(y_true, y_pred, average="macro", labels=list(CODES), zero_division=0))
