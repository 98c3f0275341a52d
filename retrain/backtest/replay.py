"""Replay the weekly policy over history: at each weekly cutoff the full retrain (the one sequence, the
configured gate, a scratch store so champion, warm start and compare-and-swap are live), then the week
after it scored for what was in production, next to the challenger ungated and the first model kept.

Each finished week is one JSON record and one Parquet file of per-row signals under `<out>/weeks/`,
written atomically after the week: an interrupted backtest resumes at its first unfinished week.
"""

from __future__ import annotations

import io
import logging
import time
from collections.abc import Callable
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
from retrain.run_dir import RunDir, new_run_dir
from retrain.sequence import DirectRunner, RetrainRequest, run_retrain
from retrain.settings import FeatureSettings, LabelSettings, Settings
from retrain.store import load_production, production_version, rollback

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


class BacktestRunner(DirectRunner):
    """Runs a week's retrain like the direct pipeline, except that the dataset stage slices the span's
    dataset (built once) instead of building it again, and alerts are collected, not delivered."""

    def __init__(self, span: CandleSpan, cutoff: pd.Timestamp) -> None:
        super().__init__(parallel_studies=True)
        self.span = span
        self.cutoff = cutoff
        self.alerts: list[Alert] = []

    def call(self, stage, *args, **kwargs):  # type: ignore[no-untyped-def]
        if stage is stages.dataset_stage:
            return self._sliced_dataset(*args, **kwargs)
        return super().call(stage, *args, **kwargs)

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
    settings: Settings, plan: BacktestPlan, *, on_week: WeekCallback | None = None
) -> list[WeekRecord]:
    """Every week of `plan`, resuming after the last finished one; returns all the weeks' records."""
    span = CandleSpan.load(settings.data, settings.labels, plan.start, plan.weeks, settings.features)
    week_settings = settings.model_copy(
        update={
            "paths": settings.paths.model_copy(
                update={"models_dir": plan.store, "runs_dir": plan.out / "runs"}
            )
        }
    )
    records = [
        _read_record(plan.record_path(week)) for week in range(plan.weeks) if plan.record_path(week).exists()
    ]
    if records:
        logger.info("backtest: resuming after %d finished week(s)", len(records))
        _restore_store(plan.store, records[-1].production_version)
    for week in range(len(records), plan.weeks):
        record = _replay_week(
            week_settings, plan, span, week, first_run=records[0].first_model_run if records else None
        )
        records.append(record)
        if on_week is not None:
            on_week(record)
    return records


def _replay_week(
    settings: Settings, plan: BacktestPlan, span: CandleSpan, week: int, first_run: str | None
) -> WeekRecord:
    cutoff = plan.cutoff(week)
    champion_version = production_version(plan.store)
    champion = _production_model(plan.store)
    runner = BacktestRunner(span, cutoff)
    run = new_run_dir(Path(settings.paths.runs), f"week{week:03d}")
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
