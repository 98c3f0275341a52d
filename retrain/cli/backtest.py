"""`retrain backtest`: replay the weekly retrain-and-gate policy over history, in this process."""

from __future__ import annotations

import json
import logging
from datetime import datetime
from pathlib import Path
from typing import Annotated

import typer

from retrain.errors import ConfigError, RetrainError
from retrain.settings import SourceKind, load_settings


def backtest(
    start: Annotated[
        datetime, typer.Option(formats=["%Y-%m-%d"], help="The first weekly cutoff (UTC midnight).")
    ],
    weeks: Annotated[int, typer.Option(min=1, help="How many weekly cutoffs to replay.")],
    source: Annotated[
        SourceKind | None,
        typer.Option(help="Candles to replay: a csv file, the exchange's local cache, or demo."),
    ] = None,
    data: Annotated[Path | None, typer.Option(help="The candle file, with --source csv.")] = None,
    trials: Annotated[int | None, typer.Option(min=1, help="Optuna trials per model and week.")] = None,
    out: Annotated[
        Path, typer.Option(help="Folder for the weeks, the scratch store, the report; reused to resume.")
    ] = Path("backtests/latest"),
    parallel_weeks: Annotated[
        int,
        typer.Option(
            min=1,
            help="Train this many weeks' studies at once in local processes, cold (no warm start from "
            "the last week's model); gates still run week by week. 1: the weeks one after another.",
        ),
    ] = 1,
    as_json: Annotated[
        bool, typer.Option("--json", help="End with one JSON line: the weeks and the summary.")
    ] = False,
) -> None:
    """Replay the weekly policy: a full retrain at each cutoff, then the week after it scored for what was
    in production, the challenger ungated and the first model kept."""
    import pandas as pd

    from retrain.backtest import BacktestPlan, local_parallelism, run_and_report

    overrides: dict[str, dict[str, object]] = {}
    if source is not None or data is not None:
        overrides["data"] = {
            key: value for key, value in {"source": source, "csv_path": data}.items() if value is not None
        }
    if trials is not None:
        overrides["tuning"] = {"n_trials": trials}
    try:
        settings = load_settings(**overrides)
    except ConfigError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from exc
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    plan = BacktestPlan(start=pd.Timestamp(start, tz="UTC"), weeks=weeks, out=out)
    try:
        if parallel_weeks == 1:
            result = run_and_report(settings, plan)
        else:
            with local_parallelism(parallel_weeks, settings.training.cores) as parallel:
                result = run_and_report(settings, plan, parallel=parallel)
    except RetrainError as exc:
        typer.echo(f"backtest failed: {exc}", err=True)
        raise typer.Exit(1) from exc
    typer.echo(result.markdown)
    typer.echo(f"report: {out / 'report.md'}")
    if as_json:
        typer.echo(json.dumps(result.json_line(), default=str))
