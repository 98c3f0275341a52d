"""The retrain sequence, defined once: fetch -> dataset -> each model's study -> ensemble -> evaluate ->
gate -> publish -> report -> alerts.

Runners only say *how* a stage runs: `DirectRunner` calls it (studies on a thread pool), the Prefect
flow's runner calls the stage's task (studies submitted to the task runner), the backtest's runner
replaces the data stages with slices of a span it prepared once. Each stage is named by its function
in `retrain.stages`; a runner maps that function to whatever it runs instead.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, ParamSpec, Protocol, TypeVar

from retrain import stages
from retrain.alerts import Alert, alerts_for_run
from retrain.champion import warm_start_params
from retrain.data.candles import CandleSource
from retrain.handoffs import CandleWindow, RetrainOutcome
from retrain.run_dir import RunDir
from retrain.settings import Settings
from retrain.training.threads import training_threads

logger = logging.getLogger(__name__)

P = ParamSpec("P")
R = TypeVar("R")


class StageRunner(Protocol):
    """How the stages of one retrain run."""

    parallel_studies: bool
    """Whether the models' studies run at the same time (they then share the cores)."""

    studies_on_workers: bool
    """Whether the studies run in other processes (a Dask cluster): each sizes its threads there."""

    def call(self, stage: Callable[P, R], *args: P.args, **kwargs: P.kwargs) -> R:
        """Run one stage and return its hand-off."""
        ...

    def call_each(self, stage: Callable[..., R], calls: Sequence[tuple[Any, ...]]) -> list[R]:
        """Run one stage once per argument tuple (at the same time where the runner can)."""
        ...

    def name_run(self, window: CandleWindow) -> str:
        """A title for the run once its data window is known (the flow renames its run after it)."""
        ...

    def deliver(self, alerts: list[Alert]) -> None:
        """Send the run's alerts (never raises)."""
        ...


@dataclass(frozen=True)
class RetrainRequest:
    """One retrain: the configuration, where its files go, and how it publishes."""

    settings: Settings
    run: RunDir
    source: CandleSource | None = None
    dry_run: bool = False
    flow_run_id: str | None = None
    trigger: str | None = None
    """What started the run when not the schedule or an operator (a degradation event)."""
    reuse_fold_datasets: bool = True


def run_retrain(runner: StageRunner, request: RetrainRequest) -> RetrainOutcome:
    """Fetch, train, evaluate, gate, publish, report and alert once, each stage run by `runner`."""
    settings, run = request.settings, request.run
    models = list(settings.training.models)
    if request.trigger:
        logger.info("retrain triggered by %s", request.trigger)
    window = runner.call(stages.fetch_stage, settings, run, request.source)
    title = runner.name_run(window)
    runner.call(stages.dataset_stage, settings.labels, run, settings.features)
    _train_all(runner, request, models)
    runner.call(stages.ensemble_stage, settings.ensemble, settings.signals, run, models)
    evaluation = runner.call(stages.evaluate_stage, settings, run)
    decision = runner.call(stages.gate_stage, settings.gate, run)
    publication = runner.call(
        stages.publish_stage,
        settings,
        run,
        models,
        decision,
        evaluation,
        request.flow_run_id,
        request.dry_run,
        request.trigger,
    )
    runner.call(stages.report_stage, settings, run, models, title, publication)
    runner.deliver(
        alerts_for_run(
            evaluation,
            decision,
            publication,
            degradation_tolerance=settings.alerts.champion_degradation_tolerance,
            run_label=run.root.name,
        )
    )
    outcome = RetrainOutcome(
        status=publication.status,
        outcome=decision.outcome,
        version=publication.version,
        previous_version=publication.previous_version,
        macro_f1=evaluation.ensemble_macro_f1,
        reasons=decision.reasons,
        run_dir=str(run.root),
        models_dir=str(settings.paths.models_dir),
        trigger=request.trigger,
    )
    logger.info("%s: %s", title, outcome.sentence())
    return outcome


def _train_all(runner: StageRunner, request: RetrainRequest, models: list[str]) -> None:
    """Every model's study, at once on shared cores or one after another with all cores each."""
    started = time.perf_counter()
    settings = request.settings
    threads = training_threads(
        models, settings.training.cores, runner.parallel_studies, runner.studies_on_workers
    )
    calls = [
        (settings, request.run, model, threads, request.reuse_fold_datasets, _warm_start(settings, model))
        for model in models
    ]
    for trained in runner.call_each(stages.train_stage, calls):
        logger.info("trained %s", trained.sentence())
    request.run.record_duration("training", time.perf_counter() - started)


def _warm_start(settings: Settings, model: str) -> dict[str, Any] | None:
    """The production model's parameters for `model`, read here, beside the store: a study on a cluster
    worker never needs the models directory."""
    return warm_start_params(settings.paths.models_dir, model) if settings.tuning.warm_start else None


class DirectRunner:
    """Plain calls in this process, without Prefect: for benchmarks, the backtest and debugging."""

    studies_on_workers = False

    def __init__(self, *, parallel_studies: bool = True) -> None:
        self.parallel_studies = parallel_studies

    def call(self, stage: Callable[P, R], *args: P.args, **kwargs: P.kwargs) -> R:
        return stage(*args, **kwargs)

    def call_each(self, stage: Callable[..., R], calls: Sequence[tuple[Any, ...]]) -> list[R]:
        if not self.parallel_studies:
            return [stage(*args) for args in calls]
        with ThreadPoolExecutor(max_workers=max(1, len(calls))) as pool:
            futures = [pool.submit(stage, *args) for args in calls]
            return [future.result() for future in futures]

    def name_run(self, window: CandleWindow) -> str:
        return f"Retrain {window.market} {window.start:%Y-%m-%d}..{window.end:%Y-%m-%d}"

    def deliver(self, alerts: list[Alert]) -> None:
        for alert in alerts:
            logger.info("alert %s (not delivered outside Prefect): %s", alert.kind, alert.title)
