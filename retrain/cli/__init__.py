"""The `retrain` command line: `retrain data ...`, `retrain model ...`, `retrain run`, `retrain backtest`, `retrain monitor`, `retrain tune-worker`."""

from __future__ import annotations

import typer

from retrain.cli import data, model
from retrain.cli.backtest import backtest
from retrain.cli.monitor import monitor
from retrain.cli.run import run
from retrain.cli.tune_worker import tune_worker

app = typer.Typer(no_args_is_help=True, add_completion=False, help=__doc__)
app.add_typer(data.app, name="data")
app.add_typer(model.app, name="model")
app.command(name="run")(run)
app.command(name="backtest")(backtest)
app.command(name="monitor")(monitor)
app.command(name="tune-worker")(tune_worker)
