"""fit_weights: the simplex grid search for the soft vote's weights on out-of-fold predictions."""

from __future__ import annotations

import numpy as np
import pytest

from retrain.errors import TrainingError
from retrain.labels import BUY, HOLD, SELL
from retrain.weights import combined_proba, fit_combination, fit_stacker, fit_weights, simplex_grid

ROWS_PER_CASE = 10


def _repeat(row: list[float]) -> np.ndarray:
    return np.tile(row, (ROWS_PER_CASE, 1))


def _only_a_70_30_blend_is_right() -> tuple[dict[str, np.ndarray], np.ndarray]:
    """OOF rows on which the blend w*A + (1-w)*B is right everywhere only for 0.65 < w < 0.75.

    SELL rows need w > 0.65 (A leans SELL by 0.35, B leans HOLD by 0.65); BUY rows need w < 0.75
    (A leans HOLD by 0.25, B leans BUY by 0.75); HOLD rows are right for any w.
    """
    a = np.vstack([_repeat([0.675, 0.325, 0.0]), _repeat([0.0, 0.625, 0.375]), _repeat([0.0, 1.0, 0.0])])
    b = np.vstack([_repeat([0.175, 0.825, 0.0]), _repeat([0.0, 0.125, 0.875]), _repeat([0.0, 1.0, 0.0])])
    y = np.repeat([SELL, BUY, HOLD], ROWS_PER_CASE)
    return {"a": a, "b": b}, y


def test_picks_the_only_blend_that_is_right_everywhere() -> None:
    oof, y = _only_a_70_30_blend_is_right()

    fit = fit_weights(oof, y)

    assert fit.weights == pytest.approx({"a": 0.7, "b": 0.3})
    assert fit.oof_macro_f1 == 1.0
    assert fit.equal_weights_macro_f1 < 1.0
    assert fit.grid_size == 11
    assert fit.n_rows == 30


def test_reports_each_member_alone_with_hand_computed_macro_f1() -> None:
    oof, y = _only_a_70_30_blend_is_right()

    fit = fit_weights(oof, y)

    # A alone calls the BUY rows HOLD: F1 SELL 1, HOLD 2/3 (precision 1/2, recall 1), BUY 0.
    # B alone calls the SELL rows HOLD: F1 SELL 0, HOLD 2/3, BUY 1.
    assert fit.member_macro_f1 == pytest.approx({"a": 5 / 9, "b": 5 / 9})
    # Equal weights: SELL rows blend to (0.425, 0.575, 0) -> HOLD, BUY rows to (0, 0.375, 0.625) -> BUY.
    assert fit.equal_weights_macro_f1 == pytest.approx(5 / 9)


def test_a_member_that_only_hurts_gets_weight_zero() -> None:
    oof, y = _only_a_70_30_blend_is_right()
    # C votes, with full confidence, for the wrong class that competes on each row.
    oof["c"] = np.vstack([_repeat([0.0, 1.0, 0.0]), _repeat([0.0, 1.0, 0.0]), _repeat([1.0, 0.0, 0.0])])

    fit = fit_weights(oof, y)

    assert fit.weights == pytest.approx({"a": 0.7, "b": 0.3, "c": 0.0})
    assert fit.oof_macro_f1 == 1.0
    assert fit.grid_size == 66


def test_ties_go_to_equal_weights() -> None:
    oof, y = _only_a_70_30_blend_is_right()

    fit = fit_weights({"a": oof["a"], "copy_of_a": oof["a"].copy()}, y)

    assert fit.weights == pytest.approx({"a": 0.5, "copy_of_a": 0.5})


def test_ties_among_three_members_go_to_the_grid_points_nearest_equal_weights() -> None:
    oof, y = _only_a_70_30_blend_is_right()

    fit = fit_weights({"x": oof["a"], "y": oof["a"].copy(), "z": oof["a"].copy()}, y)

    assert sorted(fit.weights.values()) == pytest.approx([0.3, 0.3, 0.4])


def test_a_single_member_gets_all_the_weight() -> None:
    oof, y = _only_a_70_30_blend_is_right()

    fit = fit_weights({"a": oof["a"]}, y)

    assert fit.weights == {"a": 1.0}
    assert fit.grid_size == 1
    assert fit.oof_macro_f1 == fit.member_macro_f1["a"] == fit.equal_weights_macro_f1


def test_grid_covers_the_simplex_in_steps() -> None:
    grid = simplex_grid(3, 0.1)

    assert grid.shape == (66, 3)
    np.testing.assert_allclose(grid.sum(axis=1), 1.0)
    assert {0.0, 1.0} <= set(grid.ravel().round(10))


def test_refuses_a_step_that_does_not_divide_one() -> None:
    with pytest.raises(TrainingError, match="must divide 1.*0.3"):
        simplex_grid(2, 0.3)


def test_refuses_oof_rows_that_do_not_line_up_with_the_labels() -> None:
    oof, y = _only_a_70_30_blend_is_right()

    with pytest.raises(TrainingError, match=r"'b' have shape \(29, 3\); expected \(30, 3\)"):
        fit_weights({"a": oof["a"], "b": oof["b"][:-1]}, y)


def test_refuses_nan_oof_probabilities_naming_the_member() -> None:
    oof, y = _only_a_70_30_blend_is_right()
    oof["b"][4, 1] = np.nan

    with pytest.raises(TrainingError, match="'b' contain NaN"):
        fit_weights(oof, y)


def test_equal_weights_are_equal_and_scored_on_the_oof_rows() -> None:
    oof, y = _only_a_70_30_blend_is_right()

    fit, stacker = fit_combination("equal", oof, y)

    assert stacker is None
    assert fit.weights == {"a": 0.5, "b": 0.5} and fit.method == "equal"
    assert fit.oof_macro_f1 == fit.equal_weights_macro_f1 < 1.0


def test_a_stacker_learns_what_no_equal_vote_gets_right() -> None:
    oof, y = _only_a_70_30_blend_is_right()

    fit, stacker = fit_combination("stacked", oof, y)

    assert stacker is not None and fit.method == "stacked"
    assert fit.oof_macro_f1 > fit.equal_weights_macro_f1
    proba = combined_proba(oof, fit.weights, stacker)
    assert proba.shape == (len(y), 3) and np.allclose(proba.sum(axis=1), 1.0)


def test_the_default_grid_is_todays_fit_weights() -> None:
    oof, y = _only_a_70_30_blend_is_right()

    fit, stacker = fit_combination("grid", oof, y)

    assert stacker is None and fit == fit_weights(oof, y) and fit.method == "grid"


def test_a_balanced_stacker_predicts_the_minority_classes_more_often_than_one_fitted_to_the_class_mix() -> (
    None
):
    rng = np.random.default_rng(3)
    y = rng.choice([SELL, HOLD, BUY], size=2000, p=[0.15, 0.7, 0.15])
    noisy = np.eye(3)[y] + rng.normal(scale=0.9, size=(len(y), 3))
    oof = {"a": np.exp(noisy) / np.exp(noisy).sum(axis=1, keepdims=True)}

    predicted = {
        balanced: combined_proba(oof, {"a": 1.0}, fit_stacker(oof, y, balanced=balanced)).argmax(axis=1)
        for balanced in (True, False)
    }

    assert (predicted[True] != HOLD).sum() > 1.5 * (predicted[False] != HOLD).sum()
