"""The `retrain` flow: the sequence of `retrain.sequence`, each stage as a Prefect task. Runs weekly from
the `retrain/weekly` deployment, or on demand.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Annotated, Any

from prefect import flow
from prefect.context import get_run_context
from prefect.task_runners import ThreadPoolTaskRunner
from pydantic import Field

from retrain.errors import ConfigError
from retrain.run_dir import new_run_dir
from retrain.sequence import RetrainRequest, run_retrain
from retrain.settings import ModelName, SourceKind, load_run_settings, load_settings
from tasks.alerts import failure_hook
from tasks.cluster import dask_task_runner
from tasks.runner import PrefectRunner


def _alert_on_failure(flow: Any, flow_run: Any, state: Any) -> None:
    """on_failure/on_crashed hook: channels come from the config, read when the failure happens."""
    try:
        channels = load_settings().alerts.channels
    except ConfigError as exc:
        logging.getLogger(__name__).error(
            "run %s failed; no alert sent, the config is invalid: %s", flow_run.name, exc
        )
        return
    failure_hook(channels)(flow, flow_run, state)


@flow(
    name="retrain",
    # Unbounded threads: every configured model's study is submitted at once (they share the cores).
    # With execution.engine dask the studies go to the cluster instead (tasks.runner.PrefectRunner).
    task_runner=ThreadPoolTaskRunner(),
    on_failure=[_alert_on_failure],
    on_crashed=[_alert_on_failure],
    timeout_seconds=4 * 3600,
)
def retrain(
    source: SourceKind | None = None,
    data_path: str | None = None,
    days: Annotated[int, Field(gt=0, le=3650)] | None = None,
    trials: Annotated[int, Field(ge=1, le=1000)] | None = None,
    time_budget_s: Annotated[float, Field(gt=0)] | None = None,
    models: list[ModelName] | None = None,
    dry_run: bool = False,
    models_dir: str | None = None,
    trigger: str | None = None,
    exchange: str | None = None,
    symbol: str | None = None,
) -> dict[str, Any]:
    """Retrain, evaluate and (if it passes the gate) promote the trading model. Parameters left out
    keep the values of config/unified.yaml.

    Args:
        source: Candle source: exchange, csv or demo; default: data.source of the config.
        data_path: The CSV or Parquet candle file, for source csv.
        days: Days of candles to train on; default: data.days (180).
        trials: Optuna trials per model; default: tuning.n_trials (50).
        time_budget_s: Seconds each model's study may take, a safety net; default: tuning.timeout_s.
        models: Models to train; default: lightgbm, xgboost and random_forest.
        dry_run: Evaluate and report, but store nothing.
        models_dir: The model store the bot reads; default: paths.models_dir.
        trigger: What started this run when not the schedule or an operator (the degraded-model
            trigger fills it from the monitor's event); recorded in the model's metadata.
        exchange: The exchange of source exchange (a ccxt id); default: data.exchange.
        symbol: The market, e.g. ETH/USDT; default: data.symbol.
    """
    settings = load_run_settings(
        source=source,
        data_path=data_path,
        days=days,
        trials=trials,
        time_budget_s=time_budget_s,
        models=models,
        models_dir=models_dir,
        exchange=exchange,
        symbol=symbol,
    )
    flow_run_id = str(get_run_context().flow_run.id)
    request = RetrainRequest(
        settings=settings,
        run=new_run_dir(Path(settings.paths.runs), flow_run_id[:8]),
        dry_run=dry_run,
        flow_run_id=flow_run_id,
        trigger=trigger,
    )
    if settings.execution.engine == "threads":
        return run_retrain(PrefectRunner(settings.alerts.channels), request).model_dump(mode="json")
    with dask_task_runner(settings.execution) as cluster:
        runner = PrefectRunner(settings.alerts.channels, cluster=cluster)
        return run_retrain(runner, request).model_dump(mode="json")
