"""File-system steps that survive a crash: data is on disk before any name makes it visible.

A rename or symlink swap is atomic, but without fsync a power loss can leave the *name* durable
and the *data* not. So: write, fsync the file, fsync its directory, and only then publish.
"""

from __future__ import annotations

import ctypes
import errno
import os
from pathlib import Path

from retrain.files import fsync_dir

_AT_FDCWD = -100
_RENAME_EXCHANGE = 2


def make_dir_durably(path: Path) -> None:
    """Create `path` if missing, and make its entry in the parent durable."""
    if path.is_dir():
        return
    path.mkdir(parents=True, exist_ok=True)
    fsync_dir(path.parent)


def replace_with_symlink(link: Path, target: str, temp_link: Path) -> None:
    """Point `link` at `target` atomically: readers see the old target or the new one, never nothing."""
    os.symlink(target, temp_link)
    fsync_dir(link.parent)
    os.replace(temp_link, link)
    fsync_dir(link.parent)


def exchange_entries(first: Path, second: Path) -> None:
    """Swap two directory entries in one atomic step (Linux renameat2 RENAME_EXCHANGE).

    Needed to turn a real directory into a symlink without an instant where neither exists.
    Raises OSError (ENOSYS, EINVAL...) where the system or file system does not support it.
    """
    renameat2 = getattr(ctypes.CDLL(None, use_errno=True), "renameat2", None)
    if renameat2 is None:
        raise OSError(errno.ENOSYS, "renameat2 is not available on this system")
    renameat2.argtypes = (ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint)
    if renameat2(_AT_FDCWD, os.fsencode(first), _AT_FDCWD, os.fsencode(second), _RENAME_EXCHANGE) != 0:
        code = ctypes.get_errno()
        raise OSError(code, os.strerror(code), str(first), None, str(second))
