"""The degraded-model retrain trigger of `retrain/weekly`, declared in deployments/prefect.yaml, on a real
Prefect server with a real worker: the monitor's degraded event starts exactly one retrain of the store
it names, the run records what triggered it, and when that retrain keeps the champion the monitor's
next pass starts no other within the cooldown.

The worker runs the production gate; its monitor passes are forced to find the model degraded
(`monitor.min_margin_over_persistence: 1`, after one pass), and the triggered retrain trains on a
direction-scrambled copy of real candles, which the gate refuses (tests/test_controls.py).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
from monitor_helpers import load_real_candles, promote_model, train_model
from prefect_stack import DEPLOYMENT, PrefectStack, running_stack

from retrain.data.candles import CANDLE_INTERVAL
from retrain.data.scramble import scramble_file
from retrain.settings import load_settings
from retrain.store import production_version, read_history
from retrain.store.layout import StoreLayout
from retrain.store.loading import read_metadata

pytestmark = pytest.mark.e2e

MONITOR = "monitor/hourly"
TRAIN_END = pd.Timestamp("2025-04-01", tz="UTC")
WATCHED_DAYS = 8
QUIET_S = 10
"""How long the test watches for a second retrain after the monitor's second pass."""


@pytest.fixture(scope="module")
def files(shared_data: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("trigger-data")
    candles = load_real_candles(shared_data, load_settings())
    watched = candles[candles.index < TRAIN_END + pd.Timedelta(days=WATCHED_DAYS)]
    watched.reset_index().to_csv(root / "watched.csv", index=False)
    recent = candles[candles.index < TRAIN_END + pd.Timedelta(days=WATCHED_DAYS) - CANDLE_INTERVAL]
    recent.tail(70 * 96).reset_index().to_csv(root / "recent.csv", index=False)
    return {
        "watched": root / "watched.csv",
        "scrambled": scramble_file(root / "recent.csv", root / "scrambled.csv", 1),
    }


@pytest.fixture(scope="module")
def stack(files: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> Iterator[PrefectStack]:
    worker = {
        "RETRAIN_MONITOR__CONSECUTIVE": "1",
        "RETRAIN_MONITOR__MIN_MARGIN_OVER_PERSISTENCE": "1",
        "RETRAIN_DATA__SOURCE": "csv",
        "RETRAIN_DATA__CSV_PATH": str(files["scrambled"]),
        "RETRAIN_DATA__DAYS": "60",
        "RETRAIN_TUNING__N_TRIALS": "1",
    }
    with running_stack(tmp_path_factory.mktemp("trigger-stack"), worker) as running:
        yield running


def _monitor_pass(stack: PrefectStack, files: dict[str, Path], models_dir: Path) -> None:
    run_id = stack.create_run(
        deployment_name=MONITOR, source="csv", data_path=str(files["watched"]), models_dir=str(models_dir)
    )
    stack.assert_completed(stack.wait_until_finished(run_id))


def _triggered(stack: PrefectStack, models_dir: Path) -> list[dict[str, object]]:
    return [
        run
        for run in stack.runs_of(DEPLOYMENT)
        if run["parameters"].get("models_dir") == str(models_dir.resolve())
    ]


def test_a_degraded_model_triggers_one_retrain_and_a_kept_champion_no_other_within_the_cooldown(
    stack: PrefectStack, files: dict[str, Path], shared_data: Path, tmp_path: Path
) -> None:
    models_dir = tmp_path / "models"
    candles = load_real_candles(shared_data, load_settings())
    model, X_train, holdout_proba = train_model(candles, load_settings(), TRAIN_END)
    champion = promote_model(
        models_dir, model, created_at=TRAIN_END.to_pydatetime(), reference=(X_train, holdout_proba)
    )

    _monitor_pass(stack, files, models_dir)
    deadline = time.monotonic() + 120
    while not _triggered(stack, models_dir) and time.monotonic() < deadline:
        time.sleep(1)
    [retrain_run] = _triggered(stack, models_dir)
    finished = stack.wait_until_finished(retrain_run["id"])

    stack.assert_completed(finished)
    trigger = retrain_run["parameters"]["trigger"]
    assert trigger.startswith("retrain.model.degraded of ") and champion in trigger
    assert production_version(models_dir) == champion, "the scrambled challenger must be kept out"
    [stored] = [event for event in read_history(models_dir) if event.event != "promote"]
    assert stored.event == "reject"
    assert read_metadata(StoreLayout(models_dir), stored.version).triggered_by == trigger

    _monitor_pass(stack, files, models_dir)
    time.sleep(QUIET_S)
    assert [run["id"] for run in _triggered(stack, models_dir)] == [retrain_run["id"]]
