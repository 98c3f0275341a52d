"""Where the studies run: the Dask task runner of `execution.engine: dask`, and the per-host global
concurrency limit that keeps the training threads on a host at most its cores (docs/scaling.md)."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from contextlib import contextmanager

from prefect import get_client
from prefect.client.schemas.actions import GlobalConcurrencyLimitCreate
from prefect.concurrency.sync import concurrency
from prefect.exceptions import ObjectAlreadyExists, ObjectNotFound
from prefect.task_runners import TaskRunner

from retrain.errors import ConfigError
from retrain.settings import ExecutionSettings
from retrain.training.threads import available_cores


def dask_task_runner(execution: ExecutionSettings) -> TaskRunner:
    """prefect-dask's runner on the configured scheduler (a temporary local cluster without an address)."""
    try:
        from prefect_dask import DaskTaskRunner
    except ImportError as exc:
        raise ConfigError(
            "execution.engine is dask but prefect-dask is not installed: install the `dask` extra "
            "(uv sync --extra dask, or scripts/setup)"
        ) from exc
    if execution.dask_address is None:
        return DaskTaskRunner()
    return DaskTaskRunner(address=execution.dask_address)


def worker_slots() -> int:
    """Tasks the Dask worker running this code runs at once (its --nthreads); 1 outside a worker."""
    try:
        from distributed import get_worker
    except ImportError:
        return 1
    try:
        return int(get_worker().state.nthreads)
    except ValueError:
        return 1


def worker_name() -> str:
    """The Dask worker's address, else this host's name (recorded with each study)."""
    try:
        from distributed import get_worker

        return str(get_worker().address)
    except (ImportError, ValueError):
        return socket.gethostname()


LEASE_S = 60.0
"""The slots' lease, renewed while a study trains: when a run dies (killed, or its server went away) its
slots come back within about a minute instead of Prefect's default 300 s, during which the host's next
run would wait (measured by the fault matrix's server-stopped case)."""


def host_limit_name() -> str:
    return f"training-threads-{socket.gethostname()}"


@contextmanager
def host_training_threads(threads: int) -> Iterator[int]:
    """Hold `threads` slots of this host's `training-threads-<host>` global concurrency limit while
    training; the limit is created with the host's cores when missing (an operator may change it).
    Yields the slots held: at most the limit, so a study never waits for more than the host has."""
    name = host_limit_name()
    with get_client(sync_client=True) as client:
        try:
            limit = client.read_global_concurrency_limit_by_name(name).limit
        except ObjectNotFound:
            limit = available_cores(None)
            try:
                client.create_global_concurrency_limit(GlobalConcurrencyLimitCreate(name=name, limit=limit))
            except ObjectAlreadyExists:
                limit = client.read_global_concurrency_limit_by_name(name).limit
    held = max(1, min(threads, limit))
    with concurrency(name, occupy=held, strict=True, lease_duration=LEASE_S):
        yield held
