"""Pieces shared by the model store tests: a model that proves whether it was unpickled, metadata
builders, and the bodies of the child processes (a promoter that gets SIGKILLed, concurrent readers).

Run as a script, it is the launcher that forks the promoters the SIGKILL test kills.
"""

from __future__ import annotations

import itertools
import json
import multiprocessing
import os
import pickle
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from retrain.store import (
    CrossValidationInfo,
    Decision,
    GitInfo,
    ModelMetadata,
    TrainingInfo,
    load_production,
    promote,
)

CLASSES = ["SELL", "HOLD", "BUY"]
LARGE_PADDING = bytes(range(256)) * 2048  # 512 KiB: widens the window in which a kill lands mid-write


class VersionedModel:
    """Stands in for the ensemble. Knows the version it was stored as, so a mixed pair is detectable.

    When `marker` is set, unpickling creates that file: the proof that something was unpickled.
    """

    def __init__(self, version: str, padding: bytes = b"", marker: Path | None = None) -> None:
        self.version = version
        self.padding = padding
        self.marker = str(marker) if marker else None

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        if self.marker:
            Path(self.marker).touch()


def make_metadata(
    *, status: str = "promoted", macro_f1: float = 0.42, created_at: datetime | None = None
) -> ModelMetadata:
    """Metadata as the retrain flow fills it (every section present)."""
    return ModelMetadata(
        created_at=created_at or datetime.now(UTC),
        model_type="ProductionEnsemble",
        feature_names=["ret_1", "rsi_14", "atr_14"],
        feature_hash="f" * 64,
        classes=CLASSES,
        class_encoding={name: code for code, name in enumerate(CLASSES)},
        performance_metrics={
            "ensemble": {"accuracy": 0.51, "macro_f1": macro_f1},
            "models": {"lightgbm": {"macro_f1": macro_f1 - 0.01}},
            "baselines": {"always_hold": {"macro_f1": 0.2}},
        },
        model_weights={"lightgbm": 0.5, "xgboost": 0.3, "random_forest": 0.2},
        best_params={"lightgbm": {"num_leaves": 31}},
        training_info=TrainingInfo(
            samples_count=15_000,
            data_start=datetime(2026, 5, 1, tzinfo=UTC),
            data_end=datetime(2026, 11, 1, tzinfo=UTC),
            data_source={"kind": "demo", "seed": 7},
            data_sha256="d" * 64,
            class_distribution={"SELL": 4000, "HOLD": 7000, "BUY": 4000},
            label_horizon=4,
            label_threshold=0.005,
            cross_validation=CrossValidationInfo(
                n_splits=5, purge_gap=4, holdout_days=14, validation_fraction=0.15
            ),
            durations_s={"tune": 12.5, "train": 3.0},
        ),
        git=GitInfo(commit="c" * 40, branch="main", dirty=False),
        library_versions={"numpy": "2.4.0", "xgboost": None},
        config_hash="e" * 64,
        decision=Decision(
            status=status,
            reasons=["every gate check passed" if status == "promoted" else "min_macro_f1: too low"],
        ),
    )


def promote_new(models_dir: Path, *, padding: bytes = b"", marker: Path | None = None, **kwargs: Any) -> str:
    """Promote a fresh VersionedModel whose embedded version is its metadata's."""
    metadata = make_metadata()
    return promote(models_dir, VersionedModel(metadata.version, padding, marker), metadata, **kwargs)


def forkserver_context() -> multiprocessing.context.ForkServerContext:
    """Processes forked from a server that already imported the store, not from pytest's process."""
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(["retrain.store", "retrain.settings"])
    return context


def promote_forever(models_dir: str) -> None:
    """Body of the SIGKILL test's victim: promote alternating small and large models until killed."""
    for count in itertools.count():
        promote_new(Path(models_dir), padding=LARGE_PADDING if count % 2 else b"", keep=3)


def serve_promoters(models_dir: str) -> None:
    """For each line on stdin, fork a promoter; answer its pid, then its wait status once it died.

    Forking from this small, already-initialised process starts a victim in about a millisecond,
    which keeps hundreds of kills fast.
    """
    for _ in sys.stdin:
        pid = os.fork()
        if pid == 0:
            try:
                promote_forever(models_dir)
            finally:
                os._exit(1)
        print(pid, flush=True)
        _, status = os.waitpid(pid, 0)
        print(status, flush=True)


def read_forever(models_dir: str, index: int, stop: Any, loads: Any, problems: Any) -> None:
    """Child body of the concurrency test: load through the store, check the pair belongs together."""
    while not stop.is_set():
        try:
            loaded = load_production(models_dir)
            if loaded.model.version != loaded.metadata.version:
                problems.put(f"reader {index}: model {loaded.model.version} with {loaded.metadata.version}")
        except Exception as exc:
            problems.put(f"reader {index}: {type(exc).__name__}: {exc}")
        loads[index] += 1


def open_paths_forever(models_dir: str, index: int, stop: Any, loads: Any, problems: Any) -> None:
    """Child body standing in for a bot that just opens the fixed paths: each file must be whole."""
    production = Path(models_dir) / "production"
    while not stop.is_set():
        try:
            with open(production / "production_model_metadata.json", "rb") as metadata_file:
                json.load(metadata_file)
            with open(production / "production_ensemble.pkl", "rb") as model_file:
                pickle.load(model_file)
        except Exception as exc:
            problems.put(f"path reader {index}: {type(exc).__name__}: {exc}")
        loads[index] += 1


if __name__ == "__main__":
    # Run through the module's own name, so pickled models name `store_helpers.VersionedModel`,
    # which the test process can import, and not `__main__.VersionedModel`.
    import store_helpers

    from retrain.store import signing_key

    signing_key()  # reads the configuration once, as the flow's process has before it promotes

    store_helpers.serve_promoters(sys.argv[1])
