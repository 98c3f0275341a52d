"""Shared studies: several processes take trials of one model's study from one Optuna storage.

Each test runs real processes (tests/shared_study_worker.py) on demo candles with cheap lightgbm
trials: the flow's training path (`train_model`) and an extra worker (`tune_worker`).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pytest
from optuna.trial import FrozenTrial, TrialState

from retrain.errors import ConfigError
from retrain.settings import load_settings
from retrain.training.tuning import worker_seed
from tests import shared_study_worker

WORKER = Path(shared_study_worker.__file__)
START_TIMEOUT_S = 180
RUN_TIMEOUT_S = 240


def _start(tmp_path: Path, role: str, storage: str, n_trials: int, worker: str) -> subprocess.Popen[str]:
    log = (tmp_path / f"{worker}.log").open("w")
    return subprocess.Popen(
        [
            sys.executable,
            str(WORKER),
            role,
            storage,
            str(n_trials),
            str(tmp_path / f"{worker}.ready"),
            str(tmp_path / "go"),
            worker,
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "PYTHONPATH": str(WORKER.parent.parent)},
    )


def _wait_ready(tmp_path: Path, workers: list[str]) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while not all((tmp_path / f"{w}.ready").exists() for w in workers):
        assert time.monotonic() < deadline, f"workers not ready after {START_TIMEOUT_S} s"
        time.sleep(0.2)
    (tmp_path / "go").touch()


def _finish(tmp_path: Path, process: subprocess.Popen[str], worker: str) -> None:
    returncode = process.wait(timeout=RUN_TIMEOUT_S)
    assert returncode == 0, (
        f"{worker} exited {returncode}:\n{(tmp_path / f'{worker}.log').read_text()[-3000:]}"
    )


def _trials(storage: optuna.storages.BaseStorage) -> list[FrozenTrial]:
    """Every trial of the one study in `storage`; none before a worker created it."""
    summaries = optuna.get_all_study_summaries(storage)
    if not summaries:
        return []
    return optuna.load_study(study_name=summaries[0].study_name, storage=storage).get_trials()


def test_two_processes_share_one_journal_study_and_stop_at_n_trials_together(tmp_path: Path) -> None:
    storage = f"journal:{tmp_path / 'optuna.journal'}"
    n_trials = 6
    main = _start(tmp_path, "main", storage, n_trials, "main")
    extra = _start(tmp_path, "extra", storage, n_trials, "extra")
    _wait_ready(tmp_path, ["main", "extra"])
    _finish(tmp_path, main, "main")
    _finish(tmp_path, extra, "extra")

    journal = optuna.storages.journal.JournalFileBackend(str(tmp_path / "optuna.journal"))
    trials = _trials(optuna.storages.JournalStorage(journal))
    assert len(trials) == n_trials, [(t.number, t.state.name) for t in trials]
    assert all(t.state == TrialState.COMPLETE for t in trials)
    workers = [t.user_attrs["worker"] for t in trials]
    assert workers.count("extra") >= 1, workers
    assert len(set(workers)) == 2, f"both processes ran trials: {workers}"
    assert len({tuple(sorted(t.params.items())) for t in trials}) == n_trials, (
        "workers proposed distinct trials"
    )


def test_a_trial_whose_worker_was_killed_is_failed_and_retried_by_the_other(tmp_path: Path) -> None:
    storage = f"sqlite:///{tmp_path / 'optuna.db'}"
    database = optuna.storages.RDBStorage(storage)  # its tables exist before the workers race to create them
    n_trials = 6
    doomed = _start(tmp_path, "extra", storage, n_trials, "doomed")
    main = _start(tmp_path, "main", storage, n_trials, "main")
    _wait_ready(tmp_path, ["doomed", "main"])

    killed: FrozenTrial | None = None
    deadline = time.monotonic() + RUN_TIMEOUT_S
    while killed is None and time.monotonic() < deadline and main.poll() is None:
        trials = _trials(database)
        mine = [t for t in trials if t.user_attrs.get("worker") == "doomed"]
        done = [t for t in mine if t.state == TrialState.COMPLETE]
        # killed once its running trial holds every parameter (mid-suggestion the retry would sample the rest)
        if done and any(t.state == TrialState.RUNNING and len(t.params) == len(done[0].params) for t in mine):
            doomed.send_signal(signal.SIGKILL)
            doomed.wait(timeout=30)
            running = [
                t
                for t in _trials(database)
                if t.user_attrs.get("worker") == "doomed" and t.state == TrialState.RUNNING
            ]
            assert len(running) == 1, "the killed worker left one trial running"
            killed = running[0]
        time.sleep(0.05)
    assert killed is not None, "the doomed worker never ran a second trial while the study was open"
    _finish(tmp_path, main, "main")

    trials = _trials(database)
    by_number = {t.number: t for t in trials}
    assert by_number[killed.number].state == TrialState.FAIL
    (retry,) = [t for t in trials if t.system_attrs.get("failed_trial") == killed.number]
    assert retry.state == TrialState.COMPLETE
    assert retry.user_attrs["worker"] != "doomed"
    assert retry.params == killed.params, "the retry re-runs the killed trial's parameters"
    assert sum(t.state == TrialState.COMPLETE for t in trials) == n_trials, (
        "the retry took the failed trial's place"
    )


def test_each_extra_worker_samples_with_its_own_seed_and_the_flow_keeps_the_configured_one() -> None:
    assert worker_seed(42, None) == 42
    seeds = {worker_seed(42, name) for name in ("host-a:1", "host-a:2", "host-b:1")}
    assert len(seeds) == 3
    assert worker_seed(42, "host-a:1") == worker_seed(42, "host-a:1")


def test_a_storage_that_is_neither_a_journal_nor_a_database_url_is_refused() -> None:
    with pytest.raises(ConfigError, match="journal:<path>"):
        load_settings(tuning={"storage": "models/optuna.db"})


def test_tune_worker_refuses_to_start_without_a_shared_storage(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RETRAIN_")}
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "retrain.cli",
            "tune-worker",
            "--run-dir",
            str(tmp_path),
            "--model",
            "lightgbm",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        cwd=WORKER.parent.parent,
    )
    assert done.returncode == 2
    assert "tuning.storage is not set" in done.stderr
