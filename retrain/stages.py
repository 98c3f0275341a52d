"""The stage bodies of one retrain, each reading its inputs from and writing its results to a `RunDir`.

Each returns a small typed hand-off (`retrain.handoffs`). The order they run in is defined once, in
`retrain.sequence`; `tasks/` wraps each one in a retryable Prefect task. Prefect-free.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pandas as pd

from retrain.champion import load_champion
from retrain.data.candles import CandleSource
from retrain.data.loading import load_candles
from retrain.data.validation import DataQualityReport
from retrain.dataset import DatasetSummary, build_dataset
from retrain.ensemble import ProductionEnsemble
from retrain.errors import CandleValidationError
from retrain.evaluation import ENSEMBLE, evaluate_holdout
from retrain.features import FeatureManager, FeatureParams
from retrain.gate import GateDecision, evaluate_gate
from retrain.handoffs import (
    CandleWindow,
    EnsembleRef,
    EvaluationSummary,
    Publication,
    SourceRecord,
    TrainedModelRef,
)
from retrain.monitor.reference import REFERENCE_FILE, build_reference
from retrain.publication import build_metadata, publish
from retrain.report import write_report
from retrain.run_dir import RunDir
from retrain.settings import (
    EnsembleSettings,
    FeatureSettings,
    GateSettings,
    LabelSettings,
    Settings,
    SignalSettings,
)
from retrain.signals import fit_signals
from retrain.store import attach_report
from retrain.training.split import split_holdout
from retrain.training.threads import CoreShare
from retrain.training.train import train_model
from retrain.training.tuning import ProgressCallback
from retrain.weights import combined_proba, fit_combination

logger = logging.getLogger(__name__)


@contextmanager
def _timed(run: RunDir, stage: str) -> Iterator[None]:
    started = time.perf_counter()
    yield
    run.record_duration(stage, time.perf_counter() - started)


def fetch_stage(
    settings: Settings, run: RunDir, source: CandleSource | None = None, now: pd.Timestamp | None = None
) -> CandleWindow:
    """Fetch and validate the candles; the quality report is written even when validation fails."""
    with _timed(run, "fetch_validate"):
        try:
            loaded = load_candles(settings.data, source=source, now=now)
        except CandleValidationError as exc:
            if isinstance(exc.report, DataQualityReport):
                run.write_quality(exc.report)
            raise
        source_record = SourceRecord(description=loaded.source, data_sha256=loaded.data_hash)
        run.write_candles(loaded.candles, source_record, loaded.report)
    window = CandleWindow(
        market=source_record.market,
        start=loaded.candles.index[0].to_pydatetime(),
        end=loaded.candles.index[-1].to_pydatetime(),
        rows=len(loaded.candles),
        missing_candles=loaded.report.missing_candles,
    )
    logger.info("fetched %s", window.sentence())
    return window


def dataset_stage(
    labels: LabelSettings, run: RunDir, features: FeatureSettings | None = None
) -> DatasetSummary:
    """Features (the configured groups; default the base set) and labels from the validated candles, saved
    as one Parquet file."""
    with _timed(run, "features_labels"):
        manager = FeatureManager(FeatureParams.from_settings(features)) if features else None
        dataset = build_dataset(run.read_candles(), labels, manager)
        run.write_dataset(dataset)
    return dataset.summary()


def train_stage(
    settings: Settings,
    run: RunDir,
    model: str,
    threads: int | CoreShare,
    reuse_fold_datasets: bool = True,
    warm_start: dict[str, Any] | None = None,
    on_trial: ProgressCallback | None = None,
) -> TrainedModelRef:
    """Tune and fit one model on the non-holdout rows; its `TrainedModel` is pickled in the run dir.
    `warm_start` is the production model's parameters (read by the caller, beside the store; the study
    may run on a host without it); `on_trial` hears where the study stands after each trial."""
    dataset = run.read_dataset()
    split = split_holdout(dataset.X, dataset.y, settings.split.holdout_days, settings.purge_gap)
    trained = train_model(
        model,
        split.X_train,
        split.y_train,
        training=settings.training,
        tuning=settings.tuning,
        split=settings.split,
        labels=settings.labels,
        threads=threads,
        warm_start_params=warm_start,
        reuse_fold_datasets=reuse_fold_datasets,
        on_trial=on_trial,
    )
    return TrainedModelRef(
        model=model,
        path=run.write_trained(trained),
        cv_macro_f1=trained.cv_macro_f1,
        n_trials=trained.study.n_trials,
        n_pruned=trained.study.n_pruned,
        tuning_s=trained.study.tuning_s,
    )


def ensemble_stage(
    ensemble: EnsembleSettings, signals: SignalSettings, run: RunDir, models: list[str]
) -> EnsembleRef:
    """The members' combination, calibration and HOLD threshold, all fitted on their out-of-fold
    predictions (never the holdout), then the ensemble."""
    with _timed(run, "ensemble"):
        trained = run.read_trained(models)
        dataset = run.read_dataset()
        y_oof = dataset.y.reindex(trained[models[0]].oof_index).to_numpy()
        oof_proba = {name: t.oof_proba for name, t in trained.items()}
        balanced = ensemble.stacker_class_weight == "balanced"
        fit, stacker = fit_combination(ensemble.weights, oof_proba, y_oof, balanced=balanced)
        calibrator, signal_fit = fit_signals(combined_proba(oof_proba, fit.weights, stacker), y_oof, signals)
        production = ProductionEnsemble(
            members={name: t.member for name, t in trained.items()},
            weights=fit.weights,
            feature_names=dataset.feature_names,
            feature_definition_hash=dataset.definition_hash,
            feature_params=dataset.feature_params,
            stacker=stacker,
            calibrator=calibrator,
            confidence_threshold=signal_fit.confidence_threshold,
        )
        path = run.write_ensemble(production, fit, signal_fit)
    logger.info(
        "ensemble weights %s (%s, OOF macro-F1 %.4f)",
        ", ".join(f"{name} {weight:.1f}" for name, weight in fit.weights.items()),
        fit.method,
        fit.oof_macro_f1,
    )
    return EnsembleRef(path=path, weights=fit.weights, oof_macro_f1=fit.oof_macro_f1)


def evaluate_stage(settings: Settings, run: RunDir) -> EvaluationSummary:
    """Score members, ensemble, naive baselines and the champion on the same never-seen holdout."""
    with _timed(run, "evaluation"):
        dataset = run.read_dataset()
        split = split_holdout(dataset.X, dataset.y, settings.split.holdout_days, settings.purge_gap)
        holdout = split.X_holdout.index
        champion = load_champion(settings.paths.models_dir)
        result = evaluate_holdout(
            run.read_ensemble(),
            split.X_holdout,
            split.y_holdout,
            dataset.next_return.loc[holdout],
            dataset.y.loc[dataset.y.index < holdout[0]],
            horizon=dataset.horizon,
            fee_rate=settings.evaluation.fee_rate,
            seed=settings.training.seed,
            champion=champion.model,
        )
        if champion.record.note and result.champion_note is None:
            result = result.model_copy(update={"champion_note": champion.record.note})
        run.write_evaluation(result, champion.record)
    summary = EvaluationSummary(
        holdout_start=result.holdout_start,
        holdout_end=result.holdout_end,
        rows=result.n_rows,
        ensemble_macro_f1=result.models[ENSEMBLE].scores.macro_f1,
        baselines_macro_f1={name: ev.scores.macro_f1 for name, ev in result.baselines.items()},
        champion_macro_f1=None if result.champion is None else result.champion.scores.macro_f1,
        champion=champion.record,
    )
    logger.info("evaluated: %s", summary.sentence())
    return summary


def gate_stage(gate: GateSettings, run: RunDir) -> GateDecision:
    decision = evaluate_gate(run.read_evaluation(), gate)
    run.write_decision(decision)
    logger.info(
        "gate: %s (%s)", "promote" if decision.promote else "keep the champion", "; ".join(decision.reasons)
    )
    return decision


def publish_stage(
    settings: Settings,
    run: RunDir,
    models: list[str],
    decision: GateDecision,
    evaluation: EvaluationSummary,
    flow_run_id: str | None = None,
    dry_run: bool = False,
    trigger: str | None = None,
) -> Publication:
    """Promote the challenger if the gate passed, else archive it as rejected; `dry_run` stores nothing."""
    live_at_evaluation = evaluation.champion.live_version
    if dry_run:
        return Publication(version=None, status="dry-run", previous_version=live_at_evaluation)
    with _timed(run, "promotion"):
        dataset = run.read_dataset()
        split = split_holdout(dataset.X, dataset.y, settings.split.holdout_days, settings.purge_gap)
        ensemble = run.read_ensemble()
        holdout_proba = ensemble.predict_proba(split.X_holdout)
        reference = build_reference(split.X_train, holdout_proba, ensemble.decide(holdout_proba))
        metadata = build_metadata(
            settings,
            dataset=dataset,
            trained=run.read_trained(models),
            evaluation=run.read_evaluation(),
            champion=evaluation.champion,
            source=run.read_source(),
            weights=run.read_weights(),
            signals=run.read_signals(),
            durations=run.durations(),
            decision=decision,
            flow_run_id=flow_run_id,
            trigger=trigger,
        )
        return publish(
            settings.paths.models_dir,
            settings.store,
            run.ensemble_bytes(),
            metadata,
            promote_it=decision.promote,
            live_at_evaluation=live_at_evaluation,
            companions={REFERENCE_FILE: reference.to_bytes()},
        )


def report_stage(
    settings: Settings, run: RunDir, models: list[str], title: str, publication: Publication
) -> str:
    """Write report.md and the plots into the run dir, and beside the stored version when there is one;
    returns the markdown (for the Prefect artifact)."""
    markdown = write_report(
        run,
        models,
        title=title,
        outcome=f"{publication.status} (version {publication.version or 'not stored'})",
        imbalance=settings.training.imbalance,
    )
    if publication.version is not None:
        attach_report(
            settings.paths.models_dir,
            publication.version,
            run.report_dir,
            lock_timeout=settings.store.lock_timeout_s,
        )
    return markdown
