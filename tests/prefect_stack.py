"""A real Prefect server, the project's deployments and a process worker, started with the project's own
scripts (scripts/prefect-server, scripts/deploy, scripts/prefect-worker) in a temporary PREFECT_HOME,
and the API calls the deployment tests make on them."""

from __future__ import annotations

import contextlib
import json
import os
import re
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEPLOYMENT = "retrain/weekly"
SERVER_START_TIMEOUT_S = 180
COMMAND_TIMEOUT_S = 300
RUN_TIMEOUT_S = 480
EVENT_TIMEOUT_S = 60
TERMINAL_STATES = {"COMPLETED", "FAILED", "CRASHED", "CANCELLED"}
API_ATTEMPTS = 5
"""Tries per API call of the tests (503 "busy" answers are retried with backoff)."""


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _tail(path: Path, lines: int = 60) -> str:
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


def _stop(process: subprocess.Popen[bytes]) -> None:
    """Terminate a started process and whatever it started (flow runs), then kill what is left."""
    try:
        family = [*psutil.Process(process.pid).children(recursive=True), psutil.Process(process.pid)]
    except psutil.NoSuchProcess:
        return
    for member in family:
        with contextlib.suppress(psutil.NoSuchProcess):
            member.terminate()
    _, alive = psutil.wait_procs(family, timeout=15)
    for member in alive:
        with contextlib.suppress(psutil.NoSuchProcess):
            member.kill()
    psutil.wait_procs(alive, timeout=15)


