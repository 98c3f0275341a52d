"""HMAC-SHA256 signatures of stored pairs: the SHA-256 catches corruption, the signature catches tampering.

Whoever can write the store can rewrite a pickle *and* the hash recorded beside it; without the key
they cannot produce a signature that verifies. The signature lives in its own file in the version
directory (`model_signature.json`), so signing an existing version later never rewrites its
metadata, and readers that predate signing ignore it.

What is signed (scheme v1), the message given to HMAC-SHA256 under the key:

    b"retrain-model-signature/v1\\n" + <SHA-256 of the pickle bytes, 64 lowercase hex> + b"\\n"
    + <the metadata file's bytes, exactly as stored>

The hash is computed from the pickle as read, and the metadata bytes are taken as they are on disk
(not re-serialised), so changing one byte of either, or any field of the metadata (version,
features, classes, metrics, decision...), breaks the signature. The hash has a fixed width, so the
framing is unambiguous. The key comes from the environment at each call and is never written.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import json
import os
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from retrain.errors import ConfigError, ModelSignatureError, SigningKeyError, UnsignedModelError

SIGNATURE_FILE = "model_signature.json"
SIGNING_KEY_ENV = "RETRAIN_SIGNING_KEY"
SCHEME = "retrain-model-signature/v1"
MIN_KEY_CHARS = 32
_KEY_ID_LABEL = b"retrain-model-signature/key-id"
_GENERATE_HINT = "python -c 'import secrets; print(secrets.token_hex(32))'"

SignatureStatus = Literal["verified", "not checked", "unsigned"]
"""verified: checked with the key; not checked: signed, but no key configured; unsigned: neither."""


class SignatureRecord(BaseModel):
    """The content of `model_signature.json`. `key_id` only names the key in messages; it proves nothing."""

    model_config = ConfigDict(extra="forbid")

    scheme: Literal["retrain-model-signature/v1"] = SCHEME
    key_id: str = Field(pattern=r"^[0-9a-f]{16}$")
    hmac_sha256: str = Field(pattern=r"^[0-9a-f]{64}$")


def key_id(key: bytes) -> str:
    """A short public name for a key (an HMAC of a fixed label), to tell a wrong key from a forgery."""
    return hmac.new(key, _KEY_ID_LABEL, hashlib.sha256).hexdigest()[:16]


def _checked_key(value: str, source: str) -> bytes:
    key = value.strip()
    if len(key) < MIN_KEY_CHARS:
        raise SigningKeyError(
            f"the model signing key from {source} has {len(key)} characters; use at least {MIN_KEY_CHARS} "
            f"random ones, e.g. from `{_GENERATE_HINT}`"
        )
    return key.encode()


def _configured_block() -> str | None:
    """`store.signing_key_block` of the configuration (its files, or RETRAIN_STORE__SIGNING_KEY_BLOCK).

    Parsing the YAML takes tens of milliseconds, too much for every load, so the value is cached
    against everything `load_settings()` reads: the RETRAIN_* variables and the files' size and
    modification time. A change to either is seen at the next call.
    """
    from retrain.settings import CONFIG_DIR_ENV, DEFAULT_CONFIG_DIR

    environment = tuple(
        sorted(
            (name, value)
            for name, value in os.environ.items()
            if name.startswith("RETRAIN_") and name != SIGNING_KEY_ENV  # unset here; never a cache key
        )
    )
    directory = Path(os.environ.get(CONFIG_DIR_ENV) or DEFAULT_CONFIG_DIR)
    return _block_from_configuration(
        environment, _stamp(directory / "unified.yaml"), _stamp(directory / "thresholds.yaml")
    )


def _stamp(path: Path) -> tuple[int, int] | None:
    try:
        status = path.stat()
    except OSError:
        return None
    return status.st_mtime_ns, status.st_size


@functools.lru_cache(maxsize=8)
def _block_from_configuration(
    environment: tuple[tuple[str, str], ...], *file_stamps: tuple[int, int] | None
) -> str | None:
    """Arguments are only the cache key: the values are read by `load_settings()` itself."""
    from retrain.settings import load_settings

    try:
        return load_settings().store.signing_key_block
    except ConfigError as exc:
        raise SigningKeyError(
            f"the configuration, which may name the signing key's Secret block, cannot be read: {exc}. "
            f"Fix it, or set {SIGNING_KEY_ENV}"
        ) from exc


def _key_from_block(name: str) -> bytes:
    try:
        from prefect.blocks.system import Secret
    except ImportError as exc:
        raise SigningKeyError(
            f"store.signing_key_block is {name!r}, but Prefect is not installed here, so that Secret block "
            f"cannot be read; set {SIGNING_KEY_ENV} to the key instead (as the trading bot does)"
        ) from exc
    try:
        block = Secret.load(name)
    except Exception as exc:  # not found, server unreachable, wrong block type: all mean "no key"
        raise SigningKeyError(
            f"the Secret block {name!r} (store.signing_key_block) holding the model signing key could not "
            f"be read: {exc}. Create it (`Secret(value=...).save({name!r})`), check PREFECT_API_URL, or "
            f"set {SIGNING_KEY_ENV}"
        ) from exc
    value = block.value.get_secret_value()
    if not isinstance(value, str):
        raise SigningKeyError(
            f"the Secret block {name!r} holds a {type(value).__name__}; store the signing key as a plain string"
        )
    return _checked_key(value, f"the Secret block {name!r}")


def signing_key() -> bytes | None:
    """The configured signing key, read now: RETRAIN_SIGNING_KEY, else the Secret block named by
    `store.signing_key_block`, else None (signing off). Never cached, never logged."""
    value = os.environ.get(SIGNING_KEY_ENV)
    if value is not None:
        return _checked_key(value, SIGNING_KEY_ENV)
    block = _configured_block()
    return None if block is None else _key_from_block(block)


def _mac(key: bytes, model_sha256: str, metadata_bytes: bytes) -> str:
    message = b"%s\n%s\n%s" % (SCHEME.encode(), model_sha256.encode("ascii"), metadata_bytes)
    return hmac.new(key, message, hashlib.sha256).hexdigest()


def signature_file_bytes(key: bytes, model_sha256: str, metadata_bytes: bytes) -> bytes:
    """The content of `model_signature.json` for a pair whose pickle hashes to `model_sha256`."""
    record = SignatureRecord(key_id=key_id(key), hmac_sha256=_mac(key, model_sha256, metadata_bytes))
    return (record.model_dump_json(indent=2) + "\n").encode()


def _parse(raw: bytes, source: Path) -> SignatureRecord:
    try:
        return SignatureRecord.model_validate(json.loads(raw))
    except (ValueError, ValidationError) as exc:
        raise ModelSignatureError(
            f"{source} is not a valid signature file ({exc}); nothing was unpickled. Roll back to a version "
            "whose signature verifies (`retrain model rollback`)"
        ) from exc


def check_signature(
    key: bytes | None,
    raw_signature: bytes | None,
    *,
    model_sha256: str,
    metadata_bytes: bytes,
    version: str,
    source: Path,
) -> SignatureStatus:
    """Verify a pair's signature against its actual pickle hash and metadata bytes, before any unpickling.

    Without a key nothing can be checked ("not checked" or "unsigned"); with one, a missing or
    non-matching signature raises (UnsignedModelError, ModelSignatureError).
    """
    if key is None:
        return "unsigned" if raw_signature is None else "not checked"
    if raw_signature is None:
        raise UnsignedModelError(
            f"version {version} has no signature ({source} is missing) and a model signing key is configured, "
            "so it was not unpickled. If you trust it (it was stored before signing was turned on), sign it "
            f"with `retrain model sign {version}`; otherwise roll back to a signed version"
        )
    record = _parse(raw_signature, source)
    expected = _mac(key, model_sha256, metadata_bytes)
    if hmac.compare_digest(expected.encode(), record.hmac_sha256.encode()):
        return "verified"
    configured = key_id(key)
    if record.key_id != configured:
        raise ModelSignatureError(
            f"the signature of version {version} does not verify with the configured key (it names key id "
            f"{record.key_id}, the configured key is {configured}); nothing was unpickled. Set the key the "
            f"store was signed with ({SIGNING_KEY_ENV} or store.signing_key_block); after a deliberate key "
            f"rotation, re-sign versions you trust with `retrain model sign {version} --replace`"
        )
    raise ModelSignatureError(
        f"the signature of version {version} does not match its files: the model or its metadata was changed "
        "after it was signed, and nothing was unpickled. Do not use it: roll back to a version whose signature "
        "verifies (`retrain model rollback`) and find out who can write the models directory"
    )
