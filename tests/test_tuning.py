"""Per-model tuning: leak-free SMOTE and early stopping, pruning within budget, warm start, storage, threads."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

import lightgbm as lgb
import numpy as np
import optuna
import pandas as pd
import pytest
import xgboost as xgb
from imblearn.over_sampling import SMOTE
from sklearn.utils.class_weight import compute_sample_weight

from retrain.errors import ConfigError, TrainingError
from retrain.settings import SearchParam, Settings, TuningSettings, load_settings
from retrain.training import (
    CoreShare,
    Fold,
    make_folds,
    resampling,
    split_holdout,
    threads_per_model,
)
from retrain.training.fold_data import FoldData
from retrain.training.learners import make_learner
from retrain.training.resampling import oversample
from retrain.training.search_space import warm_start_values
from retrain.training.train import study_name
from retrain.training.tuning import make_pruner
from tests.training_helpers import train

SMALL_SPACES: dict[str, Any] = {
    "lightgbm": {
        "learning_rate": {"type": "float", "low": 0.05, "high": 0.3, "log": True},
        "num_leaves": {"type": "int", "low": 4, "high": 15},
        "min_child_samples": {"type": "int", "low": 5, "high": 50, "log": True},
    },
    "xgboost": {
        "learning_rate": {"type": "float", "low": 0.05, "high": 0.3, "log": True},
        "max_depth": {"type": "int", "low": 2, "high": 4},
    },
    "random_forest": {
        "n_estimators": {"type": "int", "low": 10, "high": 30, "step": 10},
        "max_depth": {"type": "int", "low": 1, "high": 6},
        "min_samples_leaf": {"type": "int", "low": 5, "high": 50, "log": True},
    },
}


def _settings(
    tuning: dict[str, Any] | None = None,
    training: dict[str, Any] | None = None,
    spaces: dict[str, Any] = SMALL_SPACES,
) -> Settings:
    """Small budgets and search spaces; `spaces` replaces the configured ones (overrides would merge)."""
    base = load_settings(
        split={"holdout_days": 2},
        tuning={"n_trials": 2, "pruner_startup_trials": 1, **(tuning or {})},
        training={"max_boost_rounds": 200, "early_stopping_rounds": 10, **(training or {})},
    )
    small = TuningSettings(**{**base.tuning.model_dump(), "search_spaces": spaces})
    return base.model_copy(update={"tuning": small})


def _market(days: int = 16, signal: float = 1.0, seed: int = 0) -> tuple[pd.DataFrame, pd.Series]:
    """15-minute rows whose class follows the first feature (times `signal`) plus noise."""
    index = pd.date_range("2026-03-01", periods=days * 96, freq="15min", tz="UTC", name="timestamp")
    rng = np.random.default_rng(seed)
    X = pd.DataFrame(rng.normal(size=(len(index), 6)), index=index, columns=[f"f{i}" for i in range(6)])
    score = signal * X["f0"].to_numpy() + rng.normal(size=len(index))
    y = pd.Series(np.select([score < -1.0, score > 1.0], [0, 2], 1), index=index, dtype="int8")
    return X, y


def _training_rows(settings: Settings, **market: Any) -> tuple[pd.DataFrame, pd.Series]:
    split = split_holdout(*_market(**market), settings.split.holdout_days, settings.purge_gap)
    return split.X_train, split.y_train


def _fold_parts(settings: Settings, n_rows: int) -> list[Fold]:
    return make_folds(n_rows, settings.split.n_splits, settings.purge_gap, settings.split.validation_fraction)


@pytest.mark.parametrize("reuse", [True, False])
def test_smote_only_ever_sees_a_fold_fit_part_or_the_final_training_rows(
    monkeypatch: pytest.MonkeyPatch, reuse: bool
) -> None:
    settings = _settings(tuning={"pruner": "none"})
    X_train, y_train = _training_rows(settings)
    seen: list[np.ndarray] = []
    original = SMOTE.fit_resample

    def spy(self: SMOTE, X: np.ndarray, y: np.ndarray, **kwargs: Any) -> Any:
        seen.append(np.array(X))
        return original(self, X, y, **kwargs)

    monkeypatch.setattr(SMOTE, "fit_resample", spy)
    train("random_forest", X_train, y_train, settings, threads=1, reuse_fold_datasets=reuse)

    X = X_train.to_numpy()
    folds = _fold_parts(settings, len(X))
    allowed = [X[fold.fit] for fold in folds] + [X]
    builds_per_fold = 1 if reuse else settings.tuning.n_trials
    assert len(seen) == builds_per_fold * len(folds) + 1, (
        "once per fold if reused, else per trial; +1 final fit"
    )
    for received in seen:
        assert any(received.shape == a.shape and np.array_equal(received, a) for a in allowed)
    assert np.array_equal(seen[-1], X), "the final fit oversamples the training rows, never the holdout"


def test_pruned_trials_count_toward_n_trials() -> None:
    settings = _settings(tuning={"n_trials": 8})
    result = train("random_forest", *_training_rows(settings), settings, threads=1)
    summary = result.study
    assert summary.n_trials == 8 == len(result.history)
    assert summary.n_pruned >= 1
    assert summary.n_complete + summary.n_pruned + summary.n_failed == 8


def test_no_trial_is_pruned_when_pruning_is_off() -> None:
    settings = _settings(tuning={"n_trials": 8, "pruner": "none"})
    result = train("random_forest", *_training_rows(settings), settings, threads=1)
    assert result.study.n_pruned == 0
    assert result.study.n_complete == 8


def _pruned(settings: Settings, score: float, finished: tuple[float, ...], folds: int = 1) -> bool:
    """Whether `make_pruner` stops a trial at `score` after `folds` folds, behind trials that scored
    `finished` on every fold (each asked the pruner, as `train_model` does, so rungs are recorded)."""
    study = optuna.create_study(direction="maximize", pruner=make_pruner(settings.tuning))

    def asked(value: float) -> tuple[optuna.Trial, bool]:
        trial = study.ask()
        for step in range(folds):
            trial.report(value, step)
        return trial, trial.should_prune()

    for value in finished:
        study.tell(asked(value)[0], value)
    return asked(score)[1]


def _percentile(**tuning: Any) -> Settings:
    return _settings(tuning={"pruner": "percentile", "pruner_startup_trials": 3, **tuning})


def test_percentile_pruner_keeps_the_configured_top_share_of_trials() -> None:
    median = _percentile(pruner_min_folds=1, pruner_keep_percentile=50)
    top_third = _percentile(pruner_min_folds=1, pruner_keep_percentile=33)
    finished = (0.5, 0.4, 0.3)
    assert not _pruned(median, 0.42, finished), "above the median (0.40): goes on"
    assert _pruned(top_third, 0.42, finished), "below the top third (0.43): pruned"
    assert not _pruned(top_third, 0.45, finished)


def test_successive_halving_keeps_the_top_third_of_trials_at_its_rung() -> None:
    settings = _settings(tuning={"pruner": "successive_halving"})
    finished = (0.50, 0.48, 0.46, 0.44, 0.42, 0.40)
    assert not _pruned(settings, 0.49, finished, folds=2), "second of seven: in the top third"
    assert _pruned(settings, 0.47, finished, folds=2), "third of seven: outside it"


@pytest.mark.parametrize("pruner", ["successive_halving", "percentile"])
def test_no_trial_is_pruned_before_pruner_min_folds(pruner: str) -> None:
    two_folds = _settings(tuning={"pruner": pruner, "pruner_startup_trials": 3, "pruner_min_folds": 2})
    assert not _pruned(two_folds, 0.0, (0.5, 0.4, 0.3))
    settings = _settings(
        tuning={"pruner": pruner, "n_trials": 10, "pruner_min_folds": 3, "pruner_keep_percentile": 25}
    )
    result = train("lightgbm", *_training_rows(settings), settings, threads=1)
    pruned = [r for r in result.history if r.state == "PRUNED"]
    assert pruned, "a strict pruner over 10 trials prunes some"
    assert all(len(r.fold_best_rounds) >= 3 for r in pruned)


def test_successive_halving_needs_two_folds_before_its_first_rung() -> None:
    with pytest.raises(ConfigError, match="pruner_min_folds must be at least 2"):
        load_settings(tuning={"pruner": "successive_halving", "pruner_min_folds": 1})
    assert load_settings(tuning={"pruner": "percentile", "pruner_min_folds": 1}).tuning.pruner_min_folds == 1


def test_warm_start_params_are_the_first_trial() -> None:
    settings = _settings()
    production = {"learning_rate": 0.123, "num_leaves": 9, "min_child_samples": 17, "bagging_freq": 3}
    result = train("lightgbm", *_training_rows(settings), settings, threads=1, warm_start_params=production)
    assert result.history[0].params == {"learning_rate": 0.123, "num_leaves": 9, "min_child_samples": 17}
    assert result.history[1].params != result.history[0].params


def test_warm_start_values_outside_a_narrowed_space_move_to_its_nearest_bound() -> None:
    space = load_settings().tuning.search_spaces["random_forest"]
    production = {"n_estimators": 150, "max_depth": 12, "min_samples_leaf": 5, "max_features": 0.3, "old": 1}
    values = warm_start_values("random_forest", production, space)
    assert values == {"n_estimators": 100, "max_depth": 8, "min_samples_leaf": 10, "max_features": 0.3}


def test_a_warm_start_choice_the_space_no_longer_offers_is_left_to_the_sampler() -> None:
    space = {"booster": SearchParam(type="categorical", choices=["gbtree", "dart"])}
    assert warm_start_values("xgboost", {"booster": "gblinear"}, space) == {}
    assert warm_start_values("xgboost", {"booster": "dart"}, space) == {"booster": "dart"}


@pytest.mark.parametrize("model", ["lightgbm", "xgboost"])
def test_boosters_stop_early_when_they_start_to_overfit(model: str) -> None:
    settings = _settings(training={"max_boost_rounds": 300})
    result = train(model, *_training_rows(settings, signal=0.0), settings, threads=1)
    assert result.best_iteration is not None and result.best_iteration < 300


def test_lightgbm_early_stops_on_the_validation_slice_never_the_test_window(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    settings = _settings(tuning={"n_trials": 1})
    X_train, y_train = _training_rows(settings)
    stopped_on: list[np.ndarray] = []
    original = lgb.train

    def spy(params: dict[str, Any], train_set: lgb.Dataset, *args: Any, **kwargs: Any) -> lgb.Booster:
        stopped_on.extend(np.asarray(valid.get_data()) for valid in kwargs.get("valid_sets") or [])
        return original(params, train_set, *args, **kwargs)

    monkeypatch.setattr(lgb, "train", spy)
    train("lightgbm", X_train, y_train, settings, threads=1)

    folds = _fold_parts(settings, len(X_train))
    assert len(stopped_on) == len(folds), (
        "one early-stopped fit per fold; the final fit has no validation set"
    )
    for fold, valid in zip(folds, stopped_on, strict=True):
        np.testing.assert_array_equal(valid, X_train.to_numpy()[fold.valid])


def test_xgboost_early_stops_on_the_validation_slice_never_the_test_window(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    settings = _settings(tuning={"n_trials": 1})
    X_train, y_train = _training_rows(settings)
    stopped_on: list[np.ndarray] = []
    original = xgb.train

    def spy(params: dict[str, Any], dtrain: xgb.DMatrix, *args: Any, **kwargs: Any) -> xgb.Booster:
        stopped_on.extend(dmatrix.get_label() for dmatrix, _ in kwargs.get("evals") or [])
        return original(params, dtrain, *args, **kwargs)

    monkeypatch.setattr(xgb, "train", spy)
    train("xgboost", X_train, y_train, settings, threads=1)

    folds = _fold_parts(settings, len(X_train))
    assert len(stopped_on) == len(folds), (
        "one early-stopped fit per fold; the final fit has no validation set"
    )
    for fold, labels in zip(folds, stopped_on, strict=True):
        np.testing.assert_array_equal(labels, y_train.to_numpy()[fold.valid])


@pytest.mark.parametrize("model", ["lightgbm", "xgboost"])
def test_rebuilding_fold_datasets_in_every_trial_gives_the_same_result_as_reusing_them(model: str) -> None:
    results = {}
    for reuse in (True, False):
        settings = _settings(tuning={"n_trials": 3})
        results[reuse] = train(
            model, *_training_rows(settings), settings, threads=1, reuse_fold_datasets=reuse
        )
    assert results[True].cv_macro_f1 == results[False].cv_macro_f1
    assert results[True].best_params == results[False].best_params
    np.testing.assert_array_equal(results[True].oof_proba, results[False].oof_proba)


def test_a_storage_url_persists_the_study_and_a_rerun_resumes_it_up_to_n_trials(tmp_path) -> None:
    storage = f"sqlite:///{tmp_path / 'optuna.db'}"
    settings = _settings(tuning={"storage": storage, "n_trials": 2})
    rows = _training_rows(settings)
    first = train("random_forest", *rows, settings, threads=1)
    stored = optuna.load_study(study_name=first.study.study_name, storage=storage)
    assert len(stored.trials) == 2

    resumed = train("random_forest", *rows, _settings(tuning={"storage": storage, "n_trials": 3}), threads=1)
    assert resumed.study.study_name == first.study.study_name
    assert resumed.study.n_trials == 3
    assert (
        resumed.cv_macro_f1
        == optuna.load_study(study_name=first.study.study_name, storage=storage).best_value
    )
    # The first run's best trial stays the best, so its out-of-fold predictions are re-scored, identically.
    assert resumed.study.best_trial_number == first.study.best_trial_number
    np.testing.assert_array_equal(resumed.oof_proba, first.oof_proba)


def test_studies_run_together_can_share_one_storage_url(tmp_path) -> None:
    storage = f"sqlite:///{tmp_path / 'optuna.db'}"
    settings = _settings(tuning={"storage": storage})
    rows = _training_rows(settings)
    models = ["lightgbm", "xgboost", "random_forest"]
    share = CoreShare(models, cores=2)
    with ThreadPoolExecutor(max_workers=len(models)) as pool:
        results = list(pool.map(lambda model: train(model, *rows, settings, threads=share), models))
    names = {summary.study_name for summary in optuna.get_all_study_summaries(storage)}
    assert names == {result.study.study_name for result in results}


def test_oof_predictions_are_the_best_trials_on_the_same_cv_test_rows_for_every_model() -> None:
    settings = _settings()
    X_train, y_train = _training_rows(settings)
    lightgbm = train("lightgbm", X_train, y_train, settings, threads=1)
    forest = train("random_forest", X_train, y_train, settings, threads=1)
    folds = _fold_parts(settings, len(X_train))
    expected_index = X_train.index[np.concatenate([f.test for f in folds])]
    for result in (lightgbm, forest):
        assert result.oof_index.equals(expected_index)
        assert result.oof_proba.shape == (len(expected_index), 3)
        np.testing.assert_allclose(result.oof_proba.sum(axis=1), 1.0)
        best = max(r.value for r in result.history if r.value is not None)
        assert result.cv_macro_f1 == pytest.approx(best)
        assert result.cv_macro_f1 == pytest.approx(np.mean(result.cv_fold_macro_f1))
    assert lightgbm.cv_macro_f1 > 0.5, "the first feature carries the class: tuning must find it"


def test_tuning_a_parameter_the_learner_fixes_is_a_config_error() -> None:
    spaces = {**SMALL_SPACES, "lightgbm": {"max_bin": {"type": "int", "low": 31, "high": 255}}}
    settings = _settings(spaces=spaces)
    with pytest.raises(ConfigError, match="max_bin"):
        train("lightgbm", *_training_rows(settings), settings, threads=1)


def test_labels_outside_the_class_codes_are_refused() -> None:
    settings = _settings()
    X_train, y_train = _training_rows(settings)
    with pytest.raises(TrainingError, match=r"found \[3\]"):
        train("random_forest", X_train, y_train.where(y_train != 2, 3), settings, threads=1)


def test_three_studies_on_two_cores_get_one_thread_each() -> None:
    assert threads_per_model(["lightgbm", "xgboost", "random_forest"], 2) == {
        "lightgbm": 1,
        "xgboost": 1,
        "random_forest": 1,
    }


def test_spare_cores_go_to_the_heaviest_models() -> None:
    assert threads_per_model(["lightgbm", "xgboost", "random_forest"], 8) == {
        "random_forest": 3,
        "xgboost": 3,
        "lightgbm": 2,
    }
    assert threads_per_model(["lightgbm"], 2) == {"lightgbm": 2}


def test_a_finished_study_hands_its_cores_to_the_studies_still_running() -> None:
    share = CoreShare(["lightgbm", "xgboost", "random_forest"], cores=2)
    assert share.threads("random_forest") == 1
    share.finish("lightgbm")
    assert share.threads("random_forest") == 1
    share.finish("xgboost")
    assert share.threads("random_forest") == 2


@pytest.mark.parametrize(("ratio", "expected_minority"), [(1.0, 800), (0.5, 400), (0.1, 100)])
def test_smote_raises_each_minority_class_to_its_configured_share_of_the_majority(
    ratio: float, expected_minority: int
) -> None:
    rng = np.random.default_rng(0)
    y = np.repeat(np.array([0, 1, 2], dtype=np.int8), [100, 800, 150])
    X = rng.normal(size=(len(y), 3))
    smote = load_settings(training={"smote": {"minority_ratio": ratio}}).training.smote
    _, y_res = oversample(X, y, smote, seed=1)
    counts = np.bincount(y_res, minlength=3)
    assert counts[1] == 800, "the majority is never resampled"
    assert counts[0] == max(100, expected_minority) and counts[2] == max(150, expected_minority)


def test_a_smote_ratio_outside_zero_to_one_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="minority_ratio"):
        load_settings(training={"smote": {"minority_ratio": 1.5}})


def test_progress_is_reported_after_every_trial_up_to_the_budget() -> None:
    settings = _settings(tuning={"n_trials": 4})
    heard = []

    train("random_forest", *_training_rows(settings), settings, threads=1, on_trial=heard.append)

    assert [p.done for p in heard] == [1, 2, 3, 4]
    assert {p.budget for p in heard} == {4} and {p.model for p in heard} == {"random_forest"}
    assert heard[-1].best_cv_macro_f1 is not None and 0 <= heard[-1].pruned <= 4
    assert "4 of 4 trials" in heard[-1].sentence()


def _fit_weights_of(model: str, data: Any) -> tuple[np.ndarray | None, np.ndarray | None]:
    """The row weights the library holds for a fold's fit rows and validation rows."""
    if model == "random_forest":
        return data.weight, None
    if model == "lightgbm":
        return data.fit.get_weight(), data.valid.get_weight()
    weight = data.fit.get_weight()
    valid = data.valid.get_weight()
    return weight, (valid if len(valid) else None)


