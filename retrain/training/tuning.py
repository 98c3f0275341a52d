"""One Optuna study per model: seeded TPE over the configured space, pruned fold by fold.

The objective is the macro-F1 averaged over the CV folds. After each fold the running mean is
reported, so the pruner can stop a trial that trails the others on the same folds: by default the
median pruner from the second fold on; successive halving (`tuning.pruner`) saves more work but lost
CV on one of three windows (bench/pruner_windows.py). Pruned and failed trials count toward
`n_trials`. The out-of-fold probabilities of the best trial are kept for the ensemble weights.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import optuna
from lightgbm.basic import LightGBMError
from optuna.trial import FrozenTrial, TrialState
from xgboost.core import XGBoostError

from retrain.errors import TrainingError
from retrain.settings import SearchParam, TuningSettings
from retrain.training.cross_validation import CrossValidator, CVResult
from retrain.training.search_space import suggest_params, warm_start_values

logger = logging.getLogger(__name__)

TRIAL_ERRORS: tuple[type[Exception], ...] = (LightGBMError, XGBoostError)
"""Errors a single parameter set can cause: the trial is marked failed and the study goes on."""

_FINISHED = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL)


@dataclass(frozen=True)
class StudyProgress:
    """Where a study stands after a trial: for progress bars (the Prefect task shows one per study)."""

    model: str
    done: int
    budget: int
    pruned: int
    best_cv_macro_f1: float | None

    def sentence(self) -> str:
        best = "none yet" if self.best_cv_macro_f1 is None else f"{self.best_cv_macro_f1:.4f}"
        return f"{self.model}: {self.done} of {self.budget} trials, {self.pruned} pruned, best CV macro-F1 {best}"


ProgressCallback = Callable[[StudyProgress], None]


@dataclass(frozen=True)
class TuningOutcome:
    study: optuna.Study
    best_trial: FrozenTrial
    best_cv: CVResult
    seconds: float


class _BestSoFar:
    """The CV result of the best trial seen in this process (trials may end on any thread)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._number: int | None = None
        self._cv: CVResult | None = None

    def offer(self, number: int, cv: CVResult) -> None:
        with self._lock:
            if self._cv is None or cv.macro_f1 > self._cv.macro_f1:
                self._number, self._cv = number, cv

    def result_of(self, number: int) -> CVResult | None:
        with self._lock:
            return self._cv if self._number == number else None


def make_pruner(tuning: TuningSettings) -> optuna.pruners.BasePruner:
    """The configured pruner; steps are 0-based folds, so fold k is step k - 1."""
    if tuning.pruner == "none":
        return optuna.pruners.NopPruner()
    if tuning.pruner == "successive_halving":
        return optuna.pruners.SuccessiveHalvingPruner(
            min_resource=tuning.pruner_min_folds - 1, reduction_factor=tuning.pruner_reduction_factor
        )
    return optuna.pruners.PercentilePruner(
        tuning.pruner_keep_percentile,
        n_startup_trials=tuning.pruner_startup_trials,
        n_warmup_steps=tuning.pruner_min_folds - 1,
    )


_storages: dict[str, optuna.storages.RDBStorage] = {}
_storages_lock = threading.Lock()


def shared_storage(url: str) -> optuna.storages.RDBStorage:
    """One storage per URL in the process: studies opened at once would otherwise race to create its tables."""
    with _storages_lock:
        if url not in _storages:
            _storages[url] = optuna.storages.RDBStorage(url)
        return _storages[url]


def open_study(study_name: str, tuning: TuningSettings, seed: int) -> optuna.Study:
    """A new study, or the stored one of that name (same model and data window) to resume."""
    url = tuning.storage
    return optuna.create_study(
        storage=shared_storage(url) if url is not None else None,
        study_name=study_name,
        load_if_exists=url is not None,
        direction="maximize",
        sampler=optuna.samplers.TPESampler(seed=seed),
        pruner=make_pruner(tuning),
    )


def tune(
    model: str,
    cv: CrossValidator,
    space: dict[str, SearchParam],
    tuning: TuningSettings,
    *,
    seed: int,
    threads: Callable[[], int],
    study_name: str,
    warm_start_params: dict[str, Any] | None,
    on_trial: ProgressCallback | None = None,
) -> TuningOutcome:
    started = time.perf_counter()
    study = open_study(study_name, tuning, seed)
    finished = len(study.get_trials(deepcopy=False, states=_FINISHED))
    remaining = tuning.n_trials - finished
    if remaining > 0 and warm_start_params and tuning.warm_start:
        study.enqueue_trial(warm_start_values(model, warm_start_params, space), skip_if_exists=True)
    best_so_far = _BestSoFar()

    def objective(trial: optuna.Trial) -> float:
        params = suggest_params(trial, space)

        def after_fold(step: int, scores: list[float], rounds: list[int]) -> None:
            trial.set_user_attr("fold_macro_f1", list(scores))
            if rounds:
                trial.set_user_attr("fold_best_rounds", list(rounds))
            trial.report(float(np.mean(scores)), step)
            # After the last fold the work is done: a complete score is worth more than a prune.
            if step < cv.n_folds - 1 and trial.should_prune():
                raise optuna.TrialPruned(f"mean macro-F1 {np.mean(scores):.4f} after {step + 1} folds")

        result = cv.run(params, threads, after_fold)
        best_so_far.offer(trial.number, result)
        return result.macro_f1

    def report(study: optuna.Study, trial: FrozenTrial) -> None:
        if on_trial is None:
            return
        trials = study.get_trials(deepcopy=False, states=_FINISHED)
        complete = [t.value for t in trials if t.state == TrialState.COMPLETE and t.value is not None]
        on_trial(
            StudyProgress(
                model=model,
                done=len(trials),
                budget=tuning.n_trials,
                pruned=sum(t.state == TrialState.PRUNED for t in trials),
                best_cv_macro_f1=max(complete) if complete else None,
            )
        )

    if remaining > 0:
        study.optimize(
            objective, n_trials=remaining, timeout=tuning.timeout_s, catch=TRIAL_ERRORS, callbacks=[report]
        )
    best = _best_trial(model, study)
    best_cv = best_so_far.result_of(best.number)
    if best_cv is None:
        logger.info(
            "%s: best trial #%d comes from an earlier run of the study; re-scoring it", model, best.number
        )
        best_cv = cv.run(best.params, threads)
    return TuningOutcome(study=study, best_trial=best, best_cv=best_cv, seconds=time.perf_counter() - started)


def _best_trial(model: str, study: optuna.Study) -> FrozenTrial:
    if not study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
        states = [t.state.name for t in study.get_trials(deepcopy=False)]
        raise TrainingError(
            f"{model}: no trial of study {study.study_name!r} completed (trial states: {states}); "
            "see the logged trial errors, or raise tuning.n_trials / tuning.timeout_s"
        )
    return study.best_trial
