"""Publication: the challenger's metadata, and its promotion into production or its archiving as rejected.

Promotion is refused if production changed since the challenger was compared with it (another run
promoted meanwhile): the gate's verdict was about a champion that is no longer live. A dry run stores
nothing and builds no metadata (no git subprocess, no library scan).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from retrain.dataset import Dataset
from retrain.evaluation import ENSEMBLE, EvaluationResult, ModelEvaluation
from retrain.gate import GateDecision
from retrain.handoffs import ChampionRecord, Publication, SourceRecord
from retrain.labels import CLASSES
from retrain.settings import Settings, StoreSettings
from retrain.store import (
    CrossValidationInfo,
    Decision,
    ModelMetadata,
    TrainingInfo,
    archive_rejected,
    collect_git_info,
    collect_library_versions,
    promote,
)
from retrain.training.result import TrainedModel
from retrain.weights import WeightFit

logger = logging.getLogger(__name__)


def _metrics(evaluation: ModelEvaluation) -> dict[str, Any]:
    return {
        **evaluation.scores.model_dump(mode="json"),
        "trading": evaluation.trading.model_dump(mode="json"),
    }


def performance_metrics(evaluation: EvaluationResult, champion_version: str | None) -> dict[str, Any]:
    """The metadata's metrics: the ensemble's headline scores first, as the bot reads them (`f1_score`,
    `accuracy`, `precision`, `recall`: macro averages over the classes), then each member, the
    baselines and the champion comparison."""
    ensemble = evaluation.models[ENSEMBLE].scores
    per_class = list(ensemble.per_class.values())
    champion = None
    if evaluation.champion is not None:
        champion = {**_metrics(evaluation.champion), "version": champion_version}
    return {
        "macro_f1": ensemble.macro_f1,
        "f1_score": ensemble.macro_f1,
        "accuracy": ensemble.accuracy,
        "precision": float(np.mean([scores.precision for scores in per_class])),
        "recall": float(np.mean([scores.recall for scores in per_class])),
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
    settings: Settings,
    *,
    dataset: Dataset,
    trained: dict[str, TrainedModel],
    evaluation: EvaluationResult,
    champion: ChampionRecord,
    source: SourceRecord,
    weights: WeightFit,
    durations: dict[str, float],
    decision: GateDecision,
    flow_run_id: str | None,
    trigger: str | None = None,
) -> ModelMetadata:
    """Everything recorded beside the model: scores, parameters, data, code and configuration."""
    metrics = performance_metrics(evaluation, champion.version)
    metrics["cv"] = {m: {"macro_f1": t.cv_macro_f1, "folds": t.cv_fold_macro_f1} for m, t in trained.items()}
    metrics["oof_weight_fit"] = weights.model_dump(mode="json")
    return ModelMetadata(
        model_type="ProductionEnsemble",
        feature_names=dataset.feature_names,
        feature_hash=dataset.definition_hash,
        classes=list(CLASSES),
        class_encoding={name: code for code, name in enumerate(CLASSES)},
        performance_metrics=metrics,
        model_weights=weights.weights,
        best_params={m: t.best_params | {"n_rounds": t.best_iteration} for m, t in trained.items()},
        training_info=TrainingInfo(
            samples_count=len(dataset),
            data_start=dataset.X.index[0].to_pydatetime(),
            data_end=dataset.X.index[-1].to_pydatetime(),
            data_source=source.description,
            data_sha256=source.data_sha256,
            class_distribution=dataset.class_distribution(),
            label_horizon=dataset.horizon,
            label_threshold=dataset.threshold,
            labels=dataset.labels.model_dump(mode="json") if dataset.labels else None,
            feature_params=dataset.feature_params,
            cross_validation=CrossValidationInfo(
                n_splits=settings.split.n_splits,
                purge_gap=settings.purge_gap,
                holdout_days=settings.split.holdout_days,
                validation_fraction=settings.split.validation_fraction,
            ),
            durations_s=durations | {f"tune_{m}": t.study.tuning_s for m, t in trained.items()},
        ),
        git=collect_git_info(),
        library_versions=collect_library_versions(),
        config_hash=settings.config_hash(),
        prefect_flow_run_id=flow_run_id,
        triggered_by=trigger,
        decision=Decision(
            status="promoted" if decision.promote else "rejected",
            reasons=decision.reasons,
            checks=[check.model_dump(mode="json") for check in decision.checks],
        ),
    )


def publish(
    models_dir: Path,
    store: StoreSettings,
    model_bytes: bytes,
    metadata: ModelMetadata,
    *,
    promote_it: bool,
    live_at_evaluation: str | None,
    companions: Mapping[str, bytes],
) -> Publication:
    """Promote the challenger (compare-and-swap against `live_at_evaluation`), or archive it as rejected;
    `companions` are stored beside it (the monitor's drift reference), hashed in its metadata."""
    options = dict(keep=store.keep_versions, lock_timeout=store.lock_timeout_s, companions=companions)
    if promote_it:
        version = promote(models_dir, model_bytes, metadata, expected_live=live_at_evaluation, **options)
        status = "promoted"
    else:
        version = archive_rejected(models_dir, model_bytes, metadata, **options)
        status = "rejected"
    logger.info("challenger %s %s (production was %s)", version, status, live_at_evaluation or "empty")
    return Publication(version=version, status=status, previous_version=live_at_evaluation)
