"""The stages of one retrain, in the order data flows through them, each reading and writing a `RunDir`.

fetch -> dataset -> train (one call per model) -> ensemble -> evaluate -> gate -> publish -> report.
These functions are Prefect-free: `tasks/` wraps each one in a retryable Prefect task, and
`retrain.pipeline` calls them directly (for benchmarks and for debugging without a server).
"""

from __future__ import annotations

import logging
import pickle
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from retrain.data.candles import CandleSource
from retrain.data.loading import load_candles
from retrain.data.validation import DataQualityReport
from retrain.dataset import Dataset, build_dataset
from retrain.ensemble import ProductionEnsemble
from retrain.errors import CandleValidationError, ModelStoreError, NoProductionModelError
from retrain.evaluation import ENSEMBLE, EvaluationResult, ModelEvaluation, evaluate_holdout
from retrain.gate import GateDecision, evaluate_gate
from retrain.labels import CLASSES
from retrain.report import (
    plot_confusion_matrices,
    plot_equity_curves,
    plot_feature_importance,
    plot_optuna_history,
    run_report_markdown,
)
from retrain.run_dir import RunDir, read_json, record_duration, write_json
from retrain.settings import Settings
from retrain.store import (
    CrossValidationInfo,
    Decision,
    ModelMetadata,
    TrainingInfo,
    archive_rejected,
    attach_report,
    collect_git_info,
    collect_library_versions,
    load_production,
    load_production_metadata,
    production_version,
    promote,
)
from retrain.training.result import TrainedModel
from retrain.training.split import split_holdout
from retrain.training.threads import CoreShare
from retrain.training.train import train_model
from retrain.weights import fit_weights

logger = logging.getLogger(__name__)

PICKLE_PROTOCOL = 5


def _timed(run: RunDir, stage: str, started: float) -> None:
    record_duration(run, stage, time.perf_counter() - started)


# -- 1. data -------------------------------------------------------------------------------------


def fetch_stage(
    settings: Settings, run: RunDir, *, source: CandleSource | None = None, now: pd.Timestamp | None = None
) -> dict[str, Any]:
    """Fetch and validate the candles; the quality report is written even when validation fails."""
    started = time.perf_counter()
    run.root.mkdir(parents=True, exist_ok=True)
    try:
        loaded = load_candles(settings.data, source=source, now=now)
    except CandleValidationError as exc:
        if isinstance(exc.report, DataQualityReport):
            write_json(run.quality, exc.report.model_dump(mode="json"))
        raise
    loaded.candles.to_parquet(run.candles)
    write_json(run.quality, loaded.report.model_dump(mode="json"))
    write_json(run.source, {**loaded.source, "data_sha256": loaded.data_hash})
    _timed(run, "fetch_validate", started)
    return {
        "start": str(loaded.candles.index[0]),
        "end": str(loaded.candles.index[-1]),
        "rows": len(loaded.candles),
        "market": loaded.source.get("symbol") or Path(loaded.source.get("path", "candles")).stem,
    }


def dataset_stage(settings: Settings, run: RunDir) -> dict[str, Any]:
    """Features and labels from the validated candles, saved as one Parquet file."""
    started = time.perf_counter()
    candles = pd.read_parquet(run.candles)
    dataset = build_dataset(candles, settings.labels)
    dataset.save(run.dataset)
    _timed(run, "features_labels", started)
    return dataset.describe()


# -- 2. training ---------------------------------------------------------------------------------


def warm_start_params(settings: Settings, model: str) -> dict[str, Any] | None:
    """The production model's tuned parameters for `model`, to seed its study (None without one)."""
    if not settings.tuning.warm_start:
        return None
    try:
        return load_production_metadata(settings.paths.models_dir).best_params.get(model)
    except ModelStoreError as exc:
        if not isinstance(exc, NoProductionModelError):
            logger.warning("no warm start for %s: %s", model, exc)
        return None


def train_stage(settings: Settings, run: RunDir, model: str, *, threads: int | CoreShare) -> Path:
    """Tune and fit one model on the non-holdout rows; its `TrainedModel` is pickled in the run dir."""
    dataset = Dataset.load(run.dataset)
    split = split_holdout(dataset.X, dataset.y, settings.split.holdout_days, settings.purge_gap)
    trained = train_model(
        model,
        split.X_train,
        split.y_train,
        settings,
        threads=threads,
        warm_start_params=warm_start_params(settings, model),
    )
    path = run.trained(model)
    path.write_bytes(pickle.dumps(trained, protocol=PICKLE_PROTOCOL))
    return path


def load_trained(run: RunDir, models: list[str]) -> dict[str, TrainedModel]:
    return {model: pickle.loads(run.trained(model).read_bytes()) for model in models}


