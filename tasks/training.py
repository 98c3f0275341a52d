"""Tune-and-train one model (submitted once per model, in parallel) and build the ensemble.

A study's time limit is its own `tuning.timeout_s`, checked between trials: a Prefect timeout cannot
interrupt native training code in a worker thread, so the training task sets none.
"""

from __future__ import annotations

from prefect import task
from prefect.cache_policies import NO_CACHE

from retrain import stages

train_model = task(name="tune-and-train", task_run_name="tune-and-train-{model}", cache_policy=NO_CACHE)(
    stages.train_stage
)
build_ensemble = task(name="build-ensemble", timeout_seconds=600, cache_policy=NO_CACHE)(
    stages.ensemble_stage
)