@dataclass
class PrefectStack:
    """A running server + deployment + worker, and the calls the tests make on them."""

    api_url: str
    env: dict[str, str]
    worker: subprocess.Popen[bytes]
    worker_log: Path

    def run_deployment(self, **params: Any) -> str:
        """`prefect deployment run 'retrain/weekly' --param k=v ...`, as in docs/production.md; the run id."""
        args = [f"--param={key}={json.dumps(value)}" for key, value in params.items()]
        result = subprocess.run(
            [str(PROJECT_ROOT / ".venv/bin/prefect"), "deployment", "run", DEPLOYMENT, *args],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=COMMAND_TIMEOUT_S,
            check=False,
        )
        found = re.search(r"UUID: ([0-9a-f-]{36})", result.stdout)
        assert result.returncode == 0 and found, f"deployment run failed:\n{result.stdout}\n{result.stderr}"
        return found.group(1)

    def create_run(self, *, deployment_name: str = DEPLOYMENT, **params: Any) -> str:
        """A flow run of the deployment through the API: two of these start within milliseconds."""
        deployment = self.get(f"/deployments/name/{deployment_name}")
        return self.post(f"/deployments/{deployment['id']}/create_flow_run", {"parameters": params})["id"]

    def runs_of(self, deployment_name: str) -> list[dict[str, Any]]:
        """Every flow run of a deployment, oldest first."""
        deployment = self.get(f"/deployments/name/{deployment_name}")
        query = {"deployments": {"id": {"any_": [deployment["id"]]}}, "sort": "EXPECTED_START_TIME_ASC"}
        return self.post("/flow_runs/filter", query)

    def get(self, path: str) -> Any:
        return self._request("GET", path)

    def post(self, path: str, body: dict[str, Any]) -> Any:
        return self._request("POST", path, body)

    def _request(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        """One API call, retried on 503: the server answers it when its SQLite database is busy, and
        Prefect's own client retries it the same way."""
        for attempt in range(API_ATTEMPTS):
            response = httpx.request(method, f"{self.api_url}{path}", json=body, timeout=30)
            if response.status_code != 503 or attempt == API_ATTEMPTS - 1:
                break
            time.sleep(0.5 * 2**attempt)
        response.raise_for_status()
        return response.json()

    def wait_until_finished(self, flow_run_id: str) -> dict[str, Any]:
        """The flow run once it reached a terminal state (the test fails after RUN_TIMEOUT_S)."""
        return self.wait_for_state(flow_run_id, TERMINAL_STATES)

    def wait_for_state(self, flow_run_id: str, state_types: set[str]) -> dict[str, Any]:
        deadline = time.monotonic() + RUN_TIMEOUT_S
        while time.monotonic() < deadline:
            flow_run = self.get(f"/flow_runs/{flow_run_id}")
            if flow_run["state"]["type"] in state_types:
                return flow_run
            time.sleep(1)
        pytest.fail(
            f"flow run {flow_run_id} not in {sorted(state_types)} after {RUN_TIMEOUT_S} s "
            f"(state {flow_run['state']['name']}); worker log:\n{_tail(self.worker_log)}"
        )

    def kill_flow_run_processes(self) -> None:
        """SIGKILL the worker's flow-run processes, as the kernel's out-of-memory killer would."""
        for child in psutil.Process(self.worker.pid).children(recursive=True):
            with contextlib.suppress(psutil.NoSuchProcess):
                if "prefect.engine" in child.cmdline():
                    child.kill()

    def wait_for_event(self, name: str, resource_id: str) -> list[dict[str, Any]]:
        """The events named `name` about `resource_id`, once the server has stored at least one."""
        query = {"filter": {"event": {"name": [name]}, "resource": {"id": [resource_id]}}, "limit": 10}
        deadline = time.monotonic() + EVENT_TIMEOUT_S
        while time.monotonic() < deadline:
            events = self.post("/events/filter", query)["events"]
            if events:
                return events
            time.sleep(1)
        pytest.fail(f"no event {name} about {resource_id} after {EVENT_TIMEOUT_S} s")

    def state_names(self, flow_run_id: str) -> set[str]:
        """Every state the flow run went through."""
        return {state["name"] for state in self.get(f"/flow_run_states/?flow_run_id={flow_run_id}")}

    def assert_completed(self, flow_run: dict[str, Any]) -> None:
        assert flow_run["state"]["type"] == "COMPLETED", (
            f"flow run {flow_run['id']} ended {flow_run['state']['name']}: {flow_run['state']['message']}\n"
            f"worker log:\n{_tail(self.worker_log)}"
        )


def _subprocess_env(prefect_home: Path, api_url: str) -> dict[str, str]:
    """The developer's environment without any PREFECT_*/RETRAIN_* setting, pointed at the test server."""
    env = {key: value for key, value in os.environ.items() if not key.startswith(("PREFECT_", "RETRAIN_"))}
    env.update(
        PREFECT_HOME=str(prefect_home),
        PREFECT_API_URL=api_url,
        DO_NOT_TRACK="1",
        PREFECT_SERVER_ANALYTICS_ENABLED="false",
    )
    return env


def _start(script: str, env: dict[str, str], log: Path, *args: str) -> subprocess.Popen[bytes]:
    with log.open("wb") as out:
        return subprocess.Popen(
            [str(PROJECT_ROOT / "scripts" / script), *args], env=env, stdout=out, stderr=subprocess.STDOUT
        )


def _wait_for_health(api_url: str, server: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + SERVER_START_TIMEOUT_S
    while time.monotonic() < deadline:
        if server.poll() is not None:
            pytest.fail(f"prefect server exited with {server.returncode}:\n{_tail(log)}")
        try:
            if httpx.get(f"{api_url}/health", timeout=5).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.5)
    pytest.fail(f"prefect server not healthy after {SERVER_START_TIMEOUT_S} s:\n{_tail(log)}")


@contextlib.contextmanager
def running_stack(root: Path, worker_settings: dict[str, str]) -> Iterator[PrefectStack]:
    """Server, deployments and worker under `root`; `worker_settings` (RETRAIN_*...) go to the worker."""
    port = _free_port()
    api_url = f"http://127.0.0.1:{port}/api"
    env = _subprocess_env(root / "prefect-home", api_url)
    server_env = {
        **env,
        "PORT": str(port),
        # a queued run asks again for the deployment's slot after this long (default 30 s)
        "PREFECT_SERVER_DEPLOYMENTS_CONCURRENCY_SLOT_WAIT_SECONDS": "5",
    }
    worker_env = {**env, "PREFECT_WORKER_QUERY_SECONDS": "2", **worker_settings}
    started: list[subprocess.Popen[bytes]] = []
    try:
        started.append(_start("prefect-server", server_env, root / "server.log", "--no-ui"))
        _wait_for_health(api_url, started[0], root / "server.log")
        deployed = subprocess.run(
            [str(PROJECT_ROOT / "scripts" / "deploy")],
            env=env,
            cwd=root,  # the script finds the project on its own
            capture_output=True,
            text=True,
            timeout=COMMAND_TIMEOUT_S,
            check=False,
        )
        assert deployed.returncode == 0, f"scripts/deploy failed:\n{deployed.stdout}\n{deployed.stderr}"
        started.append(_start("prefect-worker", worker_env, root / "worker.log"))
        yield PrefectStack(api_url, env, started[-1], root / "worker.log")
    finally:
        for process in reversed(started):
            _stop(process)
