"""The paired moving-block bootstrap: its macro-F1 matches sklearn, its blocks are blocks, and its
intervals separate a better, an equal and a worse predictor."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import f1_score

from retrain.bootstrap import PairedBootstrap, block_indices, macro_f1_batch
from retrain.errors import InvalidInputError

ROWS = 1344  # a 14-day holdout of 15-minute candles
BLOCK = 16


def _labels(rng: np.random.Generator) -> np.ndarray:
    """Class codes that come in runs (as overlapping labels do): each run lasts 1-8 rows."""
    runs = rng.integers(1, 9, size=ROWS)
    return np.repeat(rng.integers(0, 3, size=ROWS), runs)[:ROWS]


def _predictor(rng: np.random.Generator, y_true: np.ndarray, accuracy: float) -> np.ndarray:
    """Right on a share `accuracy` of the rows, a random class elsewhere."""
    return np.where(rng.random(ROWS) < accuracy, y_true, rng.integers(0, 3, size=ROWS))


def _bootstrap(**overrides: float) -> PairedBootstrap:
    options = {"block": BLOCK, "resamples": 1000, "confidence": 0.9, "seed": 0} | overrides
    return PairedBootstrap(ROWS, **options)


def test_resampled_macro_f1_equals_sklearn_on_every_resample() -> None:
    rng = np.random.default_rng(1)
    y_true = _labels(rng)
    y_pred = _predictor(rng, y_true, 0.5)
    indices = block_indices(ROWS, BLOCK, resamples=5, seed=2)

    batch = macro_f1_batch(y_true, y_pred, indices)

    expected = [
        f1_score(y_true[rows], y_pred[rows], labels=[0, 1, 2], average="macro", zero_division=0)
        for rows in indices
    ]
    np.testing.assert_allclose(batch, expected)


def test_a_class_absent_from_a_resample_scores_zero_like_sklearn() -> None:
    y_true, y_pred = np.array([1, 1, 2, 2]), np.array([1, 1, 1, 2])

    batch = macro_f1_batch(y_true, y_pred, np.arange(4)[None, :])

    assert batch[0] == pytest.approx(
        f1_score(y_true, y_pred, labels=[0, 1, 2], average="macro", zero_division=0)
    )


def test_block_indices_are_runs_of_consecutive_rows_cut_to_the_row_count_and_seeded() -> None:
    indices = block_indices(100, 16, resamples=50, seed=3)

    assert indices.shape == (50, 100)
    assert indices.min() >= 0 and indices.max() <= 99
    blocks = indices[:, :96].reshape(50, 6, 16)
    np.testing.assert_array_equal(np.diff(blocks, axis=2), 1)
    np.testing.assert_array_equal(indices, block_indices(100, 16, resamples=50, seed=3))
    assert not np.array_equal(indices, block_indices(100, 16, resamples=50, seed=4))


def test_a_clearly_better_challenger_has_an_interval_above_zero() -> None:
    rng = np.random.default_rng(5)
    y_true = _labels(rng)

    interval = _bootstrap().macro_f1_difference(
        y_true, _predictor(rng, y_true, 0.6), _predictor(rng, y_true, 0.3)
    )

    assert interval.lower > 0.1
    assert interval.lower <= interval.estimate <= interval.upper


def test_an_equally_good_challenger_has_an_interval_around_zero() -> None:
    rng = np.random.default_rng(6)
    y_true = _labels(rng)

    interval = _bootstrap().macro_f1_difference(
        y_true, _predictor(rng, y_true, 0.4), _predictor(rng, y_true, 0.4)
    )

    assert interval.lower < 0 < interval.upper


def test_a_clearly_worse_challenger_has_an_interval_below_zero() -> None:
    rng = np.random.default_rng(7)
    y_true = _labels(rng)

    interval = _bootstrap().macro_f1_difference(
        y_true, _predictor(rng, y_true, 0.2), _predictor(rng, y_true, 0.5)
    )

    assert interval.upper < -0.1


def test_pairing_detects_a_small_improvement_on_the_same_rows() -> None:
    """B fixes 40 of A's errors and changes nothing else: every resample holds the same rows for both, so
    the difference is positive in (almost) all of them, although each score alone varies far more."""
    rng = np.random.default_rng(8)
    y_true = _labels(rng)
    pred_a = _predictor(rng, y_true, 0.4)
    pred_b = pred_a.copy()
    fixed = rng.choice(np.flatnonzero(pred_a != y_true), size=40, replace=False)
    pred_b[fixed] = y_true[fixed]
    bootstrap = _bootstrap()

    interval = bootstrap.macro_f1_difference(y_true, pred_b, pred_a)

    spread_a = np.quantile(bootstrap.macro_f1(y_true, pred_a).samples, [0.05, 0.95])
    assert interval.lower > 0
    assert interval.upper - interval.lower < (spread_a[1] - spread_a[0]) / 2


def test_identical_predictors_differ_by_exactly_zero() -> None:
    rng = np.random.default_rng(9)
    y_true = _labels(rng)
    pred = _predictor(rng, y_true, 0.5)

    interval = _bootstrap().macro_f1_difference(y_true, pred, pred)

    assert (interval.estimate, interval.lower, interval.upper) == (0.0, 0.0, 0.0)


def test_sum_difference_is_the_total_of_the_rows_with_its_interval() -> None:
    rng = np.random.default_rng(10)
    gains = rng.normal(0.001, 0.01, size=ROWS)

    interval = _bootstrap().sum_difference(gains, np.zeros(ROWS))

    assert interval.estimate == pytest.approx(gains.sum())
    assert interval.a == pytest.approx(gains.sum()) and interval.b == 0.0
    # a sum of 1344 rows of sd 0.01 has sd ~0.37: a 90% interval is roughly +-0.6 around the total
    assert 0.6 < interval.upper - interval.lower < 2.0


def test_a_higher_confidence_gives_a_wider_interval() -> None:
    rng = np.random.default_rng(11)
    y_true = _labels(rng)
    pred_a, pred_b = _predictor(rng, y_true, 0.45), _predictor(rng, y_true, 0.4)

    narrow = _bootstrap(confidence=0.5).macro_f1_difference(y_true, pred_a, pred_b)
    wide = _bootstrap(confidence=0.95).macro_f1_difference(y_true, pred_a, pred_b)

    assert wide.lower < narrow.lower and wide.upper > narrow.upper


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"block": 0}, "block length"),
        ({"block": ROWS + 1}, "block length"),
        ({"resamples": 10}, "at least 100"),
        ({"confidence": 1.0}, "confidence"),
    ],
)
def test_refuses_settings_that_cannot_give_an_interval(options: dict, message: str) -> None:
    with pytest.raises(InvalidInputError, match=message):
        _bootstrap(**options)


def test_refuses_predictions_of_another_length_or_outside_the_classes() -> None:
    bootstrap = _bootstrap()
    y_true = np.zeros(ROWS, dtype=np.int64)

    with pytest.raises(InvalidInputError, match="y_pred must be 1344"):
        bootstrap.macro_f1(y_true, np.zeros(ROWS - 1, dtype=np.int64))
    with pytest.raises(InvalidInputError, match="outside"):
        bootstrap.macro_f1(y_true, np.full(ROWS, 3))
