"""One writer at a time: every change to the store happens under a cross-process file lock.

The lock is an flock on `models/.promotion.lock`: the kernel releases it when its holder dies,
even by SIGKILL, so a crashed promoter never blocks the next one.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from filelock import FileLock, Timeout

from retrain.errors import PromotionLockTimeout
from retrain.store.durable import make_dir_durably
from retrain.store.layout import StoreLayout


@contextmanager
def promotion_lock(layout: StoreLayout, timeout: float) -> Iterator[None]:
    """Hold the store's writer lock, waiting up to `timeout` seconds for another writer to finish."""
    make_dir_durably(layout.root)
    lock = FileLock(layout.lock_file, timeout=timeout)
    try:
        lock.acquire()
    except Timeout as exc:
        raise PromotionLockTimeout(
            f"another process held the model store lock {layout.lock_file} for more than {timeout:g} s; "
            "wait for the running promotion to finish, or raise store.lock_timeout_s"
        ) from exc
    try:
        yield
    finally:
        lock.release()
