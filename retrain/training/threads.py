"""How many threads each model's study gets, so studies that run together fill the cores without fighting.

Every library here gives the same model whatever its thread count (LightGBM with `deterministic`,
XGBoost `hist`, the forest's per-tree seeds), so threads are a matter of speed only: results do not
depend on whether the studies run in parallel.

With more models than cores (three studies on two cores) each study gets one thread: three
single-threaded workers on two cores is the least oversubscription possible, and a single-threaded
LightGBM/XGBoost never spins at an OpenMP barrier waiting for a descheduled sibling thread, so the
cost is plain time-slicing. As soon as a study finishes, `CoreShare` hands its cores to the studies
still running, so the slowest study does not end alone on one core.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Sequence
from dataclasses import dataclass

HEAVIEST_FIRST: tuple[str, ...] = ("random_forest", "xgboost", "lightgbm")
"""Measured cost order of a trial; spare cores go to the heaviest model first."""


def available_cores(configured: int | None) -> int:
    """The configured cores, else the cores this process may run on."""
    if configured is not None:
        return configured
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def threads_per_model(models: Sequence[str], cores: int) -> dict[str, int]:
    """Split `cores` between models tuned at the same time: an equal share each, the remainder to the
    heaviest models; at least one thread each when there are more models than cores."""
    share, spare = divmod(cores, len(models)) if models else (0, 0)
    by_cost = sorted(
        models, key=lambda m: HEAVIEST_FIRST.index(m) if m in HEAVIEST_FIRST else len(HEAVIEST_FIRST)
    )
    return {model: max(1, share + (1 if rank < spare else 0)) for rank, model in enumerate(by_cost)}


class CoreShare:
    """The cores shared by studies running at the same time; a finished study's cores go to the others.

    Each study asks for its threads before every fold it fits, and says when it is done.
    """

    def __init__(self, models: Sequence[str], cores: int) -> None:
        self.cores = cores
        self._running = list(models)
        self._lock = threading.Lock()

    def threads(self, model: str) -> int:
        with self._lock:
            return threads_per_model(self._running, self.cores).get(model, self.cores)

    def finish(self, model: str) -> None:
        with self._lock:
            if model in self._running:
                self._running.remove(model)


@dataclass(frozen=True)
class WorkerCores:
    """Threads decided where the study runs (a Dask worker, another host), not where it was submitted.

    A `CoreShare` holds a lock and lives in one process; this is what crosses to a worker instead.
    """

    configured: int | None

    def on_worker(self, concurrent_tasks: int) -> int:
        """The worker host's cores (or the configured count) split between the tasks it runs at once."""
        return max(1, available_cores(self.configured) // max(1, concurrent_tasks))


def training_threads(
    models: Sequence[str], configured_cores: int | None, parallel: bool, on_workers: bool = False
) -> int | CoreShare | WorkerCores:
    """What each study gets: `WorkerCores` when the studies run on other processes' cores, a `CoreShare`
    when they run together here, else all the cores."""
    if on_workers:
        return WorkerCores(configured_cores)
    cores = available_cores(configured_cores)
    return CoreShare(models, cores) if parallel else cores
