"""One line per monitor pass in `<models_dir>/monitor_history.jsonl`: the trend the flow charts.

Append-only JSON lines (about 300 bytes a pass, 2.6 MB a year hourly); a torn last line from a
crash is skipped when read.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

HISTORY_FILE = "monitor_history.jsonl"
VERSIONS_TREND_KEY = "retrain-versions-trend"
"""Key of the table artifact the retrain and monitor flows keep up to date (one row per live version)."""


def history_path(models_dir: Path | str) -> Path:
    return Path(models_dir) / HISTORY_FILE


def append_pass(path: Path, row: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as handle:
        handle.write(json.dumps(row, default=str) + "\n")


def recent_passes(path: Path, count: int) -> list[dict[str, Any]]:
    """The last `count` passes, oldest first; unreadable lines are skipped."""
    if not path.exists():
        return []
    rows = []
    for line in path.read_text().splitlines()[-count:]:
        try:
            rows.append(json.loads(line))
        except ValueError:
            logger.warning("skipped an unreadable line of %s", path)
    return rows


def versions_trend(models_dir: Path | str, passes: int) -> list[dict[str, Any]]:
    """One row per version that went live, oldest first: its holdout macro-F1 at promotion and, from the
    last of the recent monitor passes that watched it, its realised scores since promotion."""
    from retrain.store import list_versions

    last_pass: dict[str, dict[str, Any]] = {}
    for row in recent_passes(history_path(models_dir), passes):
        last_pass[row.get("version", "")] = row
    rows = []
    for info in list_versions(models_dir):
        if info.status == "rejected":
            continue
        watched = last_pass.get(info.version, {})
        rows.append(
            {
                "version": info.version,
                "status": info.status,
                "created_at": info.created_at.isoformat() if info.created_at else None,
                "holdout_macro_f1": None if info.macro_f1 is None else round(info.macro_f1, 4),
                "live_macro_f1": watched.get("since_promotion_macro_f1"),
                "live_persistence_macro_f1": watched.get("since_promotion_persistence_macro_f1"),
                "live_rows": watched.get("since_promotion_rows"),
                "checked_at": watched.get("checked_at"),
            }
        )
    return rows