@pytest.mark.parametrize("model", ["lightgbm", "xgboost", "random_forest"])
def test_class_weights_reach_each_learner_from_the_folds_fit_rows_only(model: str) -> None:
    settings = _settings(training={"imbalance": "class_weight"})
    X_train, y_train = _training_rows(settings)
    X, y = X_train.to_numpy(), y_train.to_numpy()
    learner = make_learner(model, settings.training)
    data = FoldData(
        learner, X, y, smote=settings.training.smote, seed=1, reuse=True, imbalance="class_weight"
    )

    for fold in _fold_parts(settings, len(X)):
        fit_weight, valid_weight = _fit_weights_of(model, data.get(fold, threads=1))
        expected = compute_sample_weight("balanced", y[fold.fit])
        assert fit_weight is not None and np.allclose(fit_weight, expected)
        assert valid_weight is None, "early-stopping rows are scored unweighted"
        seen_later = np.r_[fold.fit, fold.valid, fold.test]
        assert not np.allclose(expected, compute_sample_weight("balanced", y[seen_later])[: len(fold.fit)])


@pytest.mark.parametrize("imbalance", ["class_weight", "none"])
def test_without_smote_no_row_is_synthesised_and_class_weights_see_only_fit_rows(
    monkeypatch: pytest.MonkeyPatch, imbalance: str
) -> None:
    settings = _settings(tuning={"pruner": "none"}, training={"imbalance": imbalance})
    X_train, y_train = _training_rows(settings)
    weighted: list[np.ndarray] = []
    real = resampling.compute_sample_weight

    def spy(class_weight: str, y: np.ndarray) -> np.ndarray:
        weighted.append(np.array(y))
        return real(class_weight, y)

    monkeypatch.setattr(resampling, "compute_sample_weight", spy)
    monkeypatch.setattr(SMOTE, "fit_resample", lambda *args, **kwargs: pytest.fail("SMOTE ran"))
    train("random_forest", X_train, y_train, settings, threads=1)

    y = y_train.to_numpy()
    folds = _fold_parts(settings, len(y))
    if imbalance == "none":
        assert weighted == []
        return
    assert len(weighted) == len(folds) + 1, "once per fold (reused by every trial), once for the final fit"
    for received, fold in zip(weighted, folds, strict=False):
        assert np.array_equal(received, y[fold.fit])
    assert np.array_equal(weighted[-1], y), "the final fit weighs the training rows, never the holdout"


def test_smote_leaves_each_folds_validation_rows_as_they_are() -> None:
    settings = _settings()
    X_train, y_train = _training_rows(settings)
    X, y = X_train.to_numpy(), y_train.to_numpy()
    data = FoldData(
        make_learner("lightgbm", settings.training), X, y, smote=settings.training.smote, seed=1, reuse=True
    )
    for fold in _fold_parts(settings, len(X)):
        built = data.get(fold, threads=1)
        assert built.fit.num_data() > len(fold.fit), "the fit rows are oversampled"
        assert built.valid.num_data() == len(fold.valid)
        assert np.array_equal(built.valid.get_label(), y[fold.valid])


def test_each_imbalance_handling_has_its_own_study_name() -> None:
    settings = _settings()
    X_train, _ = _training_rows(settings)
    names = {
        imbalance: study_name(
            "lightgbm",
            X_train,
            settings.training.model_copy(update={"imbalance": imbalance}),
            settings.tuning,
            settings.split,
            settings.labels,
        )
        for imbalance in ("smote", "class_weight", "none")
    }
    assert len(set(names.values())) == 3, "a stored study resumes only for the same imbalance handling"
