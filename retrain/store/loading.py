"""Verified loading for the live bot: nothing is unpickled before its SHA-256 matches the metadata and,
with a signing key configured, the pair's signature verifies.

Unpickling runs arbitrary code, so a modified or truncated pickle must be refused from its bytes
alone. The production symlink is resolved once per load and the files are read from that one
version directory, so a load can never pair one version's model with another's metadata.
"""

from __future__ import annotations

import hashlib
import json
import logging
import pickle
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from pydantic import ValidationError

from retrain.errors import ModelIntegrityError, ModelStoreError, NoProductionModelError
from retrain.store.layout import StoreLayout, version_from_link
from retrain.store.metadata import MODEL_FILE, SCHEMA_VERSION, ModelMetadata
from retrain.store.signature import SIGNING_KEY_ENV, SignatureStatus, check_signature, signing_key

logger = logging.getLogger(__name__)

_RESOLVE_ATTEMPTS = 10
_T = TypeVar("_T")


@dataclass(frozen=True)
class LoadedModel:
    model: Any
    metadata: ModelMetadata


@dataclass(frozen=True)
class VerifyResult:
    version: str | None
    intact: bool
    problem: str | None = None
    signature: SignatureStatus | None = None
    """For an intact pair: "verified", "not checked" (signed, no key configured) or "unsigned" (no key)."""


@dataclass(frozen=True)
class VerifiedPair:
    """A version's metadata and pickle bytes, checked against the hash and (with a key) the signature."""

    metadata: ModelMetadata
    metadata_bytes: bytes
    model_bytes: bytes
    model_sha256: str
    raw_signature: bytes | None
    signature: SignatureStatus


def parse_metadata(raw: bytes, source: Path) -> ModelMetadata:
    """Validate metadata bytes; the schema version is checked first so a newer file gets a clear message."""
    try:
        document = json.loads(raw)
    except ValueError as exc:
        raise ModelIntegrityError(f"{source} is not valid JSON ({exc}); the metadata is corrupt") from exc
    if not isinstance(document, dict):
        raise ModelIntegrityError(f"{source} holds a JSON {type(document).__name__}, expected an object")
    schema = document.get("schema_version")
    if schema != SCHEMA_VERSION:
        raise ModelIntegrityError(
            f"{source} has schema_version {schema!r}; this code reads schema_version {SCHEMA_VERSION} "
            "(a newer retrain wrote it: upgrade the reader)"
        )
    try:
        return ModelMetadata.model_validate(document)
    except ValidationError as exc:
        raise ModelIntegrityError(f"{source} does not match the metadata schema: {exc}") from exc


def read_metadata(layout: StoreLayout, version: str) -> ModelMetadata:
    """The metadata of an archived version, checked to belong to that version's directory."""
    return _read_metadata_and_bytes(layout, version)[0]


def _read_metadata_and_bytes(layout: StoreLayout, version: str) -> tuple[ModelMetadata, bytes]:
    path = layout.metadata_path(version)
    raw = path.read_bytes()
    metadata = parse_metadata(raw, path)
    if metadata.version != version:
        raise ModelIntegrityError(
            f"{path} describes version {metadata.version}, not {version}, whose directory it is in"
        )
    if metadata.model_file != MODEL_FILE:
        raise ModelIntegrityError(
            f"{path} names model_file {metadata.model_file!r}; the store keeps {MODEL_FILE!r}"
        )
    if metadata.model_sha256 is None:
        raise ModelIntegrityError(f"{path} records no model_sha256, so its model cannot be verified")
    return metadata, raw


def _read_signature(layout: StoreLayout, version: str) -> bytes | None:
    try:
        return layout.signature_path(version).read_bytes()
    except FileNotFoundError:
        return None


def read_pair(layout: StoreLayout, version: str, key: bytes | None) -> VerifiedPair:
    """Metadata and pickle bytes of `version`, after checking the bytes against the recorded SHA-256
    (corruption) and, with `key`, the signature over that hash and the metadata bytes (tampering)."""
    # The signature is read first: if retention removes the version meanwhile, the metadata read
    # below fails with FileNotFoundError (production moved on), not with a misleading "unsigned".
    raw_signature = _read_signature(layout, version)
    metadata, metadata_bytes = _read_metadata_and_bytes(layout, version)
    model_path = layout.model_path(version)
    data = model_path.read_bytes()
    digest = hashlib.sha256(data).hexdigest()
    if digest != metadata.model_sha256:
        raise ModelIntegrityError(
            f"{model_path} ({len(data)} bytes) has SHA-256 {digest}, but its metadata records "
            f"{metadata.model_sha256}: the file was modified or truncated, and was not unpickled. "
            "Roll back to an intact version with `retrain model rollback`"
        )
    status = check_signature(
        key,
        raw_signature,
        model_sha256=digest,
        metadata_bytes=metadata_bytes,
        version=version,
        source=layout.signature_path(version),
    )
    return VerifiedPair(metadata, metadata_bytes, data, digest, raw_signature, status)


