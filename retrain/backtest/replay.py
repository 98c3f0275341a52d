"""Replay the weekly policy over history: at each weekly cutoff the full retrain (the one sequence, the
configured gate, a scratch store so champion, warm start and compare-and-swap are live), then the week
after it scored for what was in production, next to the challenger ungated and the first model kept.

Each finished week is one JSON record and one Parquet file of per-row signals under `<out>/weeks/`,
written atomically after the week: an interrupted backtest resumes at its first unfinished week.

Weeks chain: a week's studies warm-start from the model last week's gate left in production, and its
gate compares with that model. With `WeekParallelism` the studies (nearly all of a week's time) of
every remaining week are trained ahead at once on an executor (processes here, a Dask cluster from
the flow), cold, without the warm start; then the weeks are replayed in order as before, each reusing
its trained members: ensemble, evaluation against the champion of the time, gate and promotion stay
sequential and exact. The cost is the warm-start trial (docs/scaling.md, "Backtest on a cluster").
"""

from __future__ import annotations

import io
import logging
import multiprocessing
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Executor, ProcessPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import pandas as pd
from pydantic import BaseModel, ConfigDict

from retrain import stages
from retrain.alerts import Alert
from retrain.backtest.live import LiveScores, baseline_signals, score_live, signals
from retrain.backtest.span import LIVE_WEEK, CandleSpan, SpanSource
from retrain.dataset import DatasetSummary
from retrain.ensemble import ProductionEnsemble
from retrain.errors import BacktestError, NoProductionModelError
from retrain.files import write_atomically, write_json
from retrain.handoffs import TrainedModelRef
from retrain.run_dir import RunDir, new_run_dir
from retrain.sequence import DirectRunner, RetrainRequest, run_retrain
from retrain.settings import FeatureSettings, LabelSettings, Settings
from retrain.store import load_production, production_version, rollback
from retrain.training.threads import CoreShare, WorkerCores, available_cores

logger = logging.getLogger(__name__)

PREDICTORS = ("policy", "ungated", "champion", "never_retrain", "persistence", "always_hold")
"""The signal columns of a week: what the policy served, the week's challenger had it been promoted
regardless of the gate, the model in production before the week's retrain, the first week's
challenger kept for ever, and the two naive baselines."""


class WeekRecord(BaseModel):
    """One replayed week."""

    model_config = ConfigDict(frozen=True)

    week: int
    cutoff: datetime
    decision: str
    reasons: list[str]
    champion_version: str | None
    production_version: str | None
    first_model_run: str
    live_rows: int
    live: dict[str, LiveScores]
    buy_and_hold_return: float
    retrain_s: float
    alerts: list[str]
    trained_ahead: bool = False
    """The week's studies were trained ahead, cold, in parallel with other weeks (`retrain_s` is then
    the rest of the retrain; `train_ahead_s` the studies)."""
    train_ahead_s: float = 0.0

    @property
    def live_macro_f1(self) -> float:
        return self.live["policy"].macro_f1

    @property
    def persistence_macro_f1(self) -> float:
        return self.live["persistence"].macro_f1


@dataclass(frozen=True)
class BacktestPlan:
    """Where and what to replay."""

    start: pd.Timestamp
    weeks: int
    out: Path

    def cutoff(self, week: int) -> pd.Timestamp:
        return self.start + week * LIVE_WEEK

    @property
    def store(self) -> Path:
        return self.out / "store"

    def record_path(self, week: int) -> Path:
        return self.out / "weeks" / f"week_{week:03d}.json"

    def rows_path(self, week: int) -> Path:
        return self.out / "weeks" / f"week_{week:03d}.parquet"


@dataclass(frozen=True)
class WeekParallelism:
    """Train the remaining weeks' studies ahead, at once on `executor`, each week's studies sharing
    `threads` (a count, or `WorkerCores` sized on a cluster worker running one task at a time)."""

    executor: Executor
    threads: int | WorkerCores


