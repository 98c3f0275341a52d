"""Shared pieces of the end-to-end tests of the `retrain` flow: real candle files cut into tmp, a
webhook channel saved on the test server, and reads of what the flow left on the Prefect server."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any
from uuid import UUID

import numpy as np
import pandas as pd
import pytest
from prefect.blocks.notifications import CustomWebhookNotificationBlock
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import (
    ArtifactFilter,
    ArtifactFilterFlowRunId,
    ArtifactFilterKey,
    FlowRunFilter,
    FlowRunFilterId,
)
from prefect.client.schemas.objects import Artifact, FlowRun, State, TaskRun

from retrain.data.candles import parse_timestamps
from retrain.data.csv_source import read_candle_file

if TYPE_CHECKING:
    from tests.webhook_receiver import WebhookReceiver

RECORDING = "BTCUSDT_BINANCE_15m_20230801_20240731.csv"
"""Binance BTC/USDT, a year without gaps (../shared/data/SOURCES.md)."""

PRICE_COLUMNS = ["open", "high", "low", "close"]


def use_fast_runs(monkeypatch: pytest.MonkeyPatch) -> None:
    """Three folds instead of five: still a cross-validated study, and the runs stay short."""
    monkeypatch.setenv("RETRAIN_SPLIT__N_SPLITS", "3")


def write_candle_slice(recording: Path, last_day: str, days: int, target: Path) -> Path:
    """The `days` whole UTC days of real candles ending with `last_day`, written as a CSV at `target`."""
    raw = read_candle_file(recording)
    stamps = parse_timestamps(raw["timestamp"])
    end = pd.Timestamp(last_day, tz="UTC") + pd.Timedelta(days=1)
    kept = raw[(stamps >= end - pd.Timedelta(days=days)) & (stamps < end)]
    target.parent.mkdir(parents=True, exist_ok=True)
    kept.to_csv(target, index=False)
    return target


def scramble_last_days(candle_file: Path, days: int, seed: int, target: Path) -> Path:
    """The same candles with the order of the market's moves in the last `days` days permuted.

    Each candle of the window takes the shape (high, low, close and volume relative to its open) of a
    randomly chosen candle of the window, chained from the previous close: every candle stays a valid
    candle opening where the previous one closed, and the timestamps stay in order, so the file passes
    validation (permuting whole rows would not: their opens jump, see `data.continuity`).
    """
    frame = read_candle_file(candle_file)
    stamps = parse_timestamps(frame["timestamp"])
    rows = np.flatnonzero(stamps > stamps.iloc[-1] - pd.Timedelta(days=days))
    shuffled = np.random.default_rng(seed).permutation(rows)
    prices = frame[PRICE_COLUMNS].astype(float).to_numpy()
    shapes = prices / prices[:, :1]
    previous_close = prices[rows[0] - 1, 3]
    for row, source in zip(rows, shuffled, strict=True):
        prices[row] = shapes[source] * previous_close
        previous_close = prices[row, 3]
    frame[PRICE_COLUMNS] = prices
    frame.loc[rows, "volume"] = frame.loc[shuffled, "volume"].to_numpy()
    frame.to_csv(target, index=False)
    return target


def use_alert_channel(receiver: WebhookReceiver, monkeypatch: pytest.MonkeyPatch) -> str:
    """Save a custom-webhook block posting to `receiver` on the test server and make it the only alert
    channel (read by the flow when it alerts); return its channel slug."""
    name = f"test-alerts-{uuid.uuid4().hex[:8]}"
    block = CustomWebhookNotificationBlock(
        name=name, url=f"{receiver.url}/alerts", json_data={"title": "{{subject}}", "text": "{{body}}"}
    )
    block.save(name)
    channel = f"{block.get_block_type_slug()}/{name}"
    monkeypatch.setenv("RETRAIN_ALERTS__CHANNELS", json.dumps([channel]))
    return channel


def received_titles(receiver: WebhookReceiver) -> list[str]:
    return [request.json["title"] for request in receiver.requests]


def flow_run_id(state: State[Any]) -> UUID:
    run_id = state.state_details.flow_run_id
    assert run_id is not None, f"state {state.name} does not belong to a flow run"
    return run_id


def read_flow_run(state: State[Any]) -> FlowRun:
    with get_client(sync_client=True) as client:
        return client.read_flow_run(flow_run_id(state))


def read_task_runs(state: State[Any], task_name: str) -> list[TaskRun]:
    """The flow run's runs of the task named `task_name` (Prefect names each run `<task name>-<suffix>`)."""
    with get_client(sync_client=True) as client:
        runs = client.read_task_runs(
            flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[flow_run_id(state)]))
        )
    return [run for run in runs if run.name.rsplit("-", 1)[0] == task_name]


def read_artifacts(state: State[Any], key: str) -> list[Artifact]:
    """The flow run's artifacts under `key` (those of its task runs included)."""
    with get_client(sync_client=True) as client:
        return client.read_artifacts(
            artifact_filter=ArtifactFilter(
                key=ArtifactFilterKey(any_=[key]),
                flow_run_id=ArtifactFilterFlowRunId(any_=[flow_run_id(state)]),
            )
        )
