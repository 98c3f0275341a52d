"""The fault matrix (issue 17.3), one test per case: what must hold after each fault, on real retrains.

The retrains are forked by bench/fault_run.py's launcher (the project imported once), small (demo
source, 30 days, lightgbm, 1 trial) and paused or killed at exact stage boundaries. The bench
(bench/fault_matrix.py) runs the same cases N times each and prints the table; a kill *inside* a
promotion is tests/test_store_crash.py.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
from fake_bitbank import Clock, FakeBitbank, Fault, day_path, load_recording, retime

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))

from fault_matrix import (  # noqa: E402
    COMPLETED,
    Matrix,
    concurrent_retrains,
    fill,
    inspect_store,
    small_env,
    tmpfs,
)
from fault_run import STAGES, Launcher  # noqa: E402

from retrain.data.candles import CANDLE_COLUMNS  # noqa: E402
from retrain.data.exchange import ExchangeSource  # noqa: E402
from retrain.errors import TransientExchangeError  # noqa: E402
from retrain.run_dir import RunDir  # noqa: E402
from retrain.settings import load_settings  # noqa: E402
from retrain.stages import fetch_stage  # noqa: E402
from retrain.store import production_version  # noqa: E402

RECORDING = "BTCUSDT_BINANCE_15m_20230801_20240731.csv"
NOW = pd.Timestamp("2025-03-10 10:07", tz="UTC")
EXCHANGE_DAYS = 10


@pytest.fixture(scope="module")
def matrix(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Matrix]:
    scratch = tmp_path_factory.mktemp("faults")
    env = {key: value for key, value in os.environ.items() if not key.startswith("RETRAIN_")}
    with Launcher(scratch, env=env) as launcher:
        yield Matrix(launcher, scratch)


def _kill_after(matrix: Matrix, models: Path, stage: str) -> None:
    pid = matrix.launcher.start(small_env(models), pause_after=stage)
    matrix.launcher.wait_for(pid, "paused", stage=stage)
    assert matrix.launcher.kill(pid) == 9
    matrix.launcher.forget(pid)


def test_sigkill_after_any_stage_or_mid_training_leaves_production_verified_and_the_lock_free(
    matrix: Matrix,
) -> None:
    """Each killed run is the next run of the one before (it gets past that run's stage)."""
    models = matrix.seeded_store()
    before = production_version(models)
    for stage in STAGES[: STAGES.index("publish_stage")]:
        _kill_after(matrix, models, stage)
        state = inspect_store(models)
        assert state.production == before, f"killed after {stage}: production changed"
        assert state.lock_free and state.intact and not state.leftovers, (stage, state)

    pid = matrix.launcher.start(small_env(models, RETRAIN_TUNING__N_TRIALS="3"), announce_trials=True)
    run_dir = Path(matrix.launcher.wait_for(pid, "run_dir")["path"])
    matrix.launcher.wait_for(pid, "trial", done=1)
    matrix.launcher.kill(pid)
    matrix.launcher.forget(pid)
    state = inspect_store(models)
    assert state.production == before and state.lock_free and state.intact, state
    assert not list(run_dir.glob("trained_*.pkl")), "killed after training, not in the middle of it"

    _kill_after(matrix, models, "publish_stage")
    state = inspect_store(models)
    published = state.production
    assert state.lock_free and state.intact and not state.leftovers, state

    ok, report = matrix.next_run_ok(models)
    assert ok, report
    assert report["outcome"]["previous_version"] == published


@pytest.fixture
def full_disk_store(matrix: Matrix) -> Iterator[Path]:
    try:
        with tmpfs(matrix.fresh_dir("tmpfs") / "mnt") as mount:
            yield mount
    except PermissionError as exc:
        pytest.skip(f"this host does not allow mounting a tmpfs (needs root with CAP_SYS_ADMIN): {exc}")


def test_full_disk_before_any_stage_fails_naming_the_path_and_leaves_production_untouched(
    matrix: Matrix, full_disk_store: Path
) -> None:
    mount = full_disk_store
    models = matrix.seeded_store(mount / "models")
    for stage in STAGES:
        expected = production_version(models)
        pid = matrix.launcher.start_paused_before(small_env(models), stage)
        published = production_version(models)
        filler = fill(mount)
        matrix.launcher.resume(pid)
        report = matrix.launcher.result(pid)
        matrix.launcher.reap(pid)
        state = inspect_store(models)
        filler.unlink()

        assert report["event"] == "error", f"disk full before {stage}: the run did not fail: {report}"
        if stage == "publish_stage":
            assert report["type"] == "PromotionError", report
            assert (
                "No space left" in report["message"] and f"production serves {expected}" in report["message"]
            )
        else:
            assert report["type"] == "DiskFullError", report
            assert str(mount) in report["message"] and "No space left" in report["message"]
        # before the report stage the run has published; no earlier failure changes production
        assert state.production == (published if stage == "report_stage" else expected), stage
        assert state.lock_free and state.intact, (stage, state)

    ok, report = matrix.next_run_ok(models)
    assert ok, report


@pytest.fixture(scope="module")
def recording(shared_data: Path) -> pd.DataFrame:
    return retime(load_recording(shared_data / RECORDING), NOW)


@pytest.mark.parametrize(
    ("faults", "refused"),
    [
        pytest.param([Fault.HTTP_500] * 2, False, id="http-500-twice-is-retried"),
        pytest.param([Fault.HTTP_500] * 4, True, id="http-500-through-every-retry-is-refused"),
        pytest.param([Fault.REVERSED], False, id="reversed-page-is-sorted"),
        pytest.param([Fault.DUPLICATED], False, id="exact-repeats-are-dropped"),
        pytest.param([Fault.CONFLICTING], False, id="conflicting-twins-are-fetched-again"),
        pytest.param([Fault.CONFLICTING] * 4, True, id="conflicting-twins-every-time-are-refused"),
    ],
)
def test_exchange_fault_mid_pagination_is_retried_or_refused_never_written_for_training(
    recording: pd.DataFrame, tmp_path: Path, faults: list[Fault], refused: bool
) -> None:
    clock = Clock(NOW)
    with FakeBitbank(recording, now=clock) as fake:
        settings = load_settings(
            data={
                "source": "exchange",
                "api_url": fake.url,
                "cache_dir": str(tmp_path / "cache"),
                "days": EXCHANGE_DAYS,
                "backoff_base_s": 0.0,
                "max_retries": 3,
                "request_timeout_s": 20,
            },
            paths={"models_dir": str(tmp_path / "models")},
        )
        fake.inject(*faults, path=day_path(fake.pair, NOW - pd.Timedelta(days=EXCHANGE_DAYS // 2)))
        run = RunDir(tmp_path / "run")
        source = ExchangeSource(settings.data, now=clock, sleep=lambda _: None)
        if refused:
            with pytest.raises(TransientExchangeError, match="failed after 4 attempts"):
                fetch_stage(settings, run, source, now=NOW)
            assert not (run.root / "candles.parquet").exists(), "refused candles were handed to training"
            assert not list((tmp_path / "cache").glob("*.parquet")), "a partial download was cached"
        else:
            fetch_stage(settings, run, source, now=NOW)
            candles = run.read_candles().reset_index()[list(CANDLE_COLUMNS)]
            stamps = recording["timestamp"]
            expected = recording[
                (stamps >= candles["timestamp"].iloc[0]) & (stamps <= candles["timestamp"].iloc[-1])
            ]
            pd.testing.assert_frame_equal(candles, expected[list(CANDLE_COLUMNS)].reset_index(drop=True))
        assert fake.pending_faults() == 0, "the fault was never served"


def test_two_retrains_at_once_promote_exactly_one_and_refuse_the_other(matrix: Matrix) -> None:
    result = concurrent_retrains(matrix)
    assert result.held, result.note
    assert "1 promoted, 1 refused" in result.note and "nothing was promoted" in result.note


@pytest.fixture(scope="module")
def prefect_server(tmp_path_factory: pytest.TempPathFactory):
    from fault_prefect import prefect_server

    with prefect_server(tmp_path_factory.mktemp("prefect")) as server:
        yield server


@pytest.mark.e2e
def test_prefect_server_stopped_during_training_fails_the_run_cleanly_and_the_next_run_completes(
    prefect_server, tmp_path: Path
) -> None:
    from fault_prefect import stop_server_during_training

    models = tmp_path / "models"
    models.mkdir()
    result = stop_server_during_training(prefect_server, models)

    assert result.stopped_during == "training", "the run got past training before the server stopped"
    assert result.returncode == 1, result
    assert result.failure_line.startswith("retrain could not run: ConnectError"), result.failure_line
    assert result.production is None and result.consistent, result
    assert result.flow_run_state == "Running", "the operator's view after the restart changed; update docs"
    assert result.next_returncode == 0 and result.next_status in COMPLETED, result
