"""The Prefect runner of the retrain sequence: each stage runs as its task, the studies are submitted
to the flow's task runner at once, the run is renamed after its data, and alerts go to the channels."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, ParamSpec, TypeVar

from prefect import Task, get_client
from prefect.context import get_run_context

from retrain import stages
from retrain.alerts import Alert
from retrain.handoffs import CandleWindow
from tasks import data, evaluation, publish, training
from tasks.alerts import deliver_alert

P = ParamSpec("P")
R = TypeVar("R")

STAGE_TASKS: dict[Callable[..., Any], Task[..., Any]] = {
    stages.fetch_stage: data.fetch_candles,
    stages.dataset_stage: data.build_dataset,
    stages.train_stage: training.train_model,
    stages.ensemble_stage: training.build_ensemble,
    stages.evaluate_stage: evaluation.evaluate,
    stages.gate_stage: evaluation.gate,
    stages.publish_stage: publish.publish,
    stages.report_stage: publish.report,
}
"""Each stage of `retrain.sequence` and the Prefect task that runs it (same parameters)."""


class PrefectRunner:
    """Runs the sequence inside a flow run; `channels` are the alert channels of the configuration."""

    parallel_studies = True

    def __init__(self, channels: Sequence[str]) -> None:
        self.channels = list(channels)

    def call(self, stage: Callable[P, R], *args: P.args, **kwargs: P.kwargs) -> R:
        return STAGE_TASKS[stage](*args, **kwargs)

    def call_each(self, stage: Callable[..., R], calls: Sequence[tuple[Any, ...]]) -> list[R]:
        futures = [STAGE_TASKS[stage].submit(*args) for args in calls]
        return [future.result() for future in futures]

    def name_run(self, window: CandleWindow) -> str:
        """Rename the flow run after its data window, so the UI's run list reads like a history of data."""
        name = f"{window.market} {window.start:%Y-%m-%d}..{window.end:%Y-%m-%d}"
        context = get_run_context()
        with get_client(sync_client=True) as client:
            client.update_flow_run(context.flow_run.id, name=name)
        return f"Retrain {name}"

    def deliver(self, alerts: list[Alert]) -> None:
        for alert in alerts:
            deliver_alert(alert, self.channels)