def ensemble_stage(settings: Settings, run: RunDir, models: list[str]) -> Path:
    """Weights from the members' out-of-fold predictions (never the holdout), then the ensemble."""
    started = time.perf_counter()
    trained = load_trained(run, models)
    dataset = Dataset.load(run.dataset)
    first = trained[models[0]]
    y_oof = dataset.y.reindex(first.oof_index).to_numpy()
    fit = fit_weights({name: t.oof_proba for name, t in trained.items()}, y_oof)
    ensemble = ProductionEnsemble(
        members={name: t.member for name, t in trained.items()},
        weights=fit.weights,
        feature_names=dataset.feature_names,
        feature_definition_hash=dataset.definition_hash,
    )
    run.ensemble.write_bytes(pickle.dumps(ensemble, protocol=PICKLE_PROTOCOL))
    write_json(run.weights, fit.model_dump(mode="json"))
    _timed(run, "ensemble", started)
    return run.ensemble


# -- 3. evaluation and gate ----------------------------------------------------------------------


@dataclass(frozen=True)
class Champion:
    """The model in production when the challenger was evaluated (None fields without one)."""

    model: ProductionEnsemble | None
    version: str | None
    recorded_macro_f1: float | None
    note: str | None
    live_version: str | None
    """What production pointed to at evaluation, verified or not: promotion checks it is unchanged."""


def load_champion(settings: Settings) -> Champion:
    """The production model, hash-verified; a tampered one is reported, never used."""
    live = production_version(settings.paths.models_dir)
    try:
        loaded = load_production(settings.paths.models_dir)
    except NoProductionModelError:
        return Champion(None, None, None, "no model in production yet", live)
    except ModelStoreError as exc:
        logger.error("the production model failed verification and is not used as champion: %s", exc)
        return Champion(None, None, None, f"the production model failed verification: {exc}", live)
    return Champion(loaded.model, loaded.metadata.version, loaded.metadata.macro_f1, None, live)


def evaluate_stage(settings: Settings, run: RunDir) -> Path:
    """Score members, ensemble, naive baselines and the champion on the same never-seen holdout."""
    started = time.perf_counter()
    dataset = Dataset.load(run.dataset)
    ensemble: ProductionEnsemble = pickle.loads(run.ensemble.read_bytes())
    split = split_holdout(dataset.X, dataset.y, settings.split.holdout_days, settings.purge_gap)
    holdout = split.X_holdout.index
    champion = load_champion(settings)
    result = evaluate_holdout(
        ensemble,
        split.X_holdout,
        split.y_holdout,
        dataset.next_return.loc[holdout],
        dataset.y.loc[dataset.y.index < holdout[0]],
        horizon=dataset.horizon,
        fee_rate=settings.evaluation.fee_rate,
        seed=settings.training.seed,
        champion=champion.model,
    )
    if champion.note and result.champion_note is None:
        result = result.model_copy(update={"champion_note": champion.note})
    write_json(run.evaluation, result.model_dump(mode="json"))
    write_json(run.equity_curves, result.equity_curves)
    write_json(
        run.champion,
        {
            "version": champion.version,
            "recorded_macro_f1": champion.recorded_macro_f1,
            "note": champion.note,
            "live_version": champion.live_version,
        },
    )
    _timed(run, "evaluation", started)
    return run.evaluation


def load_evaluation(run: RunDir) -> EvaluationResult:
    result = EvaluationResult.model_validate(read_json(run.evaluation))
    return result.model_copy(update={"equity_curves": read_json(run.equity_curves)})


def gate_stage(settings: Settings, run: RunDir) -> GateDecision:
    decision = evaluate_gate(load_evaluation(run), settings.gate)
    write_json(run.decision, decision.model_dump(mode="json"))
    return decision


# -- 4. publish ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Publication:
    version: str | None
    status: str
    """'promoted', 'rejected', or 'dry-run' (nothing stored)."""
    previous_version: str | None


def _metrics(evaluation: ModelEvaluation) -> dict[str, Any]:
    return {
        **evaluation.scores.model_dump(mode="json"),
        "trading": evaluation.trading.model_dump(mode="json"),
    }


def performance_metrics(evaluation: EvaluationResult, champion_version: str | None) -> dict[str, Any]:
    """The metadata's metrics: the ensemble first, then members, baselines and the champion comparison."""
    champion = None
    if evaluation.champion is not None:
        champion = {**_metrics(evaluation.champion), "version": champion_version}
    return {
        "ensemble": _metrics(evaluation.models[ENSEMBLE]),
        "models": {name: _metrics(ev) for name, ev in evaluation.models.items() if name != ENSEMBLE},
        "baselines": {name: _metrics(ev) for name, ev in evaluation.baselines.items()},
        "champion": champion,
        "champion_note": evaluation.champion_note,
        "holdout": {
            "start": evaluation.holdout_start.isoformat(),
            "end": evaluation.holdout_end.isoformat(),
            "rows": evaluation.n_rows,
            "class_support": evaluation.class_support,
        },
    }


