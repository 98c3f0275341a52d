"""Same data, configuration and seed give the same models, whether the studies run together or one by one."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
import pandas as pd
import pytest

from retrain.settings import Settings, TuningSettings, load_settings
from retrain.training import CoreShare, HoldoutSplit, TrainedModel, split_holdout
from tests.training_helpers import train

MODELS = ["lightgbm", "xgboost", "random_forest"]
SMALL_SPACES: dict[str, Any] = {
    "lightgbm": {
        "learning_rate": {"type": "float", "low": 0.05, "high": 0.3, "log": True},
        "num_leaves": {"type": "int", "low": 4, "high": 15},
        "feature_fraction": {"type": "float", "low": 0.5, "high": 1.0},
        "bagging_fraction": {"type": "float", "low": 0.5, "high": 1.0},
    },
    "xgboost": {
        "learning_rate": {"type": "float", "low": 0.05, "high": 0.3, "log": True},
        "max_depth": {"type": "int", "low": 2, "high": 4},
        "subsample": {"type": "float", "low": 0.5, "high": 1.0},
        "colsample_bytree": {"type": "float", "low": 0.5, "high": 1.0},
    },
    "random_forest": {
        "n_estimators": {"type": "int", "low": 10, "high": 30, "step": 10},
        "max_depth": {"type": "int", "low": 2, "high": 6},
        "max_features": {"type": "float", "low": 0.3, "high": 0.8},
        "max_samples": {"type": "float", "low": 0.4, "high": 0.9},
    },
}


def _settings(seed: int = 42) -> Settings:
    base = load_settings(
        split={"holdout_days": 2},
        tuning={"n_trials": 3, "pruner_startup_trials": 1},
        training={"seed": seed, "max_boost_rounds": 100, "early_stopping_rounds": 10},
    )
    # Replace (not merge with) the configured search spaces.
    small = TuningSettings(**{**base.tuning.model_dump(), "search_spaces": SMALL_SPACES})
    return base.model_copy(update={"tuning": small})


@pytest.fixture(scope="module")
def split() -> HoldoutSplit:
    index = pd.date_range("2026-03-01", periods=16 * 96, freq="15min", tz="UTC", name="timestamp")
    rng = np.random.default_rng(3)
    X = pd.DataFrame(rng.normal(size=(len(index), 6)), index=index, columns=[f"f{i}" for i in range(6)])
    score = X["f0"].to_numpy() + rng.normal(size=len(index))
    y = pd.Series(np.select([score < -1.0, score > 1.0], [0, 2], 1), index=index, dtype="int8")
    return split_holdout(X, y, holdout_days=2, gap=4)


def _train(split: HoldoutSplit, model: str, settings: Settings, threads: int | CoreShare) -> TrainedModel:
    return train(model, split.X_train, split.y_train, settings, threads=threads)


def _assert_same_model(a: TrainedModel, b: TrainedModel, X_holdout: np.ndarray) -> None:
    assert a.best_params == b.best_params
    assert a.best_iteration == b.best_iteration
    np.testing.assert_array_equal(a.oof_proba, b.oof_proba)
    np.testing.assert_array_equal(a.member.predict_proba(X_holdout), b.member.predict_proba(X_holdout))


@pytest.mark.parametrize("model", MODELS)
def test_same_seed_twice_gives_identical_predictions_on_held_out_rows(
    split: HoldoutSplit, model: str
) -> None:
    first = _train(split, model, _settings(), threads=1)
    second = _train(split, model, _settings(), threads=1)
    _assert_same_model(first, second, split.X_holdout.to_numpy())


def test_another_seed_gives_another_model(split: HoldoutSplit) -> None:
    first = _train(split, "random_forest", _settings(seed=1), threads=1)
    second = _train(split, "random_forest", _settings(seed=2), threads=1)
    X_holdout = split.X_holdout.to_numpy()
    assert not np.array_equal(first.member.predict_proba(X_holdout), second.member.predict_proba(X_holdout))


def test_studies_run_together_on_shared_cores_give_the_models_of_studies_run_one_by_one(
    split: HoldoutSplit,
) -> None:
    settings = _settings()
    one_by_one = {model: _train(split, model, settings, threads=1) for model in MODELS}
    share = CoreShare(MODELS, cores=2)
    with ThreadPoolExecutor(max_workers=len(MODELS)) as pool:
        futures = {model: pool.submit(_train, split, model, settings, share) for model in MODELS}
        together = {model: future.result() for model, future in futures.items()}
    for model in MODELS:
        _assert_same_model(one_by_one[model], together[model], split.X_holdout.to_numpy())


@pytest.mark.parametrize("model", MODELS)
def test_the_thread_count_does_not_change_the_model(split: HoldoutSplit, model: str) -> None:
    one = _train(split, model, _settings(), threads=1)
    two = _train(split, model, _settings(), threads=2)
    _assert_same_model(one, two, split.X_holdout.to_numpy())