@contextmanager
def local_parallelism(weeks: int, configured_cores: int | None) -> Iterator[WeekParallelism]:
    """`weeks` worker processes on this host, the cores split between them."""
    threads = max(1, available_cores(configured_cores) // weeks)
    context = multiprocessing.get_context("spawn")  # never fork a process that may hold threads
    with ProcessPoolExecutor(max_workers=weeks, mp_context=context) as executor:
        yield WeekParallelism(executor, threads)


@dataclass(frozen=True)
class TrainedAhead:
    """A week's studies trained ahead: its run directory, the members' hand-offs and their wall time."""

    run: RunDir
    trained: list[TrainedModelRef]
    seconds: float


def train_week_ahead(
    settings: Settings, run: RunDir, models: Sequence[str], threads: int | WorkerCores
) -> tuple[list[TrainedModelRef], float]:
    """One week's studies (on an executor's worker): all models at once on the week's threads, cold."""
    started = time.perf_counter()
    cores = threads.on_worker(1) if isinstance(threads, WorkerCores) else threads
    share = CoreShare(models, cores)
    calls = [(settings, run, model, share, True, None) for model in models]
    trained = DirectRunner(parallel_studies=True).call_each(stages.train_stage, calls)
    return trained, time.perf_counter() - started


class BacktestRunner(DirectRunner):
    """Runs a week's retrain like the direct pipeline, except that the dataset stage slices the span's
    dataset (built once) instead of building it again, alerts are collected, not delivered, and studies
    trained ahead are taken as they are."""

    def __init__(
        self, span: CandleSpan, cutoff: pd.Timestamp, trained_ahead: list[TrainedModelRef] | None = None
    ) -> None:
        super().__init__(parallel_studies=True)
        self.span = span
        self.cutoff = cutoff
        self.trained_ahead = trained_ahead
        self.alerts: list[Alert] = []

    def call(self, stage, *args, **kwargs):  # type: ignore[no-untyped-def]
        if stage is stages.dataset_stage:
            return self._sliced_dataset(*args, **kwargs)
        return super().call(stage, *args, **kwargs)

    def call_each(self, stage, calls):  # type: ignore[no-untyped-def]
        if stage is stages.train_stage and self.trained_ahead is not None:
            return list(self.trained_ahead)
        return super().call_each(stage, calls)

    def _sliced_dataset(
        self, labels: LabelSettings, run: RunDir, features: FeatureSettings | None = None
    ) -> DatasetSummary:
        """The span's slice: the span was built once with the run's label settings and feature groups."""
        dataset = self.span.training_dataset(self.cutoff, labels.horizon)
        run.write_dataset(dataset)
        return dataset.summary()

    def deliver(self, alerts: list[Alert]) -> None:
        self.alerts.extend(alerts)


WeekCallback = Callable[[WeekRecord], None]


def run_backtest(
    settings: Settings,
    plan: BacktestPlan,
    *,
    on_week: WeekCallback | None = None,
    parallel: WeekParallelism | None = None,
) -> list[WeekRecord]:
    """Every week of `plan`, resuming after the last finished one; returns all the weeks' records.
    With `parallel` the remaining weeks' studies are trained ahead at once, cold (module docstring)."""
    span = CandleSpan.load(settings.data, settings.labels, plan.start, plan.weeks, settings.features)
    paths = settings.paths.model_copy(update={"models_dir": plan.store, "runs_dir": plan.out / "runs"})
    week_settings = settings.model_copy(update={"paths": paths})
    if parallel is not None:
        cold = week_settings.tuning.model_copy(update={"warm_start": False})
        week_settings = week_settings.model_copy(update={"tuning": cold})
    records = [
        _read_record(plan.record_path(week)) for week in range(plan.weeks) if plan.record_path(week).exists()
    ]
    if records:
        if records[-1].trained_ahead != (parallel is not None):
            raise BacktestError(
                f"the backtest in {plan.out} was started {'with' if records[-1].trained_ahead else 'without'} "
                "parallel weeks: resume it the same way, or use another --out"
            )
        logger.info("backtest: resuming after %d finished week(s)", len(records))
        _restore_store(plan.store, records[-1].production_version)
    remaining = range(len(records), plan.weeks)
    ahead = _train_ahead(week_settings, plan, span, remaining, parallel) if parallel is not None else {}
    for week in remaining:
        record = _replay_week(
            week_settings,
            plan,
            span,
            week,
            first_run=records[0].first_model_run if records else None,
            ahead=ahead.get(week),
        )
        records.append(record)
        if on_week is not None:
            on_week(record)
    return records


def _train_ahead(
    settings: Settings, plan: BacktestPlan, span: CandleSpan, weeks: range, parallel: WeekParallelism
) -> dict[int, TrainedAhead]:
    """Every week's training rows into its run directory here, then all the weeks' studies at once."""
    models = list(settings.training.models)
    runs: dict[int, RunDir] = {}
    for week in weeks:
        runs[week] = new_run_dir(Path(settings.paths.runs), f"week{week:03d}")
        runs[week].write_dataset(span.training_dataset(plan.cutoff(week), settings.labels.horizon))
    futures = {
        week: parallel.executor.submit(train_week_ahead, settings, run, models, parallel.threads)
        for week, run in runs.items()
    }
    logger.info("backtest: studies of %d week(s) submitted at once, cold", len(futures))
    ahead = {}
    for week, future in futures.items():
        trained, seconds = future.result()
        ahead[week] = TrainedAhead(runs[week], trained, seconds)
    return ahead


def _replay_week(
    settings: Settings,
    plan: BacktestPlan,
    span: CandleSpan,
    week: int,
    first_run: str | None,
    ahead: TrainedAhead | None = None,
) -> WeekRecord:
    cutoff = plan.cutoff(week)
    champion_version = production_version(plan.store)
    champion = _production_model(plan.store)
    runner = BacktestRunner(span, cutoff, None if ahead is None else ahead.trained)
    run = new_run_dir(Path(settings.paths.runs), f"week{week:03d}") if ahead is None else ahead.run
    started = time.perf_counter()
    outcome = run_retrain(runner, RetrainRequest(settings=settings, run=run, source=SpanSource(span, cutoff)))
    retrain_s = time.perf_counter() - started
    challenger = run.read_ensemble()
    first_model = RunDir(Path(first_run)).read_ensemble() if first_run else challenger
    production = _production_model(plan.store)

    rows = span.live_rows(cutoff)
    if len(rows) == 0:
        raise BacktestError(f"week {week} ({cutoff:%Y-%m-%d}) has no labelled row to score")
    predicted = {
        "policy": signals(production, rows),
        "ungated": signals(challenger, rows),
        "champion": signals(champion, rows),
        "never_retrain": signals(first_model, rows),
        **baseline_signals(rows, span.history_labels(cutoff), settings.training.seed),
    }
    fee = settings.evaluation.fee_rate
    record = WeekRecord(
        week=week,
        cutoff=cutoff.to_pydatetime(),
        decision=outcome.outcome,
        reasons=outcome.reasons,
        champion_version=champion_version,
        production_version=production_version(plan.store),
        first_model_run=first_run or outcome.run_dir,
        live_rows=len(rows),
        live={name: score_live(predicted[name], rows, fee) for name in PREDICTORS},
        buy_and_hold_return=float((1.0 + rows.next_return).prod() - 1.0),
        retrain_s=retrain_s,
        alerts=[alert.kind for alert in runner.alerts],
        trained_ahead=ahead is not None,
        train_ahead_s=0.0 if ahead is None else ahead.seconds,
    )
    frame = pd.DataFrame(
        {"y": rows.y.to_numpy(), "next_return": rows.next_return.to_numpy(), **predicted}, index=rows.X.index
    )
    buffer = io.BytesIO()
    frame.to_parquet(buffer)
    write_atomically(plan.rows_path(week), buffer.getvalue())
    write_json(plan.record_path(week), record.model_dump(mode="json"))
    logger.info(
        "backtest week %d (%s): %s; live macro-F1 %.4f vs persistence %.4f (%d rows)",
        week,
        f"{cutoff:%Y-%m-%d}",
        record.decision,
        record.live_macro_f1,
        record.persistence_macro_f1,
        record.live_rows,
    )
    return record


def read_week_rows(plan: BacktestPlan, week: int) -> pd.DataFrame:
    return pd.read_parquet(plan.rows_path(week))


def _read_record(path: Path) -> WeekRecord:
    return WeekRecord.model_validate_json(path.read_text())


def _production_model(store: Path) -> ProductionEnsemble | None:
    try:
        return load_production(store).model
    except NoProductionModelError:
        return None


def _restore_store(store: Path, expected: str | None) -> None:
    """Put production back where the last finished week left it (a kill between a promotion and the
    week's record would otherwise let the repeated week meet its own twin as champion)."""
    live = production_version(store)
    if live == expected:
        return
    if expected is None:
        raise BacktestError(
            f"the scratch store {store} serves {live}, but the last finished week left it empty: the backtest "
            "was killed right after a first promotion. Delete the out directory and start again"
        )
    rollback(store, expected, reason="backtest resumed: undo the unfinished week's promotion")
    logger.warning("backtest: production rolled back from %s to %s to resume", live, expected)
