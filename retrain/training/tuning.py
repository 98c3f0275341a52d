"""One Optuna study per model: seeded TPE over the configured space, pruned fold by fold.

The objective is the macro-F1 averaged over the CV folds. After each fold the running mean is
reported, so the pruner can stop a trial that trails the others on the same folds: by default the
median pruner from the second fold on; successive halving (`tuning.pruner`) saves more work but lost
CV on one of three windows (bench/pruner_windows.py). Pruned and failed trials count toward
`n_trials`. The out-of-fold probabilities of the best trial are kept for the ensemble weights.

A study in a shared storage (`tuning.storage`) takes trials from every process that opens it: the
flow's training task and any `retrain tune-worker`. Each samples with its own seed and a constant liar
(running trials count as bad, so workers spread out), and all stop once the study holds `n_trials`
trials (running and queued ones included). In an RDB storage a running trial records heartbeats; the
trial of a worker that died is failed once the grace period has passed and queued again in its place.
A journal file has no heartbeats in Optuna 5: a killed worker's trial stays RUNNING and counts.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import warnings
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import optuna
from lightgbm.basic import LightGBMError
from optuna.trial import FrozenTrial, TrialState
from xgboost.core import XGBoostError

from retrain.errors import ConfigError, TrainingError
from retrain.settings import SearchParam, TuningSettings
from retrain.training.cross_validation import CrossValidator, CVResult
from retrain.training.search_space import suggest_params, warm_start_values

logger = logging.getLogger(__name__)

TRIAL_ERRORS: tuple[type[Exception], ...] = (LightGBMError, XGBoostError)
"""Errors a single parameter set can cause: the trial is marked failed and the study goes on."""

_FINISHED = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL)
_BUDGETED = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.RUNNING, TrialState.WAITING)
"""What fills a shared study's budget: trials of every worker, running and queued ones included, so that
workers stop at `n_trials` together. A failed trial is left out because a dead worker's trial is failed
and queued again; each worker's own attempts stay capped at `n_trials`, so failing trials end too."""


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


_storages: dict[tuple[object, ...], optuna.storages.BaseStorage] = {}
_storages_lock = threading.Lock()


def shared_storage(tuning: TuningSettings) -> optuna.storages.BaseStorage:
    """The storage `tuning.storage` names, one per process: studies opened at once would otherwise race
    to create its tables. `journal:<path>` is a journal file; anything else an RDB URL with heartbeats."""
    url = tuning.storage
    if url is None:
        raise ValueError("shared_storage needs tuning.storage")
    key = (url, tuning.heartbeat_s, tuning.grace_s, tuning.stale_retries)
    with _storages_lock:
        if key not in _storages:
            _storages[key] = _open_storage(tuning, url)
        return _storages[key]


def _open_storage(tuning: TuningSettings, url: str) -> optuna.storages.BaseStorage:
    if url.startswith("journal:"):
        path = url.removeprefix("journal:")
        path = path.removeprefix("//") if path.startswith("///") else path
        backend = optuna.storages.journal.JournalFileBackend(path)
        return optuna.storages.JournalStorage(backend)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        return optuna.storages.RDBStorage(
            url,
            heartbeat_interval=tuning.heartbeat_s,
            grace_period=tuning.grace_s,
            heartbeat_stale_trial_callback=optuna.storages.RetryHeartbeatStaleTrialCallback(
                max_retry=tuning.stale_retries
            ),
        )


def worker_seed(seed: int, worker: str | None) -> int:
    """The sampler seed of one worker: the configured seed for the flow's own study (runs stay
    reproducible), a different one per extra worker so two workers do not propose the same trials."""
    if worker is None:
        return seed
    return int(np.random.SeedSequence([seed, zlib.crc32(worker.encode())]).generate_state(1)[0])


def default_worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def open_study(study_name: str, tuning: TuningSettings, seed: int, worker: str | None = None) -> optuna.Study:
    """A new study, or the stored one of that name (same model and data window) to resume or join."""
    stored = tuning.storage is not None
    return optuna.create_study(
        storage=shared_storage(tuning) if stored else None,
        study_name=study_name,
        load_if_exists=stored,
        direction="maximize",
        sampler=optuna.samplers.TPESampler(seed=worker_seed(seed, worker), constant_liar=True),
        pruner=make_pruner(tuning),
    )


