"""The promotion gate: every check at its threshold edge, the three outcomes, the champion's own checks,
and a decision that survives JSON."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from pydantic import ValidationError

from retrain.errors import InvalidInputError
from retrain.evaluation import (
    CHAMPION,
    ENSEMBLE,
    EvaluationResult,
    HoldoutRows,
    ModelEvaluation,
    score_predictions,
)
from retrain.gate import GateCheck, GateDecision, bootstrap_block, evaluate_gate
from retrain.labels import BUY, CLASSES, HOLD, SELL
from retrain.settings import GateSettings
from retrain.trading import trading_readout

ROWS = 1344
HORIZON = 4
FEE = 0.0012
BASELINES = ["always_hold", "persistence", "class_prior_random"]
ALL_CHECKS = [
    "min_macro_f1",
    "margin_over_always_hold",
    "margin_over_persistence",
    "margin_over_class_prior_random",
    "economic_value_after_fees",
    "no_regression_vs_champion",
    "min_class_support",
]
OPEN = {
    "min_macro_f1": 0.0,
    "min_margin_over_baselines": -1.0,
    "max_regression_vs_champion": 1.0,
    "min_class_support": 0,
    "min_economic_margin": -1.0,
    "bootstrap_resamples": 500,
}


def _market(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Labels in runs and next-candle returns that follow them (a BUY row is followed by a rise)."""
    rng = np.random.default_rng(seed)
    y = np.repeat(rng.choice([SELL, HOLD, BUY], p=[0.25, 0.5, 0.25], size=ROWS), 4)[:ROWS]
    next_return = 0.002 * (y - HOLD) + rng.normal(0, 0.002, ROWS)
    return y, next_return


