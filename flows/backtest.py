"""The `backtest` flow: the walk-forward replay of `retrain.backtest`, with a progress artifact (weeks done)
and the report as a markdown artifact. Runs on demand from the `backtest/on-demand` deployment."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Annotated, Any

import pandas as pd
from prefect import flow
from prefect.artifacts import create_markdown_artifact, create_progress_artifact, update_progress_artifact
from prefect.logging import get_run_logger
from pydantic import Field

from retrain.backtest import BacktestPlan, WeekRecord, run_and_report
from retrain.settings import SourceKind, load_run_settings


@flow(name="backtest", timeout_seconds=48 * 3600)
def backtest(
    start: date,
    weeks: Annotated[int, Field(ge=1, le=260)],
    source: SourceKind | None = None,
    data_path: str | None = None,
    trials: Annotated[int, Field(ge=1, le=1000)] | None = None,
    out: str = "backtests/latest",
) -> dict[str, Any]:
    """Replay the weekly retrain-and-gate policy over history and score each live week.

    Args:
        start: The first weekly cutoff (UTC midnight).
        weeks: How many weekly cutoffs to replay.
        source: csv (a file), exchange (its local cache, never downloaded) or demo; default: the config.
        data_path: The candle file, for source csv.
        trials: Optuna trials per model and week; default: tuning.n_trials.
        out: Folder for the weeks, the scratch store and the report; a rerun resumes there.
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

    result = run_and_report(settings, plan, on_week=on_week)
    update_progress_artifact(progress, progress=100.0)
    create_markdown_artifact(markdown=result.markdown, key="backtest-report", description=f"{weeks} weeks")
    return result.json_line()
