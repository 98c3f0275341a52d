"""Features: no look-ahead, warm-up and gaps dropped (never filled), a stable hash, scale-free values."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from retrain import features as features_module
from retrain.data.candles import CANDLE_INTERVAL
from retrain.data.demo import DemoSource
from retrain.errors import CandleValidationError, DatasetError, FeatureMismatchError
from retrain.features import GROUPS, FeatureManager, FeatureParams
from retrain.settings import FeatureSettings

W2_FILE = "BTCUSDT_BINANCE_15m_20220801_20230731.csv"
HALT_START, HALT_END = pd.Timestamp("2023-03-24 12:45", tz="UTC"), pd.Timestamp("2023-03-24 13:45", tz="UTC")


def _shared_candles(directory: Path, name: str) -> pd.DataFrame:
    frame = pd.read_csv(directory / name)
    frame["timestamp"] = pd.to_datetime(frame["timestamp"], utc=True)
    return frame.set_index("timestamp")


def _demo_candles(days: int = 40, seed: int = 11) -> pd.DataFrame:
    return DemoSource(seed, end=pd.Timestamp("2025-03-01", tz="UTC")).fetch(days).set_index("timestamp")


@pytest.fixture(scope="module")
def manager() -> FeatureManager:
    return FeatureManager()


@pytest.fixture(scope="module")
def every_group() -> FeatureManager:
    return FeatureManager(FeatureParams(groups=GROUPS))


@pytest.fixture(scope="module")
def w2_candles(shared_data: Path) -> pd.DataFrame:
    return _shared_candles(shared_data, W2_FILE)


@pytest.fixture(scope="module")
def halt_candles(w2_candles: pd.DataFrame) -> pd.DataFrame:
    """Two months of real Binance candles around the 2023-03-24 halt (5 candles missing)."""
    return w2_candles.loc["2023-02-15":"2023-04-15"]


def _assert_truncation_invariant(manager: FeatureManager, candles: pd.DataFrame, cuts: list[int]) -> None:
    full = manager.build(candles)
    for cut in cuts:
        truncated_candles = candles.iloc[: cut + 1]
        truncated = manager.build(truncated_candles)
        expected = full.loc[: truncated_candles.index[-1]]
        assert truncated.index[-1] == truncated_candles.index[-1], f"last row lost at cut {cut}"
        assert truncated.index.equals(expected.index), f"rows differ at cut {cut}"
        np.testing.assert_allclose(truncated.to_numpy(), expected.to_numpy(), rtol=0, atol=1e-9)


def test_features_of_truncated_demo_series_equal_full_series_features(manager: FeatureManager) -> None:
    candles = _demo_candles()
    lookback = manager.max_lookback
    _assert_truncation_invariant(
        manager, candles, [lookback, lookback + 1, lookback + 97, 2000, len(candles) - 2]
    )


def test_features_of_truncated_real_series_equal_full_series_features(
    manager: FeatureManager, halt_candles: pd.DataFrame
) -> None:
    after_halt = halt_candles.index.get_loc(HALT_END + (manager.max_lookback + 1) * CANDLE_INTERVAL)
    before_halt = halt_candles.index.get_loc(HALT_START - CANDLE_INTERVAL)
    _assert_truncation_invariant(manager, halt_candles, [700, before_halt, after_halt, len(halt_candles) - 2])


def test_every_feature_group_passes_the_truncation_test(
    every_group: FeatureManager, halt_candles: pd.DataFrame
) -> None:
    """Higher timeframes, divergence and large moves included: no row sees a candle after it."""
    lookback = every_group.max_lookback
    cuts = [lookback, lookback + 1, lookback + 2, lookback + 3, lookback + 97, 2000, 3000]
    _assert_truncation_invariant(every_group, _demo_candles(), cuts)
    after_halt = halt_candles.index.get_loc(HALT_END + (lookback + 1) * CANDLE_INTERVAL)
    before_halt = halt_candles.index.get_loc(HALT_START - CANDLE_INTERVAL)
    _assert_truncation_invariant(
        every_group, halt_candles, [1500, 1501, 1502, 1503, before_halt, after_halt, len(halt_candles) - 2]
    )


def test_a_higher_timeframe_bar_is_used_only_from_its_last_candle_on(every_group: FeatureManager) -> None:
    table = every_group.build(_demo_candles())
    stamps = table.index
    for column, closes_at in (
        ("htf_trend_1h_12", stamps.minute == 45),
        ("htf_range_pos_1h_12", stamps.minute == 45),
        ("htf_volatility_4h_12", (stamps.minute == 45) & (stamps.hour % 4 == 3)),
    ):
        changed = table[column].diff().fillna(0.0) != 0
        assert changed.any()
        assert not (changed & ~closes_at).any(), f"{column} changes before its bar has closed"


def test_default_feature_settings_give_todays_feature_set(manager: FeatureManager) -> None:
    from_settings = FeatureManager(FeatureParams.from_settings(FeatureSettings()))
    assert from_settings.feature_names == manager.feature_names
    assert manager.definition_hash.startswith("d5d4af95de6b")  # the base set as before feature groups
    assert len(manager.feature_names) == 43 and manager.max_lookback == 400


def test_groups_give_their_columns_in_a_fixed_order_whatever_the_listed_order(
    manager: FeatureManager,
) -> None:
    listed = FeatureSettings(groups=["time_since_large_move", "base", "higher_timeframes"])
    chosen = FeatureManager(FeatureParams.from_settings(listed))
    assert chosen.feature_names[: len(manager.feature_names)] == manager.feature_names
    assert chosen.feature_names[len(manager.feature_names) :] == [
        *(f"htf_{kind}_{tf}_12" for tf in ("1h", "4h") for kind in ("trend", "volatility", "range_pos")),
        "since_large_move_96",
        "large_move_sign_96",
    ]
    only = FeatureManager(FeatureParams(groups=("volume_price_divergence",)))
    assert only.feature_names == ["price_volume_corr_16", "price_volume_corr_96"]


def test_every_feature_group_is_scale_free(every_group: FeatureManager, halt_candles: pd.DataFrame) -> None:
    scaled = halt_candles.copy()
    scaled[["open", "high", "low", "close"]] *= 150.0
    scaled["volume"] *= 7.0
    original, rescaled = every_group.build(halt_candles), every_group.build(scaled)
    np.testing.assert_allclose(rescaled.to_numpy(), original.to_numpy(), rtol=1e-6, atol=1e-6)


class _Model:
    def __init__(self, manager: FeatureManager, record: bool) -> None:
        self.feature_definition_hash = manager.definition_hash
        self.feature_params = json.loads(json.dumps(manager.params.to_dict())) if record else None


def test_for_model_builds_the_feature_set_recorded_in_the_model(
    manager: FeatureManager, every_group: FeatureManager
) -> None:
    assert (
        FeatureManager.for_model(_Model(every_group, record=True)).feature_names == every_group.feature_names
    )
    assert FeatureManager.for_model(_Model(manager, record=False)).feature_names == manager.feature_names
    with pytest.raises(FeatureMismatchError, match="trained on feature set"):
        FeatureManager.for_model(_Model(every_group, record=False))


def test_warm_up_rows_are_dropped_not_filled(manager: FeatureManager) -> None:
    candles = _demo_candles()
    table = manager.build(candles)
    assert table.index[0] == candles.index[manager.max_lookback]
    assert len(table) == len(candles) - manager.max_lookback
    assert np.isfinite(table.to_numpy()).all()
    assert (table.dtypes == np.float64).all()


def test_warm_up_covers_the_smoothers_initialisation_transient(
    manager: FeatureManager, halt_candles: pd.DataFrame
) -> None:
    """Starting the series 1000 candles later changes no kept feature by more than 1e-4."""
    full = manager.build(halt_candles)
    later = manager.build(halt_candles.iloc[1000:])
    common = later.index.intersection(full.index)
    assert len(common) == len(later)
    np.testing.assert_allclose(later.loc[common].to_numpy(), full.loc[common].to_numpy(), rtol=0, atol=1e-4)


def test_real_halt_drops_exactly_the_rows_whose_lookback_touches_it(
    manager: FeatureManager, w2_candles: pd.DataFrame
) -> None:
    table = manager.build(w2_candles)
    grid = pd.date_range(w2_candles.index[0], w2_candles.index[-1], freq=CANDLE_INTERVAL, unit="us")
    last_touched = HALT_END + manager.max_lookback * CANDLE_INTERVAL
    expected = grid[manager.max_lookback :]
    expected = expected[(expected < HALT_START) | (expected > last_touched)]
    assert len(grid) - len(w2_candles) == 5
    assert table.index.equals(expected.rename("timestamp"))
    assert np.isfinite(table.to_numpy()).all()


def test_feature_names_are_unique_and_in_a_fixed_order(manager: FeatureManager) -> None:
    table = manager.build(_demo_candles(days=10))
    assert list(table.columns) == manager.feature_names
    assert len(set(manager.feature_names)) == len(manager.feature_names)
    assert FeatureManager().feature_names == manager.feature_names


def test_definition_hash_is_stable_across_instances(manager: FeatureManager) -> None:
    assert FeatureManager().definition_hash == manager.definition_hash
    assert FeatureManager(FeatureParams()).definition_hash == manager.definition_hash
    assert len(manager.definition_hash) == 64


@pytest.mark.parametrize(
    "changed",
    [
        {"rsi_periods": (7, 21)},
        {"macd": (12, 26, 10)},
        {"bollinger_k": 2.5},
        {"volume_z_window": 48},
        {"warmup_spans": 5},
    ],
)
def test_definition_hash_changes_when_a_parameter_changes(
    manager: FeatureManager, changed: dict[str, object]
) -> None:
    assert FeatureManager(FeatureParams(**changed)).definition_hash != manager.definition_hash


def test_definition_hash_changes_with_the_feature_set_version(
    manager: FeatureManager, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(features_module, "FEATURE_SET_VERSION", "changed")
    assert FeatureManager().definition_hash != manager.definition_hash


def test_features_are_scale_free(manager: FeatureManager, halt_candles: pd.DataFrame) -> None:
    """JPY prices (x150) and another volume unit (x7) give the same features."""
    for candles in (_demo_candles(), halt_candles):
        scaled = candles.copy()
        scaled[["open", "high", "low", "close"]] *= 150.0
        scaled["volume"] *= 7.0
        original, rescaled = manager.build(candles), manager.build(scaled)
        assert rescaled.index.equals(original.index)
        np.testing.assert_allclose(rescaled.to_numpy(), original.to_numpy(), rtol=1e-6, atol=1e-6)


def test_build_rejects_candles_that_are_not_validated(manager: FeatureManager) -> None:
    candles = _demo_candles(days=10)
    with pytest.raises(CandleValidationError, match="UTC"):
        manager.build(candles.reset_index())
    with pytest.raises(CandleValidationError, match="sorted"):
        manager.build(candles.iloc[::-1])
    with pytest.raises(CandleValidationError, match="grid"):
        manager.build(candles.set_axis(candles.index + pd.Timedelta(minutes=1)))
    with pytest.raises(CandleValidationError, match="NaN"):
        manager.build(candles.assign(close=candles["close"].where(candles.index != candles.index[5])))


def test_build_names_the_warm_up_when_candles_are_too_few(manager: FeatureManager) -> None:
    with pytest.raises(DatasetError, match=f"more than {manager.max_lookback} candles"):
        manager.build(_demo_candles(days=10).iloc[: manager.max_lookback])


def test_warm_up_spans_four_times_the_longest_smoother() -> None:
    params = FeatureParams()
    longest_span = max(*params.ema_spans, params.macd[1] + params.macd[2], 2 * (2 * params.adx_period - 1))
    assert FeatureManager(params).max_lookback == params.warmup_spans * longest_span


def test_describe_records_the_hash_names_and_parameters(manager: FeatureManager) -> None:
    summary = json.loads(json.dumps(manager.describe()))
    assert summary["definition_hash"] == manager.definition_hash
    assert summary["feature_names"] == manager.feature_names
    assert summary["max_lookback"] == manager.max_lookback
    assert summary["params"]["macd"] == [12, 26, 9]


def test_rows_left_undefined_by_a_tradeless_stretch_are_dropped_with_a_warning(
    manager: FeatureManager, caplog: pytest.LogCaptureFixture
) -> None:
    candles = _demo_candles(days=20)
    quiet = candles.index[1000:1020]
    table = manager.build(candles.assign(volume=candles["volume"].mask(candles.index.isin(quiet), 0.0)))
    assert np.isfinite(table.to_numpy()).all()
    assert not quiet[15:].isin(table.index).any()  # volume_ratio_16 is 0/0 there
    assert quiet[:15].isin(table.index).all()
    assert len(table) == len(candles) - manager.max_lookback - 5
    assert "NaN/inf" in caplog.text
