"""Controls of the gate at small budgets: direction-scrambled real candles and the demo without its
planted edge are never promoted; the demo at its default edge is."""

from __future__ import annotations

from pathlib import Path

import pytest

from retrain.data.scramble import scramble_file
from retrain.handoffs import RetrainOutcome
from retrain.pipeline import run_pipeline
from retrain.settings import load_settings

BUDGET = {"tuning": {"n_trials": 2}, "training": {"models": ["lightgbm", "random_forest"]}}


def _decide(tmp_path: Path, data: dict[str, object]) -> RetrainOutcome:
    settings = load_settings(
        **BUDGET, data={"days": 120, **data}, paths={"models_dir": str(tmp_path / "models")}
    )
    return run_pipeline(settings, dry_run=True)


def test_direction_scrambled_real_candles_are_not_promoted(shared_data: Path, tmp_path: Path) -> None:
    scrambled = scramble_file(
        shared_data / "BTCUSDT_BINANCE_15m_20230801_20240731.csv", tmp_path / "scrambled.csv", seed=3
    )

    outcome = _decide(tmp_path, {"source": "csv", "csv_path": str(scrambled)})

    assert outcome.outcome in {"reject", "inconclusive"}, outcome.reasons


@pytest.mark.parametrize(("edge", "promoted"), [(0.0, False), (None, True)], ids=["no-edge", "default-edge"])
def test_the_demo_is_promoted_only_with_its_planted_edge(
    tmp_path: Path, edge: float | None, promoted: bool
) -> None:
    data = {"source": "demo"} | ({"demo_edge": edge} if edge is not None else {})

    outcome = _decide(tmp_path, data)

    assert (outcome.outcome == "promote") is promoted, outcome.reasons
