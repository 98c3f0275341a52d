"""Members answer in the fixed class order SELL, HOLD, BUY, for one row or many, and survive pickling."""

from __future__ import annotations

import pickle

import numpy as np
import pytest

from retrain.errors import FeatureMismatchError
from retrain.members import LightGBMMember, RandomForestMember, XGBoostMember
from retrain.settings import load_settings
from retrain.training.final_fit import fit_final
from retrain.training.learners import make_learner

PARAMS = {
    "lightgbm": {"learning_rate": 0.2, "num_leaves": 7, "min_child_samples": 10},
    "xgboost": {"learning_rate": 0.2, "max_depth": 3},
    "random_forest": {"n_estimators": 20, "max_depth": 4, "min_samples_leaf": 5},
}
ROUNDS = {"lightgbm": 30, "xgboost": 30, "random_forest": None}
MEMBER_TYPES = {"lightgbm": LightGBMMember, "xgboost": XGBoostMember, "random_forest": RandomForestMember}


def _hold_or_buy_data(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """BUY (2) when the first feature is high, else HOLD (1); SELL (0), the first column, never occurs."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(600, 5))
    y = np.where(X[:, 0] + 0.3 * rng.normal(size=600) > 0.5, 2, 1).astype(np.int8)
    return X, y


def _member(name: str):
    X, y = _hold_or_buy_data()
    settings = load_settings()
    learner = make_learner(name, settings.training)
    return fit_final(
        learner, X, y, PARAMS[name], rounds=ROUNDS[name], smote=settings.training.smote, seed=1, threads=1
    )


@pytest.fixture(scope="module", params=sorted(PARAMS))
def member(request: pytest.FixtureRequest):
    return _member(request.param)


def test_predict_proba_has_a_column_per_class_even_for_a_class_absent_from_training(member) -> None:
    X = np.array([[-3.0, 0, 0, 0, 0], [3.0, 0, 0, 0, 0]])
    proba = member.predict_proba(X)
    assert proba.shape == (2, 3)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    assert proba[0].argmax() == 1, "a clear HOLD row must score highest in column 1"
    assert proba[1].argmax() == 2, "a clear BUY row must score highest in column 2"
    assert (proba[:, 0] < 0.05).all(), "SELL never occurred in training: its column must stay near zero"


def test_member_is_of_its_library_type_and_knows_its_features(member) -> None:
    assert isinstance(member, MEMBER_TYPES[member.name])
    assert member.n_features == 5


def test_pickle_round_trip_keeps_predictions(member) -> None:
    X, _ = _hold_or_buy_data(seed=1)
    restored = pickle.loads(pickle.dumps(member))
    assert restored.name == member.name
    np.testing.assert_array_equal(restored.predict_proba(X), member.predict_proba(X))


def test_a_single_row_is_predicted_like_the_same_row_in_a_batch(member) -> None:
    X, _ = _hold_or_buy_data(seed=2)
    np.testing.assert_allclose(member.predict_proba(X[3:4])[0], member.predict_proba(X)[3], rtol=1e-6)


def test_wrong_number_of_features_raises_feature_mismatch(member) -> None:
    with pytest.raises(FeatureMismatchError, match="5 feature columns"):
        member.predict_proba(np.zeros((2, 4)))


def test_feature_importance_is_a_share_per_feature_led_by_the_informative_one(member) -> None:
    importance = member.feature_importance()
    assert importance.shape == (5,)
    assert importance.sum() == pytest.approx(1.0)
    assert importance.argmax() == 0


def test_boosters_report_their_rounds_and_the_forest_none(member) -> None:
    assert member.best_iteration == ROUNDS[member.name]


def test_forest_predicts_through_its_bins_and_a_forest_pickled_without_bins_still_loads() -> None:
    forest_member = _member("random_forest")
    X, _ = _hold_or_buy_data(seed=3)
    assert forest_member.bins is not None
    binned = forest_member.bins.transform(X)
    np.testing.assert_array_equal(
        forest_member.forest.predict_proba(binned), forest_member.predict_proba(X)[:, 1:]
    )

    legacy = pickle.loads(pickle.dumps(forest_member))
    del legacy.__dict__["bins"]  # as pickled before the forest was grown on binned features
    restored = pickle.loads(pickle.dumps(legacy))
    assert restored.bins is None
    np.testing.assert_array_equal(restored.predict_proba(binned), forest_member.predict_proba(X))
