"""The `markets` flow: two markets (real BTC/USDT and ETH/USDT candles) retrained as subflows at once,
each promoting into its own model store, their studies held in the host's training-threads limit."""

from __future__ import annotations

from pathlib import Path

import pytest
from flow_helpers import RECORDING, use_fast_runs, write_candle_slice
from prefect import get_client

from flows.markets import markets
from retrain.errors import ConfigError
from retrain.settings import MarketSettings
from retrain.store import load_production_metadata
from retrain.training.threads import available_cores
from tasks.cluster import host_limit_name

pytestmark = [pytest.mark.e2e, pytest.mark.usefixtures("prefect_harness")]

ETH_RECORDING = "ETHUSDT_BINANCE_15m_20220101_20260305.csv"
DAYS = 30
LAST_DAY = "2024-04-30"


def test_two_markets_each_promote_one_model_into_their_own_store(
    shared_data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    use_fast_runs(monkeypatch)
    # Orchestration under test, not the models: 30 days and one trial are too little to pass the gate.
    monkeypatch.setenv("RETRAIN_GATE__MIN_MACRO_F1", "0")
    monkeypatch.setenv("RETRAIN_GATE__MIN_MARGIN_OVER_BASELINES", "-1")
    monkeypatch.setenv("RETRAIN_GATE__MIN_ECONOMIC_MARGIN", "-1")
    chosen = [
        MarketSettings(
            exchange="binance",
            symbol=symbol,
            models_dir=tmp_path / name / "models",
            source="csv",
            csv_path=write_candle_slice(
                shared_data / recording, LAST_DAY, DAYS, tmp_path / name / "candles.csv"
            ),
        )
        for name, symbol, recording in [("btc", "BTC/USDT", RECORDING), ("eth", "ETH/USDT", ETH_RECORDING)]
    ]

    outcomes = markets(markets=chosen, days=DAYS, trials=1, models=["lightgbm"])

    assert sorted(outcomes) == ["binance:BTC/USDT", "binance:ETH/USDT"]
    for market in chosen:
        outcome = outcomes[f"binance:{market.symbol}"]
        assert outcome["status"] == "promoted", outcome
        assert outcome["models_dir"] == str(market.models_dir)
        assert load_production_metadata(market.models_dir).version == outcome["version"]
    assert outcomes["binance:BTC/USDT"]["version"] != outcomes["binance:ETH/USDT"]["version"]
    with get_client(sync_client=True) as client:
        limit = client.read_global_concurrency_limit_by_name(host_limit_name())
    assert limit.limit == available_cores(None)


def test_two_markets_sharing_a_store_are_refused(tmp_path: Path) -> None:
    shared = [
        MarketSettings(exchange="binance", symbol=symbol, models_dir=tmp_path / "models")
        for symbol in ("BTC/USDT", "ETH/USDT")
    ]
    with pytest.raises(ConfigError, match="their own models_dir"):
        markets.fn(markets=shared)
