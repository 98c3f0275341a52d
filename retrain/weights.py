"""Choose how the ensemble combines its members, from out-of-fold predictions.

`ensemble.weights` chooses the combination: `grid` (the default, below), `equal` (every member the
same weight, no fitting), or `stacked` (a multinomial logistic regression on the members' OOF
probabilities: it can weigh one member's SELL column against another's BUY column, which a soft vote
cannot). The stacker is fitted on the same OOF rows its OOF macro-F1 is measured on; with
3 x members inputs per class it has too few parameters to memorise thousands of rows.

The grid, and why:

Why this way:
- The weights maximise macro-F1 of the weighted soft vote, because macro-F1 is the metric the model is
  judged on (and promoted by): it weighs BUY and SELL as much as the majority HOLD class.
- They are fitted on out-of-fold (OOF) rows: every OOF probability comes from a model that never
  trained on that row, so a member that memorised its training data does not look better than it is.
  The holdout is never used here, so the weights are not fitted on the rows they are evaluated on.
- The search is a coarse grid on the simplex (step 0.1: 66 points for 3 members, 11 for 2, 1 for 1),
  not a continuous optimiser of log-loss: a few dozen candidates cannot overfit the OOF rows the way a
  continuous optimum can, and the grid contains the corners and edges, so a member that only hurts
  gets weight 0.
- Ties (within 1e-9 of macro-F1) go to the grid point closest to equal weights (then the first in grid
  order): without evidence for one member, spreading the vote is the safer bet.
"""

from __future__ import annotations

import itertools
import logging

import numpy as np
from pydantic import BaseModel, ConfigDict, Field
from sklearn.linear_model import LogisticRegression

from retrain.ensemble import model_proba
from retrain.errors import TrainingError
from retrain.labels import CLASSES
from retrain.metrics import macro_f1
from retrain.settings import WeightingName

logger = logging.getLogger(__name__)

_TIE_TOLERANCE = 1e-9


class WeightFit(BaseModel):
    """The chosen weights and the OOF macro-F1 that justified them (recorded in model metadata)."""

    model_config = ConfigDict(frozen=True)

    weights: dict[str, float] = Field(description="member name -> weight; the weights sum to 1")
    oof_macro_f1: float = Field(description="OOF macro-F1 of the chosen blend")
    equal_weights_macro_f1: float = Field(description="OOF macro-F1 with every member weighted equally")
    member_macro_f1: dict[str, float] = Field(description="OOF macro-F1 of each member alone")
    n_rows: int = Field(description="OOF rows the weights were fitted on")
    grid_size: int = Field(description="candidate weightings searched")
    step: float | None = Field(description="grid step; None when no grid was searched")
    method: WeightingName = Field("grid", description="ensemble.weights: grid, equal or stacked")


def simplex_grid(n_members: int, step: float) -> np.ndarray:
    """Every weighting with weights in multiples of `step` summing to 1, shape (points, n_members)."""
    units = round(1.0 / step) if step > 0 else 0
    if units < 1 or abs(units * step - 1.0) > 1e-9:
        raise TrainingError(f"weight grid step must divide 1 (e.g. 0.1, 0.05, 0.25); got {step}")
    points = [
        counts for counts in itertools.product(range(units + 1), repeat=n_members) if sum(counts) == units
    ]
    return np.asarray(points, dtype=np.float64) / units


def fit_weights(oof_proba: dict[str, np.ndarray], y_true: np.ndarray, *, step: float = 0.1) -> WeightFit:
    """Grid-search the weights of the soft vote for the highest OOF macro-F1 (see the module docstring)."""
    names = list(oof_proba)
    y_true = np.asarray(y_true)
    stacked = _stack(oof_proba, y_true)
    grid = simplex_grid(len(names), step)
    equal = np.full(len(names), 1.0 / len(names))
    scores = np.array([_blend_macro_f1(stacked, weights, y_true) for weights in grid])
    tied = np.flatnonzero(scores >= scores.max() - _TIE_TOLERANCE)
    distances = np.round(np.linalg.norm(grid[tied] - equal, axis=1), 12)  # exact ties -> grid order
    best = tied[np.argmin(distances)]
    fit = WeightFit(
        weights={name: float(w) for name, w in zip(names, grid[best], strict=True)},
        oof_macro_f1=float(scores[best]),
        equal_weights_macro_f1=_blend_macro_f1(stacked, equal, y_true),
        member_macro_f1={
            name: _blend_macro_f1(stacked, alone, y_true)
            for name, alone in zip(names, np.eye(len(names)), strict=True)
        },
        n_rows=len(y_true),
        grid_size=len(grid),
        step=step,
    )
    logger.info(
        "ensemble weights %s: OOF macro-F1 %.4f (equal weights %.4f, members %s) over %d grid points",
        fit.weights,
        fit.oof_macro_f1,
        fit.equal_weights_macro_f1,
        fit.member_macro_f1,
        fit.grid_size,
    )
    return fit


