"""How every file of the project is written: whole or not at all.

A reader (a retried task, the live bot, a crashed run's successor) sees either the previous content
of a path or the new one, never a torn write: the bytes go to a temporary file in the same directory,
are flushed (and with `durable`, fsynced together with the directory entry), and only then renamed
over the path. Run files, the candle cache and the model store all go through `write_atomically`.
"""

from __future__ import annotations

import errno
import json
import os
import pickle
import shutil
import tempfile
from pathlib import Path
from typing import Any

from retrain.errors import DiskFullError

PICKLE_PROTOCOL = 5
"""Protocol of every pickle the project writes (run files and stored models)."""

_CHUNK_BYTES = 1 << 20


_FULL = (errno.ENOSPC, errno.EDQUOT)


def write_atomically(path: Path, data: bytes, *, durable: bool = False, read_only: bool = False) -> Path:
    """Replace `path` with `data` in one rename; `durable` also survives a power loss, `read_only`
    leaves the file mode 0444 so no tool edits it in place. A full file system raises DiskFullError
    naming the path (the OS's own error names neither the file nor the disk)."""
    path = Path(path)
    try:
        return _write_atomically(path, data, durable=durable, read_only=read_only)
    except OSError as exc:
        if exc.errno not in _FULL or isinstance(exc, DiskFullError):
            raise
        raise DiskFullError(exc.errno, _full_message(path, len(data), exc), str(path)) from exc


def _full_message(path: Path, size: int, exc: OSError) -> str:
    folder = next((p for p in (path.parent, *path.parents) if p.exists()), path.parent)
    try:
        free = f"{shutil.disk_usage(folder).free:,} bytes free"
    except OSError:
        free = "free space unknown"
    return (
        f"{exc.strerror}: cannot write {size:,} bytes to {path} (the file system holding {folder} has "
        f"{free}); free space there or point paths.runs_dir / paths.models_dir at a larger disk"
    )


def _write_atomically(path: Path, data: bytes, *, durable: bool, read_only: bool) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        view = memoryview(data)
        while view:
            written = os.write(fd, view[:_CHUNK_BYTES])
            view = view[written:]
        if durable:
            os.fsync(fd)
        os.fchmod(fd, 0o444 if read_only else 0o644)
    except BaseException:
        os.close(fd)
        Path(temp_name).unlink(missing_ok=True)
        raise
    os.close(fd)
    try:
        os.replace(temp_name, path)
    except BaseException:
        Path(temp_name).unlink(missing_ok=True)
        raise
    if durable:
        fsync_dir(path.parent)
    return path


def write_json(path: Path, payload: Any) -> Path:
    """JSON (indented, non-JSON values as strings), written atomically."""
    return write_atomically(path, json.dumps(payload, indent=2, default=str).encode())


def write_pickle(path: Path, obj: object) -> Path:
    return write_atomically(path, pickle.dumps(obj, protocol=PICKLE_PROTOCOL))


def fsync_dir(path: Path) -> None:
    """Make the entries of a directory (creations, renames, removals) durable."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
