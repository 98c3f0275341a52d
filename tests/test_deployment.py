"""The `retrain/weekly` deployment on a real Prefect server, run by a real process worker.

Server, deployment and worker are started with the project's own scripts (scripts/prefect-server,
scripts/deploy, scripts/prefect-worker), so what an operator runs is what is tested. Everything lives
in a temporary PREFECT_HOME: ~/.prefect is never read or written.

The gate is opened for the worker (RETRAIN_GATE__*): a few days of demo candles and one trial make a
weak model, and these tests pin the deployment plumbing, not model quality.
"""

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
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest

from retrain.store import load_production_metadata, production_version, read_history
from retrain.store.layout import StoreLayout
from retrain.store.loading import read_metadata

pytestmark = pytest.mark.e2e

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEPLOYMENT = "retrain/weekly"
SERVER_START_TIMEOUT_S = 180
COMMAND_TIMEOUT_S = 300
RUN_TIMEOUT_S = 480
EVENT_TIMEOUT_S = 60
TERMINAL_STATES = {"COMPLETED", "FAILED", "CRASHED", "CANCELLED"}
FAST_RUN = {"source": "demo", "days": 40, "trials": 1}
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

    def create_run(self, **params: Any) -> str:
        """A flow run of the deployment through the API: two of these start within milliseconds."""
        deployment = self.get(f"/deployments/name/{DEPLOYMENT}")
        return self.post(f"/deployments/{deployment['id']}/create_flow_run", {"parameters": params})["id"]

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


def _ended(flow_run: dict[str, Any]) -> datetime:
    return datetime.fromisoformat(flow_run["end_time"])


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


@pytest.fixture(scope="module")
def prefect_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PrefectStack]:
    root = tmp_path_factory.mktemp("prefect-stack")
    port = _free_port()
    api_url = f"http://127.0.0.1:{port}/api"
    env = _subprocess_env(root / "prefect-home", api_url)
    server_env = {
        **env,
        "PORT": str(port),
        # a queued run asks again for the deployment's slot after this long (default 30 s)
        "PREFECT_SERVER_DEPLOYMENTS_CONCURRENCY_SLOT_WAIT_SECONDS": "5",
    }
    worker_env = {
        **env,
        "PREFECT_WORKER_QUERY_SECONDS": "2",
        "RETRAIN_GATE__MIN_MACRO_F1": "0",
        "RETRAIN_GATE__MIN_MARGIN_OVER_BASELINES": "-1",
        "RETRAIN_GATE__MIN_ECONOMIC_MARGIN": "-1",
    }
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


def test_weekly_deployment_runs_monday_3am_tokyo_one_run_at_a_time(prefect_stack: PrefectStack) -> None:
    deployment = prefect_stack.get(f"/deployments/name/{DEPLOYMENT}")

    [schedule] = deployment["schedules"]
    assert schedule["active"] is True
    assert schedule["schedule"]["cron"] == "0 3 * * 1"
    assert schedule["schedule"]["timezone"] == "Asia/Tokyo"
    assert deployment["global_concurrency_limit"]["limit"] == 1
    assert deployment["concurrency_options"]["collision_strategy"] == "ENQUEUE"
    assert deployment["work_pool_name"] == "retrain-pool"
    assert deployment["pull_steps"] == [
        {"prefect.deployments.steps.set_working_directory": {"directory": str(PROJECT_ROOT)}}
    ]


def test_manual_run_of_the_weekly_deployment_promotes_a_model(
    prefect_stack: PrefectStack, tmp_path: Path
) -> None:
    models_dir = tmp_path / "models"

    flow_run_id = prefect_stack.run_deployment(**FAST_RUN, models_dir=str(models_dir))
    flow_run = prefect_stack.wait_until_finished(flow_run_id)

    prefect_stack.assert_completed(flow_run)
    metadata = load_production_metadata(models_dir)
    assert production_version(models_dir) == metadata.version
    assert metadata.decision.status == "promoted"
    assert metadata.prefect_flow_run_id == flow_run_id
    assert re.fullmatch(r"\S+ \d{4}-\d\d-\d\d\.\.\d{4}-\d\d-\d\d", flow_run["name"])  # its data window
    artifacts = prefect_stack.post(
        "/artifacts/filter", {"artifacts": {"flow_run_id": {"any_": [flow_run_id]}}}
    )
    assert "retrain-report" in {artifact["key"] for artifact in artifacts}


def test_a_run_started_during_another_waits_and_is_compared_with_its_model(
    prefect_stack: PrefectStack, tmp_path: Path
) -> None:
    models_dir = tmp_path / "models"

    run_ids = [prefect_stack.create_run(**FAST_RUN, models_dir=str(models_dir)) for _ in range(2)]
    runs = sorted((prefect_stack.wait_until_finished(run_id) for run_id in run_ids), key=_ended)

    for run in runs:
        prefect_stack.assert_completed(run)
    first, second = runs
    assert datetime.fromisoformat(second["start_time"]) >= _ended(first)
    assert "AwaitingConcurrencySlot" in prefect_stack.state_names(second["id"])
    [first_event, second_event] = read_history(models_dir)
    assert (first_event.event, first_event.previous_version) == ("promote", None)
    assert second_event.previous_version == first_event.version
    store = StoreLayout(models_dir)
    assert read_metadata(store, first_event.version).prefect_flow_run_id == first["id"]
    second_metadata = read_metadata(store, second_event.version)
    assert second_metadata.prefect_flow_run_id == second["id"]
    assert second_metadata.performance_metrics["champion"]["version"] == first_event.version


def test_a_run_killed_by_the_system_ends_crashed_alerts_and_frees_the_slot(
    prefect_stack: PrefectStack, tmp_path: Path
) -> None:
    flow_run_id = prefect_stack.create_run(**FAST_RUN, models_dir=str(tmp_path / "models"))
    started = prefect_stack.wait_for_state(flow_run_id, {"RUNNING"} | TERMINAL_STATES)
    assert started["state"]["type"] == "RUNNING"

    prefect_stack.kill_flow_run_processes()
    flow_run = prefect_stack.wait_until_finished(flow_run_id)

    assert flow_run["state"]["type"] == "CRASHED"
    [alert] = prefect_stack.wait_for_event("retrain.alert.run_crashed", f"retrain.run.{flow_run_id}")
    assert alert["payload"]["flow_run_id"] == flow_run_id
    deployment = prefect_stack.get(f"/deployments/name/{DEPLOYMENT}")
    assert deployment["global_concurrency_limit"]["active_slots"] == 0
