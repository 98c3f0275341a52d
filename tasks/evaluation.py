"""Evaluate the challenger and the champion on the fresh holdout, then apply the promotion gate."""

from __future__ import annotations

from prefect import task
from prefect.cache_policies import NO_CACHE

from retrain import stages

evaluate = task(name="evaluate-challenger-and-champion", timeout_seconds=900, cache_policy=NO_CACHE)(
    stages.evaluate_stage
)
gate = task(name="promotion-gate", timeout_seconds=120, cache_policy=NO_CACHE)(stages.gate_stage)