def _noisy(y: np.ndarray, accuracy: float, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.where(rng.random(ROWS) < accuracy, y, rng.integers(0, 3, ROWS))


def _result(
    y: np.ndarray, next_return: np.ndarray, ensemble: np.ndarray, champion: np.ndarray | None = None
) -> EvaluationResult:
    """An evaluation as `evaluate_holdout` records it, from hand-made predictions."""
    rng = np.random.default_rng(99)
    predictions = {
        ENSEMBLE: ensemble,
        "always_hold": np.full(ROWS, HOLD),
        "persistence": np.concatenate((np.full(HORIZON, HOLD), y[:-HORIZON])),
        "class_prior_random": rng.choice([SELL, HOLD, BUY], p=[0.25, 0.5, 0.25], size=ROWS),
    }
    if champion is not None:
        predictions[CHAMPION] = champion

    def evaluation(name: str) -> ModelEvaluation:
        pred = predictions[name]
        readout = trading_readout(pred, next_return, FEE)
        return ModelEvaluation(name=name, scores=score_predictions(y, pred), trading=readout.summary())

    start = pd.Timestamp("2025-03-01", tz="UTC")
    return EvaluationResult(
        holdout_start=start.to_pydatetime(),
        holdout_end=(start + pd.Timedelta(minutes=15 * (ROWS - 1))).to_pydatetime(),
        n_rows=ROWS,
        class_support=dict(zip(CLASSES, np.bincount(y, minlength=3).tolist(), strict=True)),
        models={ENSEMBLE: evaluation(ENSEMBLE)},
        baselines={name: evaluation(name) for name in BASELINES},
        champion=None if champion is None else evaluation(CHAMPION),
        champion_note=None if champion is not None else "no model in production yet",
        rows=HoldoutRows(
            y_true=y.tolist(),
            next_return=next_return.tolist(),
            run_starts=[0],
            predictions={name: pred.tolist() for name, pred in predictions.items()},
            horizon=HORIZON,
            fee_rate=FEE,
        ),
    )


@pytest.fixture(scope="module")
def good() -> EvaluationResult:
    """A challenger right on 70% of the rows, and a champion right on 40%."""
    y, next_return = _market()
    return _result(y, next_return, _noisy(y, 0.7, 1), champion=_noisy(y, 0.4, 2))


def _gate(**overrides: float) -> GateSettings:
    return GateSettings(**(OPEN | overrides))


def _check(decision: GateDecision, name: str) -> GateCheck:
    [check] = [check for check in decision.checks if check.name == name]
    return check


def test_decision_lists_every_check_in_order_and_the_champion_faces_the_baselines(
    good: EvaluationResult,
) -> None:
    decision = evaluate_gate(good, _gate())

    assert [check.name for check in decision.checks] == ALL_CHECKS
    assert [check.name for check in decision.champion_checks] == ALL_CHECKS[1:5]
    assert decision.outcome == "promote" and decision.promote
    assert decision.reasons == ["every gate check passed"]


def test_bootstrapped_checks_carry_the_difference_and_its_interval(good: EvaluationResult) -> None:
    decision = evaluate_gate(good, _gate())

    persistence = _check(decision, "margin_over_persistence")
    expected = good.models[ENSEMBLE].scores.macro_f1 - good.baselines["persistence"].scores.macro_f1
    assert persistence.value == pytest.approx(expected)
    assert persistence.lower < persistence.value < persistence.upper
    floor = _check(decision, "min_macro_f1")
    assert floor.lower is None and floor.upper is None


@pytest.mark.parametrize(
    ("name", "setting", "sign"),
    [
        ("margin_over_persistence", "min_margin_over_baselines", 1),
        ("economic_value_after_fees", "min_economic_margin", 1),
        ("no_regression_vs_champion", "max_regression_vs_champion", -1),
    ],
)
def test_an_interval_check_passes_at_its_lower_bound_is_inconclusive_inside_and_fails_above(
    name: str, setting: str, sign: int
) -> None:
    """The margin (or -tolerance) equal to the lower bound passes; equal to the upper bound it is
    inconclusive (the interval still reaches it); just above the upper bound it fails."""
    y, next_return = _market()
    # the champion is better than the challenger, so the challenger-minus-champion interval is negative
    # and a tolerance (>= 0) can sit at either end of it
    result = _result(y, next_return, _noisy(y, 0.7, 4), champion=_noisy(y, 0.9, 5))
    probe = _check(evaluate_gate(result, _gate()), name)
    assert probe.upper < 0 if sign < 0 else probe.lower > 0

    def verdict(margin: float) -> str:
        """The check's verdict at `margin` (the tolerance is minus the margin it sets)."""
        return _check(evaluate_gate(result, _gate(**{setting: sign * margin})), name).verdict

    assert verdict(probe.lower) == "pass"
    assert verdict(probe.upper) == "inconclusive"
    assert verdict(probe.upper + 1e-9) == "fail"


def test_floor_passes_at_the_floor_and_fails_just_above(good: EvaluationResult) -> None:
    score = good.models[ENSEMBLE].scores.macro_f1

    assert _check(evaluate_gate(good, _gate(min_macro_f1=score)), "min_macro_f1").verdict == "pass"
    failed = evaluate_gate(good, _gate(min_macro_f1=score + 1e-9))
    assert _check(failed, "min_macro_f1").verdict == "fail"
    assert failed.outcome == "reject"
    assert failed.reasons[0].startswith("min_macro_f1: macro-F1")


def test_class_support_passes_at_the_smallest_class_and_fails_one_row_above(good: EvaluationResult) -> None:
    smallest = min(good.class_support.values())

    assert _check(evaluate_gate(good, _gate(min_class_support=smallest)), "min_class_support").passed
    failed = _check(evaluate_gate(good, _gate(min_class_support=smallest + 1)), "min_class_support")
    assert failed.verdict == "fail"


def test_a_missing_champion_passes_with_its_note_and_has_no_edge_verdict() -> None:
    y, next_return = _market()
    result = _result(y, next_return, _noisy(y, 0.7, 1))

    decision = evaluate_gate(result, _gate())

    check = _check(decision, "no_regression_vs_champion")
    assert check.passed and check.value is None and check.lower is None
    assert "no model in production yet" in check.detail
    assert decision.champion_checks == []
    assert decision.champion_has_edge is None


def test_a_straddled_margin_makes_the_outcome_inconclusive_not_a_rejection() -> None:
    y, next_return = _market(6)
    persistence = np.concatenate((np.full(HORIZON, HOLD), y[:-HORIZON]))
    result = _result(y, next_return, ensemble=persistence)  # exactly as good as persistence...

    decision = evaluate_gate(result, _gate(min_margin_over_baselines=0.0))

    # ...so its margin over persistence is 0 on every resample: the lower bound (0) clears a margin of 0
    assert _check(decision, "margin_over_persistence").verdict == "pass"
    noisy = _result(y, next_return, ensemble=_noisy(y, 0.5, 7))
    probe = _check(evaluate_gate(noisy, _gate()), "margin_over_persistence")
    straddled = evaluate_gate(noisy, _gate(min_margin_over_baselines=probe.value))
    assert straddled.outcome == "inconclusive"
    assert not straddled.promote and straddled.failed == []
    assert "margin_over_persistence" in [check.name for check in straddled.inconclusive]
    assert straddled.reasons[0].startswith("margin_over_persistence inconclusive: ")


def test_a_failed_check_rejects_even_when_another_is_inconclusive() -> None:
    y, next_return = _market(6)
    noisy = _result(y, next_return, ensemble=_noisy(y, 0.5, 7))
    probe = _check(evaluate_gate(noisy, _gate()), "margin_over_persistence")

    decision = evaluate_gate(noisy, _gate(min_margin_over_baselines=probe.value, min_class_support=10**6))

    assert decision.outcome == "reject"
    assert [check.name for check in decision.failed] == ["min_class_support"]


def test_signals_that_lose_after_fees_fail_the_economic_check() -> None:
    """A challenger whose signals are the opposite of the labels: each trade loses the move and the fees."""
    y, next_return = _market(8)
    backwards = np.select([y == BUY, y == SELL], [SELL, BUY], HOLD)

    decision = evaluate_gate(_result(y, next_return, backwards), _gate(min_economic_margin=0.0))

    economic = _check(decision, "economic_value_after_fees")
    assert economic.verdict == "fail" and economic.upper < 0
    assert decision.outcome == "reject"


def test_a_champion_that_no_longer_beats_the_baselines_has_no_edge(good: EvaluationResult) -> None:
    y, next_return = _market()
    weak_champion = np.full(ROWS, HOLD)  # always HOLD: never better than the always_hold baseline
    result = _result(y, next_return, _noisy(y, 0.7, 1), champion=weak_champion)

    decision = evaluate_gate(result, _gate(min_margin_over_baselines=0.01))

    assert decision.champion_has_edge is False
    assert "margin_over_always_hold" in [check.name for check in decision.champion_failed]
    assert decision.outcome == "promote"  # the champion's checks inform; they do not decide
    assert evaluate_gate(good, _gate()).champion_has_edge is True


def test_decision_survives_a_json_round_trip_with_its_derived_fields(good: EvaluationResult) -> None:
    decision = evaluate_gate(good, _gate())

    dumped = decision.model_dump(mode="json")
    restored = GateDecision.model_validate_json(decision.model_dump_json())

    assert restored == decision
    assert dumped["promote"] is True and dumped["reasons"] == ["every gate check passed"]
    assert dumped["checks"][1]["passed"] is True and dumped["checks"][1]["verdict"] == "pass"


def test_an_outcome_that_contradicts_the_checks_is_refused(good: EvaluationResult) -> None:
    decision = evaluate_gate(good, _gate(min_macro_f1=1.0))

    with pytest.raises(ValidationError, match="contradicts the checks"):
        GateDecision(outcome="promote", checks=decision.checks)


def test_markdown_shows_each_checks_value_interval_threshold_and_verdict(good: EvaluationResult) -> None:
    decision = evaluate_gate(good, _gate(min_class_support=10**6))

    text = decision.to_markdown()

    persistence = _check(decision, "margin_over_persistence")
    assert text.startswith("**Decision: REJECT**")
    assert f"| margin_over_persistence | {persistence.value:.4f} | [{persistence.lower:.4f}, " in text
    assert "| min_class_support |" in text and "**FAIL**" in text
    assert "The champion on the same rows (no check failed)" in text


def test_the_same_evaluation_always_gets_the_same_decision(good: EvaluationResult) -> None:
    assert evaluate_gate(good, _gate()) == evaluate_gate(good, _gate())


def test_default_block_is_four_horizons_and_a_shorter_configured_block_is_refused() -> None:
    assert bootstrap_block(GateSettings(), horizon=4, n_rows=ROWS) == 16
    assert bootstrap_block(GateSettings(bootstrap_block=48), horizon=4, n_rows=ROWS) == 48
    with pytest.raises(InvalidInputError, match="shorter than the label horizon"):
        bootstrap_block(GateSettings(bootstrap_block=3), horizon=4, n_rows=ROWS)


def test_an_evaluation_without_per_row_predictions_is_refused(good: EvaluationResult) -> None:
    with pytest.raises(InvalidInputError, match="no per-row holdout predictions"):
        evaluate_gate(good.model_copy(update={"rows": None}), _gate())
