"""The archive: one immutable directory per version, written whole or not at all, pruned to the last N.

A directory named like a version is always complete: it is only ever created by renaming a fully
written and fsynced temporary directory, and only ever deleted by renaming it to a trash name
first. Recovery can therefore remove every temporary or trash name without looking inside.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
from collections.abc import Mapping

from retrain.errors import PromotionError
from retrain.files import fsync_dir, write_atomically
from retrain.store.durable import make_dir_durably
from retrain.store.layout import StoreLayout
from retrain.store.metadata import METADATA_FILE, MODEL_FILE, ModelMetadata, is_version
from retrain.store.signature import SIGNATURE_FILE, signature_file_bytes

logger = logging.getLogger(__name__)


def archived_versions(layout: StoreLayout) -> list[str]:
    """Every complete version in the archive, oldest first."""
    try:
        names = os.listdir(layout.archive)
    except FileNotFoundError:
        return []
    return sorted(name for name in names if is_version(name))


def write_version(
    layout: StoreLayout,
    metadata: ModelMetadata,
    model_bytes: bytes,
    *,
    key: bytes | None = None,
    companions: Mapping[str, bytes] | None = None,
) -> None:
    """Store the pair as `archive/<version>/`, durably, appearing in one rename once complete; its
    companion files (hashed in the metadata) and, with a signing key, its signature file are written
    inside before that rename."""
    make_dir_durably(layout.archive)
    if layout.version_dir(metadata.version).exists():
        raise PromotionError(
            f"version {metadata.version} is already in {layout.archive}; a new model needs new metadata "
            "(a fresh version), and an archived one goes back live with `retrain model rollback`"
        )
    temp = layout.temp_version_dir(metadata.version)
    temp.mkdir()
    try:
        write_atomically(temp / MODEL_FILE, model_bytes, durable=True, read_only=True)
        for name, content in (companions or {}).items():
            write_atomically(temp / name, content, durable=True, read_only=True)
        metadata_bytes = metadata.to_json_bytes()
        write_atomically(temp / METADATA_FILE, metadata_bytes, durable=True, read_only=True)
        if key is not None:
            signature = signature_file_bytes(key, hashlib.sha256(model_bytes).hexdigest(), metadata_bytes)
            write_atomically(temp / SIGNATURE_FILE, signature, durable=True, read_only=True)
        fsync_dir(temp)
        os.rename(temp, layout.version_dir(metadata.version))
    except BaseException:
        shutil.rmtree(temp, ignore_errors=True)
        raise
    fsync_dir(layout.archive)


def remove_version(layout: StoreLayout, version: str) -> None:
    """Delete a version; renamed to a trash name first so a crash never leaves it half-deleted."""
    trash = layout.trash_dir(version)
    os.rename(layout.version_dir(version), trash)
    fsync_dir(layout.archive)
    shutil.rmtree(trash)


def prune(layout: StoreLayout, keep: int, protected: set[str]) -> list[str]:
    """Delete every version that is neither among the newest `keep` nor `protected`; returns the deleted."""
    versions = archived_versions(layout)
    kept = set(versions[-keep:]) | protected
    removed = [version for version in versions if version not in kept]
    for version in removed:
        remove_version(layout, version)
        logger.info("retention: deleted archived version %s (keeping the newest %d)", version, keep)
    return removed
