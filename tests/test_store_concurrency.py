"""Readers in other processes load continuously while promotions and a rollback swap the pair."""

from __future__ import annotations

import queue
import time
from pathlib import Path
from typing import Any

from store_helpers import LARGE_PADDING, forkserver_context, open_paths_forever, promote_new, read_forever

from retrain.store import production_version, rollback

STORE_READERS = 4
PATH_READERS = 1
PROMOTIONS = 50
PROGRESS_TIMEOUT_S = 60.0


def _wait_until_every_reader_loads_again(loads: Any, readers: list[Any]) -> None:
    """Block until each reader finished a load that began after this call: reads interleave with swaps."""
    target = [count + 2 for count in loads[:]]
    deadline = time.monotonic() + PROGRESS_TIMEOUT_S
    while any(count < goal for count, goal in zip(loads[:], target, strict=True)):
        assert all(reader.is_alive() for reader in readers), "a reader process died"
        assert time.monotonic() < deadline, f"readers stopped making progress: {loads[:]}"
        time.sleep(0.001)


def test_concurrent_readers_never_see_a_mixed_or_partial_pair(tmp_path: Path) -> None:
    context = forkserver_context()
    promote_new(tmp_path, keep=3)
    stop = context.Event()
    loads = context.Array("q", STORE_READERS + PATH_READERS, lock=False)
    problems = context.Queue()
    readers = [
        context.Process(target=read_forever, args=(str(tmp_path), index, stop, loads, problems))
        for index in range(STORE_READERS)
    ] + [
        context.Process(target=open_paths_forever, args=(str(tmp_path), index, stop, loads, problems))
        for index in range(STORE_READERS, STORE_READERS + PATH_READERS)
    ]
    for reader in readers:
        reader.start()
    try:
        _wait_until_every_reader_loads_again(loads, readers)
        for count in range(PROMOTIONS):
            promote_new(tmp_path, padding=LARGE_PADDING if count % 2 else b"", keep=3)
            _wait_until_every_reader_loads_again(loads, readers)
        before_rollback = production_version(tmp_path)
        restored = rollback(tmp_path, reason="concurrency test")
        _wait_until_every_reader_loads_again(loads, readers)
    finally:
        stop.set()
        for reader in readers:
            reader.join(timeout=30)

    found = []
    while True:
        try:
            found.append(problems.get(timeout=0.5))
        except queue.Empty:
            break
    assert found == []
    assert production_version(tmp_path) == restored != before_rollback
    assert all(count >= 2 * (PROMOTIONS + 2) for count in loads[:]), loads[:]
