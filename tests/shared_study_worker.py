"""One process of a shared lightgbm study on demo candles, for tests/test_shared_study.py.

`python tests/shared_study_worker.py ROLE STORAGE N_TRIALS READY GO [WORKER]`: ROLE `main` trains the
model as the flow's training task does (its trials, then the best one's final fit), ROLE `extra` adds
trials as `retrain tune-worker` does. The process prepares its data, touches READY, waits for GO to
exist, then works: so two processes start their trials together, whatever their import times.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import pandas as pd

from retrain.data.demo import DemoSource
from retrain.data.loading import load_candles
from retrain.dataset import build_dataset
from retrain.settings import Settings, TuningSettings, load_settings
from retrain.training import split_holdout, train_model, tune_worker

END = pd.Timestamp("2026-03-01T00:00Z")
SPACE = {
    "lightgbm": {
        "learning_rate": {"type": "float", "low": 0.05, "high": 0.3, "log": True},
        "num_leaves": {"type": "int", "low": 4, "high": 31},
        "min_child_samples": {"type": "int", "low": 5, "high": 100, "log": True},
    }
}


def settings(storage: str, n_trials: int) -> Settings:
    """Cheap trials (20 demo days, 3 folds, at most 100 rounds) with 1 s heartbeats and a 2 s grace."""
    base = load_settings(
        data={"source": "demo", "days": 20},
        split={"holdout_days": 2, "n_splits": 3},
        tuning={
            "storage": storage,
            "n_trials": n_trials,
            "pruner": "none",
            "warm_start": False,
            "heartbeat_s": 1,
            "grace_s": 2,
            "timeout_s": 300,
        },
        training={"models": ["lightgbm"], "max_boost_rounds": 100, "early_stopping_rounds": 10},
    )
    tuning = TuningSettings(**{**base.tuning.model_dump(), "search_spaces": SPACE})
    return base.model_copy(update={"tuning": tuning})


def main(role: str, storage: str, n_trials: int, ready: Path, go: Path, worker: str = "extra") -> None:
    config = settings(storage, n_trials)
    candles = load_candles(config.data, source=DemoSource(end=END), now=END).candles
    dataset = build_dataset(candles, config.labels)
    split = split_holdout(dataset.X, dataset.y, config.split.holdout_days, config.purge_gap)
    parts = {
        "training": config.training,
        "tuning": config.tuning,
        "split": config.split,
        "labels": config.labels,
    }
    ready.touch()
    while not go.exists():
        time.sleep(0.05)
    if role == "main":
        trained = train_model("lightgbm", split.X_train, split.y_train, threads=1, **parts)
        print(f"best #{trained.study.best_trial_number} {trained.cv_macro_f1:.4f}")
    else:
        ran = tune_worker("lightgbm", split.X_train, split.y_train, threads=1, worker=worker, **parts)
        print(f"ran {ran}")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], int(sys.argv[3]), Path(sys.argv[4]), Path(sys.argv[5]), *sys.argv[6:])
