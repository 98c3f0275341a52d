"""What every learner does: build its library's datasets once, then fit a member on them."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, ClassVar, Generic, TypeVar

import numpy as np

from retrain.errors import ConfigError
from retrain.members import Member

DataT = TypeVar("DataT")

MAX_BIN = 63
"""Histogram bins of the boosting datasets: fixed, because a dataset is binned once and reused by every
trial. 63 bins are ample for noisy 15-minute features and build histograms faster than 255."""


class Learner(ABC, Generic[DataT]):
    """Fits one model family. `DataT` is what its library trains on (built once per fold and reused)."""

    name: ClassVar[str]
    fixed_params: ClassVar[frozenset[str]]
    """Parameters set by the learner itself (dataset binning, objective, seed, threads): never tuned."""

    def __init__(self, seed: int, early_stopping_rounds: int, max_rounds: int) -> None:
        self.seed = seed
        self.early_stopping_rounds = early_stopping_rounds
        self.max_rounds = max_rounds

    @abstractmethod
    def datasets(
        self,
        X_fit: np.ndarray,
        y_fit: np.ndarray,
        valid: tuple[np.ndarray, np.ndarray] | None,
        threads: int,
        weight: np.ndarray | None = None,
    ) -> DataT:
        """The library's training data for the fit rows (and the early-stopping rows, when given);
        `weight` weighs the fit rows (class weights), the early-stopping rows stay unweighted."""

    @abstractmethod
    def fit(self, data: DataT, params: dict[str, Any], threads: int, rounds: int | None) -> Member:
        """Fit with `params`: early-stopped on the validation rows if `rounds` is None, else that many."""

    def check_search_space(self, names: set[str]) -> None:
        """Refuse to tune a parameter the learner fixes (e.g. `max_bin`: the datasets are binned once)."""
        clash = sorted(names & self.fixed_params)
        if clash:
            raise ConfigError(
                f"tuning.search_spaces.{self.name} tunes {clash}, which the {self.name} learner fixes "
                f"(fixed: {sorted(self.fixed_params)}); remove them from the search space"
            )
