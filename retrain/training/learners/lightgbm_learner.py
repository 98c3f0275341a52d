"""LightGBM: binned `lgb.Dataset`s built once per fold, multiclass boosting early-stopped on validation."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import lightgbm as lgb
import numpy as np

from retrain.members import N_CLASSES, LightGBMMember
from retrain.training.learners.base import MAX_BIN, Learner

_DATASET_PARAMS: dict[str, Any] = {
    "max_bin": MAX_BIN,
    # Pre-filtering depends on min_data_in_leaf, which is tuned: it must not be baked into the dataset.
    "feature_pre_filter": False,
    "verbosity": -1,
}
_BOOSTER_PARAMS: dict[str, Any] = {
    "objective": "multiclass",
    "num_class": N_CLASSES,
    "metric": "multi_logloss",
    "deterministic": True,
    # Many rows, few bins (about 50 features x 63 bins): row-wise histograms are the faster layout, and
    # forcing a layout is what makes `deterministic` hold.
    "force_row_wise": True,
    "bagging_freq": 1,  # bagging_fraction is tuned; it only acts with a bagging frequency
}


@dataclass(frozen=True)
class LightGBMData:
    fit: lgb.Dataset
    valid: lgb.Dataset | None


class LightGBMLearner(Learner[LightGBMData]):
    name = "lightgbm"
    fixed_params = frozenset({*_DATASET_PARAMS, *_BOOSTER_PARAMS, "seed", "num_threads"})

    def datasets(
        self,
        X_fit: np.ndarray,
        y_fit: np.ndarray,
        valid: tuple[np.ndarray, np.ndarray] | None,
        threads: int,
        weight: np.ndarray | None = None,
    ) -> LightGBMData:
        params = {**_DATASET_PARAMS, "num_threads": threads}
        fit = lgb.Dataset(X_fit, y_fit, weight=weight, params=params, free_raw_data=False).construct()
        if valid is None:
            return LightGBMData(fit=fit, valid=None)
        valid_set = lgb.Dataset(*valid, reference=fit, params=params, free_raw_data=False).construct()
        return LightGBMData(fit=fit, valid=valid_set)

    def fit(
        self, data: LightGBMData, params: dict[str, Any], threads: int, rounds: int | None
    ) -> LightGBMMember:
        full = {**params, **_DATASET_PARAMS, **_BOOSTER_PARAMS, "seed": self.seed, "num_threads": threads}
        if rounds is not None:
            return LightGBMMember(lgb.train(full, data.fit, num_boost_round=rounds))
        stop = lgb.early_stopping(self.early_stopping_rounds, first_metric_only=True, verbose=False)
        # Without keep_training_booster the returned booster is cut at its best iteration.
        booster = lgb.train(
            full, data.fit, num_boost_round=self.max_rounds, valid_sets=[data.valid], callbacks=[stop]
        )
        return LightGBMMember(booster)