def budget_left(study: optuna.Study, n_trials: int) -> int:
    """Trials still to start for the study to hold `n_trials` (after failing those whose worker died)."""
    _fail_stale_trials(study)
    return n_trials - len(study.get_trials(deepcopy=False, states=_BUDGETED))


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
    """The study's trials until it holds `n_trials` (with other workers, if its storage is shared), then
    its best trial, with the out-of-fold predictions the ensemble needs."""
    started = time.perf_counter()
    deadline = started + tuning.timeout_s
    study = open_study(study_name, tuning, seed)
    if warm_start_params and tuning.warm_start and budget_left(study, tuning.n_trials) > 0:
        study.enqueue_trial(warm_start_values(model, warm_start_params, space), skip_if_exists=True)
    best_so_far = _run_trials(model, study, cv, space, tuning, threads, None, on_trial, deadline)
    if tuning.storage is not None:
        _wait_for_other_workers(model, study, tuning, deadline)
        if study.get_trials(deepcopy=False, states=(TrialState.WAITING,)):
            best_so_far = _run_trials(model, study, cv, space, tuning, threads, None, on_trial, deadline)
    best = _best_trial(model, study)
    best_cv = best_so_far.result_of(best.number)
    if best_cv is None:
        logger.info(
            "%s: best trial #%d comes from another worker or an earlier run of the study; re-scoring it",
            model,
            best.number,
        )
        best_cv = cv.run(best.params, threads)
    return TuningOutcome(study=study, best_trial=best, best_cv=best_cv, seconds=time.perf_counter() - started)


def join_study(
    model: str,
    cv: CrossValidator,
    space: dict[str, SearchParam],
    tuning: TuningSettings,
    *,
    seed: int,
    threads: Callable[[], int],
    study_name: str,
    worker: str,
) -> int:
    """An extra worker's share of a shared study: trials until the study holds `n_trials`; how many it ran.
    It opens (or creates) the study by name and samples with its own seed (`worker_seed`)."""
    if tuning.storage is None:
        raise ConfigError(
            "an extra worker needs a shared study: set tuning.storage (RETRAIN_TUNING__STORAGE) to "
            "journal:<path> or a database URL that every worker reaches"
        )
    study = open_study(study_name, tuning, seed, worker)
    before = {t.number for t in study.get_trials(deepcopy=False)}
    _run_trials(
        model, study, cv, space, tuning, threads, worker, None, time.perf_counter() + tuning.timeout_s
    )
    mine = [
        t
        for t in study.get_trials(deepcopy=False)
        if t.number not in before and t.user_attrs.get("worker") == worker
    ]
    logger.info("%s: worker %s ran %d trials of study %s", model, worker, len(mine), study_name)
    return len(mine)


def _run_trials(
    model: str,
    study: optuna.Study,
    cv: CrossValidator,
    space: dict[str, SearchParam],
    tuning: TuningSettings,
    threads: Callable[[], int],
    worker: str | None,
    on_trial: ProgressCallback | None,
    deadline: float,
) -> _BestSoFar:
    """This process's trials of the study; each is tagged with its worker (user attribute `worker`)."""
    best_so_far = _BestSoFar()
    name = worker or default_worker_name()

    def objective(trial: optuna.Trial) -> float:
        trial.set_user_attr("worker", name)
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

    left = budget_left(study, tuning.n_trials)
    queued = len(study.get_trials(deepcopy=False, states=(TrialState.WAITING,)))
    seconds = deadline - time.perf_counter()
    if (left > 0 or queued) and seconds > 0:
        study.optimize(
            objective,
            # Each worker's own attempts are capped too, so trials that keep failing end the study.
            n_trials=left + queued if tuning.storage is None else tuning.n_trials,
            timeout=seconds,
            catch=TRIAL_ERRORS,
            callbacks=[optuna.study.MaxTrialsCallback(tuning.n_trials, states=_BUDGETED), report],
        )
    return best_so_far


def _wait_for_other_workers(model: str, study: optuna.Study, tuning: TuningSettings, deadline: float) -> None:
    """Let the trials other workers are running end before the best one is chosen. An RDB storage fails
    those whose worker died (no heartbeat for `grace_s`); a journal file cannot tell, so the wait there
    ends after `grace_s`."""
    heartbeats = not tuning.storage or not tuning.storage.startswith("journal:")
    until = deadline if heartbeats else min(deadline, time.perf_counter() + tuning.grace_s)
    while time.perf_counter() < until:
        _fail_stale_trials(study)
        running = study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
        if not running:
            return
        time.sleep(1.0)
    logger.warning(
        "%s: trials %s of study %s still running after the wait; the best trial is chosen without them",
        model,
        [t.number for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))],
        study.study_name,
    )


def _fail_stale_trials(study: optuna.Study) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        optuna.storages.fail_stale_trials(study)


def _best_trial(model: str, study: optuna.Study) -> FrozenTrial:
    if not study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
        states = [t.state.name for t in study.get_trials(deepcopy=False)]
        raise TrainingError(
            f"{model}: no trial of study {study.study_name!r} completed (trial states: {states}); "
            "see the logged trial errors, or raise tuning.n_trials / tuning.timeout_s"
        )
    return study.best_trial
