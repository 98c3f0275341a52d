"""A real Dask cluster on 127.0.0.1 for the tests and the bench: `dask scheduler` and `dask worker`
processes on free ports, torn down afterwards."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DASK = Path(sys.executable).parent / "dask"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextmanager
def local_dask_cluster(workers: int, *, timeout_s: float = 120.0) -> Iterator[str]:
    """Start a scheduler and `workers` single-threaded workers; yield the scheduler's address once every
    worker has joined. The processes run from the project root, so they import its packages."""
    from distributed import Client

    address = f"tcp://127.0.0.1:{free_port()}"
    env = {**os.environ, "PYTHONPATH": str(PROJECT_ROOT)}
    quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL, "cwd": PROJECT_ROOT, "env": env}
    processes = [
        subprocess.Popen(
            [str(DASK), "scheduler", "--host", "127.0.0.1", "--port", address.rsplit(":", 1)[1]]
            + ["--no-dashboard"],
            **quiet,
        )
    ]
    try:
        processes += [
            subprocess.Popen(
                [str(DASK), "worker", address, "--nthreads", "1", "--nworkers", "1", "--no-dashboard"]
                + ["--name", f"worker-{index}", "--host", "127.0.0.1"],
                **quiet,
            )
            for index in range(workers)
        ]
        with Client(address, timeout=timeout_s) as client:
            client.wait_for_workers(workers, timeout=timeout_s)
        yield address
    finally:
        for process in reversed(processes):
            process.terminate()
        deadline = time.monotonic() + 30
        for process in processes:
            try:
                process.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def executed_per_worker(address: str) -> dict[str, int]:
    """Tasks each worker of the cluster has executed, by worker name."""
    from distributed import Client

    with Client(address, timeout=60) as client:
        counts = client.run(lambda dask_worker: dask_worker.state.executed_count)
        names = {addr: info["name"] for addr, info in client.scheduler_info()["workers"].items()}
    return {str(names[addr]): int(count) for addr, count in counts.items()}
