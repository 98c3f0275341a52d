"""The walk-forward backtest: slices of the span built once equal the weekly retrain's own build, no label
looks past a cutoff, and a backtest killed between weeks resumes without redoing a finished week."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from retrain.backtest.span import CandleSpan
from retrain.backtest.summary import block_bootstrap_mean_difference
from retrain.data.candles import CANDLE_INTERVAL
from retrain.data.validation import validate_candles
from retrain.dataset import build_dataset
from retrain.features import GROUPS, FeatureManager, FeatureParams
from retrain.settings import load_settings

WINDOW = "BTCUSDT_BINANCE_15m_20220801_20230731.csv"
START = pd.Timestamp("2023-03-10", tz="UTC")  # the weeks cross the 2023-03-24 Binance halt


@pytest.fixture(scope="module")
def span_settings(shared_data: Path):
    return load_settings(data={"source": "csv", "csv_path": str(shared_data / WINDOW), "days": 60})


@pytest.fixture(scope="module")
def span(span_settings) -> CandleSpan:
    return CandleSpan.load(span_settings.data, span_settings.labels, START, 3)


@pytest.mark.parametrize("week", [0, 1, 2])
def test_span_slice_equals_the_weekly_retrains_own_build(span: CandleSpan, span_settings, week: int) -> None:
    cutoff = START + pd.Timedelta(days=7 * week)
    sliced = span.training_dataset(cutoff, span_settings.labels.horizon)
    candles, _ = validate_candles(span.training_candles(cutoff), span_settings.data)
    own = build_dataset(candles, span_settings.labels)

    assert sliced.X.index.equals(own.X.index)
    pd.testing.assert_series_equal(sliced.y, own.y)
    pd.testing.assert_series_equal(sliced.next_return, own.next_return)
    # Exponential smoothing started on older candles: measured at most 2.2e-6 apart on these weeks.
    np.testing.assert_allclose(sliced.X.to_numpy(), own.X.to_numpy(), rtol=0, atol=1e-5)


@pytest.mark.parametrize(
    ("labels", "groups"),
    [
        ({"method": "volatility"}, list(GROUPS)),
        ({"method": "triple_barrier", "barrier_unit": "volatility"}, ["base"]),
    ],
)
def test_span_slice_equals_the_weekly_build_for_other_labels_and_feature_groups(
    shared_data: Path, labels: dict[str, str], groups: list[str]
) -> None:
    settings = load_settings(
        data={"source": "csv", "csv_path": str(shared_data / WINDOW), "days": 60},
        labels=labels,
        features={"groups": groups},
    )
    span = CandleSpan.load(settings.data, settings.labels, START, 2, settings.features)
    cutoff = START + pd.Timedelta(days=7)
    sliced = span.training_dataset(cutoff, settings.labels.horizon)
    candles, _ = validate_candles(span.training_candles(cutoff), settings.data)
    own = build_dataset(
        candles, settings.labels, FeatureManager(FeatureParams.from_settings(settings.features))
    )

    assert sliced.labels == own.labels == settings.labels
    assert sliced.feature_names == own.feature_names and sliced.feature_params == own.feature_params
    assert sliced.X.index.equals(own.X.index)
    pd.testing.assert_series_equal(sliced.y, own.y)
    np.testing.assert_allclose(sliced.X.to_numpy(), own.X.to_numpy(), rtol=0, atol=1e-5)


def test_no_training_label_or_return_looks_past_the_cutoff(span: CandleSpan, span_settings) -> None:
    horizon = span_settings.labels.horizon
    for week in range(3):
        cutoff = START + pd.Timedelta(days=7 * week)
        rows = span.training_dataset(cutoff, horizon)
        assert rows.X.index[-1] + horizon * CANDLE_INTERVAL < cutoff
        live = span.live_rows(cutoff)
        assert live.X.index[0] >= cutoff and live.X.index[-1] < cutoff + pd.Timedelta(days=7)


def test_equal_predictors_give_an_interval_around_zero_and_a_better_one_clears_it() -> None:
    rng = np.random.default_rng(0)
    weeks = []
    for _ in range(3):
        y = rng.integers(0, 3, size=600)
        noisy = np.where(rng.random(600) < 0.5, y, rng.integers(0, 3, size=600))
        weeks.append(pd.DataFrame({"y": y, "persistence": noisy, "same": noisy, "better": y}))
    same = block_bootstrap_mean_difference(weeks, "same", block=8, resamples=200, confidence=0.9, seed=1)
    better = block_bootstrap_mean_difference(weeks, "better", block=8, resamples=200, confidence=0.9, seed=1)
    assert same.estimate == 0.0 and same.lower == 0.0 and same.upper == 0.0
    assert better.lower > 0.2


def _backtest_command(shared_data: Path, out: Path) -> list[str]:
    return [
        sys.executable,
        "-m",
        "retrain.cli",
        "backtest",
        "--source",
        "csv",
        "--data",
        str(shared_data / "BTCUSDT_BINANCE_15m_20230801_20240731.csv"),
        "--start",
        "2024-03-01",
        "--weeks",
        "3",
        "--trials",
        "2",
        "--out",
        str(out),
        "--json",
    ]


def _small_retrain_env() -> dict[str, str]:
    return {
        **os.environ,
        "RETRAIN_DATA__DAYS": "40",
        "RETRAIN_SPLIT__HOLDOUT_DAYS": "7",
        "RETRAIN_TRAINING__MODELS": '["lightgbm", "random_forest"]',
        "RETRAIN_CONFIG_DIR": str(Path(__file__).resolve().parents[1] / "config"),
    }


def test_backtest_writes_its_table_and_resumes_after_a_kill_without_redoing_finished_weeks(
    shared_data: Path, tmp_path: Path
) -> None:
    out = tmp_path / "backtest"
    env = _small_retrain_env()
    first = subprocess.Popen(
        _backtest_command(shared_data, out), env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    week0 = out / "weeks" / "week_000.json"
    deadline = time.monotonic() + 300
    while not week0.exists() and first.poll() is None and time.monotonic() < deadline:
        time.sleep(0.2)
    assert week0.exists(), "the first week never finished"
    first.send_signal(signal.SIGKILL)
    first.wait(timeout=30)
    assert not (out / "weeks" / "week_002.json").exists(), "killed too late to test resuming"
    finished = week0.read_bytes()

    result = subprocess.run(
        _backtest_command(shared_data, out), env=env, capture_output=True, text=True, timeout=600
    )

    assert result.returncode == 0, result.stderr[-2000:]
    assert week0.read_bytes() == finished
    week0_runs = [run for run in (out / "runs").iterdir() if run.name.endswith("week000")]
    assert len(week0_runs) == 1, "week 0 was retrained again"
    document = json.loads(result.stdout.strip().splitlines()[-1])
    assert [week["cutoff"][:10] for week in document["weeks"]] == ["2024-03-01", "2024-03-08", "2024-03-15"]
    for week in document["weeks"]:
        assert week["decision"] in {"promote", "reject", "inconclusive"}
        assert 0.0 <= week["live_macro_f1"] <= 1.0 and 0.0 <= week["persistence_macro_f1"] <= 1.0
    assert set(document["summary"]["live_minus_persistence"]) == {"policy", "ungated", "never_retrain"}
    report = (out / "report.md").read_text()
    assert "| week | cutoff | decision |" in report and (out / "equity.png").stat().st_size > 0


@pytest.mark.e2e
@pytest.mark.usefixtures("prefect_harness")
def test_backtest_flow_reports_its_progress_and_its_report_in_the_ui(
    shared_data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from flow_helpers import read_artifacts

    from flows.backtest import backtest

    for key, value in _small_retrain_env().items():
        if key.startswith("RETRAIN_"):
            monkeypatch.setenv(key, value)
    state = backtest(
        start=pd.Timestamp("2024-03-01").date(),
        weeks=1,
        source="csv",
        data_path=str(shared_data / "BTCUSDT_BINANCE_15m_20230801_20240731.csv"),
        trials=1,
        out=str(tmp_path / "backtest"),
        return_state=True,
    )

    assert state.is_completed(), f"{state.name}: {state.message}"
    [progress] = read_artifacts(state, "backtest-progress")
    assert float(progress.data) == 100.0
    [report] = read_artifacts(state, "backtest-report")
    assert "| week | cutoff | decision |" in str(report.data)
    assert [week["cutoff"][:10] for week in state.result()["weeks"]] == ["2024-03-01"]
