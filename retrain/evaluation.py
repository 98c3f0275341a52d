"""Honest holdout evaluation: the members, the ensemble, naive baselines and the champion, on one holdout.

The holdout is the most recent stretch of candles, never seen by tuning, training or weight fitting.
Scores alone can flatter a model on a skewed label distribution, so every number comes with naive
baselines computed on the same rows:
- `always_hold`: predict the majority class everywhere (the macro-F1 floor of doing nothing);
- `persistence`: repeat the last label *known* at time t. A label looks `horizon` candles ahead, so the
  label of t - horizon (whose forward window ends at t) is the newest one known; using the label of
  t - 1 would peek into the future. Looked up by timestamp, so gaps cannot shift it;
- `class_prior_random`: seeded draws from the class prior of the training labels (its probability
  forecast, the prior itself, gives the no-skill log-loss).
The champion (the model in production) is re-scored on the same holdout: its stored scores are from an
older market and cannot be compared with fresh ones.

The result keeps the per-row holdout predictions of the ensemble, the baselines and the champion with
the labels and returns (`HoldoutRows`): the promotion gate bootstraps its comparisons over those rows.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field
from sklearn.metrics import (
    accuracy_score,
    confusion_matrix,
    f1_score,
    log_loss,
    precision_recall_fscore_support,
)

from retrain.data.candles import CANDLE_INTERVAL
from retrain.ensemble import ProductionEnsemble, signal_codes
from retrain.errors import EnsembleError, InvalidInputError, RetrainError
from retrain.labels import CLASSES, CODES, HOLD
from retrain.metrics import macro_f1
from retrain.trading import TradingSummary, horizon_pnl, trading_readout

ENSEMBLE = "ensemble"
CHAMPION = "champion"
_CODES = list(CODES)
_ROW_SUM_TOLERANCE = 1e-5  # float32 probabilities sum to 1 within ~1e-7


class ClassScores(BaseModel):
    model_config = ConfigDict(frozen=True)

    precision: float
    recall: float
    f1: float
    support: int


class ClassificationScores(BaseModel):
    """Scores of one set of predictions; every per-class entry and matrix axis is in CLASSES order."""

    model_config = ConfigDict(frozen=True)

    macro_f1: float
    weighted_f1: float
    accuracy: float
    log_loss: float | None = Field(description="None when the predictor has no probabilities")
    per_class: dict[str, ClassScores]
    confusion_matrix: list[list[int]] = Field(description="rows = true class, columns = predicted class")


class ModelEvaluation(BaseModel):
    model_config = ConfigDict(frozen=True)

    name: str
    scores: ClassificationScores
    trading: TradingSummary
    horizon_value: float | None = Field(
        None,
        description="value after fees of trading each signal for the label horizon, against standing "
        "aside (sum of `retrain.trading.horizon_pnl` over the holdout)",
    )


class HoldoutRows(BaseModel):
    """The holdout row by row, for statistics that resample rows (the gate's bootstrap)."""

    model_config = ConfigDict(frozen=True)

    y_true: list[int]
    next_return: list[float] = Field(description="return of the candle after each row")
    run_starts: list[int] = Field(description="positions of rows that do not follow the previous candle")
    predictions: dict[str, list[int]] = Field(
        description="class codes per row of 'ensemble', each baseline and (when re-scored) 'champion'"
    )
    horizon: int
    fee_rate: float

    def new_run(self) -> np.ndarray:
        """True where a row starts a run of consecutive candles (row 0 and the rows after a gap)."""
        flags = np.zeros(len(self.y_true), dtype=bool)
        flags[self.run_starts] = True
        return flags

    def pnl(self, name: str) -> np.ndarray:
        """Per-row value after fees of `name`'s signals traded for the horizon (`horizon_pnl`)."""
        return horizon_pnl(
            np.asarray(self.predictions[name], dtype=np.int64),
            np.asarray(self.next_return),
            self.horizon,
            self.fee_rate,
            self.new_run(),
        )


class EvaluationResult(BaseModel):
    """Everything measured on one holdout (recorded in metadata, reports and the promotion gate)."""

    model_config = ConfigDict(frozen=True)

    holdout_start: datetime
    holdout_end: datetime
    n_rows: int
    class_support: dict[str, int]
    models: dict[str, ModelEvaluation] = Field(description="each member by name, and 'ensemble'")
    baselines: dict[str, ModelEvaluation]
    champion: ModelEvaluation | None = None
    champion_note: str | None = Field(None, description="why the champion is missing or not fully comparable")
    rows: HoldoutRows | None = Field(None, description="per-row labels, returns and predictions")
    equity_curves: dict[str, list[float]] = Field(
        default_factory=dict, exclude=True, description="trading equity per model, for plots; not serialised"
    )

    def metrics_table(self) -> list[dict[str, Any]]:
        """One row per predictor (ensemble, members, champion, baselines), macro-F1 first."""
        rows = [(ENSEMBLE, "ensemble", self.models[ENSEMBLE])]
        rows += [(name, "member", ev) for name, ev in self.models.items() if name != ENSEMBLE]
        if self.champion is not None:
            rows.append((CHAMPION, "champion", self.champion))
        rows += [(name, "baseline", ev) for name, ev in self.baselines.items()]
        return [
            {
                "name": name,
                "kind": kind,
                "macro_f1": ev.scores.macro_f1,
                "weighted_f1": ev.scores.weighted_f1,
                "accuracy": ev.scores.accuracy,
                "log_loss": ev.scores.log_loss,
                "total_return": ev.trading.total_return,
                "hit_rate": ev.trading.hit_rate,
                "trades": ev.trading.n_trades,
                "max_drawdown": ev.trading.max_drawdown,
                "horizon_value": ev.horizon_value,
            }
            for name, kind, ev in rows
        ]


def score_predictions(
    y_true: np.ndarray, y_pred: np.ndarray, proba: np.ndarray | None = None
) -> ClassificationScores:
    """Classification scores with the class axis fixed to CLASSES, so an absent class cannot shift it."""
    y_true, y_pred = _check_codes(y_true, "y_true"), _check_codes(y_pred, "y_pred")
    if y_true.shape != y_pred.shape:
        raise InvalidInputError(f"y_true has {len(y_true)} rows but y_pred has {len(y_pred)}")
    precision, recall, f1, support = precision_recall_fscore_support(
        y_true, y_pred, labels=_CODES, zero_division=0
    )
    per_class = {
        name: ClassScores(precision=precision[i], recall=recall[i], f1=f1[i], support=int(support[i]))
        for i, name in enumerate(CLASSES)
    }
    return ClassificationScores(
        macro_f1=macro_f1(y_true, y_pred),
        weighted_f1=f1_score(y_true, y_pred, labels=_CODES, average="weighted", zero_division=0),
        accuracy=accuracy_score(y_true, y_pred),
        log_loss=None if proba is None else _log_loss(y_true, proba),
        per_class=per_class,
        confusion_matrix=confusion_matrix(y_true, y_pred, labels=_CODES).tolist(),
    )


def naive_baselines(
    y_holdout: pd.Series, y_history: pd.Series, horizon: int, seed: int
) -> dict[str, np.ndarray]:
    """Predictions of the naive baselines on the holdout rows (see the module docstring).

    `y_history` holds the labels before the holdout, by timestamp: its class prior drives
    `class_prior_random`, and its last rows feed `persistence` at the start of the holdout (HOLD where
    the label of t - horizon is not in history + holdout).
    """
    if horizon < 1:
        raise InvalidInputError(f"horizon must be >= 1 candle; got {horizon}")
    _check_codes(y_holdout.to_numpy(), "y_holdout")
    labels = pd.concat([y_history, y_holdout])
    if not isinstance(labels.index, pd.DatetimeIndex) or not labels.index.is_unique:
        raise InvalidInputError(
            "y_history and y_holdout need unique timestamps (a DatetimeIndex) that do not overlap; "
            f"got index type {type(labels.index).__name__}, duplicated: "
            f"{labels.index[labels.index.duplicated()][:5].tolist()}"
        )
    known_at = y_holdout.index - horizon * CANDLE_INTERVAL
    persistence = labels.reindex(known_at).fillna(HOLD).to_numpy(dtype=np.int64)
    rng = np.random.default_rng(seed)
    return {
        "always_hold": np.full(len(y_holdout), HOLD, dtype=np.int64),
        "persistence": persistence,
        "class_prior_random": rng.choice(_CODES, size=len(y_holdout), p=class_prior(y_history)),
    }


def class_prior(y: pd.Series) -> np.ndarray:
    """Share of each class (CLASSES order) in `y`."""
    codes = _check_codes(y.to_numpy(), "y_history")
    if not len(codes):
        raise InvalidInputError("y_history is empty; the class prior needs the training labels")
    return np.bincount(codes, minlength=len(CLASSES)) / len(codes)


def evaluate_holdout(
    ensemble: ProductionEnsemble,
    X_holdout: pd.DataFrame,
    y_holdout: pd.Series,
    next_return: pd.Series,
    y_history: pd.Series,
    *,
    horizon: int,
    fee_rate: float,
    seed: int,
    champion: object | None = None,
) -> EvaluationResult:
    """Score the members, the ensemble, the naive baselines and the champion on the same holdout rows."""
    _check_aligned(X_holdout, y_holdout, next_return)
    y_true = _check_codes(y_holdout.to_numpy(), "y_holdout")
    returns = next_return.to_numpy(dtype=np.float64)
    if ENSEMBLE in ensemble.members:
        raise EnsembleError(f"a member is named {ENSEMBLE!r}, which is reserved for the ensemble's scores")
    new_run = np.concatenate(([True], np.diff(y_holdout.index) != CANDLE_INTERVAL))
    curves: dict[str, list[float]] = {}
    predictions: dict[str, list[int]] = {}

    def evaluate(name: str, y_pred: np.ndarray, proba: np.ndarray | None) -> ModelEvaluation:
        readout = trading_readout(y_pred, returns, fee_rate)
        curves[name] = readout.equity_curve
        scores = score_predictions(y_true, y_pred, proba)
        value = float(horizon_pnl(y_pred, returns, horizon, fee_rate, new_run).sum())
        return ModelEvaluation(name=name, scores=scores, trading=readout.summary(), horizon_value=value)

    def keep(name: str, y_pred: np.ndarray) -> np.ndarray:
        predictions[name] = np.asarray(y_pred, dtype=np.int64).tolist()
        return y_pred

    member_input = ensemble.model_input(X_holdout)
    models = {}
    for name, member in ensemble.members.items():
        proba = np.asarray(member.predict_proba(member_input))
        models[name] = evaluate(name, proba.argmax(axis=1), proba)
    ensemble_proba = ensemble.predict_proba(X_holdout)
    models[ENSEMBLE] = evaluate(ENSEMBLE, keep(ENSEMBLE, ensemble.decide(ensemble_proba)), ensemble_proba)

    prior_proba = np.tile(class_prior(y_history), (len(y_true), 1))
    baselines = {
        name: evaluate(name, keep(name, y_pred), prior_proba if name == "class_prior_random" else None)
        for name, y_pred in naive_baselines(y_holdout, y_history, horizon, seed).items()
    }

    champion_proba, champion_note = _rescore_champion(champion, ensemble, X_holdout)
    champion_evaluation = (
        None
        if champion_proba is None
        else evaluate(CHAMPION, keep(CHAMPION, signal_codes(champion, champion_proba)), champion_proba)
    )
    result = EvaluationResult(
        holdout_start=y_holdout.index[0].to_pydatetime(),
        holdout_end=y_holdout.index[-1].to_pydatetime(),
        n_rows=len(y_true),
        class_support=dict(zip(CLASSES, np.bincount(y_true, minlength=len(CLASSES)).tolist(), strict=True)),
        models=models,
        baselines=baselines,
        champion=champion_evaluation,
        champion_note=champion_note,
        rows=HoldoutRows(
            y_true=y_true.tolist(),
            next_return=returns.tolist(),
            run_starts=np.flatnonzero(new_run).tolist(),
            predictions=predictions,
            horizon=horizon,
            fee_rate=fee_rate,
        ),
        equity_curves=curves,
    )
    return result


def _rescore_champion(
    champion: object | None, challenger: ProductionEnsemble, X_holdout: pd.DataFrame
) -> tuple[np.ndarray | None, str | None]:
    """The champion's holdout probabilities, or None with the reason it cannot be compared."""
    if champion is None:
        return None, None
    if not hasattr(champion, "feature_names") or not hasattr(champion, "predict_proba"):
        kind = type(champion).__name__
        return None, f"the champion ({kind}) has no feature_names/predict_proba; it cannot be re-scored"
    needed = list(champion.feature_names)
    missing = [name for name in needed if name not in X_holdout.columns]
    if missing:
        return None, (
            f"the champion needs feature(s) {missing} that the challenger's holdout features lack; "
            "it cannot be re-scored on this holdout"
        )
    note = None
    champion_hash = getattr(champion, "feature_definition_hash", "")
    if needed != challenger.feature_names or champion_hash != challenger.feature_definition_hash:
        note = (
            f"the champion's features differ from the challenger's ({len(needed)} vs "
            f"{len(challenger.feature_names)} features, definition hash {champion_hash[:12]!r} vs "
            f"{challenger.feature_definition_hash[:12]!r}): re-scored on its same-named holdout columns, "
            "assuming they are computed the same way"
        )
    try:
        proba = np.asarray(champion.predict_proba(X_holdout[needed]))
    except RetrainError as exc:
        return None, f"the champion could not be re-scored on this holdout: {exc}"
    expected_shape = (len(X_holdout), len(CLASSES))
    if proba.shape != expected_shape:
        return None, f"the champion returned probabilities of shape {proba.shape}; expected {expected_shape}"
    return proba, note


def _check_aligned(X_holdout: pd.DataFrame, y_holdout: pd.Series, next_return: pd.Series) -> None:
    if not isinstance(y_holdout.index, pd.DatetimeIndex) or len(y_holdout) == 0:
        raise InvalidInputError("y_holdout needs a non-empty DatetimeIndex of candle timestamps")
    for name, other in (("X_holdout", X_holdout), ("next_return", next_return)):
        if not other.index.equals(y_holdout.index):
            raise InvalidInputError(
                f"{name} and y_holdout must have the same timestamps in the same order; {name} has "
                f"{len(other)} rows from {other.index[:1].tolist()}, y_holdout {len(y_holdout)} rows from "
                f"{y_holdout.index[:1].tolist()}"
            )


def _check_codes(values: np.ndarray, name: str) -> np.ndarray:
    """Class codes as int64, refusing anything outside 0..len(CLASSES)-1 (NaN included)."""
    values = np.asarray(values)
    valid = np.isin(values, _CODES)
    if values.ndim != 1 or not valid.all():
        bad = np.unique(values[~valid])[:5].tolist() if values.ndim == 1 else "not 1-D"
        raise InvalidInputError(f"{name} must be 1-D class codes in {_CODES} ({CLASSES}); found {bad}")
    return values.astype(np.int64)


def _log_loss(y_true: np.ndarray, proba: np.ndarray) -> float:
    """Log-loss; rows off 1 by float32 rounding (XGBoost) are renormalised, anything worse is refused."""
    proba = np.asarray(proba, dtype=np.float64)
    if proba.shape != (len(y_true), len(CLASSES)):
        raise InvalidInputError(f"proba has shape {proba.shape}; expected {(len(y_true), len(CLASSES))}")
    row_sums = proba.sum(axis=1, keepdims=True)
    worst = int(np.argmax(np.abs(row_sums[:, 0] - 1.0)))
    if not np.isfinite(proba).all() or abs(row_sums[worst, 0] - 1.0) > _ROW_SUM_TOLERANCE:
        raise InvalidInputError(
            "proba must hold finite probabilities summing to 1 per row; "
            f"row {worst} sums to {row_sums[worst, 0]}"
        )
    return float(log_loss(y_true, proba / row_sums, labels=_CODES))
