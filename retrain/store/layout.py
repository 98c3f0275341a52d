"""Where everything lives inside the models directory (docs/model-store.md, "On-disk layout").

models/
  production -> archive/<version>      symlink, swapped atomically; the bot's fixed paths go through it
  archive/<version>/                   one immutable directory per stored version (model + metadata
                                       [+ model_signature.json when a signing key is configured])
  archive/.tmp-<version>-<hex>/        a version being written (removed by recovery if left behind)
  archive/.trash-<version>-<hex>/      a version being deleted by retention (idem)
  .production.tmp-<hex>                the next production symlink before its swap (idem)
  .promotion.lock                      cross-process lock held by every writer
  promotion_history.jsonl              append-only record of promotions, rollbacks and rejections
"""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from retrain.errors import ModelIntegrityError
from retrain.store.metadata import METADATA_FILE, MODEL_FILE, is_version
from retrain.store.signature import SIGNATURE_FILE

ARCHIVE_DIR = "archive"
PRODUCTION_LINK = "production"
LOCK_FILE = ".promotion.lock"
HISTORY_FILE = "promotion_history.jsonl"
TMP_VERSION_PREFIX = ".tmp-"
TRASH_PREFIX = ".trash-"
TMP_LINK_PREFIX = ".production.tmp-"


@dataclass(frozen=True)
class StoreLayout:
    """The paths of one models directory."""

    root: Path

    @property
    def archive(self) -> Path:
        return self.root / ARCHIVE_DIR

    @property
    def production(self) -> Path:
        return self.root / PRODUCTION_LINK

    @property
    def lock_file(self) -> Path:
        return self.root / LOCK_FILE

    @property
    def history_file(self) -> Path:
        return self.root / HISTORY_FILE

    def version_dir(self, version: str) -> Path:
        return self.archive / version

    def model_path(self, version: str) -> Path:
        return self.version_dir(version) / MODEL_FILE

    def metadata_path(self, version: str) -> Path:
        return self.version_dir(version) / METADATA_FILE

    def signature_path(self, version: str) -> Path:
        return self.version_dir(version) / SIGNATURE_FILE

    def temp_version_dir(self, version: str) -> Path:
        return self.archive / f"{TMP_VERSION_PREFIX}{version}-{secrets.token_hex(4)}"

    def trash_dir(self, version: str) -> Path:
        return self.archive / f"{TRASH_PREFIX}{version}-{secrets.token_hex(4)}"

    def temp_link(self) -> Path:
        return self.root / f"{TMP_LINK_PREFIX}{secrets.token_hex(4)}"

    def is_legacy_directory(self) -> bool:
        """True when `production` is a real directory written in place by the legacy tools."""
        return self.production.is_dir() and not self.production.is_symlink()


def link_target(version: str) -> str:
    """What the production symlink holds: relative, so the models directory can be moved or mounted."""
    return f"{ARCHIVE_DIR}/{version}"


def version_from_link(link: Path) -> str | None:
    """The version a production symlink points to (one readlink, no file read); None if no symlink."""
    try:
        target = os.readlink(link)
    except OSError:  # missing, or a real directory (the legacy layout)
        return None
    prefix, _, version = target.partition("/")
    if prefix != ARCHIVE_DIR or not is_version(version):
        raise ModelIntegrityError(
            f"{link} points to {target!r}; expected {link_target('<version>')}. "
            "Only the model store writes this link: remove it, then `retrain model rollback VERSION` "
            "puts an archived version back"
        )
    return version


def production_version(models_dir: Path | str) -> str | None:
    """The version in production, or None: a cheap poll for a long-running bot deciding to reload."""
    return version_from_link(StoreLayout(Path(models_dir)).production)