def read_verified_pair(layout: StoreLayout, version: str) -> tuple[ModelMetadata, bytes]:
    """`read_pair` with the signing key configured now: what any code about to unpickle a version calls."""
    pair = _note_unchecked(read_pair(layout, version, signing_key()))
    return pair.metadata, pair.model_bytes


def _note_unchecked(pair: VerifiedPair) -> VerifiedPair:
    if pair.signature == "not checked":
        logger.warning(
            "version %s is signed, but no signing key is configured (%s): only its SHA-256 was checked",
            pair.metadata.version,
            SIGNING_KEY_ENV,
        )
    return pair


def _live_version(layout: StoreLayout) -> str:
    version = version_from_link(layout.production)
    if version is not None:
        return version
    if layout.is_legacy_directory():
        raise NoProductionModelError(
            f"{layout.production} is a legacy directory written in place, with no recorded hash to verify; "
            "import it once with retrain.store.recover(models_dir), or promote a new model"
        )
    raise NoProductionModelError(
        f"no model in production: {layout.production} does not exist; promote one first"
    )


def _read_live(layout: StoreLayout, read: Callable[[StoreLayout, str], _T]) -> _T:
    """Apply `read` to the live version; if retention removed it mid-read, follow production onward."""
    for _ in range(_RESOLVE_ATTEMPTS):
        version = _live_version(layout)
        try:
            return read(layout, version)
        except FileNotFoundError as exc:
            if version_from_link(layout.production) == version:
                raise ModelIntegrityError(
                    f"production version {version} lacks {exc.filename}; "
                    "roll back with `retrain model rollback`"
                ) from exc
            logger.info(
                "production moved on from %s while it was being read; reading the new version", version
            )
    raise ModelStoreError(f"production changed {_RESOLVE_ATTEMPTS} times while it was being read; try again")


def _unpickle(data: bytes, source: Path) -> Any:
    try:
        return pickle.loads(data)
    except Exception as exc:
        raise ModelIntegrityError(
            f"{source} matches its recorded SHA-256 but cannot be unpickled ({exc!r}): it was stored "
            "corrupt, or a class it needs cannot be imported"
        ) from exc


def load_production(models_dir: Path | str) -> LoadedModel:
    """The production model and its metadata; on any mismatch: ModelIntegrityError (ModelSignatureError
    for a signature that does not verify, or is missing while a key is configured), nothing unpickled."""
    layout = StoreLayout(Path(models_dir))
    key = signing_key()
    pair = _note_unchecked(_read_live(layout, lambda layout_, version: read_pair(layout_, version, key)))
    return LoadedModel(
        model=_unpickle(pair.model_bytes, layout.model_path(pair.metadata.version)), metadata=pair.metadata
    )


def load_production_metadata(models_dir: Path | str) -> ModelMetadata:
    """The production metadata alone (the pickle is neither read nor unpickled)."""
    return _read_live(StoreLayout(Path(models_dir)), read_metadata)


def verify_production(models_dir: Path | str) -> VerifyResult:
    """Check the production pair (schema, names, SHA-256, signature) without unpickling anything.

    A signing key that is configured but unusable raises SigningKeyError: that is the
    configuration's problem, not the pair's.
    """
    layout = StoreLayout(Path(models_dir))
    key = signing_key()
    try:
        pair = _read_live(layout, lambda layout_, version: read_pair(layout_, version, key))
    except ModelStoreError as exc:
        try:
            version = version_from_link(layout.production)
        except ModelIntegrityError:
            version = None
        return VerifyResult(version=version, intact=False, problem=str(exc))
    return VerifyResult(version=pair.metadata.version, intact=True, signature=pair.signature)


def read_companion(models_dir: Path | str, metadata: ModelMetadata, name: str) -> bytes | None:
    """A companion file stored beside `metadata`'s model, checked against the SHA-256 its metadata
    records (so a signed pair covers it too); None when the version was stored without it."""
    expected = metadata.companion_files.get(name)
    if expected is None:
        return None
    path = StoreLayout(Path(models_dir)).version_dir(metadata.version) / name
    data = path.read_bytes()
    digest = hashlib.sha256(data).hexdigest()
    if digest != expected:
        raise ModelIntegrityError(
            f"{path} has SHA-256 {digest}, but the metadata of version {metadata.version} records {expected}: "
            "the file was modified; roll back or promote a new model"
        )
    return data
