"""A stored version's report (markdown + plots) kept beside its model, in `archive/<version>/report/`.

Written under the store's writer lock, so retention in a concurrent promotion cannot delete the
version while its report is copied in; staged in a temporary folder and renamed, so a reader sees the
whole report or none.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from retrain.errors import PromotionError
from retrain.files import fsync_dir
from retrain.store.layout import StoreLayout
from retrain.store.lock import promotion_lock

REPORT_DIR = "report"


def attach_report(models_dir: Path | str, version: str, report: Path, *, lock_timeout: float = 600.0) -> Path:
    """Copy the folder `report` to `archive/<version>/report/`, replacing an earlier copy."""
    layout = StoreLayout(Path(models_dir))
    with promotion_lock(layout, lock_timeout):
        version_dir = layout.version_dir(version)
        if not version_dir.is_dir():
            raise PromotionError(
                f"version {version} is not in the archive {layout.archive}; no report attached"
            )
        target = version_dir / REPORT_DIR
        staging = version_dir / f".{REPORT_DIR}.tmp"
        shutil.rmtree(staging, ignore_errors=True)
        shutil.copytree(report, staging)
        shutil.rmtree(target, ignore_errors=True)
        staging.rename(target)
        fsync_dir(version_dir)
    return target
