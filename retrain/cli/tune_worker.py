"""`retrain tune-worker`: one more worker for a model's shared study while a retrain runs (docs/scaling.md)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import typer

from retrain.errors import ConfigError, RetrainError
from retrain.settings import ModelName, load_settings

EXIT_FAILED = 1
EXIT_USAGE = 2
POLL_S = 2.0


def tune_worker(
    run_dir: Annotated[
        Path,
        typer.Option(
            file_okay=False, help="The run's folder (under paths.runs_dir), on storage this host sees."
        ),
    ],
    model: Annotated[ModelName, typer.Option(help="The model whose study to join.")],
    trials: Annotated[
        int | None,
        typer.Option(min=1, help="The run's trials per model (its --trials); default from the config."),
    ] = None,
    worker: Annotated[
        str | None,
        typer.Option(help="This worker's name, which also sets its sampler seed; default host:pid."),
    ] = None,
    threads: Annotated[int, typer.Option(min=1, help="Threads per trial.")] = 1,
    wait_s: Annotated[float, typer.Option(min=0, help="How long to wait for the run's dataset.")] = 600.0,
) -> None:
    """Add trials to the study the run's training task opened for MODEL (same configuration and
    tuning.storage as the run) until it holds its n_trials; waits for the run's dataset first. Exit 0
    when done, 1 when the dataset never came or training failed, 2 on a configuration error."""
    try:
        settings = load_settings(**({"tuning": {"n_trials": trials}} if trials else {}))
        if settings.tuning.storage is None:
            raise ConfigError(
                "tuning.storage is not set: a study in memory cannot take other workers; set "
                "RETRAIN_TUNING__STORAGE to the run's journal:<path> or database URL"
            )
    except ConfigError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(EXIT_USAGE) from exc
    from retrain.run_dir import RunDir  # pandas and the learners load only once the options are fine
    from retrain.training import split_holdout
    from retrain.training import tune_worker as run_worker
    from retrain.training.tuning import default_worker_name

    run = RunDir(run_dir)
    deadline = time.monotonic() + wait_s
    while not run.has_dataset():
        if time.monotonic() > deadline:
            typer.echo(
                f"error: no dataset in {run_dir} after {wait_s:.0f} s; is the run at its training stage?",
                err=True,
            )
            raise typer.Exit(EXIT_FAILED)
        time.sleep(POLL_S)
    try:
        dataset = run.read_dataset()
        split = split_holdout(dataset.X, dataset.y, settings.split.holdout_days, settings.purge_gap)
        ran = run_worker(
            model,
            split.X_train,
            split.y_train,
            training=settings.training,
            tuning=settings.tuning,
            split=settings.split,
            labels=settings.labels,
            threads=threads,
            worker=worker or default_worker_name(),
        )
    except RetrainError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(EXIT_FAILED) from exc
    typer.echo(f"{model}: ran {ran} trials of the shared study")
