"""From the ensemble's probabilities to the bot's signals: calibration and a HOLD confidence threshold.

Both are fitted on the out-of-fold (OOF) rows the ensemble weights are fitted on, never the holdout:
the holdout judges the model, so nothing that shapes its signals may have seen it.

- Calibration (`signals.calibration`): scikit-learn's `CalibratedClassifierCV` on the frozen ensemble
  output, isotonic or sigmoid, one-vs-rest and renormalised. The ensemble is represented by
  `ProbabilityPassThrough`, a classifier whose input already is the probabilities, so the calibrator
  is fitted on the OOF probabilities without refitting any member. Its import path is public API:
  it is pickled inside a calibrated `ProductionEnsemble`. Calibrated probabilities follow the real
  class mix, so with a weak signal their argmax is nearly always the majority HOLD (every OOF row on
  60 days of Binance BTC to 2024-07-31, isotonic and sigmoid alike).
- Confidence threshold (`signals.confidence_threshold`): below it the bot says HOLD. `auto` picks the
  candidate with the highest OOF macro-F1, the metric the model is promoted by; "no threshold" is a
  candidate, and ties go to the lowest threshold (the least change to the plain argmax). The OOF
  economic value is not used: the ensemble stage has no forward returns for the OOF rows.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.calibration import CalibratedClassifierCV
from sklearn.frozen import FrozenEstimator

from retrain.ensemble import hold_below
from retrain.errors import TrainingError
from retrain.labels import CLASSES, CODES
from retrain.metrics import macro_f1
from retrain.settings import CalibrationName, SignalSettings

logger = logging.getLogger(__name__)

HOLD_CODE = CLASSES.index("HOLD")
THRESHOLD_CANDIDATES: tuple[float, ...] = tuple(round(0.35 + 0.01 * i, 2) for i in range(61))
"""`auto`'s candidates: 0.35 .. 0.95; below 1/3 a three-class argmax is never under the threshold."""


class ProbabilityPassThrough(ClassifierMixin, BaseEstimator):
    """A classifier whose input rows are class probabilities (columns in CODES order), returned as they are."""

    def fit(self, X: Any = None, y: Any = None) -> ProbabilityPassThrough:
        self.classes_ = np.asarray(CODES)
        return self

    def predict_proba(self, X: Any) -> np.ndarray:
        return np.asarray(X, dtype=np.float64)

    def predict(self, X: Any) -> np.ndarray:
        return self.predict_proba(X).argmax(axis=1)


class SignalFit(BaseModel):
    """How the signals were fitted (recorded in the model metadata beside the weights)."""

    model_config = ConfigDict(frozen=True)

    calibration: CalibrationName = "none"
    confidence_threshold: float | None = Field(None, description="HOLD below this top probability")
    threshold_mode: str = Field("none", description="none, auto or fixed")
    oof_macro_f1: float | None = Field(None, description="OOF macro-F1 of the final signals")
    oof_macro_f1_argmax: float | None = Field(None, description="OOF macro-F1 of the plain argmax")
    oof_hold_share: float | None = Field(None, description="share of OOF rows signalled HOLD")
    n_rows: int = 0


def fit_calibrator(proba: np.ndarray, y_true: np.ndarray, method: CalibrationName) -> CalibratedClassifierCV:
    """A calibrator of the OOF probabilities `proba` against their labels (never holdout rows)."""
    missing = sorted(set(CODES) - set(np.unique(y_true).tolist()))
    if missing:
        raise TrainingError(
            f"signals.calibration={method} needs every class among the out-of-fold labels; "
            f"{[CLASSES[c] for c in missing]} never occur: use more days or signals.calibration=none"
        )
    frozen = FrozenEstimator(ProbabilityPassThrough().fit())
    return CalibratedClassifierCV(frozen, method=method).fit(proba, y_true)


def choose_threshold(proba: np.ndarray, y_true: np.ndarray) -> float | None:
    """The candidate threshold with the highest OOF macro-F1; None when no threshold does better."""
    best, best_score = None, macro_f1(y_true, proba.argmax(axis=1))
    for threshold in THRESHOLD_CANDIDATES:
        score = macro_f1(y_true, hold_below(proba, threshold, HOLD_CODE))
        if score > best_score + 1e-9:
            best, best_score = threshold, score
    return best


def fit_signals(
    proba: np.ndarray, y_true: np.ndarray, signals: SignalSettings
) -> tuple[CalibratedClassifierCV | None, SignalFit]:
    """Calibrator (or None) and threshold from the ensemble's OOF probabilities and labels."""
    calibrator = None
    if signals.calibration != "none":
        calibrator = fit_calibrator(proba, y_true, signals.calibration)
        proba = calibrator.predict_proba(proba)
    setting = signals.confidence_threshold
    if setting == "auto":
        threshold, mode = choose_threshold(proba, y_true), "auto"
    elif setting == "none":
        threshold, mode = None, "none"
    else:
        threshold, mode = float(setting), "fixed"
    codes = hold_below(proba, threshold, HOLD_CODE)
    fit = SignalFit(
        calibration=signals.calibration,
        confidence_threshold=threshold,
        threshold_mode=mode,
        oof_macro_f1=macro_f1(y_true, codes),
        oof_macro_f1_argmax=macro_f1(y_true, proba.argmax(axis=1)),
        oof_hold_share=float(np.mean(codes == HOLD_CODE)),
        n_rows=len(y_true),
    )
    if calibrator is not None or threshold is not None:
        logger.info(
            "signals: calibration %s, HOLD below %s (OOF macro-F1 %.4f, argmax %.4f, HOLD share %.2f)",
            fit.calibration,
            "none" if threshold is None else f"{threshold:.2f}",
            fit.oof_macro_f1,
            fit.oof_macro_f1_argmax,
            fit.oof_hold_share,
        )
    return calibrator, fit
