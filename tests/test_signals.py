"""Signals: calibration and the HOLD confidence threshold, fitted on out-of-fold rows, never the holdout."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from retrain.ensemble import ProductionEnsemble
from retrain.errors import EnsembleError, TrainingError
from retrain.labels import BUY, HOLD, SELL
from retrain.metrics import macro_f1
from retrain.run_dir import RunDir
from retrain.settings import Settings, SignalSettings, load_settings
from retrain.signals import choose_threshold, fit_calibrator, fit_signals
from retrain.stages import dataset_stage, ensemble_stage, fetch_stage, train_stage
from retrain.training.split import split_holdout

MODELS = ["random_forest", "lightgbm"]


def _confident_or_hold(n: int = 300, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """OOF probabilities whose argmax is right when confident (top >= 0.6) and a coin flip otherwise,
    where the true class is HOLD: a threshold between 0.45 and 0.6 turns every miss into a hit."""
    rng = np.random.default_rng(seed)
    y = rng.choice([SELL, HOLD, BUY], size=n)
    proba = np.full((n, 3), 0.1)
    confident = rng.random(n) < 0.6
    proba[confident, y[confident]] = 0.8
    unsure = np.flatnonzero(~confident)
    y[unsure] = HOLD
    leaning = rng.choice([SELL, BUY], size=len(unsure))
    proba[unsure] = 0.3
    proba[unsure, leaning] = 0.4
    return proba / proba.sum(axis=1, keepdims=True), y


def test_auto_threshold_holds_the_unsure_rows_when_that_raises_oof_macro_f1() -> None:
    proba, y = _confident_or_hold()

    threshold = choose_threshold(proba, y)

    assert threshold is not None and 0.4 < threshold <= 0.8
    signals = np.where(proba.max(axis=1) < threshold, HOLD, proba.argmax(axis=1))
    assert macro_f1(y, signals) == 1.0
    assert macro_f1(y, proba.argmax(axis=1)) < 1.0


def test_auto_threshold_is_none_when_the_argmax_is_already_best() -> None:
    proba, y = _confident_or_hold()
    right = proba.argmax(axis=1)

    assert choose_threshold(proba, right) is None


def test_calibration_maps_overconfident_probabilities_towards_the_observed_frequencies() -> None:
    rng = np.random.default_rng(1)
    n = 3000
    y = rng.choice([SELL, HOLD, BUY], size=n, p=[0.2, 0.6, 0.2])
    proba = np.full((n, 3), 0.05)
    right = rng.random(n) < 0.5  # the top class is right half the time, but claims 0.9
    top = np.where(right, y, (y + 1) % 3)
    proba[np.arange(n), top] = 0.9

    for method in ("isotonic", "sigmoid"):
        calibrated = fit_calibrator(proba, y, method).predict_proba(proba)
        assert np.allclose(calibrated.sum(axis=1), 1.0)
        assert calibrated.max(axis=1).mean() < 0.75, method


def test_calibration_needs_every_class_among_the_oof_labels() -> None:
    proba, y = _confident_or_hold()
    with pytest.raises(TrainingError, match="SELL"):
        fit_calibrator(proba, np.where(y == SELL, HOLD, y), "isotonic")


def test_a_fixed_threshold_is_used_as_configured_and_scored_on_the_oof_rows() -> None:
    proba, y = _confident_or_hold()

    calibrator, fit = fit_signals(proba, y, SignalSettings(confidence_threshold=0.5))

    assert calibrator is None
    assert fit.confidence_threshold == 0.5 and fit.threshold_mode == "fixed"
    assert fit.oof_macro_f1 == 1.0 and fit.oof_macro_f1_argmax < 1.0


def test_predict_says_hold_below_the_threshold_and_predict_proba_is_unchanged() -> None:
    from sklearn.linear_model import LogisticRegression

    from tests.ensemble_helpers import FittedMember

    rng = np.random.default_rng(2)
    X = pd.DataFrame(rng.normal(size=(400, 2)), columns=["a", "b"])
    y = np.select([X["a"] < -0.5, X["a"] > 0.5], [SELL, BUY], HOLD)
    member = {"lr": FittedMember("lr", LogisticRegression().fit(X.to_numpy(), y))}
    plain = ProductionEnsemble(member, {"lr": 1.0}, ["a", "b"])
    held = ProductionEnsemble(member, {"lr": 1.0}, ["a", "b"], confidence_threshold=0.7)

    proba = plain.predict_proba(X)
    unsure = proba.max(axis=1) < 0.7
    assert 0 < unsure.sum() < len(X)
    assert np.array_equal(held.predict_proba(X), proba)
    assert (held.predict(X)[unsure] == HOLD).all()
    assert np.array_equal(held.predict(X)[~unsure], plain.predict(X)[~unsure])
    with pytest.raises(EnsembleError, match="confidence_threshold"):
        ProductionEnsemble(member, {"lr": 1.0}, ["a", "b"], confidence_threshold=1.5)


def _settings(models_dir: Path) -> Settings:
    return load_settings(
        data={"source": "demo", "days": 20},
        split={"holdout_days": 3, "n_splits": 3},
        tuning={"n_trials": 1},
        training={"models": MODELS},
        ensemble={"weights": "stacked"},
        signals={"calibration": "isotonic", "confidence_threshold": "auto"},
        paths={"models_dir": str(models_dir)},
    )


def _with_holdout_scrambled(run: RunDir, settings: Settings, seed: int) -> None:
    """The run's dataset with every holdout row's features and label replaced by random ones."""
    dataset = run.read_dataset()
    split = split_holdout(dataset.X, dataset.y, settings.split.holdout_days, settings.purge_gap)
    holdout = dataset.X.index >= split.X_holdout.index[0]
    rng = np.random.default_rng(seed)
    X, y = dataset.X.copy(), dataset.y.copy()
    X.loc[holdout] = rng.normal(size=(int(holdout.sum()), X.shape[1]))
    y.loc[holdout] = rng.choice([SELL, HOLD, BUY], size=int(holdout.sum())).astype(y.dtype)
    run.write_dataset(dataclasses.replace(dataset, X=X, y=y))


def test_stacker_calibrator_and_threshold_are_the_same_whatever_the_holdout_rows_hold(tmp_path: Path) -> None:
    settings = _settings(tmp_path / "models")
    fitted = []
    for seed in (None, 1):
        run = RunDir(tmp_path / f"run-{seed}")
        fetch_stage(settings, run)
        dataset_stage(settings.labels, run)
        if seed is not None:
            _with_holdout_scrambled(run, settings, seed)
        for model in MODELS:
            train_stage(settings, run, model, threads=1)
        ensemble_stage(settings.ensemble, settings.signals, run, MODELS)
        fitted.append((run.read_ensemble(), run.read_signals(), run.read_dataset()))

    (original, original_fit, original_data), (scrambled, scrambled_fit, scrambled_data) = fitted
    assert not original_data.y.equals(scrambled_data.y), "the holdout labels differ between the two runs"
    assert original.combination == "stacked" and original.calibrated
    assert original_fit == scrambled_fit
    assert original.confidence_threshold == scrambled.confidence_threshold
    probe = original_data.X.iloc[:500]
    assert np.array_equal(original.predict_proba(probe), scrambled.predict_proba(probe))
