"""ProductionEnsemble: the weighted soft vote, and the input checks that keep it from predicting garbage."""

from __future__ import annotations

import pickle
import re

import numpy as np
import pandas as pd
import pytest
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression

from retrain.ensemble import ProductionEnsemble
from retrain.errors import EnsembleError, FeatureMismatchError, InvalidInputError
from retrain.labels import CLASSES
from tests.ensemble_helpers import FittedMember

FEATURES = ["ret_1", "ret_4", "volatility", "volume_z"]


def _features(n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    index = pd.date_range("2025-01-01", periods=n, freq="15min", tz="UTC", name="timestamp")
    return pd.DataFrame(rng.normal(size=(n, len(FEATURES))), index=index, columns=FEATURES)


def _labels(X: pd.DataFrame) -> np.ndarray:
    score = X["ret_1"] + 0.5 * X["ret_4"]
    return np.where(score > 0.5, 2, np.where(score < -0.5, 0, 1))


@pytest.fixture(scope="module")
def members() -> dict[str, FittedMember]:
    X = _features(300, seed=1)
    y = _labels(X)
    logistic = LogisticRegression(max_iter=500).fit(X.to_numpy(), y)
    forest = RandomForestClassifier(n_estimators=20, max_depth=4, random_state=0).fit(X.to_numpy(), y)
    return {"logistic": FittedMember("logistic", logistic), "forest": FittedMember("forest", forest)}


@pytest.fixture(scope="module")
def ensemble(members: dict[str, FittedMember]) -> ProductionEnsemble:
    return ProductionEnsemble(
        members, {"logistic": 3.0, "forest": 1.0}, FEATURES, feature_definition_hash="abc123"
    )


@pytest.fixture
def X() -> pd.DataFrame:
    return _features(25, seed=2)


def test_predict_proba_is_the_weighted_average_of_the_members(
    ensemble: ProductionEnsemble, members: dict[str, FittedMember], X: pd.DataFrame
) -> None:
    expected = 0.75 * members["logistic"].predict_proba(X.to_numpy()) + 0.25 * members[
        "forest"
    ].predict_proba(X.to_numpy())

    proba = ensemble.predict_proba(X)

    np.testing.assert_allclose(proba, expected)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)


def test_weights_are_normalised_to_sum_to_one(ensemble: ProductionEnsemble) -> None:
    assert ensemble.weights == {"logistic": 0.75, "forest": 0.25}


def test_predict_gives_argmax_codes_and_predict_labels_their_names(
    ensemble: ProductionEnsemble, X: pd.DataFrame
) -> None:
    codes = ensemble.predict(X)

    np.testing.assert_array_equal(codes, ensemble.predict_proba(X).argmax(axis=1))
    assert list(ensemble.predict_labels(X)) == [CLASSES[c] for c in codes]


def test_exposes_its_definition(ensemble: ProductionEnsemble, members: dict[str, FittedMember]) -> None:
    assert ensemble.classes == CLASSES
    assert ensemble.feature_names == FEATURES
    assert ensemble.feature_definition_hash == "abc123"
    assert ensemble.members == members


def test_a_member_with_weight_zero_does_not_vote(members: dict[str, FittedMember], X: pd.DataFrame) -> None:
    forest_only = ProductionEnsemble(members, {"logistic": 0.0, "forest": 2.0}, FEATURES)

    np.testing.assert_allclose(forest_only.predict_proba(X), members["forest"].predict_proba(X.to_numpy()))


def test_predicts_a_single_candle(ensemble: ProductionEnsemble, X: pd.DataFrame) -> None:
    assert ensemble.predict_proba(X.iloc[[-1]]).shape == (1, 3)


def test_integer_and_float32_columns_predict_like_float64(
    ensemble: ProductionEnsemble, X: pd.DataFrame
) -> None:
    rounded = X.round().astype({"ret_1": "int64", "ret_4": "float32"})

    np.testing.assert_allclose(
        ensemble.predict_proba(rounded), ensemble.predict_proba(rounded.astype("float64")), rtol=1e-6
    )


def test_refuses_the_same_features_in_another_order_naming_the_first_differing_position(
    ensemble: ProductionEnsemble, X: pd.DataFrame
) -> None:
    reordered = X[["ret_1", "volatility", "ret_4", "volume_z"]]

    with pytest.raises(FeatureMismatchError, match=r"position 1 holds 'volatility', expected 'ret_4'"):
        ensemble.predict_proba(reordered)


def test_refuses_a_missing_feature_naming_it(ensemble: ProductionEnsemble, X: pd.DataFrame) -> None:
    with pytest.raises(FeatureMismatchError, match=r"missing feature\(s\) \['volatility'\]"):
        ensemble.predict_proba(X.drop(columns="volatility"))


def test_refuses_an_extra_feature_naming_it(ensemble: ProductionEnsemble, X: pd.DataFrame) -> None:
    with pytest.raises(FeatureMismatchError, match=r"extra column\(s\) \['rsi_14'\]"):
        ensemble.predict_proba(X.assign(rsi_14=50.0))


def test_refuses_non_numeric_columns_naming_them(ensemble: ProductionEnsemble, X: pd.DataFrame) -> None:
    textual = X.assign(volatility=X["volatility"].astype(str))

    with pytest.raises(FeatureMismatchError, match=r"non-numeric feature column\(s\): 'volatility'"):
        ensemble.predict_proba(textual)


def test_refuses_nan_naming_the_column_and_the_first_offending_index(
    ensemble: ProductionEnsemble, X: pd.DataFrame
) -> None:
    broken = X.copy()
    broken.iloc[[7, 9], 2] = np.nan

    with pytest.raises(InvalidInputError, match=re.escape(f"'volatility' (first at index {X.index[7]})")):
        ensemble.predict_proba(broken)


