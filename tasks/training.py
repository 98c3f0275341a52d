"""Tune-and-train one model (submitted once per model, in parallel) and build the ensemble.

A study's time limit is its own `tuning.timeout_s`, checked between trials: a Prefect timeout cannot
interrupt native training code in a worker thread, so the training task sets none.
"""

from __future__ import annotations

from typing import Any

from prefect import task
from prefect.artifacts import create_progress_artifact, update_progress_artifact
from prefect.cache_policies import NO_CACHE
from prefect.logging import get_run_logger

from retrain import stages
from retrain.handoffs import TrainedModelRef
from retrain.run_dir import RunDir
from retrain.settings import Settings
from retrain.training.threads import CoreShare, WorkerCores
from retrain.training.tuning import StudyProgress
from tasks.cluster import host_training_threads, worker_name, worker_slots


@task(name="tune-and-train", task_run_name="tune-and-train-{model}", cache_policy=NO_CACHE)
def train_model(
    settings: Settings,
    run: RunDir,
    model: str,
    threads: int | CoreShare | WorkerCores,
    reuse_fold_datasets: bool = True,
    warm_start: dict[str, Any] | None = None,
) -> TrainedModelRef:
    """One model's study and final fit, with a progress artifact updated after every trial (trials done
    of the budget, pruned, best CV so far). On a Dask worker (`WorkerCores`) the study sizes its threads
    there and holds them in the host's `training-threads-<host>` concurrency limit."""
    budget = settings.tuning.n_trials
    progress = create_progress_artifact(
        progress=0.0, key=f"study-{model.replace('_', '-')}", description=f"{model}: 0 of {budget} trials"
    )

    def report(study: StudyProgress) -> None:
        update_progress_artifact(
            progress, progress=100.0 * study.done / study.budget, description=study.sentence()
        )

    if not isinstance(threads, WorkerCores):
        return stages.train_stage(
            settings, run, model, threads, reuse_fold_datasets, warm_start, on_trial=report
        )
    with host_training_threads(threads.on_worker(worker_slots())) as held:
        get_run_logger().info("%s: study on %s with %d thread(s)", model, worker_name(), held)
        return stages.train_stage(
            settings, run, model, held, reuse_fold_datasets, warm_start, on_trial=report
        )


build_ensemble = task(name="build-ensemble", timeout_seconds=600, cache_policy=NO_CACHE)(
    stages.ensemble_stage
)
