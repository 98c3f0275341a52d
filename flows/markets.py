"""The `markets` flow: the `retrain` flow once per configured market, as subflows running at once, each
promoting into its own model store. Runs weekly from the `markets/weekly` deployment (docs/scaling.md).

Each market's retrain is a subflow started from a task of this flow's thread pool, so the subflows
overlap; their data, evaluation and promotion run in this process, on the host holding the stores,
and their studies wherever `execution.engine` sends them. On one host the studies of the markets take
turns on the cores through the host's `training-threads-<host>` global concurrency limit.
"""

from __future__ import annotations

from typing import Annotated, Any

from prefect import flow, task
from prefect.cache_policies import NO_CACHE
from prefect.futures import wait
from prefect.logging import get_run_logger
from prefect.task_runners import ThreadPoolTaskRunner
from pydantic import Field

from flows.retrain import retrain
from retrain.errors import ConfigError, RetrainError
from retrain.settings import MarketSettings, ModelName, load_settings


def market_key(market: MarketSettings) -> str:
    return f"{market.exchange}:{market.symbol}"


@task(name="retrain-market", task_run_name="retrain-{market.exchange}-{market.symbol}", cache_policy=NO_CACHE)
def retrain_market(
    market: MarketSettings,
    days: int | None,
    trials: int | None,
    time_budget_s: float | None,
    models: list[ModelName] | None,
    dry_run: bool,
) -> dict[str, Any]:
    """One market's `retrain` subflow."""
    return retrain(
        source=market.source,
        data_path=None if market.csv_path is None else str(market.csv_path),
        exchange=market.exchange,
        symbol=market.symbol,
        models_dir=str(market.models_dir),
        days=days,
        trials=trials,
        time_budget_s=time_budget_s,
        models=models,
        dry_run=dry_run,
    )


def _check_markets(markets: list[MarketSettings]) -> None:
    if not markets:
        raise ConfigError("no market to retrain: list them under `markets` in config/unified.yaml")
    stores = [market.models_dir.resolve() for market in markets]
    shared = sorted({str(store) for store in stores if stores.count(store) > 1})
    if shared:
        raise ConfigError(f"markets must each have their own models_dir; shared: {', '.join(shared)}")


@flow(name="markets", task_runner=ThreadPoolTaskRunner(), timeout_seconds=8 * 3600)
def markets(
    markets: list[MarketSettings] | None = None,
    days: Annotated[int, Field(gt=0, le=3650)] | None = None,
    trials: Annotated[int, Field(ge=1, le=1000)] | None = None,
    time_budget_s: Annotated[float, Field(gt=0)] | None = None,
    models: list[ModelName] | None = None,
    dry_run: bool = False,
) -> dict[str, dict[str, Any]]:
    """Retrain every market at once, each into its own model store.

    Args:
        markets: The markets (exchange, symbol, models_dir; optional source and csv_path); default:
            `markets` of the config.
        days: Days of candles to train on; default: data.days.
        trials: Optuna trials per model; default: tuning.n_trials.
        time_budget_s: Seconds each model's study may take; default: tuning.timeout_s.
        models: Models to train; default: training.models.
        dry_run: Evaluate and report, but store nothing.
    """
    chosen = load_settings().markets if markets is None else markets
    _check_markets(chosen)
    futures = {
        market_key(market): retrain_market.submit(market, days, trials, time_budget_s, models, dry_run)
        for market in chosen
    }
    wait(list(futures.values()))
    logger = get_run_logger()
    outcomes: dict[str, dict[str, Any]] = {}
    failed: list[str] = []
    for key, future in futures.items():
        if future.state.is_completed():
            outcomes[key] = future.result()
            logger.info("%s: %s", key, outcomes[key]["status"])
        else:
            failed.append(f"{key} ({future.state.name}: {future.state.message})")
    if failed:
        raise RetrainError(
            f"{len(failed)} of {len(futures)} markets failed, the others finished: {'; '.join(failed)}"
        )
    return outcomes
