"""The metadata stored beside every model: a versioned, documented schema (docs/model-store.md).

The live bot reads it to know what it runs (features, classes, hash) and operators read it to know
where a model came from (data window, git commit, library versions, why it was promoted). Bump
`SCHEMA_VERSION` whenever a field is added, removed or changes meaning: readers refuse versions
they do not know rather than guess.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

SCHEMA_VERSION = 1
MODEL_FILE = "production_ensemble.pkl"
METADATA_FILE = "production_model_metadata.json"
MACRO_F1 = "macro_f1"

_VERSION_TIME_FORMAT = "%Y%m%dT%H%M%S.%fZ"
VERSION_PATTERN = re.compile(r"^\d{8}T\d{6}\.\d{6}Z-[0-9a-f]{8}$")
_SHA256_PATTERN = re.compile(r"^[0-9a-f]{64}$")


def utc_now() -> datetime:
    return datetime.now(UTC)


def format_version(created_at: datetime, suffix: str | None = None) -> str:
    """`<UTC time to the microsecond>Z-<8 hex>`: sorts by creation time, unique by the random suffix."""
    stamp = created_at.astimezone(UTC).strftime(_VERSION_TIME_FORMAT)
    return f"{stamp}-{suffix or secrets.token_hex(4)}"


def is_version(name: str) -> bool:
    return VERSION_PATTERN.fullmatch(name) is not None


def _as_utc(value: datetime) -> datetime:
    if value.tzinfo is None:
        raise ValueError(f"{value.isoformat()} has no time zone; give an aware UTC datetime")
    return value.astimezone(UTC)


def _macro_f1_first(value: Any) -> Any:
    """Reorder every mapping so that macro-F1, the headline metric, is the first key a reader sees."""
    if not isinstance(value, Mapping):
        return value
    items = [(key, _macro_f1_first(item)) for key, item in value.items()]
    return dict(sorted(items, key=lambda pair: pair[0] != MACRO_F1))


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class GitInfo(_Section):
    """The code that trained the model; every field is null outside a git checkout."""

    commit: str | None = None
    branch: str | None = Field(None, description="null on a detached HEAD")
    dirty: bool | None = Field(None, description="tracked files had uncommitted changes")


class CrossValidationInfo(_Section):
    n_splits: int = Field(ge=2)
    purge_gap: int = Field(ge=0, description="rows dropped between each training part and its test part")
    holdout_days: int = Field(ge=1)
    validation_fraction: float = Field(gt=0, lt=1, description="end share of a fold used for early stopping")


class TrainingInfo(_Section):
    samples_count: int = Field(ge=1, description="labelled rows used for tuning and training")
    data_start: datetime
    data_end: datetime
    data_source: dict[str, Any] = Field(description="the candle source's own description (kind, exchange...)")
    data_sha256: str = Field(description="hash of the validated candle table")
    class_distribution: dict[str, int]
    label_horizon: int = Field(ge=1, description="forward candles the label looks at")
    label_threshold: float = Field(gt=0, description="forward return beyond which BUY/SELL")
    labels: dict[str, Any] | None = Field(
        None, description="the full label settings (method...); null: fixed at label_threshold (older models)"
    )
    feature_params: dict[str, Any] | None = Field(
        None, description="the feature parameters (groups...); null: the base feature set (older models)"
    )
    cross_validation: CrossValidationInfo
    durations_s: dict[str, float] = Field(description="seconds per stage (fetch, tune, train, evaluate...)")

    @field_validator("data_start", "data_end")
    @classmethod
    def _utc(cls, value: datetime) -> datetime:
        return _as_utc(value)


class Decision(_Section):
    status: Literal["promoted", "rejected"]
    reasons: list[str] = Field(min_length=1)
    checks: list[dict[str, Any]] = Field(default_factory=list, description="each gate check with its verdict")


class ModelMetadata(BaseModel):
    """Everything recorded about one stored model. Null means "not recorded" (legacy imports only)."""

    model_config = ConfigDict(extra="forbid")

    schema_version: int = SCHEMA_VERSION
    version: str = Field(description="unique and sortable; made from created_at when not given")
    created_at: datetime = Field(default_factory=utc_now)
    model_type: str
    model_file: str = MODEL_FILE
    model_sha256: str | None = Field(None, description="SHA-256 of the pickle; filled in when it is stored")
    feature_names: list[str] = Field(description="in the exact column order the model expects")
    feature_hash: str | None = Field(description="hash of the feature definitions and parameters")
    classes: list[str] = Field(description="class names; a predicted code c means classes[c]")
    class_encoding: dict[str, int]
    performance_metrics: dict[str, Any] = Field(
        default_factory=dict,
        description="holdout scores: ensemble, models, baselines, champion; macro_f1 first",
    )
    model_weights: dict[str, float] = Field(default_factory=dict, description="voting weight per member")
    best_params: dict[str, dict[str, Any]] = Field(
        default_factory=dict, description="tuned params per member"
    )
    training_info: TrainingInfo | None
    git: GitInfo
    library_versions: dict[str, str | None] = Field(description="null for a library that is not installed")
    config_hash: str | None = Field(description="SHA-256 of the effective configuration")
    prefect_flow_run_id: str | None = None
    triggered_by: str | None = Field(
        None, description="the event that started the run (a degradation), if any"
    )
    companion_files: dict[str, str] = Field(
        default_factory=dict,
        description="file name -> SHA-256 of each file stored beside the model (the monitor's drift reference)",
    )
    decision: Decision
    legacy_metadata: dict[str, Any] | None = Field(
        None, description="the original metadata of a model imported from the legacy in-place layout"
    )

    @model_validator(mode="before")
    @classmethod
    def _stamp_version(cls, data: Any) -> Any:
        if not isinstance(data, dict) or data.get("version") is not None:
            return data
        created_at = data.get("created_at") or utc_now()
        if isinstance(created_at, str):
            created_at = datetime.fromisoformat(created_at)
        return {**data, "created_at": created_at, "version": format_version(_as_utc(created_at))}

    @field_validator("created_at")
    @classmethod
    def _utc(cls, value: datetime) -> datetime:
        return _as_utc(value)

    @field_validator("version")
    @classmethod
    def _check_version(cls, value: str) -> str:
        if not is_version(value):
            raise ValueError(f"version {value!r} does not look like 20261124T214233.123456Z-1a2b3c4d")
        return value

    @field_validator("model_sha256")
    @classmethod
    def _check_sha256(cls, value: str | None) -> str | None:
        if value is not None and not _SHA256_PATTERN.fullmatch(value):
            raise ValueError(f"model_sha256 {value!r} is not 64 lowercase hex digits")
        return value

    @field_validator("performance_metrics")
    @classmethod
    def _order_metrics(cls, value: dict[str, Any]) -> dict[str, Any]:
        return _macro_f1_first(value)

    @model_validator(mode="after")
    def _check_encoding(self) -> ModelMetadata:
        if set(self.class_encoding) != set(self.classes):
            raise ValueError(
                f"class_encoding keys {sorted(self.class_encoding)} must be exactly the classes "
                f"{self.classes}"
            )
        if sorted(self.class_encoding.values()) != list(range(len(self.classes))):
            raise ValueError(f"class_encoding {self.class_encoding} must map the classes onto 0..n-1")
        return self

    @property
    def macro_f1(self) -> float | None:
        """The ensemble's holdout macro-F1 (the headline metric), when recorded."""
        ensemble = self.performance_metrics.get("ensemble")
        source = ensemble if isinstance(ensemble, Mapping) else self.performance_metrics
        value = source.get(MACRO_F1)
        return float(value) if isinstance(value, int | float) else None

    def to_json_bytes(self) -> bytes:
        return (self.model_dump_json(indent=2) + "\n").encode()
