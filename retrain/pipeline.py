"""The same retrain as the Prefect flow, called directly: for benchmarks (orchestration overhead) and for
debugging a stage without a Prefect server. Production runs go through `flows/retrain.py`.
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

from retrain import stages
from retrain.data.candles import CandleSource
from retrain.run_dir import RunDir, record_duration
from retrain.settings import Settings
from retrain.training.threads import training_threads


def train_all(settings: Settings, run: RunDir) -> None:
    """Every model's study at once on shared cores, or one after another with all cores each."""
    started = time.perf_counter()
    models = list(settings.training.models)
    threads = training_threads(models, settings.training.cores, settings.training.parallel)
    if not settings.training.parallel:
        for model in models:
            stages.train_stage(settings, run, model, threads=threads)
    else:
        with ThreadPoolExecutor(max_workers=len(models)) as pool:
            futures = [
                pool.submit(stages.train_stage, settings, run, model, threads=threads) for model in models
            ]
            for future in futures:
                future.result()
    record_duration(run, "training", time.perf_counter() - started)


def run_pipeline(
    settings: Settings, *, source: CandleSource | None = None, dry_run: bool = False
) -> stages.Publication:
    """Fetch, train, evaluate, gate and publish once, without Prefect."""
    run = RunDir(Path(settings.paths.runs_dir) / f"{datetime.now(UTC):%Y%m%dT%H%M%S%fZ}-direct")
    models = list(settings.training.models)
    stages.fetch_stage(settings, run, source=source)
    stages.dataset_stage(settings, run)
    train_all(settings, run)
    stages.ensemble_stage(settings, run, models)
    stages.evaluate_stage(settings, run)
    stages.gate_stage(settings, run)
    publication = stages.publish_stage(settings, run, models, dry_run=dry_run)
    stages.report_stage(settings, run, models, title=f"Retrain {run.root.name}", publication=publication)
    return publication
