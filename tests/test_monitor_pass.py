"""One monitor pass on real BTC/USDT candles: a model trained on 120 days, watched on the week after.

Every pass reads a Parquet slice of the recorded candles ending at the pass's clock (`now`), through
the real CSV source, so the pass fetches, validates and builds features as it does on the exchange.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import typer
from sklearn.metrics import f1_score
from typer.testing import CliRunner

from retrain.cli.monitor import monitor
from retrain.data.candles import CANDLE_INTERVAL, last_closed_candle
from retrain.data.csv_source import CsvSource
from retrain.features import GROUPS, FeatureManager
from retrain.labels import labels_for
from retrain.monitor.run import MonitorReport, monitor_pass
from retrain.monitor.state import load_state, state_path
from retrain.monitor.trend import history_path, recent_passes
from retrain.settings import LabelSettings, Settings, load_settings
from tests.monitor_helpers import TrainedModel, load_real_candles, promote_model, train_model

TRAIN_END = pd.Timestamp("2025-04-01", tz="UTC")
WATCHED = pd.Timedelta(days=8)
"""The first pass runs this long after the holdout ended."""
PASS_EVERY = pd.Timedelta(hours=1)
VOLATILITY_FACTOR = 3.0
HORIZON, THRESHOLD = 4, 0.005


@pytest.fixture(scope="module")
def candles(shared_data: Path) -> pd.DataFrame:
    return load_real_candles(shared_data, load_settings())


@pytest.fixture(scope="module")
def trained(candles: pd.DataFrame) -> tuple[TrainedModel, pd.DataFrame, np.ndarray]:
    return train_model(candles, load_settings(), TRAIN_END)


def _settings(models_dir: Path, **monitor: object) -> Settings:
    return load_settings(paths={"models_dir": str(models_dir)}, data={"source": "csv"}, monitor=monitor)


def _first_pass_time(model: TrainedModel) -> pd.Timestamp:
    """A few minutes after a candle closed, as the hourly schedule runs."""
    return model.holdout_end + WATCHED + pd.Timedelta(minutes=20)


def _store(
    tmp_path: Path, trained: tuple[TrainedModel, pd.DataFrame, np.ndarray], *, age: pd.Timedelta
) -> Path:
    model, X_train, holdout_proba = trained
    models_dir = tmp_path / "models"
    created_at = (_first_pass_time(model) - age).to_pydatetime()
    promote_model(models_dir, model, created_at=created_at, reference=(X_train, holdout_proba))
    return models_dir


def _feed(
    tmp_path: Path, candles: pd.DataFrame, until: pd.Timestamp, *, volatile_from: pd.Timestamp | None = None
) -> CsvSource:
    """The recorded candles closed by `until`, as a Parquet file; after `volatile_from`, every price's
    move from the last calm close is scaled by VOLATILITY_FACTOR (a calm market turning volatile)."""
    end = last_closed_candle(until)
    window = candles[(candles.index >= end - pd.Timedelta(days=30)) & (candles.index <= end)].copy()
    if volatile_from is not None:
        after = window.index >= volatile_from
        base = window.loc[~after, "close"].iloc[-1]
        for column in ("open", "high", "low", "close"):
            window.loc[after, column] = base * np.exp(
                VOLATILITY_FACTOR * np.log(window.loc[after, column] / base)
            )
    path = tmp_path / "candles.parquet"
    window.reset_index().to_parquet(path)
    return CsvSource(path)


def _passes(settings: Settings, source: CsvSource, first: pd.Timestamp, count: int) -> list[MonitorReport]:
    return [monitor_pass(settings, source=source, now=first + i * PASS_EVERY) for i in range(count)]


def test_a_model_with_other_labels_and_features_is_watched_with_its_own(
    tmp_path: Path, candles: pd.DataFrame
) -> None:
    """A triple-barrier model with every feature group, watched under the default configuration: the pass
    builds the model's columns and scores it on triple-barrier labels, not on the configured ones."""
    labels = LabelSettings(method="triple_barrier")
    trained_with = load_settings(labels=labels.model_dump(), features={"groups": list(GROUPS)})
    model, X_train, holdout_proba = train_model(candles, trained_with, TRAIN_END)
    models_dir = tmp_path / "models"
    now = _first_pass_time(model)
    created_at = (now - pd.Timedelta(days=9)).to_pydatetime()
    promote_model(models_dir, model, created_at=created_at, reference=(X_train, holdout_proba), labels=labels)

    report = monitor_pass(_settings(models_dir), source=_feed(tmp_path, candles, now), now=now)

    end = now.floor(CANDLE_INTERVAL) - CANDLE_INTERVAL
    X = FeatureManager.for_model(model.ensemble).build(
        candles.loc[pd.Timestamp(report.data.first_candle) : end]
    )
    rows = X.index[X.index > model.holdout_end]
    own, fixed = labels_for(candles.loc[:end], labels), labels_for(candles.loc[:end], LabelSettings())
    rows = rows[rows.isin(own.index)]
    predicted = model.ensemble.predict(X.loc[rows])
    expected = f1_score(own.loc[rows], predicted, average="macro", labels=[0, 1, 2])
    scores = report.realised["since_promotion"]
    assert scores.rows == len(rows) > 0
    assert scores.macro_f1 == pytest.approx(expected, abs=1e-12)
    assert scores.macro_f1 != pytest.approx(f1_score(fixed.loc[rows], predicted, average="macro"), abs=1e-6)
    assert (
        report.drift is not None
        and len(model.ensemble.feature_names) == len(FeatureManager().feature_names) + 10
    )


