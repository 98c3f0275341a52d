"""One learner per model family, looked up by the model name used in the configuration."""

from __future__ import annotations

from typing import Any

from retrain.errors import ConfigError
from retrain.settings import TrainingSettings
from retrain.training.learners.base import MAX_BIN, Learner
from retrain.training.learners.forest_learner import RandomForestLearner
from retrain.training.learners.lightgbm_learner import LightGBMLearner
from retrain.training.learners.xgboost_learner import XGBoostLearner

_LEARNERS: dict[str, type[Learner[Any]]] = {
    cls.name: cls for cls in (LightGBMLearner, XGBoostLearner, RandomForestLearner)
}


def make_learner(name: str, training: TrainingSettings) -> Learner[Any]:
    if name not in _LEARNERS:
        raise ConfigError(f"unknown model {name!r}; expected one of {sorted(_LEARNERS)}")
    return _LEARNERS[name](training.seed, training.early_stopping_rounds, training.max_boost_rounds)


__all__ = ["MAX_BIN", "Learner", "make_learner"]
