"""How the `retrain` flow fails, on a Prefect test server: a transient exchange error is retried by the
fetch task until it passes, bad data fails the run at once with its report and an alert, and a dry run
stores nothing."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd
import pytest
from fake_bitbank import FakeBitbank, Fault, load_recording, retime
from flow_helpers import (
    RECORDING,
    read_artifacts,
    read_flow_run,
    read_task_runs,
    received_titles,
    use_alert_channel,
    use_fast_runs,
    write_candle_slice,
)
from prefect import flow

from flows.retrain import retrain
from retrain import stages
from retrain.data.csv_source import read_candle_file
from retrain.handoffs import CandleWindow
from retrain.run_dir import RunDir
from retrain.settings import load_settings
from tasks.data import fetch_candles

if TYPE_CHECKING:
    from tests.webhook_receiver import WebhookReceiver

pytestmark = [pytest.mark.e2e, pytest.mark.usefixtures("prefect_harness")]

FETCH_TASK = "fetch-and-validate-candles"
FETCH_DAYS = 3
CORRUPT_AT = 100  # row of the corrupted candle, counted from 0
DUPLICATED_FROM = 200  # first of the rows written twice
DUPLICATED_ROWS = 3


@flow(name="fetch-only")
def fetch_only(run_root: str) -> CandleWindow:
    """The flow's fetch task alone, with the configuration read from the environment, without waiting
    between its retries."""
    fetch = fetch_candles.with_options(retry_delay_seconds=0)
    return fetch(load_settings(), RunDir(Path(run_root)))


@pytest.fixture
def bitbank(shared_data: Path) -> Iterator[FakeBitbank]:
    """A fake bitbank on 127.0.0.1 whose real recorded candles run up to the present minute."""
    now = pd.Timestamp.now(tz="UTC")
    candles = retime(load_recording(shared_data / RECORDING), now + pd.Timedelta(days=1))
    with FakeBitbank(candles, now=lambda: pd.Timestamp.now(tz="UTC")) as fake:
        yield fake


def corrupt_candles(candle_file: Path, target: Path) -> Path:
    """One candle with high < low and a few rows written twice (each right after itself), as a broken
    export would write them."""
    frame = read_candle_file(candle_file)
    frame.loc[CORRUPT_AT, ["high", "low"]] = frame.loc[CORRUPT_AT, ["low", "high"]].to_numpy()
    repeated = frame.iloc[DUPLICATED_FROM : DUPLICATED_FROM + DUPLICATED_ROWS]
    pd.concat([frame, repeated]).sort_index(kind="stable").to_csv(target, index=False)
    return target


def test_fetch_task_retries_a_transient_exchange_error_until_it_succeeds(
    bitbank: FakeBitbank, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """The source itself does not retry (max_retries 0): the two HTTP 500s fail two task attempts."""
    for key, value in {
        "RETRAIN_DATA__SOURCE": "exchange",
        "RETRAIN_DATA__API_URL": bitbank.url,
        "RETRAIN_DATA__MAX_RETRIES": "0",
        "RETRAIN_DATA__DAYS": str(FETCH_DAYS),
        "RETRAIN_DATA__CACHE_DIR": str(tmp_path / "cache"),
    }.items():
        monkeypatch.setenv(key, value)
    bitbank.inject(Fault.HTTP_500, Fault.HTTP_500)
    run = RunDir(tmp_path / "run")

    state = fetch_only(str(run.root), return_state=True)

    assert state.is_completed(), f"{state.name}: {state.message}"
    [task_run] = read_task_runs(state, FETCH_TASK)
    assert task_run.run_count == 3
    assert task_run.state is not None and task_run.state.is_completed()
    assert bitbank.pending_faults() == 0
    assert len(run.read_candles()) == state.result().rows


def _fetch_stage_failing_with(
    monkeypatch: pytest.MonkeyPatch, errors: list[BaseException]
) -> list[BaseException]:
    """The fetch stage raises each of `errors` in turn, then fetches for real; returns what it raised."""
    raised: list[BaseException] = []
    real = stages.fetch_stage

    def failing(*args: Any, **kwargs: Any) -> CandleWindow:
        if len(raised) < len(errors):
            raised.append(errors[len(raised)])
            raise raised[-1]
        return real(*args, **kwargs)

    monkeypatch.setattr(stages, "fetch_stage", failing)
    return raised


def test_fetch_task_fails_at_once_on_a_bug(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("RETRAIN_DATA__SOURCE", "demo")
    raised = _fetch_stage_failing_with(monkeypatch, [KeyError("market")])

    state = fetch_only(str(tmp_path / "run"), return_state=True)

    assert state.is_failed()
    [task_run] = read_task_runs(state, FETCH_TASK)
    assert task_run.run_count == 1, "a bug is not transient: the fetch task must not retry it"
    assert len(raised) == 1


def test_fetch_task_that_times_out_twice_succeeds_on_its_third_attempt(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("RETRAIN_DATA__SOURCE", "demo")
    monkeypatch.setenv("RETRAIN_DATA__DAYS", str(FETCH_DAYS))
    raised = _fetch_stage_failing_with(monkeypatch, [TimeoutError("read timed out")] * 2)

    state = fetch_only(str(tmp_path / "run"), return_state=True)

    assert state.is_completed(), f"{state.name}: {state.message}"
    [task_run] = read_task_runs(state, FETCH_TASK)
    assert task_run.run_count == 3
    assert len(raised) == 2
    assert state.result().rows == FETCH_DAYS * 96


def test_bad_candles_fail_the_run_at_once_with_the_validation_report_and_an_alert(
    shared_data: Path, webhook_receiver: WebhookReceiver, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    use_alert_channel(webhook_receiver, monkeypatch)
    real = write_candle_slice(shared_data / RECORDING, "2024-04-30", 10, tmp_path / "real.csv")
    corrupted = corrupt_candles(real, tmp_path / "corrupted.csv")
    models_dir = tmp_path / "models"

    state = retrain(
        source="csv", data_path=str(corrupted), days=10, models_dir=str(models_dir), return_state=True
    )

    assert state.is_failed()
    assert "CandleValidationError" in (state.message or "")
    flow_run = read_flow_run(state)
    assert flow_run.run_count == 1
    [fetch_run] = read_task_runs(state, FETCH_TASK)
    assert fetch_run.run_count == 1, "bad data is permanent: the fetch task must not retry it"
    assert fetch_run.state is not None and fetch_run.state.is_failed()
    [artifact] = read_artifacts(state, "data-quality")
    report = str(artifact.data)
    assert "[high_below_low]" in report and "[duplicate_timestamp]" in report
    frame = read_candle_file(real)
    assert frame.loc[CORRUPT_AT, "timestamp"] in report
    assert frame.loc[DUPLICATED_FROM, "timestamp"] in report
    assert received_titles(webhook_receiver) == [f"[CRITICAL] Retraining run {flow_run.name} failed"]
    assert not (models_dir / "production").exists()
    assert not (models_dir / "archive").exists()


def test_dry_run_completes_and_stores_nothing(
    shared_data: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    use_fast_runs(monkeypatch)
    candles = write_candle_slice(shared_data / RECORDING, "2024-04-30", 45, tmp_path / "candles.csv")
    models_dir = tmp_path / "models"

    state = retrain(
        source="csv",
        data_path=str(candles),
        days=45,
        trials=1,
        dry_run=True,
        models_dir=str(models_dir),
        return_state=True,
    )

    assert state.is_completed(), f"{state.name}: {state.message}"
    summary = state.result()
    assert summary["status"] == "dry-run"
    assert summary["version"] is None
    assert not (models_dir / "production").exists()
    assert not (models_dir / "archive").exists()
    assert not (models_dir / "promotion_history.jsonl").exists()
    assert (Path(summary["run_dir"]) / "report" / "report.md").exists()
