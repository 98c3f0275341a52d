"""Hysteresis between passes: a breach alerts only after it held for `monitor.consecutive` passes, and
each kind then stays quiet for its cooldown, so one noisy hour neither pages anyone nor starts a retrain.

The state lives beside the model store (`<models_dir>/monitor_state.json`), is replaced atomically,
and is about one production version: when production changes, the streaks and cooldowns of the
model's own kinds (degraded, drifted, expired) start over, those of the data feed do not.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from pathlib import Path
from typing import get_args

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from retrain.files import write_atomically
from retrain.monitor.checks import STALE, Breach
from retrain.settings import MonitorAlertKind, MonitorSettings

logger = logging.getLogger(__name__)

STATE_FILE = "monitor_state.json"
ALERT_KINDS: tuple[MonitorAlertKind, ...] = get_args(MonitorAlertKind)


class KindState(BaseModel):
    model_config = ConfigDict(frozen=True)

    streak: int = Field(0, ge=0, description="consecutive passes, up to the last one, with this breach")
    last_alerted_at: datetime | None = None


class MonitorState(BaseModel):
    model_config = ConfigDict(frozen=True)

    version: str | None = Field(None, description="the production version the model kinds are about")
    kinds: dict[MonitorAlertKind, KindState] = Field(default_factory=dict)
    updated_at: datetime | None = None

    def kind(self, kind: MonitorAlertKind) -> KindState:
        return self.kinds.get(kind, KindState())

    def for_version(self, version: str | None) -> MonitorState:
        """This state, with the model kinds started over if production is another version now."""
        if version == self.version:
            return self
        kept = {kind: value for kind, value in self.kinds.items() if kind == STALE}
        return self.model_copy(update={"version": version, "kinds": kept})


def decide(
    state: MonitorState, breaches: list[Breach], now: datetime, settings: MonitorSettings
) -> tuple[list[Breach], MonitorState]:
    """The breaches to alert on now, and the state after this pass (pure: nothing is read or written)."""
    by_kind = {breach.kind: breach for breach in breaches}
    alerts: list[Breach] = []
    kinds: dict[MonitorAlertKind, KindState] = {}
    for kind in ALERT_KINDS:
        previous = state.kind(kind)
        if kind not in by_kind:
            kinds[kind] = KindState(streak=0, last_alerted_at=previous.last_alerted_at)
            continue
        streak = previous.streak + 1
        cooldown = timedelta(hours=settings.cooldown_hours.hours(kind))
        quiet = previous.last_alerted_at is not None and now - previous.last_alerted_at < cooldown
        if streak >= settings.consecutive and not quiet:
            alerts.append(by_kind[kind])
            kinds[kind] = KindState(streak=streak, last_alerted_at=now)
        else:
            kinds[kind] = KindState(streak=streak, last_alerted_at=previous.last_alerted_at)
    return alerts, state.model_copy(update={"kinds": kinds, "updated_at": now})


def state_path(models_dir: Path | str) -> Path:
    return Path(models_dir) / STATE_FILE


def load_state(path: Path | str) -> MonitorState:
    """The saved state; a missing or unreadable file starts fresh (streaks restart, nothing is lost)."""
    path = Path(path)
    try:
        return MonitorState.model_validate_json(path.read_bytes())
    except FileNotFoundError:
        return MonitorState()
    except (OSError, ValidationError) as exc:
        logger.warning("monitor state %s is unreadable (%s); starting from a fresh state", path, exc)
        return MonitorState()


def save_state(state: MonitorState, path: Path | str) -> None:
    """Replace the state file atomically: a crash leaves the old state or the new one."""
    write_atomically(Path(path), (state.model_dump_json(indent=2) + "\n").encode(), durable=True)
