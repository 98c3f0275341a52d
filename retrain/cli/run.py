"""`retrain run`: one retrain, in-process (an ephemeral Prefect server unless PREFECT_API_URL is set)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from retrain.settings import SourceKind


def run(
    source: Annotated[SourceKind | None, typer.Option(help="candle source; default from config")] = None,
    data: Annotated[Path | None, typer.Option(help="CSV/Parquet candle file, for --source csv")] = None,
    days: Annotated[int | None, typer.Option(min=1, help="days of candles to train on")] = None,
    trials: Annotated[int | None, typer.Option(min=1, help="Optuna trials per model")] = None,
    time_budget: Annotated[float | None, typer.Option(min=1, help="seconds per model's study")] = None,
    model: Annotated[
        list[str] | None, typer.Option(help="lightgbm, xgboost or random_forest (repeat); default all")
    ] = None,
    models_dir: Annotated[Path | None, typer.Option(help="model store; default from config")] = None,
    dry_run: Annotated[bool, typer.Option(help="evaluate and report, store nothing")] = False,
) -> None:
    """Run the retrain flow once; exit 0 when it completed (promoted or rejected), 1 when it failed."""
    from flows.retrain import retrain  # Prefect loads only for this command

    state = retrain(
        source=source,
        data_path=str(data) if data else None,
        days=days,
        trials=trials,
        time_budget_s=time_budget,
        models=model or None,
        dry_run=dry_run,
        models_dir=str(models_dir) if models_dir else None,
        return_state=True,
    )
    if not state.is_completed():
        typer.echo(f"retrain {state.name.lower()}: {state.message}", err=True)
        raise typer.Exit(1)
    summary = state.result()
    typer.echo(json.dumps(summary, indent=2, default=str))
    typer.echo(
        f"decision: {summary['status']} (version {summary['version']}; {'; '.join(summary['reasons'])})"
    )
