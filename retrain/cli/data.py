"""`retrain data ...`: inspect candle files."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, cast

import typer

from retrain.errors import CandleValidationError, ConfigError, DataSourceError
from retrain.settings import DataSettings, load_settings

if TYPE_CHECKING:
    import pandas as pd

    from retrain.data.validation import DataQualityReport

app = typer.Typer(no_args_is_help=True, help=__doc__)

EXIT_UNUSABLE = 1
EXIT_USAGE = 2


@app.command()
def check(
    path: Annotated[
        Path, typer.Argument(exists=True, dir_okay=False, help="The candle file (CSV or Parquet).")
    ],
    days: Annotated[
        int | None,
        typer.Option(min=1, help="Check only the last N days, counted back from the file's last candle."),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
) -> None:
    """Validate a candle file as the retraining flow would. Exit 0 when usable, 1 when not."""
    from retrain.data.csv_source import CsvSource, read_candle_file  # pandas loads only for this command

    try:
        settings = load_settings()
    except ConfigError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(EXIT_USAGE) from exc
    try:
        raw = CsvSource(path).fetch(days) if days is not None else read_candle_file(path)
    except DataSourceError as exc:
        _print_unreadable(path, str(exc), as_json)
        raise typer.Exit(EXIT_UNUSABLE) from exc
    report = _validate(raw, settings.data, days)
    if as_json:
        typer.echo(json.dumps({"path": str(path), **report.model_dump(mode="json")}, indent=2))
    else:
        window = f" (last {days} days)" if days is not None else ""
        typer.echo(f"Candle file: {path}{window}\n{report.format_text()}")
    if not report.usable:
        raise typer.Exit(EXIT_UNUSABLE)


def _validate(raw: pd.DataFrame, settings: DataSettings, days: int | None) -> DataQualityReport:
    """The report whether or not the candles pass: a failing file is an answer here, not an error."""
    from retrain.data.validation import DataQualityReport, validate_candles

    try:
        return validate_candles(raw, settings, days=days)[1]
    except CandleValidationError as exc:
        return cast(DataQualityReport, exc.report)


def _print_unreadable(path: Path, message: str, as_json: bool) -> None:
    if as_json:
        typer.echo(json.dumps({"path": str(path), "usable": False, "error": message}, indent=2))
    else:
        typer.echo(f"error: {message}", err=True)
