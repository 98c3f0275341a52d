"""XGBoost: `QuantileDMatrix`es built once per fold, multiclass hist boosting early-stopped on validation."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import xgboost as xgb

from retrain.members import N_CLASSES, XGBoostMember
from retrain.training.learners.base import MAX_BIN, Learner

_BOOSTER_PARAMS: dict[str, Any] = {
    "objective": "multi:softprob",
    "num_class": N_CLASSES,
    "eval_metric": "mlogloss",
    "tree_method": "hist",
    "max_bin": MAX_BIN,  # must equal the QuantileDMatrix's bins
    "verbosity": 0,
}


@dataclass(frozen=True)
class XGBoostData:
    fit: xgb.QuantileDMatrix
    valid: xgb.QuantileDMatrix | None


class XGBoostLearner(Learner[XGBoostData]):
    name = "xgboost"
    fixed_params = frozenset({*_BOOSTER_PARAMS, "seed", "nthread"})

    def datasets(
        self,
        X_fit: np.ndarray,
        y_fit: np.ndarray,
        valid: tuple[np.ndarray, np.ndarray] | None,
        threads: int,
        weight: np.ndarray | None = None,
    ) -> XGBoostData:
        fit = xgb.QuantileDMatrix(X_fit, y_fit, weight=weight, max_bin=MAX_BIN, nthread=threads)
        if valid is None:
            return XGBoostData(fit=fit, valid=None)
        return XGBoostData(
            fit=fit, valid=xgb.QuantileDMatrix(*valid, ref=fit, max_bin=MAX_BIN, nthread=threads)
        )

    def fit(
        self, data: XGBoostData, params: dict[str, Any], threads: int, rounds: int | None
    ) -> XGBoostMember:
        full = {**params, **_BOOSTER_PARAMS, "seed": self.seed, "nthread": threads}
        if rounds is not None:
            return XGBoostMember(xgb.train(full, data.fit, num_boost_round=rounds, verbose_eval=False))
        booster = xgb.train(
            full,
            data.fit,
            num_boost_round=self.max_rounds,
            evals=[(data.valid, "valid")],
            early_stopping_rounds=self.early_stopping_rounds,
            verbose_eval=False,
        )
        return XGBoostMember(booster[: booster.best_iteration + 1])
