"""The `backtest` flow: the walk-forward replay of `retrain.backtest`, with a progress artifact (weeks done)
and the report as a markdown artifact. Runs on demand from the `backtest/on-demand` deployment."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date
from pathlib import Path
from typing import Annotated, Any

import pandas as pd
from prefect import flow
from prefect.artifacts import create_markdown_artifact, create_progress_artifact, update_progress_artifact
from prefect.logging import get_run_logger
from pydantic import Field

from retrain.backtest import BacktestPlan, WeekParallelism, WeekRecord, local_parallelism, run_and_report
from retrain.settings import Settings, SourceKind, load_run_settings
from retrain.training.threads import WorkerCores


@flow(name="backtest", timeout_seconds=48 * 3600)
def backtest(
    start: date,
    weeks: Annotated[int, Field(ge=1, le=260)],
    source: SourceKind | None = None,
    data_path: str | None = None,
    trials: Annotated[int, Field(ge=1, le=1000)] | None = None,
    out: str = "backtests/latest",
    parallel_weeks: Annotated[int, Field(ge=1, le=260)] = 1,
) -> dict[str, Any]:
    """Replay the weekly retrain-and-gate policy over history and score each live week.

    Args:
        start: The first weekly cutoff (UTC midnight).
        weeks: How many weekly cutoffs to replay.
        source: csv (a file), exchange (its local cache, never downloaded) or demo; default: the config.
        data_path: The candle file, for source csv.
        trials: Optuna trials per model and week; default: tuning.n_trials.
        out: Folder for the weeks, the scratch store and the report; a rerun resumes there. With a
            Dask cluster (execution.dask_address) a path every worker sees.
        parallel_weeks: Above 1, the weeks' studies are trained ahead at once, cold (no warm start
            from the last week's model), on the Dask cluster with execution.engine dask, else in this
            many local processes; the gates still run week by week.
    """
    logger = get_run_logger()
    settings = load_run_settings(source=source, data_path=data_path, trials=trials)
    plan = BacktestPlan(start=pd.Timestamp(start, tz="UTC"), weeks=weeks, out=Path(out))
    progress = create_progress_artifact(progress=0.0, key="backtest-progress", description="weeks replayed")

    def on_week(record: WeekRecord) -> None:
        update_progress_artifact(progress, progress=100.0 * (record.week + 1) / weeks)
        logger.info(
            "week %d (%s): %s; live macro-F1 %.4f vs persistence %.4f",
            record.week,
            f"{record.cutoff:%Y-%m-%d}",
            record.decision,
            record.live_macro_f1,
            record.persistence_macro_f1,
        )

    if parallel_weeks == 1:
        result = run_and_report(settings, plan, on_week=on_week)
    else:
        with _parallelism(settings, parallel_weeks) as parallel:
            result = run_and_report(settings, plan, on_week=on_week, parallel=parallel)
    update_progress_artifact(progress, progress=100.0)
    create_markdown_artifact(markdown=result.markdown, key="backtest-report", description=f"{weeks} weeks")
    return result.json_line()


@contextmanager
def _parallelism(settings: Settings, weeks: int) -> Iterator[WeekParallelism]:
    """The weeks' studies on the configured Dask cluster (each sized on its worker), else local processes."""
    execution = settings.execution
    if execution.engine != "dask" or execution.dask_address is None:
        with local_parallelism(weeks, settings.training.cores) as parallel:
            yield parallel
        return
    from distributed import Client

    with Client(execution.dask_address) as client:
        yield WeekParallelism(client.get_executor(), WorkerCores(settings.training.cores))
