"""The `retrain/weekly` deployment on a real Prefect server, run by a real process worker.

Server, deployment and worker are started with the project's own scripts (scripts/prefect-server,
scripts/deploy, scripts/prefect-worker), so what an operator runs is what is tested. Everything lives
in a temporary PREFECT_HOME: ~/.prefect is never read or written.

The gate is opened for the worker (RETRAIN_GATE__*): a few days of demo candles and one trial make a
weak model, and these tests pin the deployment plumbing, not model quality.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from prefect_stack import DEPLOYMENT, PROJECT_ROOT, TERMINAL_STATES, PrefectStack, running_stack

from retrain.store import load_production_metadata, production_version, read_history
from retrain.store.layout import StoreLayout
from retrain.store.loading import read_metadata

pytestmark = pytest.mark.e2e

FAST_RUN = {"source": "demo", "days": 40, "trials": 1}
OPEN_GATE = {
    "RETRAIN_GATE__MIN_MACRO_F1": "0",
    "RETRAIN_GATE__MIN_MARGIN_OVER_BASELINES": "-1",
    "RETRAIN_GATE__MIN_ECONOMIC_MARGIN": "-1",
}


def _ended(flow_run: dict[str, Any]) -> datetime:
    return datetime.fromisoformat(flow_run["end_time"])


@pytest.fixture(scope="module")
def prefect_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PrefectStack]:
    with running_stack(tmp_path_factory.mktemp("prefect-stack"), OPEN_GATE) as stack:
        yield stack


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
