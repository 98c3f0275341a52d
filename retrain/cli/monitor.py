"""`retrain monitor`: one monitor pass of the production model, without Prefect."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from retrain.errors import ConfigError, RetrainError
from retrain.settings import SourceKind, load_settings

EXIT_FAILED = 1
EXIT_USAGE = 2


def monitor(
    source: Annotated[
        SourceKind | None, typer.Option(help="The candle source; default from the config.")
    ] = None,
    data: Annotated[
        Path | None, typer.Option(dir_okay=False, help="CSV/Parquet candle file (implies --source csv)")
    ] = None,
    models_dir: Annotated[
        Path | None,
        typer.Option(file_okay=False, help="The model store; default: paths.models_dir of the config."),
    ] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="End with the report as one JSON object on the last line.")
    ] = False,
) -> None:
    """Score production on matured labels, test drift, check freshness and age, and update the alert
    state (monitor_state.json beside the models). Exit 0 when the pass ran (alerts or not), 1 when it
    could not (no verified production model...), 2 on a configuration error."""
    from retrain.monitor.run import monitor_pass  # pandas and scikit-learn load only for this command

    sections = {
        "data": {"source": source or ("csv" if data else None), "csv_path": data},
        "paths": {"models_dir": models_dir},
    }
    overrides = {
        name: {k: v for k, v in values.items() if v is not None} for name, values in sections.items()
    }
    try:
        settings = load_settings(**{name: values for name, values in overrides.items() if values})
    except ConfigError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(EXIT_USAGE) from exc
    try:
        report = monitor_pass(settings)
    except RetrainError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(EXIT_FAILED) from exc
    typer.echo(report.model_dump_json() if as_json else report.format_text())
