"""The trained member models of the production ensemble: small picklable wrappers, one per library.

Their import paths (`retrain.members.LightGBMMember`, ...) are public API: they are pickled into the
production model. Every member returns class probabilities in the fixed class order `retrain.labels.CLASSES`
(SELL=0, HOLD=1, BUY=2), with a zero column for a class absent from its training data, and predicts a
single row cheaply (one thread, no DMatrix or DataFrame built per call).
"""

from __future__ import annotations

import lightgbm as lgb
import numpy as np
import xgboost as xgb
from sklearn.ensemble import RandomForestClassifier
from sklearn.preprocessing import KBinsDiscretizer

from retrain.errors import FeatureMismatchError
from retrain.labels import CODES

N_CLASSES = len(CODES)


def _check_input(X: np.ndarray, n_features: int, name: str) -> None:
    if X.ndim != 2 or X.shape[1] != n_features:
        raise FeatureMismatchError(
            f"{name} member expects a 2-D array with {n_features} feature columns, got shape {X.shape}"
        )


def _shares(importance: np.ndarray) -> np.ndarray:
    """Importances as shares summing to 1, so the three members can be plotted on one scale."""
    total = importance.sum()
    return importance / total if total > 0 else importance


class LightGBMMember:
    """A LightGBM booster trained for exactly `best_iteration` rounds."""

    name = "lightgbm"

    def __init__(self, booster: lgb.Booster) -> None:
        self.booster = booster
        self.n_features = booster.num_feature()
        self.best_iteration = booster.current_iteration()

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        _check_input(X, self.n_features, self.name)
        return self.booster.predict(X, num_threads=1)

    def feature_importance(self) -> np.ndarray:
        return _shares(self.booster.feature_importance(importance_type="gain").astype(np.float64))


class XGBoostMember:
    """An XGBoost booster trained for exactly `best_iteration` rounds, set to predict on one thread."""

    name = "xgboost"

    def __init__(self, booster: xgb.Booster) -> None:
        booster.set_param({"nthread": 1})
        self.booster = booster
        self.n_features = booster.num_features()
        self.best_iteration = booster.num_boosted_rounds()

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        _check_input(X, self.n_features, self.name)
        return np.asarray(self.booster.inplace_predict(X)).reshape(len(X), N_CLASSES)

    def feature_importance(self) -> np.ndarray:
        gains = self.booster.get_score(importance_type="gain")
        importance = np.array([gains.get(f"f{i}", 0.0) for i in range(self.n_features)], dtype=np.float64)
        return _shares(importance)


class RandomForestMember:
    """A scikit-learn random forest, set to predict on one thread, grown on quantile-binned features.

    `bins` maps raw features to the bin codes the trees were grown on (None for a forest grown on raw
    values, as pickled before binning was introduced).
    """

    name = "random_forest"
    best_iteration = None  # a forest has no boosting rounds
    bins: KBinsDiscretizer | None = None

    def __init__(self, forest: RandomForestClassifier, bins: KBinsDiscretizer | None = None) -> None:
        forest.set_params(n_jobs=1)
        self.forest = forest
        self.bins = bins
        self.n_features = int(forest.n_features_in_)
        self._columns = np.searchsorted(CODES, forest.classes_)

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        _check_input(X, self.n_features, self.name)
        present = self.forest.predict_proba(self.bins.transform(X) if self.bins is not None else X)
        proba = np.zeros((len(X), N_CLASSES))
        proba[:, self._columns] = present
        return proba

    def feature_importance(self) -> np.ndarray:
        return _shares(np.asarray(self.forest.feature_importances_, dtype=np.float64))


Member = LightGBMMember | XGBoostMember | RandomForestMember
