"""The model store: crash-safe promotion of the model + metadata pair, archive, verified (and, with a
signing key, signature-checked) loading, rollback.

The live bot imports this package, so it stays cheap to import (no pandas, scikit-learn or Prefect).
Layout, schema and protocol: docs/model-store.md.
"""

from __future__ import annotations

from retrain.store.history import HistoryEvent, read_history
from retrain.store.layout import production_version
from retrain.store.listing import VersionInfo, list_versions
from retrain.store.loading import (
    LoadedModel,
    VerifyResult,
    load_production,
    load_production_metadata,
    read_companion,
    verify_production,
)
from retrain.store.metadata import (
    METADATA_FILE,
    MODEL_FILE,
    SCHEMA_VERSION,
    CrossValidationInfo,
    Decision,
    GitInfo,
    ModelMetadata,
    TrainingInfo,
)
from retrain.store.promotion import ANY_LIVE, archive_rejected, promote, rollback
from retrain.store.provenance import collect_git_info, collect_library_versions
from retrain.store.recovery import RecoveryReport, recover
from retrain.store.reports import attach_report
from retrain.store.signature import SIGNATURE_FILE, SIGNING_KEY_ENV, SignatureStatus, key_id, signing_key
from retrain.store.signing import SignResult, sign_version

__all__ = [
    "ANY_LIVE",
    "METADATA_FILE",
    "MODEL_FILE",
    "SCHEMA_VERSION",
    "SIGNATURE_FILE",
    "SIGNING_KEY_ENV",
    "CrossValidationInfo",
    "Decision",
    "GitInfo",
    "HistoryEvent",
    "LoadedModel",
    "ModelMetadata",
    "RecoveryReport",
    "SignResult",
    "SignatureStatus",
    "TrainingInfo",
    "VerifyResult",
    "VersionInfo",
    "archive_rejected",
    "attach_report",
    "collect_git_info",
    "collect_library_versions",
    "key_id",
    "list_versions",
    "load_production",
    "load_production_metadata",
    "production_version",
    "promote",
    "read_companion",
    "read_history",
    "recover",
    "rollback",
    "sign_version",
    "signing_key",
    "verify_production",
]
