"""Train one model: tune it on purged time-series CV, then fit it on every training row."""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd

from retrain.errors import TrainingError
from retrain.labels import CODES
from retrain.settings import (
    LabelSettings,
    SearchParam,
    SplitSettings,
    TrainingSettings,
    TuningSettings,
    purge_gap,
)
from retrain.training.cross_validation import CrossValidator
from retrain.training.final_fit import final_rounds, fit_final
from retrain.training.fold_data import FoldData
from retrain.training.learners import Learner, make_learner
from retrain.training.result import StudySummary, TrainedModel, summarise_study, trial_history
from retrain.training.search_space import check_space
from retrain.training.split import make_folds
from retrain.training.threads import CoreShare
from retrain.training.tuning import ProgressCallback, join_study, tune

logger = logging.getLogger(__name__)


def train_model(
    name: str,
    X_train: pd.DataFrame,
    y_train: pd.Series,
    *,
    training: TrainingSettings,
    tuning: TuningSettings,
    split: SplitSettings,
    labels: LabelSettings,
    threads: int | CoreShare,
    warm_start_params: dict[str, Any] | None = None,
    reuse_fold_datasets: bool = True,
    on_trial: ProgressCallback | None = None,
) -> TrainedModel:
    """Tune `name` on the CV folds of `X_train`/`y_train` (holdout already removed), then fit it on all rows.

    `threads` is a fixed thread count (one model at a time), or the `CoreShare` of the models tuned
    together: this study then takes the cores of those that finish first. The result does not depend
    on it. `warm_start_params` (the production model's) become the first trial. `reuse_fold_datasets`
    off rebuilds each fold's datasets in every trial (the benchmarks' sequential reference).
    """
    learner, space, X, y, cv = _cross_validator(
        name, X_train, y_train, training, tuning, split, labels, reuse_fold_datasets
    )
    smote, seed = training.smote, training.seed
    thread_count: Callable[[], int] = (
        (lambda: threads.threads(name)) if isinstance(threads, CoreShare) else (lambda: threads)
    )
    try:
        outcome = tune(
            name,
            cv,
            space,
            tuning,
            seed=seed,
            threads=thread_count,
            study_name=study_name(name, X_train, training, tuning, split, labels),
            warm_start_params=warm_start_params,
            on_trial=on_trial,
        )
        started = time.perf_counter()
        rounds = final_rounds(outcome.best_cv.fold_best_rounds)
        params = outcome.best_trial.params
        member = fit_final(
            learner, X, y, params, rounds=rounds, smote=smote, seed=seed, threads=thread_count()
        )
        final_fit_s = time.perf_counter() - started
    finally:
        if isinstance(threads, CoreShare):
            threads.finish(name)
    summary = summarise_study(outcome.study, outcome.best_trial.number, outcome.seconds, final_fit_s)
    _log_summary(name, summary, outcome.best_cv.fold_macro_f1, rounds)
    return TrainedModel(
        name=name,
        member=member,
        feature_names=[str(c) for c in X_train.columns],
        best_params=dict(params),
        best_iteration=rounds,
        cv_macro_f1=outcome.best_cv.macro_f1,
        cv_fold_macro_f1=outcome.best_cv.fold_macro_f1,
        oof_proba=outcome.best_cv.oof_proba,
        oof_index=pd.DatetimeIndex(X_train.index[cv.oof_positions]),
        study=summary,
        history=trial_history(outcome.study),
    )


def tune_worker(
    name: str,
    X_train: pd.DataFrame,
    y_train: pd.Series,
    *,
    training: TrainingSettings,
    tuning: TuningSettings,
    split: SplitSettings,
    labels: LabelSettings,
    threads: int,
    worker: str,
) -> int:
    """Add this process's trials to the shared study of `name` on these rows, the one the training task
    of the same run opens (same name), until it holds `tuning.n_trials`; how many trials this worker ran."""
    *_, cv = _cross_validator(name, X_train, y_train, training, tuning, split, labels, True)
    return join_study(
        name,
        cv,
        tuning.search_spaces.get(name, {}),
        tuning,
        seed=training.seed,
        threads=lambda: threads,
        study_name=study_name(name, X_train, training, tuning, split, labels),
        worker=worker,
    )


