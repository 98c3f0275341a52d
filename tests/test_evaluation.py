"""Holdout evaluation: hand-checked scores, naive baselines without look-ahead, champion re-scoring."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression

from retrain.ensemble import ProductionEnsemble
from retrain.errors import InvalidInputError
from retrain.evaluation import EvaluationResult, evaluate_holdout, naive_baselines, score_predictions
from retrain.labels import BUY, CLASSES, HOLD, SELL
from retrain.trading import horizon_pnl, trading_readout
from tests.ensemble_helpers import FittedMember

FEATURES = ["ret_1", "ret_4", "volatility", "volume_z"]
HORIZON = 4
FEE = 0.0012


def _timestamps(start: int, stop: int) -> pd.DatetimeIndex:
    """Candle open times t_start .. t_(stop-1) on the 15-minute grid."""
    origin = pd.Timestamp("2025-03-01", tz="UTC")
    return pd.DatetimeIndex(
        [origin + pd.Timedelta(minutes=15 * i) for i in range(start, stop)], name="timestamp"
    )


@pytest.fixture(scope="module")
def market() -> dict[str, pd.DataFrame | pd.Series]:
    """400 candles of features, labels that depend on them (plus noise) and next-candle returns."""
    rng = np.random.default_rng(5)
    index = _timestamps(0, 400)
    X = pd.DataFrame(rng.normal(size=(400, len(FEATURES))), index=index, columns=FEATURES)
    score = X["ret_1"] + 0.5 * X["ret_4"] + rng.normal(0, 0.5, 400)
    y = pd.Series(np.where(score > 0.6, BUY, np.where(score < -0.6, SELL, HOLD)).astype(np.int8), index=index)
    next_return = pd.Series(0.004 * (y.to_numpy() - 1) + rng.normal(0, 0.003, 400), index=index)
    return {"X": X, "y": y, "next_return": next_return}


def _fit(market: dict, features: list[str], seed: int) -> dict[str, FittedMember]:
    X, y = market["X"].iloc[:300][features].to_numpy(), market["y"].iloc[:300].to_numpy()
    logistic = LogisticRegression(max_iter=500).fit(X, y)
    forest = RandomForestClassifier(n_estimators=15, max_depth=4, random_state=seed).fit(X, y)
    return {"logistic": FittedMember("logistic", logistic), "forest": FittedMember("forest", forest)}


@pytest.fixture(scope="module")
def challenger(market: dict) -> ProductionEnsemble:
    weights = {"logistic": 0.6, "forest": 0.4}
    return ProductionEnsemble(_fit(market, FEATURES, seed=0), weights, FEATURES, feature_definition_hash="v2")


def _evaluate(market: dict, ensemble: ProductionEnsemble, champion: object | None = None) -> EvaluationResult:
    return evaluate_holdout(
        ensemble,
        market["X"].iloc[300:],
        market["y"].iloc[300:],
        market["next_return"].iloc[300:],
        market["y"].iloc[:300],
        horizon=HORIZON,
        fee_rate=FEE,
        seed=11,
        champion=champion,
    )


def test_scores_equal_hand_computed_values() -> None:
    y_true = np.array([SELL, SELL, HOLD, HOLD, BUY, BUY])
    y_pred = np.array([SELL, HOLD, HOLD, HOLD, BUY, SELL])

    scores = score_predictions(y_true, y_pred)

    # SELL: precision 1/2, recall 1/2, F1 1/2; HOLD: 2/3, 1, F1 0.8; BUY: 1, 1/2, F1 2/3
    assert scores.per_class["SELL"].f1 == pytest.approx(0.5)
    assert scores.per_class["HOLD"].precision == pytest.approx(2 / 3)
    assert scores.per_class["HOLD"].f1 == pytest.approx(0.8)
    assert scores.per_class["BUY"].recall == pytest.approx(0.5)
    assert scores.per_class["BUY"].support == 2
    assert scores.macro_f1 == pytest.approx((0.5 + 0.8 + 2 / 3) / 3)
    assert scores.weighted_f1 == pytest.approx((0.5 + 0.8 + 2 / 3) / 3)  # equal supports
    assert scores.accuracy == pytest.approx(4 / 6)
    assert scores.log_loss is None


def test_confusion_matrix_rows_are_true_classes_and_columns_predictions() -> None:
    y_true = np.array([SELL, SELL, HOLD, HOLD, BUY, BUY])
    y_pred = np.array([SELL, HOLD, HOLD, HOLD, BUY, SELL])

    matrix = score_predictions(y_true, y_pred).confusion_matrix

    assert matrix == [[1, 1, 0], [0, 2, 0], [1, 0, 1]]  # the BUY row predicted SELL sits at [BUY][SELL]


def test_a_class_absent_from_labels_and_predictions_still_gets_its_row_and_column() -> None:
    scores = score_predictions(np.array([HOLD, HOLD, BUY]), np.array([HOLD, HOLD, HOLD]))

    assert scores.confusion_matrix == [[0, 0, 0], [0, 2, 0], [0, 1, 0]]
    assert list(scores.per_class) == list(CLASSES)
    assert scores.per_class["SELL"].support == 0
    assert scores.per_class["BUY"].f1 == 0.0
    assert scores.macro_f1 == pytest.approx((0 + 0.8 + 0) / 3)


def test_log_loss_equals_hand_computed_value() -> None:
    proba = np.array([[0.5, 0.25, 0.25], [0.1, 0.1, 0.8]])

    scores = score_predictions(np.array([SELL, BUY]), np.array([SELL, BUY]), proba)

    assert scores.log_loss == pytest.approx(-(math.log(0.5) + math.log(0.8)) / 2)


@pytest.mark.filterwarnings("error::UserWarning")  # sklearn warns on rows that do not sum to 1
def test_log_loss_accepts_float32_rounding_but_refuses_rows_that_are_not_probabilities() -> None:
    rounded = np.array([[0.5, 0.25, 0.25 + 1e-7]], dtype=np.float32)

    assert score_predictions(np.array([SELL]), np.array([SELL]), rounded).log_loss == pytest.approx(
        -math.log(0.5)
    )
    with pytest.raises(InvalidInputError, match="row 0 sums to 1.5"):
        score_predictions(np.array([SELL]), np.array([SELL]), np.array([[0.5, 0.5, 0.5]]))


def test_refuses_labels_that_are_not_class_codes() -> None:
    with pytest.raises(InvalidInputError, match=r"y_pred must be 1-D class codes.*\[3\]"):
        score_predictions(np.array([SELL, BUY]), np.array([SELL, 3]))


def test_persistence_repeats_the_label_of_t_minus_horizon_looked_up_by_timestamp() -> None:
    # History t5..t9 without t7 (a gap); holdout t10..t15. The label of t - 4 is the newest one known at t.
    history = pd.Series([BUY, SELL, BUY, SELL], index=_timestamps(5, 10).delete(2), dtype=np.int8)
    holdout = pd.Series([BUY, SELL, HOLD, BUY, SELL, HOLD], index=_timestamps(10, 16), dtype=np.int8)

    persistence = naive_baselines(holdout, history, horizon=HORIZON, seed=0)["persistence"]

    # t10 <- t6, t11 <- t7 (missing: HOLD), t12 <- t8, t13 <- t9, t14 <- t10 and t15 <- t11 (holdout rows)
    np.testing.assert_array_equal(persistence, [SELL, HOLD, BUY, SELL, BUY, SELL])


def test_always_hold_predicts_hold_everywhere() -> None:
    holdout = pd.Series([BUY, SELL, HOLD], index=_timestamps(10, 13), dtype=np.int8)
    history = pd.Series([SELL, BUY], index=_timestamps(0, 2), dtype=np.int8)

    np.testing.assert_array_equal(
        naive_baselines(holdout, history, HORIZON, seed=0)["always_hold"], [HOLD] * 3
    )


def test_class_prior_random_draws_from_the_training_prior_and_is_seeded() -> None:
    holdout = pd.Series(HOLD, index=_timestamps(100, 300), dtype=np.int8)
    history = pd.Series([SELL, BUY, BUY, BUY], index=_timestamps(0, 4), dtype=np.int8)

    first = naive_baselines(holdout, history, HORIZON, seed=3)["class_prior_random"]
    again = naive_baselines(holdout, history, HORIZON, seed=3)["class_prior_random"]
    other_seed = naive_baselines(holdout, history, HORIZON, seed=4)["class_prior_random"]

    np.testing.assert_array_equal(first, again)
    assert not np.array_equal(first, other_seed)
    assert set(first) == {SELL, BUY}  # HOLD never occurs in the training labels
    assert np.mean(first == BUY) == pytest.approx(0.75, abs=0.1)


def test_refuses_history_that_overlaps_the_holdout() -> None:
    holdout = pd.Series([BUY, SELL], index=_timestamps(10, 12), dtype=np.int8)
    history = pd.Series([SELL, BUY], index=_timestamps(9, 11), dtype=np.int8)

    with pytest.raises(InvalidInputError, match="do not overlap"):
        naive_baselines(holdout, history, HORIZON, seed=0)


def test_evaluates_every_member_the_ensemble_and_the_baselines_on_the_holdout(
    market: dict, challenger: ProductionEnsemble
) -> None:
    X, y = market["X"].iloc[300:], market["y"].iloc[300:].to_numpy()
    returns = market["next_return"].iloc[300:].to_numpy()

    result = _evaluate(market, challenger)

    assert list(result.models) == ["logistic", "forest", "ensemble"]
    assert list(result.baselines) == ["always_hold", "persistence", "class_prior_random"]
    proba = challenger.predict_proba(X)
    assert result.models["ensemble"].scores == score_predictions(y, proba.argmax(axis=1), proba)
    assert result.models["ensemble"].trading == trading_readout(proba.argmax(axis=1), returns, FEE).summary()
    forest_proba = challenger.members["forest"].predict_proba(X.to_numpy())
    assert result.models["forest"].scores == score_predictions(y, forest_proba.argmax(axis=1), forest_proba)
    assert result.baselines["always_hold"].scores.per_class["HOLD"].recall == 1.0
    assert result.baselines["class_prior_random"].scores.log_loss is not None
    assert result.baselines["persistence"].scores.log_loss is None
    assert result.n_rows == 100
    assert result.class_support == {name: int((y == code).sum()) for code, name in enumerate(CLASSES)}
    assert result.holdout_start == X.index[0]
    assert result.holdout_end == X.index[-1]
    assert result.champion is None and result.champion_note is None


def test_evaluate_holdout_is_deterministic(market: dict, challenger: ProductionEnsemble) -> None:
    first, second = _evaluate(market, challenger), _evaluate(market, challenger)

    assert first.model_dump() == second.model_dump()
    assert first.equity_curves == second.equity_curves


def test_result_survives_a_json_round_trip_without_the_equity_curves(
    market: dict, challenger: ProductionEnsemble
) -> None:
    result = _evaluate(market, challenger)

    restored = EvaluationResult.model_validate_json(result.model_dump_json())

    assert restored.model_dump() == result.model_dump()
    assert "equity_curves" not in result.model_dump()
    assert len(result.equity_curves["ensemble"]) == result.n_rows


def test_champion_with_the_same_features_is_rescored_on_the_same_holdout(
    market: dict, challenger: ProductionEnsemble
) -> None:
    champion = ProductionEnsemble(
        _fit(market, FEATURES, seed=1),
        {"logistic": 0.2, "forest": 0.8},
        FEATURES,
        feature_definition_hash="v2",
    )
    X, y = market["X"].iloc[300:], market["y"].iloc[300:].to_numpy()

    result = _evaluate(market, challenger, champion)

    proba = champion.predict_proba(X)
    assert result.champion is not None
    assert result.champion.scores == score_predictions(y, proba.argmax(axis=1), proba)
    assert result.champion_note is None


def test_champion_on_other_features_is_rescored_on_its_columns_with_a_note(
    market: dict, challenger: ProductionEnsemble
) -> None:
    older_features = ["volatility", "ret_1", "ret_4"]
    champion = ProductionEnsemble(
        _fit(market, older_features, seed=1),
        {"logistic": 1, "forest": 1},
        older_features,
        feature_definition_hash="v1",
    )
    X, y = market["X"].iloc[300:], market["y"].iloc[300:].to_numpy()

    result = _evaluate(market, challenger, champion)

    proba = champion.predict_proba(X[older_features])
    assert result.champion is not None
    assert result.champion.scores == score_predictions(y, proba.argmax(axis=1), proba)
    assert "'v1' vs 'v2'" in result.champion_note


def test_champion_needing_a_missing_feature_is_left_out_with_the_reason(
    market: dict, challenger: ProductionEnsemble
) -> None:
    champion = ProductionEnsemble(
        _fit(market, FEATURES, seed=1), {"logistic": 1, "forest": 1}, [*FEATURES[:3], "rsi_14"]
    )

    result = _evaluate(market, challenger, champion)

    assert result.champion is None
    assert "['rsi_14']" in result.champion_note


def test_metrics_table_lists_ensemble_members_champion_and_baselines_macro_f1_first(
    market: dict, challenger: ProductionEnsemble
) -> None:
    result = _evaluate(market, challenger, champion=challenger)

    table = result.metrics_table()

    assert [(row["name"], row["kind"]) for row in table] == [
        ("ensemble", "ensemble"),
        ("logistic", "member"),
        ("forest", "member"),
        ("champion", "champion"),
        ("always_hold", "baseline"),
        ("persistence", "baseline"),
        ("class_prior_random", "baseline"),
    ]
    assert list(table[0])[2] == "macro_f1"
    assert table[0]["macro_f1"] == result.models["ensemble"].scores.macro_f1
    assert table[4]["trades"] == 0


def test_refuses_returns_that_are_not_aligned_with_the_labels(
    market: dict, challenger: ProductionEnsemble
) -> None:
    with pytest.raises(InvalidInputError, match="next_return and y_holdout must have the same timestamps"):
        evaluate_holdout(
            challenger,
            market["X"].iloc[300:],
            market["y"].iloc[300:],
            market["next_return"].iloc[299:-1],
            market["y"].iloc[:300],
            horizon=HORIZON,
            fee_rate=FEE,
            seed=11,
        )


def test_result_keeps_the_holdout_rows_and_every_predictors_per_row_predictions(
    market: dict, challenger: ProductionEnsemble
) -> None:
    X, y = market["X"].iloc[300:], market["y"].iloc[300:].to_numpy()
    returns = market["next_return"].iloc[300:].to_numpy()

    result = _evaluate(market, challenger, champion=challenger)

    rows = result.rows
    assert rows is not None
    assert rows.y_true == y.tolist()
    assert rows.next_return == returns.tolist()
    assert rows.run_starts == [0]
    assert (rows.horizon, rows.fee_rate) == (HORIZON, FEE)
    assert list(rows.predictions) == [
        "ensemble",
        "always_hold",
        "persistence",
        "class_prior_random",
        "champion",
    ]
    assert rows.predictions["ensemble"] == challenger.predict_proba(X).argmax(axis=1).tolist()
    assert rows.predictions["champion"] == rows.predictions["ensemble"]
    restored = EvaluationResult.model_validate_json(result.model_dump_json())
    assert restored.rows == rows


def test_horizon_value_is_the_total_of_the_horizon_held_signals(
    market: dict, challenger: ProductionEnsemble
) -> None:
    result = _evaluate(market, challenger)

    ensemble = np.asarray(result.rows.predictions["ensemble"])
    returns = market["next_return"].iloc[300:].to_numpy()
    expected = horizon_pnl(ensemble, returns, HORIZON, FEE).sum()
    assert result.models["ensemble"].horizon_value == pytest.approx(expected)
    np.testing.assert_allclose(result.rows.pnl("ensemble"), horizon_pnl(ensemble, returns, HORIZON, FEE))
    assert result.baselines["always_hold"].horizon_value == 0.0


def test_a_gap_in_the_holdout_starts_a_new_run_of_rows(market: dict, challenger: ProductionEnsemble) -> None:
    keep = np.r_[300:340, 350:400]  # ten candles missing after the 40th holdout row

    result = evaluate_holdout(
        challenger,
        market["X"].iloc[keep],
        market["y"].iloc[keep],
        market["next_return"].iloc[keep],
        market["y"].iloc[:300],
        horizon=HORIZON,
        fee_rate=FEE,
        seed=11,
    )

    assert result.rows.run_starts == [0, 40]
