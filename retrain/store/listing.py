"""What the archive holds, and what each version's role was: for `retrain model list` and operators."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Literal

from retrain.errors import ModelIntegrityError
from retrain.store.archive import archived_versions
from retrain.store.history import read_events
from retrain.store.layout import StoreLayout, version_from_link
from retrain.store.loading import read_metadata

VersionStatus = Literal["live", "previously live", "never live", "rejected", "unreadable"]


@dataclass(frozen=True)
class VersionInfo:
    """One archived version. "never live": stored for promotion, but the swap never happened (a crash)."""

    version: str
    status: VersionStatus
    created_at: datetime | None = None
    model_type: str | None = None
    macro_f1: float | None = None
    problem: str | None = None
    signed: bool | None = None
    """A signature file is present (not checked here: `retrain model verify` and the loader do)."""


def list_versions(models_dir: Path | str) -> list[VersionInfo]:
    """Every archived version, oldest first, with its status and headline metric (no pickle is read)."""
    layout = StoreLayout(Path(models_dir))
    live = version_from_link(layout.production)
    was_live = {event.version for event in read_events(layout.history_file) if event.event != "reject"}
    infos = []
    for version in archived_versions(layout):
        try:
            metadata = read_metadata(layout, version)
        except FileNotFoundError as exc:
            if layout.version_dir(version).exists():
                infos.append(VersionInfo(version, "unreadable", problem=f"missing {exc.filename}"))
            continue
        except ModelIntegrityError as exc:
            infos.append(VersionInfo(version, "unreadable", problem=str(exc)))
            continue
        status: VersionStatus
        if version == live:
            status = "live"
        elif metadata.decision.status == "rejected":
            status = "rejected"
        elif version in was_live:
            status = "previously live"
        else:
            status = "never live"
        signed = layout.signature_path(version).exists()
        infos.append(
            VersionInfo(
                version, status, metadata.created_at, metadata.model_type, metadata.macro_f1, signed=signed
            )
        )
    return infos
