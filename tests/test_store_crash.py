"""Fault injection: a promoter SIGKILLed at random instants never leaves the bot a bad pair."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import store_helpers
from store_helpers import promote_new

from retrain.store import load_production, production_version, recover

KILLS = 200
MAX_DELAY_S = 0.06


def test_sigkill_at_any_instant_of_a_promotion_leaves_a_consistent_loadable_pair(tmp_path: Path) -> None:
    models = tmp_path / "models"
    promote_new(models)
    rng = random.Random(20261124)
    live_versions = {production_version(models)}
    recoveries_with_work = 0
    log_path = tmp_path / "launcher.log"

    with open(log_path, "wb") as log:
        launcher = subprocess.Popen(
            [sys.executable, store_helpers.__file__, str(models)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=log,
            text=True,
        )
    assert launcher.stdin is not None and launcher.stdout is not None
    try:
        for _ in range(KILLS):
            launcher.stdin.write("go\n")
            launcher.stdin.flush()
            victim = int(launcher.stdout.readline())
            time.sleep(rng.uniform(0.0, MAX_DELAY_S))
            os.kill(victim, signal.SIGKILL)
            status = int(launcher.stdout.readline())
            assert os.WIFSIGNALED(status), f"the promoter died on its own:\n{log_path.read_text()}"

            report = recover(models, lock_timeout=10)
            loaded = load_production(models)

            assert loaded.model.version == loaded.metadata.version
            recoveries_with_work += report.changed
            live_versions.add(loaded.metadata.version)
    finally:
        launcher.stdin.close()
        launcher.wait(timeout=30)

    # The kills landed inside promotions (leftovers to clean up) and promotions did complete.
    assert recoveries_with_work > 0
    assert len(live_versions) > 10
