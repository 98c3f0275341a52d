"""One model's study on 1 and on 2 Dask workers: wall time, speed-up, and a cost model for N hosts.

A real cluster on this host (`dask scheduler` and `dask worker --nthreads 1` processes, as an operator
starts them, tests/dask_cluster.py). The study is the project's own: the model's configured search
space, its purged CV folds and `CrossValidator` on the demo source's dataset, one thread per trial.
The workers share the study through an Optuna journal file every worker sees, each sampling with its
own seed and TPE's constant liar (trials running elsewhere count as pending), and together they run
`--trials` trials: all on one worker, or half each on two. Libraries are imported on every worker
before the clock starts, so the figures are the study, not the start-up.

Cost model: a fit of the measured times to Amdahl's law, wall(N) = wall(1) x (s + (1 - s) / N), whose
serial share s (the shared storage, the sampler seeing fewer finished trials, cores shared with the
machine's other load) comes from the 2-worker figure; host-hours = N x wall(N).

Run: .venv/bin/python bench/dask_workers.py [--model lightgbm] [--trials 8] [--days 60] [--runs 1]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import optuna
from bench_report import median_and_spread, publish

from retrain.data.loading import load_candles
from retrain.dataset import build_dataset
from retrain.settings import Settings, load_settings
from retrain.training.cross_validation import CrossValidator
from retrain.training.fold_data import FoldData
from retrain.training.learners import make_learner
from retrain.training.search_space import suggest_params
from retrain.training.split import make_folds, split_holdout

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from dask_cluster import local_dask_cluster  # noqa: E402

OUT = Path(__file__).resolve().parents[1] / "BENCHMARKS.md"
TITLE = "Dask workers: one study on 1 and 2 workers, cost for N hosts"
HOSTS = (1, 2, 4, 8, 16)


def prepare_dataset(settings: Settings, target: Path) -> Path:
    """The demo dataset's training rows (holdout removed), as the study sees them, in a Parquet file."""
    loaded = load_candles(settings.data)
    dataset = build_dataset(loaded.candles, settings.labels)
    split = split_holdout(dataset.X, dataset.y, settings.split.holdout_days, settings.purge_gap)
    frame = split.X_train.assign(label=split.y_train)
    frame.to_parquet(target)
    return target


def run_trials(
    settings: Settings, model: str, dataset: Path, storage: Path, study_name: str, trials: int, seed: int
) -> int:
    """On a worker: `trials` trials of the shared study, one thread each; returns the trials run."""
    import pandas as pd

    frame = pd.read_parquet(dataset)
    X = frame.drop(columns="label").to_numpy(dtype=np.float64)
    y = frame["label"].to_numpy().astype(np.int8)
    learner = make_learner(model, settings.training)
    space = settings.tuning.search_spaces.get(model, {})
    folds = make_folds(
        len(X), settings.split.n_splits, settings.purge_gap, settings.split.validation_fraction
    )
    data = FoldData(learner, X, y, smote=settings.training.smote, seed=settings.training.seed, reuse=True)
    cv = CrossValidator(learner, X, y, folds, data)
    backend = optuna.storages.journal.JournalFileBackend(str(storage))
    study = optuna.load_study(
        study_name=study_name,
        storage=optuna.storages.JournalStorage(backend),
        sampler=optuna.samplers.TPESampler(seed=seed, constant_liar=True),
    )
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study.optimize(lambda trial: cv.run(suggest_params(trial, space), lambda: 1).macro_f1, n_trials=trials)
    return trials


def _warm_up() -> None:
    """Import the training libraries on a worker before timing."""
    import lightgbm  # noqa: F401
    import sklearn.ensemble  # noqa: F401
    import xgboost  # noqa: F401


def timed_study(
    settings: Settings, model: str, dataset: Path, workers: int, trials: int, workdir: Path
) -> tuple[float, int]:
    """Wall time of one study of `trials` trials split over `workers` workers; and the trials stored."""
    from distributed import Client

    storage = workdir / f"study-{workers}-{time.monotonic_ns()}.journal"
    backend = optuna.storages.journal.JournalFileBackend(str(storage))
    study = optuna.create_study(
        study_name="bench", storage=optuna.storages.JournalStorage(backend), direction="maximize"
    )
    shares = [trials // workers + (1 if rank < trials % workers else 0) for rank in range(workers)]
    with local_dask_cluster(workers) as address, Client(address) as client:
        client.run(_warm_up)
        worker_addresses = list(client.scheduler_info()["workers"])
        started = time.perf_counter()
        futures = [
            client.submit(
                run_trials,
                settings,
                model,
                dataset,
                storage,
                "bench",
                share,
                settings.training.seed + rank,
                workers=[worker_addresses[rank]],
                pure=False,
            )
            for rank, share in enumerate(shares)
        ]
        client.gather(futures)
        wall = time.perf_counter() - started
    return wall, len(study.get_trials(deepcopy=False))


def cost_table(one: float, two: float) -> str:
    serial = min(1.0, max(0.0, 2 * two / one - 1))
    lines = [
        f"Serial share fitted from the 2-worker time: s = {serial:.2f} (speed-up on 2 workers {one / two:.2f}x).",
        "",
        "| hosts N | predicted wall time (s) | speed-up | host-seconds (N x wall) |",
        "|---:|---:|---:|---:|",
    ]
    for hosts in HOSTS:
        wall = one * (serial + (1 - serial) / hosts)
        lines.append(f"| {hosts} | {wall:.1f} | {one / wall:.2f}x | {hosts * wall:.1f} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="lightgbm", choices=["lightgbm", "xgboost", "random_forest"])
    parser.add_argument("--trials", type=int, default=8)
    parser.add_argument("--days", type=int, default=60)
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()
    settings = load_settings(data={"source": "demo", "days": args.days})
    with tempfile.TemporaryDirectory(prefix="bench-dask-") as tmp:
        workdir = Path(tmp)
        dataset = prepare_dataset(settings, workdir / "dataset.parquet")
        walls: dict[int, list[float]] = {1: [], 2: []}
        for _ in range(args.runs):
            for workers in walls:
                wall, stored = timed_study(settings, args.model, dataset, workers, args.trials, workdir)
                if stored != args.trials:
                    raise SystemExit(f"{workers} worker(s) stored {stored} trials, expected {args.trials}")
                walls[workers].append(wall)
    one, two = (statistics.median(walls[workers]) for workers in (1, 2))
    body = "\n".join(
        [
            f"{args.model} study, {args.trials} trials in total, demo source, {args.days} days, "
            f"{settings.split.n_splits} folds, one thread per trial; workers share the study through an "
            "Optuna journal file (TPE, constant liar, a seed per worker).",
            "",
            "| workers | study wall time (s) | per trial (s) |",
            "|---:|---:|---:|",
            *(
                f"| {workers} | {median_and_spread(values)} | {statistics.median(values) / args.trials:.2f} |"
                for workers, values in walls.items()
            ),
            "",
            cost_table(one, two),
        ]
    )
    publish(args.out, TITLE, "bench/dask_workers.py", body)


if __name__ == "__main__":
    main()
