"""Tune-and-train one model (submitted once per model, in parallel) and build the ensemble."""

from __future__ import annotations

from pathlib import Path

from prefect import task
from prefect.cache_policies import NO_CACHE

from retrain import stages
from retrain.run_dir import RunDir
from retrain.settings import Settings
from retrain.training.threads import CoreShare


@task(name="tune-and-train", task_run_name="tune-and-train-{model}", cache_policy=NO_CACHE)
def train_model(settings: Settings, run: RunDir, model: str, threads: int | CoreShare) -> Path:
    """Tune and fit one model. Its time limit is the study's own `tuning.timeout_s`, checked between
    trials: a Prefect timeout cannot interrupt native training code in a worker thread."""
    return stages.train_stage(settings, run, model, threads=threads)


@task(name="build-ensemble", timeout_seconds=600, cache_policy=NO_CACHE)
def build_ensemble(settings: Settings, run: RunDir, models: list[str]) -> Path:
    return stages.ensemble_stage(settings, run, models)
