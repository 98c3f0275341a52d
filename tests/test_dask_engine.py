"""`execution.engine: dask`: the retrain flow's studies run on a real Dask cluster (a scheduler and two
single-threaded worker processes on 127.0.0.1), every other stage in the flow's process, and the model
is promoted into the store on this host."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from dask_cluster import executed_per_worker, local_dask_cluster
from flow_helpers import use_fast_runs

from flows.retrain import retrain
from retrain.errors import ConfigError
from retrain.settings import load_settings
from retrain.store import load_production_metadata

pytestmark = [pytest.mark.e2e, pytest.mark.usefixtures("prefect_harness")]

MODELS = ["lightgbm", "xgboost"]


def test_studies_run_on_both_workers_and_the_model_is_promoted_on_this_host(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    use_fast_runs(monkeypatch)
    # Orchestration under test, not the model: the gate's interval checks are opened (as in test_flow_e2e).
    monkeypatch.setenv("RETRAIN_GATE__MIN_MARGIN_OVER_BASELINES", "-1")
    monkeypatch.setenv("RETRAIN_GATE__MIN_ECONOMIC_MARGIN", "-1")
    monkeypatch.setenv("RETRAIN_TRAINING__CORES", "1")
    monkeypatch.setenv("RETRAIN_PATHS__RUNS_DIR", str(tmp_path / "shared-runs"))
    with local_dask_cluster(workers=2) as address:
        monkeypatch.setenv("RETRAIN_EXECUTION__ENGINE", "dask")
        monkeypatch.setenv("RETRAIN_EXECUTION__DASK_ADDRESS", address)
        state = retrain(
            source="demo",
            days=30,
            trials=1,
            models=MODELS,
            models_dir=str(tmp_path / "models"),
            return_state=True,
        )
        assert state.is_completed(), f"run ended {state.name}: {state.message}"
        executed = executed_per_worker(address)
    summary: dict[str, Any] = state.result()
    assert summary["status"] == "promoted", summary
    assert sorted(executed) == ["worker-0", "worker-1"]
    assert all(count >= 1 for count in executed.values()), executed
    assert sum(executed.values()) == len(MODELS), "only the studies go to the cluster"
    metadata = load_production_metadata(tmp_path / "models")
    assert metadata.version == summary["version"]
    assert Path(summary["run_dir"]).parent == tmp_path / "shared-runs"


def test_a_cluster_address_without_a_shared_absolute_runs_dir_is_refused(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("RETRAIN_EXECUTION__ENGINE", "dask")
    monkeypatch.setenv("RETRAIN_EXECUTION__DASK_ADDRESS", "tcp://10.0.0.5:8786")
    monkeypatch.setenv("RETRAIN_PATHS__RUNS_DIR", "runs")
    with pytest.raises(ConfigError, match="paths.runs_dir set to an absolute path"):
        load_settings()