def test_realised_scores_equal_an_independent_computation_on_the_same_rows(
    tmp_path: Path, candles: pd.DataFrame, trained: tuple[TrainedModel, pd.DataFrame, np.ndarray]
) -> None:
    model = trained[0]
    now = _first_pass_time(model)
    end = now.floor(CANDLE_INTERVAL) - CANDLE_INTERVAL
    report = monitor_pass(
        _settings(_store(tmp_path, trained, age=pd.Timedelta(days=9))),
        source=_feed(tmp_path, candles, now),
        now=now,
    )

    close = candles["close"].loc[:end]
    future = close.shift(-HORIZON)
    matured = close.index[close.index <= end - HORIZON * CANDLE_INTERVAL]
    move = (future / close - 1.0).loc[matured]
    labels = pd.Series(np.select([move > THRESHOLD, move < -THRESHOLD], [2, 0], 1), index=matured)
    # From the pass's first candle: the EMAs keep ~0.03% of their start, enough to flip a tree split
    X = FeatureManager().build(candles.loc[pd.Timestamp(report.data.first_candle) : end])
    for window, days in (("last_day", 1), ("last_7_days", 7), ("since_promotion", None)):
        start = model.holdout_end if days is None else end - pd.Timedelta(days=days)
        rows = X.index[(X.index > start) & X.index.isin(matured)]
        y_true = labels.loc[rows].to_numpy()
        expected = f1_score(y_true, model.ensemble.predict(X.loc[rows]), average="macro", labels=[0, 1, 2])
        persistence = labels.reindex(rows - HORIZON * CANDLE_INTERVAL).to_numpy()
        expected_persistence = f1_score(y_true, persistence, average="macro", labels=[0, 1, 2])
        scores = report.realised[window]
        assert scores.rows == len(rows) > 0
        assert scores.macro_f1 == pytest.approx(expected, abs=1e-12)
        assert scores.persistence_macro_f1 == pytest.approx(expected_persistence, abs=1e-12)
    assert (
        report.realised["since_promotion"].rows
        > report.realised["last_7_days"].rows
        > report.realised["last_day"].rows
    )


def test_a_model_worse_than_persistence_is_degraded_after_consecutive_passes(
    tmp_path: Path, candles: pd.DataFrame, trained: tuple[TrainedModel, pd.DataFrame, np.ndarray]
) -> None:
    settings = _settings(_store(tmp_path, trained, age=pd.Timedelta(days=9)), consecutive=2)
    first = _first_pass_time(trained[0])
    reports = _passes(settings, _feed(tmp_path, candles, first + PASS_EVERY), first, 2)
    week = reports[0].realised["last_7_days"]
    assert week.macro_f1 < week.persistence_macro_f1  # two shallow forests barely leave HOLD
    assert [r.alerts for r in reports] == [[], ["model.degraded"]]


def test_an_unchanged_market_raises_nothing(
    tmp_path: Path, candles: pd.DataFrame, trained: tuple[TrainedModel, pd.DataFrame, np.ndarray]
) -> None:
    settings = _settings(
        _store(tmp_path, trained, age=pd.Timedelta(days=9)), min_margin_over_persistence=-1.0
    )
    first = _first_pass_time(trained[0])
    reports = _passes(settings, _feed(tmp_path, candles, first + 3 * PASS_EVERY), first, 4)
    assert [r.breaches for r in reports] == [[]] * 4
    assert reports[-1].drift is not None and reports[-1].drift.share_drifted < settings.monitor.drift_share
    assert load_state(state_path(settings.paths.models_dir)).kind("features.drifted").streak == 0


