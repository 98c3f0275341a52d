"""The append-only promotion history (`models/promotion_history.jsonl`): one JSON line per event.

It tells which versions were ever live and in which order, which is what "roll back to the previous
version" and "never delete production's predecessor" mean. Lines are only ever appended (O_APPEND)
and fsynced; a line torn by a crash is skipped on reading and never joined to the next one.
"""

from __future__ import annotations

import logging
import os
from datetime import datetime
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from retrain.files import fsync_dir
from retrain.store.layout import StoreLayout
from retrain.store.metadata import utc_now

logger = logging.getLogger(__name__)

EventKind = Literal["promote", "rollback", "reject", "migrate", "recovered"]


class HistoryEvent(BaseModel):
    """promote/migrate/recovered/rollback: `version` went live, replacing `previous_version`.
    reject: `version` was archived as a rejected challenger (production unchanged)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    event: EventKind
    version: str
    previous_version: str | None
    at: datetime = Field(default_factory=utc_now)
    reason: str


def append_event(path: Path, event: HistoryEvent) -> None:
    """Append one line and fsync it; starts a fresh line if a crash tore the previous one."""
    created = not path.exists()
    fd = os.open(path, os.O_RDWR | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o644)
    try:
        size = os.fstat(fd).st_size
        torn = size > 0 and os.pread(fd, 1, size - 1) != b"\n"
        line = event.model_dump_json() + "\n"
        os.write(fd, (("\n" if torn else "") + line).encode())
        os.fsync(fd)
    finally:
        os.close(fd)
    if created:
        fsync_dir(path.parent)


def read_events(path: Path) -> list[HistoryEvent]:
    """Every readable event of a history file, oldest first (an absent file is an empty history)."""
    try:
        lines = path.read_bytes().splitlines()
    except FileNotFoundError:
        return []
    events = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            events.append(HistoryEvent.model_validate_json(line))
        except ValidationError:
            logger.warning(
                "skipping unreadable line %d of %s (torn by a crash?): %r", number, path, line[:200]
            )
    return events


def read_history(models_dir: Path | str) -> list[HistoryEvent]:
    """Every promotion, rollback and rejection recorded for `models_dir`, oldest first."""
    return read_events(StoreLayout(Path(models_dir)).history_file)


def live_lineage(events: list[HistoryEvent]) -> list[str]:
    """The versions that were live, oldest first, without those a rollback walked away from.

    Going live with a version already in the lineage (a rollback, or a recovered rollback) drops
    everything after it: those were rolled back, so "previous" is then the one before *that*.
    """
    lineage: list[str] = []
    for event in events:
        if event.event == "reject":
            continue
        if event.version in lineage:
            del lineage[lineage.index(event.version) + 1 :]
        else:
            lineage.append(event.version)
    return lineage


def predecessor(events: list[HistoryEvent], live: str | None, available: set[str]) -> str | None:
    """The version a rollback returns to by default: the latest one live before `live` that still exists."""
    lineage = live_lineage(events)
    earlier = lineage[:-1] if lineage and lineage[-1] == live else lineage
    return next((version for version in reversed(earlier) if version in available and version != live), None)
