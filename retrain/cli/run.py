"""`retrain run`: one retrain, in-process (an ephemeral Prefect server unless PREFECT_API_URL is set).

Every option is checked, and the configuration loaded, before Prefect starts: a mistake costs no
server start-up and sends no alert.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Annotated, get_args

import typer

from retrain.errors import ConfigError
from retrain.settings import ModelName, SourceKind, load_run_settings

EPHEMERAL_STARTUP_S = "180"
"""A temporary Prefect server takes 10-20 s to start, much longer on a loaded 2-core host."""


MODELS: tuple[str, ...] = get_args(ModelName)


def _known_models(values: list[str] | None) -> list[str] | None:
    unknown = [value for value in values or [] if value not in MODELS]
    if unknown:
        raise typer.BadParameter(f"{', '.join(unknown)} is not a model; choose from {', '.join(MODELS)}")
    return values


def run(
    source: Annotated[
        SourceKind | None, typer.Option(help="The candle source; default from the config.")
    ] = None,
    data: Annotated[
        Path | None, typer.Option(help="The CSV or Parquet candle file, for --source csv.")
    ] = None,
    days: Annotated[int | None, typer.Option(min=1, help="Days of candles to train on.")] = None,
    trials: Annotated[int | None, typer.Option(min=1, help="Optuna trials per model.")] = None,
    time_budget: Annotated[
        float | None, typer.Option(min=1, help="Seconds each model's study may take.")
    ] = None,
    model: Annotated[
        list[str] | None,
        typer.Option(
            help=f"A model to train, one of {', '.join(MODELS)} (repeat the option); default: all three.",
            callback=_known_models,
        ),
    ] = None,
    models_dir: Annotated[
        Path | None, typer.Option(help="The model store; default: paths.models_dir of the config.")
    ] = None,
    dry_run: Annotated[bool, typer.Option(help="Evaluate and report, but store nothing.")] = False,
) -> None:
    """Run the retrain flow once; exit 0 when it completed (promoted or kept the champion), 1 when it
    failed, 2 on a usage or configuration error."""
    if models_dir is not None and not models_dir.exists() and not models_dir.parent.is_dir():
        typer.echo(
            f"error: --models-dir {models_dir}: its parent folder {models_dir.parent} does not exist",
            err=True,
        )
        raise typer.Exit(2)
    if data is not None and not data.is_file():
        typer.echo(f"error: --data {data}: no such file", err=True)
        raise typer.Exit(2)
    parameters = dict(
        source=source,
        data_path=str(data) if data else None,
        days=days,
        trials=trials,
        time_budget_s=time_budget,
        models=list(model) if model else None,
        models_dir=str(models_dir) if models_dir else None,
    )
    try:
        load_run_settings(**parameters)
    except ConfigError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from exc
    for key, value in {
        "DO_NOT_TRACK": "1",
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": EPHEMERAL_STARTUP_S,
    }.items():
        os.environ.setdefault(key, value)
    from flows.retrain import retrain  # Prefect loads only for this command, after the checks

    try:
        state = retrain(**parameters, dry_run=dry_run, return_state=True)
    except Exception as exc:  # the server did not start, the API went away: one readable line
        typer.echo(f"retrain could not run: {type(exc).__name__}: {' '.join(str(exc).split())}", err=True)
        raise typer.Exit(1) from None
    if not state.is_completed():
        typer.echo(f"retrain {state.name.lower()}: {state.message}", err=True)
        raise typer.Exit(1)
    summary = state.result()
    typer.echo(json.dumps(summary, indent=2, default=str))
    typer.echo(
        f"decision: {summary['status']} ({summary['outcome']}; version {summary['version']}; {'; '.join(summary['reasons'])})"
    )