def _cross_validator(
    name: str,
    X_train: pd.DataFrame,
    y_train: pd.Series,
    training: TrainingSettings,
    tuning: TuningSettings,
    split: SplitSettings,
    labels: LabelSettings,
    reuse_fold_datasets: bool,
) -> tuple[Learner[Any], dict[str, SearchParam], np.ndarray, np.ndarray, CrossValidator]:
    learner = make_learner(name, training)
    space = tuning.search_spaces.get(name, {})
    check_space(name, space)
    learner.check_search_space(set(space))
    X, y = _training_arrays(X_train, y_train)
    folds = make_folds(len(X), split.n_splits, purge_gap(split, labels), split.validation_fraction)
    data = FoldData(learner, X, y, smote=training.smote, seed=training.seed, reuse=reuse_fold_datasets)
    return learner, space, X, y, CrossValidator(learner, X, y, folds, data)


def _log_summary(name: str, summary: StudySummary, fold_macro_f1: list[float], rounds: int | None) -> None:
    logger.info(
        "%s: %d trials (%d complete, %d pruned, %d failed) in %.1f s; best #%d CV macro-F1 %.4f "
        "(folds %s); final fit %.1f s%s",
        name,
        summary.n_trials,
        summary.n_complete,
        summary.n_pruned,
        summary.n_failed,
        summary.tuning_s,
        summary.best_trial_number,
        float(np.mean(fold_macro_f1)),
        " ".join(f"{score:.3f}" for score in fold_macro_f1),
        summary.final_fit_s,
        f", {rounds} rounds" if rounds is not None else "",
    )


def study_name(
    model: str,
    X_train: pd.DataFrame,
    training: TrainingSettings,
    tuning: TuningSettings,
    split: SplitSettings,
    labels: LabelSettings,
) -> str:
    """Model + data window + a digest of what shapes the trials, the rows included (two markets with the
    same window get two studies): a stored study resumes, or takes workers, only like for like."""
    shaping = {
        "rows": hashlib.sha256(pd.util.hash_pandas_object(X_train).to_numpy().tobytes()).hexdigest(),
        "features": [str(c) for c in X_train.columns],
        "space": {k: v.model_dump(mode="json") for k, v in tuning.search_spaces.get(model, {}).items()},
        "labels": labels.definition(),
        "split": split.model_dump(mode="json"),
        "training": training.model_dump(mode="json", include={"seed", "smote", "early_stopping_rounds"}),
    }
    digest = hashlib.sha256(json.dumps(shaping, sort_keys=True).encode()).hexdigest()[:10]
    start, end = X_train.index[0], X_train.index[-1]
    prefix = f"{tuning.study_prefix}-" if tuning.study_prefix else ""
    return f"{prefix}{model}-{start:%Y%m%dT%H%M}-{end:%Y%m%dT%H%M}-{digest}"


def _training_arrays(X_train: pd.DataFrame, y_train: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    if not X_train.index.equals(y_train.index):
        raise TrainingError("features and labels must share the same index (same timestamps, same order)")
    X = X_train.to_numpy(dtype=np.float64)
    bad = [str(c) for c, ok in zip(X_train.columns, np.isfinite(X).all(axis=0), strict=True) if not ok]
    if bad:
        raise TrainingError(
            f"features contain NaN or inf in columns {bad}; drop or fill those rows before training"
        )
    y = y_train.to_numpy()
    unknown = sorted(set(np.unique(y).tolist()) - set(CODES))
    if unknown:
        raise TrainingError(f"labels must be class codes {list(CODES)} (SELL, HOLD, BUY); found {unknown}")
    return X, y.astype(np.int8)
