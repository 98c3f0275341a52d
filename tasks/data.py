"""Fetch-and-validate and dataset tasks. Fetching retries transient failures; bad data fails at once."""

from __future__ import annotations

from typing import Any

from prefect import Task, task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NO_CACHE
from prefect.client.schemas.objects import State, TaskRun
from prefect.logging import get_run_logger
from prefect.tasks import exponential_backoff

from retrain import stages
from retrain.data.validation import DataQualityReport
from retrain.errors import CandleValidationError, ExchangeError, RetrainError
from retrain.run_dir import RunDir
from retrain.settings import Settings

FETCH_RETRIES = 3
"""Retries of the whole fetch on top of the exchange source's own per-request retries."""


def _is_transient(task: Task[..., Any], task_run: TaskRun, state: State[Any]) -> bool:
    """Retry exchange and network failures; never bad data, bad configuration or a missing file."""
    error = state.result(raise_on_failure=False)
    return isinstance(error, ExchangeError | OSError) or not isinstance(error, RetrainError)


@task(
    name="fetch-and-validate-candles",
    retries=FETCH_RETRIES,
    retry_delay_seconds=exponential_backoff(backoff_factor=10),
    retry_jitter_factor=0.5,
    retry_condition_fn=_is_transient,
    timeout_seconds=1800,
    cache_policy=NO_CACHE,
)
def fetch_candles(settings: Settings, run: RunDir) -> dict[str, Any]:
    """Candles of the configured window, validated; on bad data the report becomes a UI artifact."""
    logger = get_run_logger()
    try:
        window = stages.fetch_stage(settings, run)
    except CandleValidationError as exc:
        if isinstance(exc.report, DataQualityReport):
            create_markdown_artifact(
                markdown="# Candle validation failed\n\n" + exc.report.to_markdown(),
                key="data-quality",
                description="Why the candles were refused",
            )
        raise
    logger.info("candles %s .. %s (%d rows)", window["start"], window["end"], window["rows"])
    return window


@task(name="build-dataset", timeout_seconds=600, cache_policy=NO_CACHE)
def build_dataset(settings: Settings, run: RunDir) -> dict[str, Any]:
    described = stages.dataset_stage(settings, run)
    get_run_logger().info("dataset: %s", described)
    return described
