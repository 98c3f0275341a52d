"""Parallel weeks in the backtest: every week's studies trained ahead at once (cold), then the weeks
decided in order against the production the previous week left; a backtest is resumed the way it began."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pandas as pd
import pytest

from retrain.backtest import BacktestPlan, WeekParallelism, run_and_report
from retrain.errors import BacktestError
from retrain.settings import load_settings


def _settings():
    return load_settings(
        data={"source": "demo", "days": 30},
        split={"holdout_days": 7, "n_splits": 3},
        tuning={"n_trials": 1},
        training={"models": ["lightgbm"]},
        gate={"min_macro_f1": 0, "min_margin_over_baselines": -1, "min_economic_margin": -1},
    )


def _plan(out: Path) -> BacktestPlan:
    start = pd.Timestamp.now(tz="UTC").floor("D") - pd.Timedelta(days=21)
    return BacktestPlan(start=start, weeks=2, out=out)


def test_weeks_trained_ahead_are_decided_in_order_against_the_production_before_them(tmp_path: Path) -> None:
    plan = _plan(tmp_path / "backtest")
    with ThreadPoolExecutor(max_workers=2) as executor:
        result = run_and_report(_settings(), plan, parallel=WeekParallelism(executor, threads=1))

    first, second = result.weeks
    assert first.trained_ahead and second.trained_ahead
    assert first.train_ahead_s > 0 and second.train_ahead_s > 0
    assert first.champion_version is None
    assert second.champion_version == first.production_version
    runs = sorted(run.name[-7:] for run in (plan.out / "runs").iterdir())
    assert runs == ["week000", "week001"], "each week's retrain reuses the run its studies were trained in"


def test_a_backtest_begun_with_parallel_weeks_is_not_resumed_one_week_at_a_time(tmp_path: Path) -> None:
    plan = _plan(tmp_path / "backtest")
    one_week = BacktestPlan(start=plan.start, weeks=1, out=plan.out)
    with ThreadPoolExecutor(max_workers=1) as executor:
        run_and_report(_settings(), one_week, parallel=WeekParallelism(executor, threads=1))

    with pytest.raises(BacktestError, match="started with parallel weeks"):
        run_and_report(_settings(), plan)