def test_refuses_inf_naming_the_column(ensemble: ProductionEnsemble, X: pd.DataFrame) -> None:
    broken = X.copy()
    broken.iloc[3, 3] = -np.inf

    with pytest.raises(InvalidInputError, match=re.escape(f"'volume_z' (first at index {X.index[3]})")):
        ensemble.predict_proba(broken)


def test_refuses_an_empty_frame(ensemble: ProductionEnsemble, X: pd.DataFrame) -> None:
    with pytest.raises(InvalidInputError, match="zero rows"):
        ensemble.predict_proba(X.iloc[:0])


def test_refuses_input_that_is_not_a_dataframe(ensemble: ProductionEnsemble, X: pd.DataFrame) -> None:
    with pytest.raises(FeatureMismatchError, match="expected a pandas DataFrame.*got ndarray"):
        ensemble.predict_proba(X.to_numpy())


def test_pickle_round_trip_gives_identical_predictions(ensemble: ProductionEnsemble, X: pd.DataFrame) -> None:
    restored = pickle.loads(pickle.dumps(ensemble))

    np.testing.assert_array_equal(restored.predict_proba(X), ensemble.predict_proba(X))
    assert restored.weights == ensemble.weights
    assert restored.feature_names == ensemble.feature_names


def test_refuses_a_member_that_does_not_predict_every_class(X: pd.DataFrame) -> None:
    two_classes = LogisticRegression().fit(X.to_numpy(), (X["ret_1"] > 0).astype(int))
    ensemble = ProductionEnsemble({"binary": FittedMember("binary", two_classes)}, {"binary": 1.0}, FEATURES)

    with pytest.raises(EnsembleError, match=r"'binary' returned probabilities of shape \(25, 2\)"):
        ensemble.predict_proba(X)


def test_refuses_weights_that_do_not_name_the_members(members: dict[str, FittedMember]) -> None:
    with pytest.raises(EnsembleError, match="weights must name exactly the members"):
        ProductionEnsemble(members, {"logistic": 1.0}, FEATURES)


def test_refuses_negative_or_all_zero_weights(members: dict[str, FittedMember]) -> None:
    with pytest.raises(EnsembleError, match=">= 0"):
        ProductionEnsemble(members, {"logistic": -1.0, "forest": 2.0}, FEATURES)
    with pytest.raises(EnsembleError, match="at least one weight must be > 0"):
        ProductionEnsemble(members, {"logistic": 0.0, "forest": 0.0}, FEATURES)


def test_refuses_duplicated_feature_names(members: dict[str, FittedMember]) -> None:
    with pytest.raises(EnsembleError, match=r"duplicated feature name\(s\): \['ret_1'\]"):
        ProductionEnsemble(members, {"logistic": 1.0, "forest": 1.0}, [*FEATURES, "ret_1"])


NEW_ATTRIBUTES = ("_stacker", "_calibrator", "_confidence_threshold")


def _with_every_option(members: dict[str, FittedMember]) -> ProductionEnsemble:
    """An ensemble with a stacker, a calibrator and a threshold, all fitted on rows of its own."""
    from retrain.signals import fit_calibrator
    from retrain.weights import combined_proba, fit_stacker

    X = _features(200, seed=5)
    y = _labels(X)
    probas = {name: member.predict_proba(X.to_numpy()) for name, member in members.items()}
    stacker = fit_stacker(probas, y)
    calibrator = fit_calibrator(combined_proba(probas, {}, stacker), y, "sigmoid")
    weights = {"logistic": 3.0, "forest": 1.0}
    return ProductionEnsemble(
        members, weights, FEATURES, stacker=stacker, calibrator=calibrator, confidence_threshold=0.6
    )


def test_a_default_ensemble_pickles_only_the_attributes_it_always_had(ensemble: ProductionEnsemble) -> None:
    assert not set(NEW_ATTRIBUTES) & set(vars(ensemble))
    assert ensemble.combination == "weighted" and not ensemble.calibrated
    assert ensemble.confidence_threshold is None


def test_an_ensemble_pickled_before_stacking_calibration_and_thresholds_predicts_as_before(
    members: dict[str, FittedMember], ensemble: ProductionEnsemble, X: pd.DataFrame
) -> None:
    old = _with_every_option(members)
    assert set(NEW_ATTRIBUTES) <= set(vars(old))
    for name in NEW_ATTRIBUTES:
        del old.__dict__[name]

    restored = pickle.loads(pickle.dumps(old))

    assert np.array_equal(restored.predict_proba(X), ensemble.predict_proba(X))
    assert np.array_equal(restored.predict(X), ensemble.predict(X))
    assert restored.get_model_info()["combination"] == "weighted"


def test_a_stacked_calibrated_thresholded_ensemble_serves_the_bots_calls(
    members: dict[str, FittedMember], X: pd.DataFrame
) -> None:
    full = _with_every_option(members)
    restored = pickle.loads(pickle.dumps(full))

    proba = restored.predict_proba(X)
    assert proba.shape == (len(X), len(CLASSES))
    assert np.allclose(proba.sum(axis=1), 1.0)
    assert np.array_equal(proba, full.predict_proba(X))
    labels = restored.predict_labels(X)
    hold = CLASSES.index("HOLD")
    assert (restored.predict(X)[proba.max(axis=1) < 0.6] == hold).all()
    assert set(labels) <= set(CLASSES)
    info = restored.get_model_info()
    assert (info["combination"], info["calibrated"], info["confidence_threshold"]) == ("stacked", True, 0.6)
    assert "stacked, calibrated, hold_below=0.60" in repr(restored)
