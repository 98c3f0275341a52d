"""Tune-and-train one model (submitted once per model, in parallel) and build the ensemble.

A study's time limit is its own `tuning.timeout_s`, checked between trials: a Prefect timeout cannot
interrupt native training code in a worker thread, so the training task sets none.
"""

from __future__ import annotations

from prefect import task
from prefect.artifacts import create_progress_artifact, update_progress_artifact
from prefect.cache_policies import NO_CACHE

from retrain import stages
from retrain.handoffs import TrainedModelRef
from retrain.run_dir import RunDir
from retrain.settings import Settings
from retrain.training.threads import CoreShare
from retrain.training.tuning import StudyProgress


@task(name="tune-and-train", task_run_name="tune-and-train-{model}", cache_policy=NO_CACHE)
def train_model(
    settings: Settings, run: RunDir, model: str, threads: int | CoreShare, reuse_fold_datasets: bool = True
) -> TrainedModelRef:
    """One model's study and final fit, with a progress artifact updated after every trial (trials done
    of the budget, pruned, best CV so far)."""
    budget = settings.tuning.n_trials
    progress = create_progress_artifact(
        progress=0.0, key=f"study-{model.replace('_', '-')}", description=f"{model}: 0 of {budget} trials"
    )

    def report(study: StudyProgress) -> None:
        update_progress_artifact(
            progress, progress=100.0 * study.done / study.budget, description=study.sentence()
        )

    return stages.train_stage(settings, run, model, threads, reuse_fold_datasets, on_trial=report)


build_ensemble = task(name="build-ensemble", timeout_seconds=600, cache_policy=NO_CACHE)(
    stages.ensemble_stage
)