def _stack(oof_proba: dict[str, np.ndarray], y_true: np.ndarray) -> np.ndarray:
    """Members' OOF probabilities as one array (members, rows, classes), after checking they line up."""
    if not oof_proba:
        raise TrainingError("fit_weights needs the OOF probabilities of at least one member")
    if y_true.ndim != 1 or not len(y_true):
        raise TrainingError(f"y_true must be a non-empty 1-D array of class codes; got shape {y_true.shape}")
    for name, proba in oof_proba.items():
        proba = np.asarray(proba)
        if proba.shape != (len(y_true), len(CLASSES)):
            raise TrainingError(
                f"OOF probabilities of {name!r} have shape {proba.shape}; expected "
                f"{(len(y_true), len(CLASSES))}: one row per OOF label, one column per class {CLASSES}"
            )
        if not np.isfinite(proba).all():
            raise TrainingError(
                f"OOF probabilities of {name!r} contain NaN/inf; pass only the rows every member predicted"
            )
    return np.stack([np.asarray(proba, dtype=np.float64) for proba in oof_proba.values()])


def _blend_macro_f1(stacked: np.ndarray, weights: np.ndarray, y_true: np.ndarray) -> float:
    predicted = np.tensordot(weights, stacked, axes=1).argmax(axis=1)
    return macro_f1(y_true, predicted)


def fit_stacker(
    oof_proba: dict[str, np.ndarray], y_true: np.ndarray, *, balanced: bool = True
) -> LogisticRegression:
    """A multinomial logistic regression from the members' OOF probabilities (side by side) to the labels.

    `balanced` weighs each class the same (the members were trained on balanced classes too); without
    it the regression learns the OOF class mix and predicts the majority HOLD far more often."""
    y_true = np.asarray(y_true)
    stacked = _stack(oof_proba, y_true)
    if len(np.unique(y_true)) < 2:
        raise TrainingError(
            "ensemble.weights=stacked needs at least two classes among the out-of-fold labels"
        )
    class_weight = "balanced" if balanced else None
    return LogisticRegression(class_weight=class_weight, max_iter=1000).fit(np.hstack(list(stacked)), y_true)


def combined_proba(
    probas: dict[str, np.ndarray], weights: dict[str, float], stacker: LogisticRegression | None
) -> np.ndarray:
    """What the ensemble makes of its members' probabilities: the stacker's, else the weighted vote."""
    if stacker is not None:
        return model_proba(stacker, np.hstack([probas[name] for name in probas]), len(CLASSES))
    total = np.zeros((len(next(iter(probas.values()))), len(CLASSES)))
    for name, proba in probas.items():
        total += weights[name] * np.asarray(proba)
    return total


def fit_combination(
    method: WeightingName, oof_proba: dict[str, np.ndarray], y_true: np.ndarray, *, balanced: bool = True
) -> tuple[WeightFit, LogisticRegression | None]:
    """The configured combination: grid or equal weights, or equal weights plus a fitted stacker
    (`balanced`: see `fit_stacker`)."""
    if method == "grid":
        return fit_weights(oof_proba, y_true), None
    y_true = np.asarray(y_true)
    stacked = _stack(oof_proba, y_true)
    names = list(oof_proba)
    equal = np.full(len(names), 1.0 / len(names))
    weights = {name: float(w) for name, w in zip(names, equal, strict=True)}
    stacker = fit_stacker(oof_proba, y_true, balanced=balanced) if method == "stacked" else None
    fit = WeightFit(
        weights=weights,
        oof_macro_f1=macro_f1(y_true, combined_proba(oof_proba, weights, stacker).argmax(axis=1)),
        equal_weights_macro_f1=_blend_macro_f1(stacked, equal, y_true),
        member_macro_f1={
            name: _blend_macro_f1(stacked, alone, y_true)
            for name, alone in zip(names, np.eye(len(names)), strict=True)
        },
        n_rows=len(y_true),
        grid_size=1,
        step=None,
        method=method,
    )
    logger.info(
        "ensemble %s: OOF macro-F1 %.4f (equal weights %.4f, members %s)",
        "stacked logistic regression" if stacker is not None else "equal weights",
        fit.oof_macro_f1,
        fit.equal_weights_macro_f1,
        fit.member_macro_f1,
    )
    return fit, stacker