def build_metadata(
    settings: Settings, run: RunDir, models: list[str], decision: GateDecision, flow_run_id: str | None
) -> ModelMetadata:
    dataset = Dataset.load(run.dataset)
    trained = load_trained(run, models)
    evaluation = load_evaluation(run)
    champion = read_json(run.champion)
    source = read_json(run.source)
    weights = read_json(run.weights)
    durations = read_json(run.durations) | {f"tune_{m}": t.study.tuning_s for m, t in trained.items()}
    metrics = performance_metrics(evaluation, champion["version"])
    metrics["cv"] = {m: {"macro_f1": t.cv_macro_f1, "folds": t.cv_fold_macro_f1} for m, t in trained.items()}
    metrics["oof_weight_fit"] = weights
    described = dataset.describe()
    return ModelMetadata(
        model_type="ProductionEnsemble",
        feature_names=dataset.feature_names,
        feature_hash=dataset.definition_hash,
        classes=list(CLASSES),
        class_encoding={name: code for code, name in enumerate(CLASSES)},
        performance_metrics=metrics,
        model_weights=weights["weights"],
        best_params={m: t.best_params | {"n_rounds": t.best_iteration} for m, t in trained.items()},
        training_info=TrainingInfo(
            samples_count=described["rows"],
            data_start=dataset.X.index[0].to_pydatetime(),
            data_end=dataset.X.index[-1].to_pydatetime(),
            data_source={k: v for k, v in source.items() if k != "data_sha256"},
            data_sha256=source["data_sha256"],
            class_distribution=dataset.class_distribution(),
            label_horizon=dataset.horizon,
            label_threshold=dataset.threshold,
            cross_validation=CrossValidationInfo(
                n_splits=settings.split.n_splits,
                purge_gap=settings.purge_gap,
                holdout_days=settings.split.holdout_days,
                validation_fraction=settings.split.validation_fraction,
            ),
            durations_s=durations,
        ),
        git=collect_git_info(),
        library_versions=collect_library_versions(),
        config_hash=settings.config_hash(),
        prefect_flow_run_id=flow_run_id,
        decision=Decision(
            status="promoted" if decision.promote else "rejected",
            reasons=decision.reasons,
            checks=[check.model_dump(mode="json") for check in decision.checks],
        ),
    )


def publish_stage(
    settings: Settings,
    run: RunDir,
    models: list[str],
    *,
    flow_run_id: str | None = None,
    dry_run: bool = False,
) -> Publication:
    """Promote the challenger if the gate passed, else archive it as rejected; `dry_run` stores nothing.

    Promotion is refused if production changed since the challenger was compared with it (another
    run promoted meanwhile): the gate's verdict was about a champion that is no longer live.
    """
    started = time.perf_counter()
    decision = GateDecision.model_validate(read_json(run.decision))
    live_at_evaluation = read_json(run.champion)["live_version"]
    metadata = build_metadata(settings, run, models, decision, flow_run_id)
    if dry_run:
        return Publication(None, "dry-run", live_at_evaluation)
    store = dict(keep=settings.store.keep_versions, lock_timeout=settings.store.lock_timeout_s)
    model_bytes = run.ensemble.read_bytes()
    if decision.promote:
        version = promote(
            settings.paths.models_dir, model_bytes, metadata, expected_live=live_at_evaluation, **store
        )
        status = "promoted"
    else:
        version = archive_rejected(settings.paths.models_dir, model_bytes, metadata, **store)
        status = "rejected"
    _timed(run, "promotion", started)
    logger.info("challenger %s %s (production was %s)", version, status, live_at_evaluation)
    return Publication(version, status, live_at_evaluation)


# -- 5. report -----------------------------------------------------------------------------------


def report_stage(
    settings: Settings, run: RunDir, models: list[str], *, title: str, publication: Publication
) -> str:
    """Write report.md and the plots into the run dir, and beside the stored version when there is one;
    returns the markdown (for the Prefect artifact)."""
    outcome = f"{publication.status} (version {publication.version or 'not stored'})"
    dataset = Dataset.load(run.dataset)
    trained = load_trained(run, models)
    evaluation = load_evaluation(run)
    curves = {
        name: evaluation.equity_curves[name]
        for name in (*evaluation.models, "champion")
        if name in evaluation.equity_curves
    }
    run.report.mkdir(parents=True, exist_ok=True)
    plot_confusion_matrices(evaluation, run.report / "confusion_matrices.png")
    plot_feature_importance(
        {m: t.member.feature_importance() for m, t in trained.items()},
        dataset.feature_names,
        run.report / "feature_importance.png",
    )
    plot_equity_curves(curves, run.report / "equity_curve.png")
    plot_optuna_history({m: t.history for m, t in trained.items()}, run.report / "optuna_history.png")
    markdown = run_report_markdown(
        title=title,
        outcome=outcome,
        source=read_json(run.source),
        quality=DataQualityReport.model_validate(read_json(run.quality)),
        dataset=dataset.describe(),
        evaluation=evaluation,
        decision=GateDecision.model_validate(read_json(run.decision)),
        studies={m: t.study for m, t in trained.items()},
        cv_macro_f1={m: t.cv_macro_f1 for m, t in trained.items()},
        weights=read_json(run.weights)["weights"],
        durations=read_json(run.durations),
    )
    (run.report / "report.md").write_text(markdown)
    if publication.version is not None:
        attach_report(
            settings.paths.models_dir,
            publication.version,
            run.report,
            lock_timeout=settings.store.lock_timeout_s,
        )
    return markdown
