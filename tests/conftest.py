"""Test-wide environment: Prefect runs locally and quietly, in its own home; data comes from ../shared."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest

pytest_plugins = ["tests.webhook_receiver"]

os.environ.setdefault("DO_NOT_TRACK", "1")
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("PREFECT_HOME", tempfile.mkdtemp(prefix="retrain-test-prefect-"))
os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "120")
os.environ.setdefault("PREFECT_LOGGING_TO_API_ENABLED", "false")


def _one_core_per_xdist_worker() -> None:
    """Under `pytest -n` each worker (and whatever it starts: Prefect servers, flow runs, benches) keeps to
    one core of its own, so training sizes itself to that core and two workers never oversubscribe the
    machine with OpenMP threads spinning against each other."""
    worker = os.environ.get("PYTEST_XDIST_WORKER", "")
    if worker.startswith("gw") and hasattr(os, "sched_setaffinity"):
        cores = sorted(os.sched_getaffinity(0))
        os.sched_setaffinity(0, {cores[int(worker[2:]) % len(cores)]})


_one_core_per_xdist_worker()

PROJECT_ROOT = Path(__file__).resolve().parent.parent
SHARED_DATA = PROJECT_ROOT.parent / "shared" / "data"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The real exchange-recorded candles beside the project (never copied into it)."""
    if not SHARED_DATA.is_dir():
        pytest.fail(f"shared candle data not found at {SHARED_DATA}; clone the project beside ../shared")
    return SHARED_DATA


@pytest.fixture(autouse=True)
def _isolated_retrain_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """No RETRAIN_* variable from the developer's shell leaks into a test."""
    for key in list(os.environ):
        if key.startswith("RETRAIN_"):
            monkeypatch.delenv(key)


@pytest.fixture(scope="session")
def prefect_harness():
    """One ephemeral Prefect server for the few end-to-end tests of a session (it takes 10-20 s)."""
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=180):
        yield
