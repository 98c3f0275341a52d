"""The `retrain` flow: fetch -> dataset -> three models in parallel -> ensemble -> evaluate -> gate ->
promote or archive -> report -> alerts. Runs weekly from the `retrain/weekly` deployment, or on demand.
"""

from __future__ import annotations

import logging
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

from prefect import flow, get_client
from prefect.context import get_run_context
from prefect.logging import get_run_logger
from prefect.task_runners import ThreadPoolTaskRunner
from pydantic import Field

from retrain.alerts import champion_degradation_alert, promotion_alert, rejection_alert
from retrain.errors import ConfigError
from retrain.evaluation import ENSEMBLE, EvaluationResult
from retrain.run_dir import RunDir, read_json, record_duration
from retrain.settings import ModelName, Settings, SourceKind, load_settings
from retrain.stages import Publication, load_evaluation
from retrain.training.threads import training_threads
from tasks import data, evaluation, publish, training
from tasks.alerts import deliver_alert, failure_hook


def _settings(
    source: SourceKind | None,
    data_path: str | None,
    days: int | None,
    trials: int | None,
    time_budget_s: float | None,
    models: list[ModelName] | None,
    models_dir: str | None,
) -> Settings:
    """The configuration with this run's parameters on top (a parameter left out keeps the config)."""
    runs_dir = str(Path(models_dir) / "runs") if models_dir is not None else None
    sections = {
        "data": {"source": source, "csv_path": data_path, "days": days},
        "tuning": {"n_trials": trials, "timeout_s": time_budget_s},
        "training": {"models": models},
        "paths": {"models_dir": models_dir, "runs_dir": runs_dir},
    }
    overrides = {
        name: {k: v for k, v in values.items() if v is not None} for name, values in sections.items()
    }
    return load_settings(**{name: values for name, values in overrides.items() if values})


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


def _rename_run(window: dict[str, Any]) -> str:
    """Name the flow run after its data window, so the UI's run list reads like a history of data."""
    name = f"{window['market']} {window['start'][:10]}..{window['end'][:10]}"
    context = get_run_context()
    with get_client(sync_client=True) as client:
        client.update_flow_run(context.flow_run.id, name=name)
    return name


def _train_all(settings: Settings, run: RunDir) -> None:
    """The models' studies at once (sharing the cores), or one after another with all cores each."""
    started = time.perf_counter()
    models = list(settings.training.models)
    threads = training_threads(models, settings.training.cores, settings.training.parallel)
    if settings.training.parallel:
        futures = [training.train_model.submit(settings, run, model, threads) for model in models]
        for future in futures:
            future.result()
    else:
        for model in models:
            training.train_model(settings, run, model, threads)
    record_duration(run, "training", time.perf_counter() - started)


@flow(
    name="retrain",
    task_runner=ThreadPoolTaskRunner(max_workers=3),
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
) -> dict[str, Any]:
    """Retrain, evaluate and (if it passes the gate) promote the trading model. Parameters left out
    keep the values of config/unified.yaml."""
    logger = get_run_logger()
    settings = _settings(source, data_path, days, trials, time_budget_s, models, models_dir)
    flow_run_id = str(get_run_context().flow_run.id)
    started = datetime.now(UTC)
    run = RunDir(Path(settings.paths.runs_dir) / f"{started:%Y%m%dT%H%M%SZ}-{flow_run_id[:8]}")
    names = list(settings.training.models)

    window = data.fetch_candles(settings, run)
    title = f"Retrain {_rename_run(window)}"
    data.build_dataset(settings, run)
    _train_all(settings, run)
    training.build_ensemble(settings, run, names)
    evaluation.evaluate(settings, run)
    decision = evaluation.gate(settings, run)
    publication = publish.publish(settings, run, names, flow_run_id, dry_run)
    publish.report(settings, run, names, title, publication)
    result = load_evaluation(run)
    _send_alerts(settings, run, result, publication, decision.failed)

    summary = {
        "status": publication.status,
        "version": publication.version,
        "previous_version": publication.previous_version,
        "macro_f1": result.models[ENSEMBLE].scores.macro_f1,
        "reasons": decision.reasons,
        "run_dir": str(run.root),
        "models_dir": str(settings.paths.models_dir),
    }
    logger.info("decision: %s", summary)
    return summary


def _send_alerts(
    settings: Settings, run: RunDir, result: EvaluationResult, publication: Publication, failed: list[Any]
) -> None:
    """Performance alerts (degradation, rejection) and the info alert of a promotion; never fails the run."""
    channels = settings.alerts.channels
    champion = read_json(run.champion)
    fresh = result.champion.scores.macro_f1 if result.champion else None
    alerts = []
    if fresh is not None and champion["recorded_macro_f1"] is not None:
        alerts.append(
            champion_degradation_alert(
                champion["recorded_macro_f1"],
                fresh,
                settings.alerts.champion_degradation_tolerance,
                champion["version"],
            )
        )
    version = publication.version or f"dry-run-{run.root.name}"
    if publication.status == "promoted":
        alerts.append(
            promotion_alert(
                version, publication.previous_version, result.models[ENSEMBLE].scores.macro_f1, fresh
            )
        )
    elif failed:
        alerts.append(rejection_alert([check.model_dump(mode="json") for check in failed], version))
    for alert in alerts:
        if alert is not None:
            deliver_alert(alert, channels)
