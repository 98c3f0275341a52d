"""The fault matrix's Prefect case: the Prefect server stopped in the middle of a `retrain run`.

A real server (`scripts/prefect-server`, its own PREFECT_HOME, 127.0.0.1) and `retrain run` pointed at
it with PREFECT_API_URL, as an operator runs it. The server is stopped while the run trains; then:
the run must fail (exit 1, one line naming the lost connection) with nothing promoted, the store
consistent and its lock free; after the server is started again (same home, same port) the flow run
shows what an operator sees, and the next run completes.

`PREFECT_CLIENT_MAX_RETRIES=1` keeps the case short: with Prefect's default (5 retries with backoff)
the run gives up about 140 s after the server went away instead of about 20 s; the outcome is the same.
"""

from __future__ import annotations

import contextlib
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

PROJECT_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(PROJECT_ROOT / "tests"))

from prefect_stack import _free_port, _start, _stop, _subprocess_env, _wait_for_health  # noqa: E402

RUN_TIMEOUT_S = 600
NAME = "Prefect server stopped during training"
MUST_HOLD = (
    "the run fails (exit 1, one line naming the lost connection), production unchanged, store consistent, "
    "lock free; next run completes once the server is back"
)


@dataclass
class PrefectServer:
    """`scripts/prefect-server` on a fixed port and home, so it can be stopped and started again."""

    root: Path
    port: int
    env: dict[str, str]
    process: subprocess.Popen[bytes] | None = None

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/api"

    def start(self) -> None:
        self.process = _start("prefect-server", {**self.env, "PORT": str(self.port)}, self.log, "--no-ui")
        _wait_for_health(self.api_url, self.process, self.log)

    def stop(self) -> None:
        if self.process is not None:
            _stop(self.process)
            self.process = None

    @property
    def log(self) -> Path:
        return self.root / "server.log"

    def flow_runs(self) -> list[dict[str, Any]]:
        response = httpx.post(f"{self.api_url}/flow_runs/filter", json={"sort": "START_TIME_ASC"}, timeout=30)
        response.raise_for_status()
        return response.json()


@contextlib.contextmanager
def prefect_server(root: Path) -> Iterator[PrefectServer]:
    """A started server under `root`; stopped on exit."""
    root.mkdir(parents=True, exist_ok=True)
    port = _free_port()
    server = PrefectServer(root, port, _subprocess_env(root / "prefect-home", f"http://127.0.0.1:{port}/api"))
    server.start()
    try:
        yield server
    finally:
        server.stop()


def run_command(models_dir: Path) -> list[str]:
    return [
        str(PROJECT_ROOT / ".venv/bin/python"),
        "-m",
        "retrain.cli",
        "run",
        "--source",
        "demo",
        "--days",
        "30",
        "--trials",
        "3",
        "--model",
        "lightgbm",
        "--models-dir",
        str(models_dir),
    ]


def run_env(server: PrefectServer) -> dict[str, str]:
    return {
        **server.env,
        "PREFECT_CLIENT_MAX_RETRIES": "1",
        "RETRAIN_SPLIT__HOLDOUT_DAYS": "7",
        "RETRAIN_TRAINING__CORES": "1",
        "RETRAIN_CONFIG_DIR": str(PROJECT_ROOT / "config"),
    }


@dataclass
class ServerStopped:
    """What one server stop did: the run's exit, the store after it, and the flow run as the server has it."""

    returncode: int | None
    failure_line: str
    """The CLI's one line on failure (`retrain could not run: ...`), or the log's last line."""
    stopped_during: str
    production: str | None
    consistent: bool
    flow_run_state: str
    next_returncode: int
    next_status: str


def stop_server_during_training(server: PrefectServer, models_dir: Path) -> ServerStopped:
    """Start `retrain run`, stop the server once the dataset exists (training starts), and watch."""
    from fault_matrix import inspect_store

    log = models_dir.parent / f"run-{time.time_ns()}.log"
    env = run_env(server)
    with log.open("w") as out:
        run = subprocess.Popen(
            run_command(models_dir), env=env, stdout=out, stderr=subprocess.STDOUT, cwd=PROJECT_ROOT
        )
        deadline = time.monotonic() + RUN_TIMEOUT_S
        while run.poll() is None and not list(models_dir.glob("runs/*/dataset.parquet")):
            if time.monotonic() > deadline:
                break
            time.sleep(0.1)
        trained = list(models_dir.glob("runs/*/trained_*.pkl"))
        server.stop()
        try:
            returncode: int | None = run.wait(timeout=RUN_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            run.kill()
            returncode = None
    lines = [line for line in log.read_text(errors="replace").splitlines() if line.strip()]
    failure = [line for line in lines if line.startswith(("retrain could not run:", "retrain failed:"))]
    state = inspect_store(models_dir)
    server.start()
    ours = [r for r in server.flow_runs() if str(models_dir) in str(r.get("parameters", {}))]
    flow_state = ours[-1]["state"]["name"] if ours else "not found"
    again = subprocess.run(
        run_command(models_dir),
        env=env,
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT_S,
        cwd=PROJECT_ROOT,
    )
    decision = next((line for line in again.stdout.splitlines() if line.startswith("decision:")), "")
    return ServerStopped(
        returncode=returncode,
        failure_line=(failure or lines or [""])[-1],
        stopped_during="training" if not trained else "after training",
        production=state.production,
        consistent=state.consistent,
        flow_run_state=flow_state,
        next_returncode=again.returncode,
        next_status=decision.removeprefix("decision: ").split(" ")[0],
    )


def held(result: ServerStopped, production_before: str | None) -> bool:
    return (
        result.returncode == 1
        and result.failure_line.startswith("retrain could not run:")
        and result.production == production_before
        and result.consistent
        and result.next_returncode == 0
    )


def prefect_server_stopped(scratch: Path, runs: int) -> list[ServerStopped]:
    """`runs` server stops, each during a fresh run into an empty store, against one server."""
    results = []
    with prefect_server(scratch / "prefect") as server:
        for index in range(runs):
            models = scratch / "prefect" / f"models-{index}"
            models.mkdir()
            results.append(stop_server_during_training(server, models))
            print(results[-1], flush=True)
    return results
