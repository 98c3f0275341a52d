"""The Prefect runner of the retrain sequence: each stage runs as its task, the studies are submitted
to the flow's task runner at once, the run is renamed after its data, and alerts go to the channels."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any, ParamSpec, TypeVar

from prefect import Task, get_client
from prefect.context import get_run_context
from prefect.task_runners import TaskRunner
from prefect.utilities.callables import get_call_parameters

from retrain import stages
from retrain.alerts import Alert
from retrain.handoffs import CandleWindow
from retrain.training.threads import CoreShare
from tasks import data, evaluation, publish, training
from tasks.alerts import deliver_alert
from tasks.cluster import host_training_threads

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
    """Runs the sequence inside a flow run; `channels` are the alert channels of the configuration.

    Every stage but the studies runs in the flow's process (`call`): fetch, evaluation against the
    champion, promotion and the report stay on the host holding the models directory. The studies
    (`call_each`) go to `cluster` when given (a started Dask task runner: each study sizes its threads on
    its worker), else to the flow's thread pool, sharing this host's cores and holding them in the
    host's training-threads limit so that retrains of several markets take turns on the cores.
    """

    parallel_studies = True

    def __init__(self, channels: Sequence[str], cluster: TaskRunner[Any] | None = None) -> None:
        self.channels = list(channels)
        self.cluster = cluster
        self.studies_on_workers = cluster is not None

    def call(self, stage: Callable[P, R], *args: P.args, **kwargs: P.kwargs) -> R:
        return STAGE_TASKS[stage](*args, **kwargs)

    def call_each(self, stage: Callable[..., R], calls: Sequence[tuple[Any, ...]]) -> list[R]:
        task = STAGE_TASKS[stage]
        if self.cluster is not None:
            cluster = self.cluster
            futures = [cluster.submit(task, get_call_parameters(task.fn, args, {})) for args in calls]
            return [future.result() for future in futures]
        with _host_threads(stage, calls):
            futures = [task.submit(*args) for args in calls]
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


@contextmanager
def _host_threads(stage: Callable[..., Any], calls: Sequence[tuple[Any, ...]]) -> Iterator[None]:
    """The studies of one retrain on this host hold its cores (their `CoreShare`) in the host's limit."""
    cores = next((arg.cores for args in calls for arg in args if isinstance(arg, CoreShare)), None)
    if stage is not stages.train_stage or cores is None:
        yield
        return
    with host_training_threads(cores):
        yield
