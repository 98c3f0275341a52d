"""`retrain model sign`: sign a version already in the store, for an operator who turns signing on.

Versions stored before a key was configured are unsigned, and a configured key makes the loader
refuse them. Signing one vouches for it, so its SHA-256 is checked first, and a signature that does
not verify with the key is never silently replaced (that is what a forgery looks like too).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from retrain.errors import ModelSignatureError, NoProductionModelError, SigningError, SigningKeyError
from retrain.files import write_atomically
from retrain.store.archive import archived_versions
from retrain.store.layout import StoreLayout, version_from_link
from retrain.store.loading import read_pair
from retrain.store.lock import promotion_lock
from retrain.store.signature import (
    SIGNATURE_FILE,
    SIGNING_KEY_ENV,
    check_signature,
    key_id,
    signature_file_bytes,
    signing_key,
)

logger = logging.getLogger(__name__)

SignOutcome = Literal["signed", "already signed", "re-signed"]


@dataclass(frozen=True)
class SignResult:
    version: str
    outcome: SignOutcome
    key_id: str


def sign_version(
    models_dir: Path | str, version: str | None = None, *, replace: bool = False, lock_timeout: float = 600.0
) -> SignResult:
    """Sign an archived version (default: production) with the configured key, after verifying its SHA-256.

    A version whose signature already verifies is left as it is. One whose signature does not verify
    is refused (SigningError) unless `replace`: re-signing after a deliberate key rotation, for
    versions the operator trusts.
    """
    key = signing_key()
    if key is None:
        raise SigningKeyError(
            f"no model signing key is configured: set {SIGNING_KEY_ENV} (or store.signing_key_block) to the "
            "key the flow and the bot use, then sign"
        )
    layout = StoreLayout(Path(models_dir))
    with promotion_lock(layout, lock_timeout):
        target = version or version_from_link(layout.production)
        if target is None:
            raise NoProductionModelError(
                f"no model in production under {layout.root}; name the version to sign (`retrain model list`)"
            )
        if target not in archived_versions(layout):
            raise SigningError(
                f"version {target!r} is not in {layout.archive}; `retrain model list` shows them"
            )
        _remove_stale_temp_signatures(layout, target)
        pair = read_pair(layout, target, None)  # the SHA-256 only: the signature is judged below
        outcome: SignOutcome = "signed"
        if pair.raw_signature is not None:
            try:
                check_signature(
                    key,
                    pair.raw_signature,
                    model_sha256=pair.model_sha256,
                    metadata_bytes=pair.metadata_bytes,
                    version=target,
                    source=layout.signature_path(target),
                )
            except ModelSignatureError as exc:
                if not replace:
                    raise SigningError(
                        f"version {target} already carries a signature that does not verify with the configured "
                        f"key, so it was not re-signed: {exc}. Only if you trust this version (a deliberate key "
                        f"rotation), run `retrain model sign {target} --replace`"
                    ) from exc
                outcome = "re-signed"
            else:
                return SignResult(target, "already signed", key_id(key))
        _write_signature(layout, target, signature_file_bytes(key, pair.model_sha256, pair.metadata_bytes))
    logger.info("%s version %s with signing key %s", outcome, target, key_id(key))
    return SignResult(target, outcome, key_id(key))


def _remove_stale_temp_signatures(layout: StoreLayout, version: str) -> None:
    """A sign killed before its rename leaves a temporary file in the version; nothing reads it."""
    for path in layout.version_dir(version).glob(f".{SIGNATURE_FILE}.*.tmp"):
        path.unlink()


def _write_signature(layout: StoreLayout, version: str, content: bytes) -> None:
    """Write the signature file whole and durably (readers see it or not)."""
    write_atomically(layout.signature_path(version), content, durable=True, read_only=True)
