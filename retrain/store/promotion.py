"""Promotion, rejection and rollback: every change of the production pair is one atomic symlink swap.

Sequence of a promotion (docs/model-store.md, "Promotion protocol"): take the writer lock, recover
from any earlier crash, write the pair (and its signature, when a signing key is configured) into a
temporary directory and fsync it, rename it to `archive/<version>/`, swap the `production` symlink,
append the history line, apply retention.
A reader sees the old pair before the swap and the new pair after it, never a mix.
"""

from __future__ import annotations

import enum
import hashlib
import logging
import pickle
from collections.abc import Mapping
from pathlib import Path

from retrain.errors import (
    ConfigError,
    NoProductionModelError,
    ProductionChangedError,
    PromotionError,
    RollbackError,
)
from retrain.files import PICKLE_PROTOCOL
from retrain.store.archive import archived_versions, prune, write_version
from retrain.store.durable import replace_with_symlink
from retrain.store.history import EventKind, HistoryEvent, append_event, predecessor, read_events
from retrain.store.layout import StoreLayout, link_target, version_from_link
from retrain.store.loading import read_pair
from retrain.store.lock import promotion_lock
from retrain.store.metadata import METADATA_FILE, MODEL_FILE, ModelMetadata
from retrain.store.recovery import recover_locked
from retrain.store.signature import SIGNATURE_FILE, signing_key

logger = logging.getLogger(__name__)


class AnyLive(enum.Enum):
    """Type of ANY_LIVE: promote whatever is in production (no compare-and-swap)."""

    ANY = "any"


ANY_LIVE = AnyLive.ANY


def promote(
    models_dir: Path | str,
    model: object | bytes,
    metadata: ModelMetadata,
    *,
    keep: int = 10,
    lock_timeout: float = 600.0,
    expected_live: str | None | AnyLive = ANY_LIVE,
    companions: Mapping[str, bytes] | None = None,
) -> str:
    """Archive `model` (object or pickle bytes) with `metadata` and put the pair live; returns the version.

    Fills in model_sha256, model_file and the SHA-256 of each companion file (stored beside the model,
    e.g. the monitor's drift reference); version and created_at come from the metadata. With a
    signing key configured (RETRAIN_SIGNING_KEY or store.signing_key_block), the pair is signed. With
    `expected_live` (a version, or None for "nothing in production"), the promotion is refused
    (ProductionChangedError) unless production is still in that state: the gate compared the
    challenger with it, not with whatever replaced it since. The default, ANY_LIVE, does not check.
    """
    if metadata.decision.status != "promoted":
        raise PromotionError(
            f"version {metadata.version} has decision {metadata.decision.status!r} "
            f"({'; '.join(metadata.decision.reasons)}); only a 'promoted' decision goes live"
        )
    return _store(
        Path(models_dir),
        model,
        metadata,
        keep=keep,
        lock_timeout=lock_timeout,
        event="promote",
        expected_live=expected_live,
        companions=companions,
    )


def archive_rejected(
    models_dir: Path | str,
    model: object | bytes,
    metadata: ModelMetadata,
    *,
    keep: int = 10,
    lock_timeout: float = 600.0,
    companions: Mapping[str, bytes] | None = None,
) -> str:
    """Keep a challenger the gates rejected in the archive, for inspection (signed like a promotion when
    a key is configured); it never goes live."""
    if metadata.decision.status != "rejected":
        raise PromotionError(
            f"version {metadata.version} has decision {metadata.decision.status!r}; "
            "archive_rejected keeps only 'rejected' challengers (use promote for the others)"
        )
    return _store(
        Path(models_dir),
        model,
        metadata,
        keep=keep,
        lock_timeout=lock_timeout,
        event="reject",
        expected_live=ANY_LIVE,
        companions=companions,
    )


def _pickled(model: object | bytes) -> bytes:
    if isinstance(model, bytes | bytearray | memoryview):
        return bytes(model)
    try:
        return pickle.dumps(model, protocol=PICKLE_PROTOCOL)
    except (pickle.PicklingError, TypeError, AttributeError) as exc:
        raise PromotionError(f"the model ({type(model).__qualname__}) cannot be pickled: {exc}") from exc


