"""Bring the store back to a consistent state after a crash (or a SIGKILL) at any instant.

Runs under the writer lock at the start of every promotion and rollback; the bot may call it at
start too. It removes only temporary and trash names, which never hold the live pair, and never
touches a complete archived version.
"""

from __future__ import annotations

import logging
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from retrain.errors import ModelIntegrityError
from retrain.files import fsync_dir
from retrain.store.archive import archived_versions
from retrain.store.history import HistoryEvent, append_event, live_lineage, read_events
from retrain.store.layout import (
    TMP_LINK_PREFIX,
    TMP_VERSION_PREFIX,
    TRASH_PREFIX,
    StoreLayout,
    version_from_link,
)
from retrain.store.legacy import migrate_legacy
from retrain.store.lock import promotion_lock

logger = logging.getLogger(__name__)


@dataclass
class RecoveryReport:
    removed: list[Path] = field(default_factory=list)
    completed_swap: str | None = None
    migrated: str | None = None
    history_repaired: bool = False

    @property
    def changed(self) -> bool:
        return bool(self.removed or self.completed_swap or self.migrated or self.history_repaired)


def recover(models_dir: Path | str, *, lock_timeout: float = 600.0) -> RecoveryReport:
    """Clean up after an interrupted promotion, rollback or deletion (waits for a running writer)."""
    layout = StoreLayout(Path(models_dir))
    with promotion_lock(layout, lock_timeout):
        return recover_locked(layout)


def recover_locked(layout: StoreLayout) -> RecoveryReport:
    """`recover` for a caller that already holds the writer lock."""
    report = RecoveryReport()
    _remove_partial_versions(layout, report)
    _settle_temp_links(layout, report)
    report.migrated = migrate_legacy(layout)
    _record_unrecorded_live_version(layout, report)
    if report.changed:
        logger.warning("model store recovered: %s", report)
    return report


def _remove_tree_or_link(path: Path) -> None:
    if path.is_symlink() or not path.is_dir():
        path.unlink()
    else:
        shutil.rmtree(path)


def _remove_partial_versions(layout: StoreLayout, report: RecoveryReport) -> None:
    if not layout.archive.is_dir():
        return
    partial = [p for p in layout.archive.iterdir() if p.name.startswith((TMP_VERSION_PREFIX, TRASH_PREFIX))]
    for path in partial:
        _remove_tree_or_link(path)
        report.removed.append(path)
    if partial:
        fsync_dir(layout.archive)


def _link_version(link: Path) -> str | None:
    try:
        return version_from_link(link)
    except ModelIntegrityError:
        return None


def _settle_temp_links(layout: StoreLayout, report: RecoveryReport) -> None:
    """Drop next-production links that never got swapped in; if no production exists (an interrupted
    first promotion or legacy migration), finish the swap with the newest complete one instead."""
    temps = [p for p in layout.root.iterdir() if p.name.startswith(TMP_LINK_PREFIX)]
    if not layout.production.is_symlink() and not layout.production.exists():
        complete = set(archived_versions(layout))
        ready = [(version, p) for p in temps if (version := _link_version(p)) in complete]
        if ready:
            version, link = max(ready)
            os.replace(link, layout.production)
            temps.remove(link)
            report.completed_swap = version
    for path in temps:
        _remove_tree_or_link(path)
        report.removed.append(path)
    if temps or report.completed_swap:
        fsync_dir(layout.root)


def _record_unrecorded_live_version(layout: StoreLayout, report: RecoveryReport) -> None:
    """A crash between a swap and its history line leaves production unrecorded; record it now."""
    live = version_from_link(layout.production)
    if live is None:
        return
    lineage = live_lineage(read_events(layout.history_file))
    if lineage and lineage[-1] == live:
        return
    append_event(
        layout.history_file,
        HistoryEvent(
            event="recovered",
            version=live,
            previous_version=lineage[-1] if lineage else None,
            reason="production pointed to this version but the history did not say so "
            "(a promotion or rollback was interrupted after its swap); recorded by recovery",
        ),
    )
    report.history_repaired = True
