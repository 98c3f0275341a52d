"""Import of the legacy layout, where `models/production/` was a real directory rewritten in place.

The legacy pair is copied byte for byte into the archive (its hash recorded from that moment on),
then the directory is exchanged for the production symlink in one atomic step, so a bot that
opens the fixed paths finds a model at every instant of the migration.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pydantic import TypeAdapter, ValidationError

from retrain.errors import PromotionError
from retrain.files import fsync_dir
from retrain.store.archive import archived_versions, write_version
from retrain.store.durable import exchange_entries
from retrain.store.history import HistoryEvent, append_event
from retrain.store.layout import StoreLayout, link_target
from retrain.store.metadata import (
    METADATA_FILE,
    MODEL_FILE,
    Decision,
    GitInfo,
    ModelMetadata,
    format_version,
)

logger = logging.getLogger(__name__)

IMPORT_REASON = "imported from the legacy in-place models/production directory, which was live"


def migrate_legacy(layout: StoreLayout) -> str | None:
    """Turn a legacy `production` directory into an archived version plus symlink; returns that version."""
    if not layout.is_legacy_directory():
        return None
    legacy = layout.production
    model_path = legacy / MODEL_FILE
    try:
        model_bytes = model_path.read_bytes()
    except FileNotFoundError:
        raise PromotionError(
            f"{legacy} is a directory without {MODEL_FILE}, so it cannot be imported as a version; "
            f"move it out of {layout.root} and try again"
        ) from None
    raw = _read_legacy_json(legacy / METADATA_FILE)
    metadata = metadata_from_legacy(raw, model_bytes, model_path.stat().st_mtime)
    if metadata.version not in archived_versions(layout):
        write_version(layout, metadata, model_bytes)
    _exchange_directory_for_link(layout, metadata.version)
    append_event(
        layout.history_file,
        HistoryEvent(event="migrate", version=metadata.version, previous_version=None, reason=IMPORT_REASON),
    )
    logger.warning("imported the legacy production directory as version %s", metadata.version)
    return metadata.version


def _exchange_directory_for_link(layout: StoreLayout, version: str) -> None:
    temp = layout.temp_link()
    os.symlink(link_target(version), temp)
    fsync_dir(layout.root)
    try:
        exchange_entries(temp, layout.production)
        legacy_aside = temp
    except OSError as exc:
        # Without an atomic exchange there is an instant with no `production`; recovery completes
        # the swap from the temporary link if a crash lands there.
        logger.info("atomic exchange unavailable (%s); moving the legacy directory aside first", exc)
        legacy_aside = layout.temp_link()
        os.rename(layout.production, legacy_aside)
        os.replace(temp, layout.production)
    fsync_dir(layout.root)
    shutil.rmtree(legacy_aside)
    fsync_dir(layout.root)


def _read_legacy_json(path: Path) -> dict[str, Any] | None:
    try:
        document = json.loads(path.read_bytes())
    except (OSError, ValueError) as exc:
        logger.warning("legacy metadata %s is unreadable (%s); importing the model without it", path, exc)
        return None
    return document if isinstance(document, dict) else None


def _valid(kind: Any, value: Any, default: Any) -> Any:
    """`value` if it has the type the schema needs, else `default` (the raw document is kept anyway)."""
    try:
        return TypeAdapter(kind).validate_python(value)
    except ValidationError:
        return default


def _created_at(raw: dict[str, Any], fallback_mtime: float) -> datetime:
    """The legacy created_at (naive times are taken as UTC), else the pickle's modification time."""
    try:
        parsed = datetime.fromisoformat(str(raw["created_at"]))
    except (KeyError, ValueError):
        return datetime.fromtimestamp(fallback_mtime, UTC)
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def metadata_from_legacy(raw: dict[str, Any] | None, model_bytes: bytes, mtime: float) -> ModelMetadata:
    """Metadata for a legacy pair: what the old file states and validates, nulls for what it never recorded.

    The version is derived from the content, so an import interrupted and repeated finds its own copy.
    """
    document = raw or {}
    digest = hashlib.sha256(model_bytes).hexdigest()
    created_at = _created_at(document, mtime)
    return ModelMetadata(
        version=format_version(created_at, digest[:8]),
        created_at=created_at,
        model_type=str(document.get("model_type") or "unknown"),
        model_sha256=digest,
        feature_names=_valid(list[str], document.get("feature_names"), []),
        feature_hash=None,
        classes=[],
        class_encoding={},
        performance_metrics=_valid(dict[str, Any], document.get("performance_metrics"), {}),
        model_weights=_valid(dict[str, float], document.get("model_weights"), {}),
        best_params=_valid(dict[str, dict[str, Any]], document.get("best_params"), {}),
        training_info=None,
        git=GitInfo(),
        library_versions={},
        config_hash=None,
        decision=Decision(status="promoted", reasons=[IMPORT_REASON]),
        legacy_metadata=raw,
    )