def _store(
    models_dir: Path,
    model: object | bytes,
    metadata: ModelMetadata,
    *,
    keep: int,
    lock_timeout: float,
    event: EventKind,
    expected_live: str | None | AnyLive,
    companions: Mapping[str, bytes] | None,
) -> str:
    if keep < 1:
        raise ConfigError(f"keep={keep}: the archive must keep at least 1 version (store.keep_versions)")
    layout = StoreLayout(models_dir)
    key = signing_key()  # before the lock and before writing: an unusable key stores nothing
    model_bytes = _pickled(model)
    companions = dict(companions or {})
    _check_companion_names(companions)
    stored = metadata.model_copy(
        update={
            "model_sha256": hashlib.sha256(model_bytes).hexdigest(),
            "model_file": MODEL_FILE,
            "companion_files": {name: hashlib.sha256(data).hexdigest() for name, data in companions.items()},
        }
    )
    version = stored.version
    with promotion_lock(layout, lock_timeout):
        recover_locked(layout)
        previous = version_from_link(layout.production)
        if expected_live is not ANY_LIVE and previous != expected_live:
            raise ProductionChangedError(
                f"production is {previous or 'empty'}, no longer {expected_live or 'empty'}, which version {version} "
                "was evaluated against; nothing was promoted. Run again to compare with the current champion"
            )
        try:
            write_version(layout, stored, model_bytes, key=key, companions=companions)
            if event == "promote":
                activate(layout, version)
        except OSError as exc:
            raise PromotionError(
                f"storing version {version} under {layout.archive} failed: {exc}; production serves "
                f"{version_from_link(layout.production) or 'no model'}. Fix the cause (disk space, "
                "permissions) and promote again"
            ) from exc
        reason = "; ".join(stored.decision.reasons)
        append_event(
            layout.history_file,
            HistoryEvent(event=event, version=version, previous_version=previous, reason=reason),
        )
        logger.info(
            "stored version %s (%s, %s); production was %s",
            version,
            event,
            "signed" if key is not None else "unsigned: no signing key configured",
            previous,
        )
        apply_retention(layout, keep)
    return version


def _check_companion_names(companions: Mapping[str, bytes]) -> None:
    reserved = {MODEL_FILE, METADATA_FILE, SIGNATURE_FILE}
    for name in companions:
        if "/" in name or name.startswith(".") or name in reserved or not name:
            raise PromotionError(
                f"companion file name {name!r} must be a plain file name, not hidden and not one of {sorted(reserved)}"
            )


def activate(layout: StoreLayout, version: str) -> None:
    """Make an archived version the production pair in one atomic, durable symlink swap."""
    replace_with_symlink(layout.production, link_target(version), layout.temp_link())


def apply_retention(layout: StoreLayout, keep: int) -> list[str]:
    """Prune the archive to `keep` versions, sparing production, the version a rollback returns to,
    and the version production replaced (after a rollback, the one rolled back from)."""
    live = version_from_link(layout.production)
    events = read_events(layout.history_file)
    went_live = [event for event in events if event.event != "reject"]
    replaced = went_live[-1].previous_version if went_live else None
    previous = predecessor(events, live, set(archived_versions(layout)))
    return prune(layout, keep, {version for version in (live, previous, replaced) if version is not None})


def rollback(
    models_dir: Path | str, version: str | None = None, *, reason: str, lock_timeout: float = 600.0
) -> str:
    """Put an archived version live (default: the one live before the current); returns it.

    The target is hash-verified (and, with a signing key, signature-verified) first; rejected
    challengers are refused.
    """
    layout = StoreLayout(Path(models_dir))
    key = signing_key()
    with promotion_lock(layout, lock_timeout):
        recover_locked(layout)
        live = version_from_link(layout.production)
        if live is None and version is None:
            raise NoProductionModelError(
                f"nothing to roll back: no model in production under {layout.root}; name a version to restore"
            )
        available = set(archived_versions(layout))
        target = version or predecessor(read_events(layout.history_file), live, available)
        if target is None:
            raise RollbackError(
                f"no earlier version to roll back to from {live}; name one from `retrain model list`"
            )
        if target == live:
            raise RollbackError(f"version {target} is already in production")
        if target not in available:
            raise RollbackError(
                f"version {target!r} is not in {layout.archive}; `retrain model list` shows them"
            )
        metadata = read_pair(layout, target, key).metadata
        if metadata.decision.status == "rejected":
            raise RollbackError(
                f"version {target} is a rejected challenger ({'; '.join(metadata.decision.reasons)}) "
                "and can never go live"
            )
        activate(layout, target)
        append_event(
            layout.history_file,
            HistoryEvent(event="rollback", version=target, previous_version=live, reason=reason),
        )
        logger.warning("rolled back production from %s to %s: %s", live, target, reason)
    return target
