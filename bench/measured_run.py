"""One retrain through `retrain.pipeline.run_pipeline`, measured: stage times, CPU use, peak RSS, scores.

Shared by the bench scripts that time whole retrains. A background thread samples the process's CPU
seconds (all threads) and RSS every `SAMPLE_S`, so CPU utilisation can be read for any stretch of
the run, e.g. only while the studies tune. Stage boundaries come from the run's `durations.json`:
stages run back to back, so each starts where the one before ended.
"""

from __future__ import annotations

import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import psutil

from retrain.pipeline import run_pipeline
from retrain.run_dir import RunDir
from retrain.settings import load_settings
from retrain.training.result import TrainedModel
from retrain.training.threads import available_cores

SAMPLE_S = 0.5
STAGES = ("fetch_validate", "features_labels", "training", "ensemble", "evaluation", "promotion")
"""The timed stages in the order they run (the gate and the report are the untimed rest)."""

DATA_DIR = Path(__file__).resolve().parents[2] / "shared" / "data"
LATEST_BTC = DATA_DIR / "BTCUSDT_BINANCE_15m_20211101_20251022.csv"
"""The 4-year Binance BTC/USDT recording: its last 180 days are the most recent real candles we have."""


@contextmanager
def _store_dir(keep: Path | None) -> Iterator[str]:
    if keep is not None:
        keep.mkdir(parents=True, exist_ok=True)
        yield str(keep)
        return
    with tempfile.TemporaryDirectory(prefix="retrain-bench-") as scratch:
        yield scratch


class ResourceSampler:
    """Samples (wall s, process CPU s, RSS bytes) in a daemon thread until stopped."""

    def __init__(self) -> None:
        self._process = psutil.Process()
        self._stop = threading.Event()
        self.samples: list[tuple[float, float, int]] = []
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _sample(self) -> None:
        cpu = self._process.cpu_times()
        self.samples.append((time.perf_counter(), cpu.user + cpu.system, self._process.memory_info().rss))

    def _run(self) -> None:
        while not self._stop.wait(SAMPLE_S):
            self._sample()

    def __enter__(self) -> ResourceSampler:
        self._sample()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self._sample()

    def cpu_seconds(self, start: float, end: float) -> float:
        """Process CPU seconds spent between two `perf_counter` instants (interpolated between samples)."""
        times, cpu = np.array([s[0] for s in self.samples]), np.array([s[1] for s in self.samples])
        return float(np.interp(end, times, cpu) - np.interp(start, times, cpu))

    def peak_rss_mib(self) -> float:
        return max(s[2] for s in self.samples) / 2**20


@dataclass
class ModelTiming:
    trials: int
    complete: int
    pruned: int
    tuning_s: float
    final_fit_s: float
    mean_complete_trial_s: float | None
    cv_macro_f1: float
    rounds_per_fit: float | None
    """Boosting rounds per fold fit (best round + early-stopping patience), over all trials, weighted by
    the fold's size (fold k of the expanding window has k parts); None for models without rounds."""


@dataclass
class RetrainMeasurement:
    wall_s: float
    cores: int
    stage_s: dict[str, float]
    stage_cpu: dict[str, float]
    """CPU utilisation per stage: CPU seconds / (wall seconds x cores)."""
    tuning_s: float
    """From the start of training until the last study's tuning ended (final fits overlap it)."""
    tuning_cpu: float
    peak_rss_mib: float
    models: dict[str, ModelTiming]
    holdout_macro_f1: dict[str, float]
    model_mb: float
    status: str
    window: str
    candles: int


def rounds_per_fit(trained: TrainedModel, patience: int) -> float | None:
    fits = [
        (fold + 1, best + patience)
        for trial in trained.history
        for fold, best in enumerate(trial.fold_best_rounds)
    ]
    if not fits:
        return None
    return sum(size * rounds for size, rounds in fits) / sum(size for size, _ in fits)


def measured_retrain(
    csv_path: Path,
    days: int,
    overrides: dict[str, dict[str, Any]] | None = None,
    *,
    dry_run: bool = False,
    keep_store: Path | None = None,
    sequential_reference: bool = False,
) -> RetrainMeasurement:
    """Retrain on the last `days` days of `csv_path` into a fresh model store, measured.

    The store is temporary unless `keep_store` names an empty or missing directory to keep it in.
    `sequential_reference` runs the studies one after another and rebuilds every fold's datasets in
    every trial (add `tuning.pruner: none` to the overrides for the whole reference).
    """
    if keep_store is not None and keep_store.exists() and any(keep_store.iterdir()):
        raise SystemExit(f"--keep-store {keep_store} is not empty: the retrain needs a fresh store")
    with _store_dir(keep_store) as models_dir:
        settings = load_settings(
            **{
                **(overrides or {}),
                "data": {"source": "csv", "csv_path": str(csv_path), "days": days},
                "paths": {"models_dir": models_dir},
            }
        )
        cores = available_cores(settings.training.cores)
        with ResourceSampler() as sampler:
            started = time.perf_counter()
            publication = run_pipeline(
                settings,
                dry_run=dry_run,
                parallel_studies=not sequential_reference,
                reuse_fold_datasets=not sequential_reference,
            )
            wall = time.perf_counter() - started
        run = RunDir(Path(publication.run_dir))
        durations = run.durations()
        trained: dict[str, TrainedModel] = run.read_trained(list(settings.training.models))
        evaluation = run.read_evaluation()
        candles = run.read_candles()
        model_mb = len(run.ensemble_bytes()) / 1e6

    stage_s = {stage: float(durations.get(stage, 0.0)) for stage in STAGES}
    stage_cpu, at = {}, started
    for stage, seconds in stage_s.items():
        stage_cpu[stage] = sampler.cpu_seconds(at, at + seconds) / (seconds * cores) if seconds > 0 else 0.0
        if stage == "training":
            training_start = at
        at += seconds
    tuning_s = max(t.study.tuning_s for t in trained.values())
    return RetrainMeasurement(
        wall_s=wall,
        cores=cores,
        stage_s=stage_s,
        stage_cpu=stage_cpu,
        tuning_s=tuning_s,
        tuning_cpu=sampler.cpu_seconds(training_start, training_start + tuning_s) / (tuning_s * cores),
        peak_rss_mib=sampler.peak_rss_mib(),
        models={
            m: ModelTiming(
                trials=t.study.n_trials,
                complete=t.study.n_complete,
                pruned=t.study.n_pruned,
                tuning_s=t.study.tuning_s,
                final_fit_s=t.study.final_fit_s,
                mean_complete_trial_s=t.study.mean_complete_trial_s,
                cv_macro_f1=t.cv_macro_f1,
                rounds_per_fit=rounds_per_fit(t, settings.training.early_stopping_rounds),
            )
            for m, t in trained.items()
        },
        holdout_macro_f1={name: e.scores.macro_f1 for name, e in evaluation.models.items()},
        model_mb=model_mb,
        status=publication.status,
        window=f"{candles.index[0]:%Y-%m-%d %H:%M} .. {candles.index[-1]:%Y-%m-%d %H:%M} UTC",
        candles=len(candles),
    )
