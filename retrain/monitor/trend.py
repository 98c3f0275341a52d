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
