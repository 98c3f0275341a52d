"""Fetch-and-validate and dataset tasks. Fetching retries transient failures only; bad data and bugs fail
at once."""

from __future__ import annotations

from typing import Any

from prefect import Task, task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NO_CACHE
from prefect.client.schemas.objects import State, TaskRun
from prefect.tasks import exponential_backoff

from retrain import stages
from retrain.data.candles import CandleSource
from retrain.data.validation import DataQualityReport
from retrain.errors import CandleValidationError, TransientExchangeError
from retrain.handoffs import CandleWindow
from retrain.run_dir import RunDir
from retrain.settings import Settings

FETCH_RETRIES = 3
"""Retries of the whole fetch on top of the exchange source's own per-request retries."""

TRANSIENT_ERRORS: tuple[type[BaseException], ...] = (TransientExchangeError, TimeoutError, ConnectionError)
"""What another attempt may cure: timeouts, refused or reset connections, HTTP 5xx and 429 through
every request retry, a day the exchange has not published yet. Anything else (bad data, bad config, a
missing file, a bug) fails at once."""


def is_transient(task: Task[..., Any], task_run: TaskRun, state: State[Any]) -> bool:
    return isinstance(state.result(raise_on_failure=False), TRANSIENT_ERRORS)


@task(
    name="fetch-and-validate-candles",
    retries=FETCH_RETRIES,
    retry_delay_seconds=exponential_backoff(backoff_factor=10),
    retry_jitter_factor=0.5,
    retry_condition_fn=is_transient,
    timeout_seconds=1800,
    cache_policy=NO_CACHE,
)
def fetch_candles(settings: Settings, run: RunDir, source: CandleSource | None = None) -> CandleWindow:
    """Candles of the configured window, validated; on bad data the report becomes a UI artifact."""
    try:
        return stages.fetch_stage(settings, run, source)
    except CandleValidationError as exc:
        if isinstance(exc.report, DataQualityReport):
            create_markdown_artifact(
                markdown="# Candle validation failed\n\n" + exc.report.to_markdown(),
                key="data-quality",
                description="Why the candles were refused",
            )
        raise


build_dataset = task(name="build-dataset", timeout_seconds=600, cache_policy=NO_CACHE)(stages.dataset_stage)
