"""A real fitted scikit-learn classifier wrapped with the member interface, for ensemble tests."""

from __future__ import annotations

import numpy as np


class FittedMember:
    """A fitted scikit-learn classifier with the member interface (a `name` and `predict_proba`)."""

    def __init__(self, name: str, model: object) -> None:
        self.name = name
        self.model = model

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        return self.model.predict_proba(X)
