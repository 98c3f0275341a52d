"""Evaluate the challenger and the champion on the fresh holdout, then apply the promotion gate."""

from __future__ import annotations

from pathlib import Path

from prefect import task
from prefect.cache_policies import NO_CACHE
from prefect.logging import get_run_logger

from retrain import stages
from retrain.gate import GateDecision
from retrain.run_dir import RunDir
from retrain.settings import Settings


@task(name="evaluate-challenger-and-champion", timeout_seconds=900, cache_policy=NO_CACHE)
def evaluate(settings: Settings, run: RunDir) -> Path:
    return stages.evaluate_stage(settings, run)


@task(name="promotion-gate", timeout_seconds=120, cache_policy=NO_CACHE)
def gate(settings: Settings, run: RunDir) -> GateDecision:
    decision = stages.gate_stage(settings, run)
    get_run_logger().info(
        "gate: %s (%s)", "promote" if decision.promote else "reject", "; ".join(decision.reasons)
    )
    return decision