def test_a_calm_market_turning_volatile_raises_drift_after_consecutive_passes_and_not_before(
    tmp_path: Path, candles: pd.DataFrame, trained: tuple[TrainedModel, pd.DataFrame, np.ndarray]
) -> None:
    model = trained[0]
    settings = _settings(
        _store(tmp_path, trained, age=pd.Timedelta(days=9)), min_margin_over_persistence=-1.0
    )
    first = _first_pass_time(model)
    source = _feed(
        tmp_path, candles, first + 4 * PASS_EVERY, volatile_from=model.holdout_end + pd.Timedelta(days=1)
    )
    reports = _passes(settings, source, first, 5)
    assert all("features.drifted" in [b.kind for b in r.breaches] for r in reports)
    assert [r.alerts for r in reports] == [[], [], ["features.drifted"], [], []]  # then its cooldown
    assert "volatility_96" in reports[0].drifted_features
    rows = recent_passes(history_path(settings.paths.models_dir), 10)
    assert [row["alerts"] for row in rows] == [r.alerts for r in reports]


def test_a_feed_whose_last_candle_is_hours_old_raises_data_stale(
    tmp_path: Path, candles: pd.DataFrame, trained: tuple[TrainedModel, pd.DataFrame, np.ndarray]
) -> None:
    settings = _settings(
        _store(tmp_path, trained, age=pd.Timedelta(days=9)), min_margin_over_persistence=-1.0, consecutive=1
    )
    first = _first_pass_time(trained[0])
    report = monitor_pass(settings, source=_feed(tmp_path, candles, first - pd.Timedelta(hours=3)), now=first)
    assert report.alerts == ["data.stale"]
    assert report.data.age_minutes == pytest.approx(185.0)  # 19:45 closed at 20:00, the pass runs at 23:05


def test_a_model_older_than_the_limit_raises_model_expired(
    tmp_path: Path, candles: pd.DataFrame, trained: tuple[TrainedModel, pd.DataFrame, np.ndarray]
) -> None:
    settings = _settings(
        _store(tmp_path, trained, age=pd.Timedelta(days=15)), min_margin_over_persistence=-1.0, consecutive=1
    )
    first = _first_pass_time(trained[0])
    report = monitor_pass(settings, source=_feed(tmp_path, candles, first), now=first)
    assert report.alerts == ["model.expired"]
    assert report.model_age_days == pytest.approx(15.0)


def test_the_command_replays_a_candle_file_and_ends_with_the_report_as_one_json_line(
    tmp_path: Path, candles: pd.DataFrame, trained: tuple[TrainedModel, pd.DataFrame, np.ndarray]
) -> None:
    models_dir = _store(tmp_path, trained, age=pd.Timedelta(days=9))
    first = _first_pass_time(trained[0])
    source = _feed(tmp_path, candles, first)
    app = typer.Typer()
    app.command()(monitor)
    result = CliRunner().invoke(app, ["--data", str(source.path), "--models-dir", str(models_dir), "--json"])
    assert result.exit_code == 0, result.output
    printed = json.loads(result.output.strip().splitlines()[-1])
    replayed = monitor_pass(_settings(models_dir), source=source, now=first)  # the file ends at `first`
    assert printed["realised"] == replayed.model_dump(mode="json")["realised"]
    assert set(printed["realised"]["last_7_days"]) >= {"macro_f1", "persistence_macro_f1", "rows"}
    assert printed["drifted_features"] == replayed.drifted_features
    assert printed["alerts"] == []
    assert {b["kind"] for b in printed["breaches"]} >= {
        "data.stale",
        "model.expired",
    }  # a file from 2025, read today


def test_the_flow_publishes_the_trend_and_emits_an_event_per_alert(
    tmp_path: Path,
    candles: pd.DataFrame,
    trained: tuple[TrainedModel, pd.DataFrame, np.ndarray],
    prefect_harness: None,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from prefect import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey

    from flows.monitor import monitor as monitor_flow
    from tasks.monitor import TREND_KEY

    monkeypatch.setenv("RETRAIN_MONITOR__CONSECUTIVE", "1")
    monkeypatch.setenv("RETRAIN_MONITOR__MIN_MARGIN_OVER_PERSISTENCE", "-1")
    models_dir = _store(tmp_path, trained, age=pd.Timedelta(days=9))
    source = _feed(tmp_path, candles, _first_pass_time(trained[0]))
    summary = monitor_flow(source="csv", data_path=str(source.path), models_dir=str(models_dir))
    assert set(summary["alerts"]) == {"data.stale", "model.expired"}  # a file from 2025, read today
    assert sorted(summary["events"]) == ["retrain.data.stale", "retrain.model.expired"]
    with get_client(sync_client=True) as client:
        trend = client.read_artifacts(artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=[TREND_KEY])))
    assert len(trend) == 1 and trend[0].type == "table"
