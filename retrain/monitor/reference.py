"""What the model saw at training, kept beside it so later rows can be compared with it.

Storing the training rows themselves would cost megabytes per version; per-feature quantiles at
101 levels (every percentile) describe each marginal distribution well enough to rebuild its CDF for a
KS test and its deciles for PSI, in a few dozen kilobytes of JSON. The holdout's prediction mix (the
shares of BUY/HOLD/SELL and the mean confidence) is what the model did on rows it had not seen: the
yardstick for what it does live.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from retrain.errors import InvalidInputError, ModelIntegrityError
from retrain.labels import CLASSES
from retrain.store import ModelMetadata, read_companion

logger = logging.getLogger(__name__)

REFERENCE_FILE = "drift_reference.json"
"""Name of the reference inside a version directory (written at promotion)."""
QUANTILE_POINTS = 101
FORMAT_VERSION = 1


class PredictionMix(BaseModel):
    """How often a model predicts each class, and how sure it is, over some rows."""

    model_config = ConfigDict(frozen=True)

    shares: dict[str, float] = Field(description="share of rows predicted as each class, CLASSES order")
    mean_confidence: float = Field(description="mean probability of the predicted class")
    rows: int


def prediction_mix(proba: np.ndarray, codes: np.ndarray | None = None) -> PredictionMix:
    """The mix of an (n, len(CLASSES)) probability array: the shares of `codes`, the classes the model
    gave for it (`retrain.ensemble.signal_codes`; default the argmax), and the mean top probability."""
    proba = np.asarray(proba, dtype=np.float64)
    if proba.ndim != 2 or proba.shape[1] != len(CLASSES) or not len(proba):
        raise InvalidInputError(
            f"probabilities must have shape (n >= 1, {len(CLASSES)}) in {CLASSES} order; got {proba.shape}"
        )
    predicted = proba.argmax(axis=1) if codes is None else np.asarray(codes, dtype=np.int64)
    counts = np.bincount(predicted, minlength=len(CLASSES))
    return PredictionMix(
        shares={name: float(counts[code] / len(proba)) for code, name in enumerate(CLASSES)},
        mean_confidence=float(proba.max(axis=1).mean()),
        rows=len(proba),
    )


class DriftReference(BaseModel):
    """Per-feature quantiles of the training rows and the holdout's prediction mix."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    format_version: int = FORMAT_VERSION
    levels: list[float] = Field(description="quantile levels from 0 to 1, increasing")
    quantiles: dict[str, list[float]] = Field(description="feature -> its value at each level")
    rows: int = Field(ge=1, description="training rows the quantiles come from")
    holdout_mix: PredictionMix

    @model_validator(mode="after")
    def _check_shape(self) -> DriftReference:
        levels = np.asarray(self.levels)
        if len(levels) < 3 or levels[0] != 0 or levels[-1] != 1 or np.any(np.diff(levels) <= 0):
            raise ValueError("levels must increase from 0 to 1 with at least 3 points")
        for name, values in self.quantiles.items():
            array = np.asarray(values)
            if len(array) != len(levels) or not np.isfinite(array).all() or np.any(np.diff(array) < 0):
                raise ValueError(f"quantiles of {name!r} must be {len(levels)} finite, non-decreasing values")
        return self

    @property
    def feature_names(self) -> list[str]:
        return list(self.quantiles)

    def to_bytes(self) -> bytes:
        """The JSON stored beside the model (its SHA-256 goes into the model's metadata)."""
        return (self.model_dump_json(indent=1) + "\n").encode()

    @classmethod
    def from_bytes(cls, data: bytes, source: str) -> DriftReference:
        """Read what `to_bytes` wrote; anything else raises ModelIntegrityError naming `source`."""
        try:
            return cls.model_validate_json(data)
        except ValidationError as exc:
            raise ModelIntegrityError(
                f"{source} is not a drift reference this code reads ({exc.error_count()} problem(s): "
                f"{exc.errors()[0]['msg']}); rebuild it with retrain.monitor.reference.build_reference"
            ) from exc


def build_reference(
    X_train: pd.DataFrame,
    holdout_proba: np.ndarray,
    holdout_codes: np.ndarray | None = None,
    *,
    points: int = QUANTILE_POINTS,
) -> DriftReference:
    """The reference of a model trained on `X_train` that predicted `holdout_proba` on its holdout and gave
    the bot `holdout_codes` for it (default the argmax)."""
    if not isinstance(X_train, pd.DataFrame) or X_train.empty:
        raise InvalidInputError("X_train must be a non-empty DataFrame of the training feature rows")
    values = X_train.to_numpy(dtype=np.float64)
    if not np.isfinite(values).all():
        bad = [
            str(c) for c, ok in zip(X_train.columns, np.isfinite(values).all(axis=0), strict=True) if not ok
        ]
        raise InvalidInputError(f"X_train holds NaN/inf in {bad}; build the reference from model-ready rows")
    levels = np.linspace(0.0, 1.0, points)
    table = np.quantile(values, levels, axis=0)
    return DriftReference(
        levels=levels.tolist(),
        quantiles={str(name): table[:, j].tolist() for j, name in enumerate(X_train.columns)},
        rows=len(X_train),
        holdout_mix=prediction_mix(holdout_proba, holdout_codes),
    )


def load_version_reference(models_dir: Path | str, metadata: ModelMetadata) -> DriftReference | None:
    """The reference stored with a version (hash-checked against its metadata, so a signature covers it
    too), or None for a version stored without one."""
    data = read_companion(models_dir, metadata, REFERENCE_FILE)
    if data is None:
        return None
    return DriftReference.from_bytes(data, f"{REFERENCE_FILE} of version {metadata.version}")
