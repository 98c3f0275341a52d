"""Features joined with labels: the table every model is tuned, trained and evaluated on.

A `Dataset` travels between Prefect tasks as one Parquet file: the feature columns, the label codes
and the next-candle return, with the label settings, the feature parameters and the feature definition
hash in the Parquet schema metadata, so a file can never be read back with the wrong labels or feature set.
"""

from __future__ import annotations

import io
import json
import logging
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from pydantic import BaseModel, ConfigDict

from retrain.errors import DatasetError
from retrain.features import FeatureManager
from retrain.files import write_atomically
from retrain.labels import CLASSES, forward_return, labels_for
from retrain.settings import LabelSettings

logger = logging.getLogger(__name__)

LABEL_COLUMN = "label"
NEXT_RETURN_COLUMN = "next_return"
_METADATA_KEY = b"retrain.dataset"
_FORMAT_VERSION = 1


def _first_difference(columns: list[str], names: list[str]) -> str:
    for position, (column, name) in enumerate(zip(columns, names, strict=False)):
        if column != name:
            return f"position {position}: column {column!r}, expected {name!r}"
    return f"position {min(len(columns), len(names))}: one list ends there"


class DatasetSummary(BaseModel):
    """The dataset stage's hand-off: rows, span, class balance and the label and feature definitions."""

    model_config = ConfigDict(frozen=True)

    rows: int
    start: datetime | None
    end: datetime | None
    class_distribution: dict[str, int]
    horizon: int
    threshold: float
    feature_count: int
    feature_hash: str
    labels: LabelSettings | None = None
    """The full label definition; None in summaries written before label methods (fixed)."""

    def sentence(self) -> str:
        classes = ", ".join(f"{count} {name}" for name, count in self.class_distribution.items())
        span = (
            f"{self.start:%Y-%m-%d %H:%M} .. {self.end:%Y-%m-%d %H:%M} UTC"
            if self.start and self.end
            else "empty"
        )
        return (
            f"{self.rows} labelled rows ({span}): {classes}; {self.feature_count} features, "
            f"labels {self.label_settings().sentence()}"
        )

    def label_settings(self) -> LabelSettings:
        """The label definition (summaries written before label methods: fixed at `threshold`)."""
        return self.labels or LabelSettings(horizon=self.horizon, threshold=self.threshold)


@dataclass(frozen=True, eq=False)
class Dataset:
    """X (features), y (class codes) and next_return (close[t+1]/close[t]-1), on one timestamp index.

    `labels` is the label definition (default: fixed at `threshold`); `feature_params` the feature
    parameters (`FeatureParams.to_dict`; None = the base set), recorded with the model trained on it."""

    X: pd.DataFrame
    y: pd.Series
    next_return: pd.Series
    feature_names: list[str]
    definition_hash: str
    horizon: int
    threshold: float
    labels: LabelSettings | None = None
    feature_params: dict[str, Any] | None = None

    def __post_init__(self) -> None:
        if self.labels is None:
            object.__setattr__(self, "labels", LabelSettings(horizon=self.horizon, threshold=self.threshold))
        elif (self.labels.horizon, self.labels.threshold) != (self.horizon, self.threshold):
            raise DatasetError(
                f"horizon/threshold {self.horizon}/{self.threshold} disagree with the label settings "
                f"{self.labels.horizon}/{self.labels.threshold}"
            )
        if not (self.X.index.equals(self.y.index) and self.X.index.equals(self.next_return.index)):
            raise DatasetError("X, y and next_return must share one timestamp index")
        columns = list(self.X.columns)
        if columns != list(self.feature_names):
            raise DatasetError(
                f"X has {len(columns)} columns but feature_names lists {len(self.feature_names)}, or in "
                f"another order; first difference: {_first_difference(columns, list(self.feature_names))}"
            )

    def __len__(self) -> int:
        return len(self.X)

    def class_distribution(self) -> dict[str, int]:
        """Rows per class name, every class present (zero when absent)."""
        counts = np.bincount(self.y.to_numpy(), minlength=len(CLASSES))
        return {name: int(counts[code]) for code, name in enumerate(CLASSES)}

    def summary(self) -> DatasetSummary:
        """What the dataset holds, for logs, reports and model metadata."""
        index = self.X.index
        return DatasetSummary(
            rows=len(self),
            start=index[0].to_pydatetime() if len(index) else None,
            end=index[-1].to_pydatetime() if len(index) else None,
            class_distribution=self.class_distribution(),
            horizon=self.horizon,
            threshold=self.threshold,
            feature_count=len(self.feature_names),
            feature_hash=self.definition_hash,
            labels=self.labels,
        )

    def save(self, path: Path | str) -> Path:
        """Write one Parquet file atomically (a reader never sees half a file); returns the path."""
        path = Path(path)
        reserved = {LABEL_COLUMN, NEXT_RETURN_COLUMN} & set(self.feature_names)
        if reserved:
            raise DatasetError(f"feature names {sorted(reserved)} clash with the dataset's own columns")
        frame = self.X.assign(**{LABEL_COLUMN: self.y, NEXT_RETURN_COLUMN: self.next_return})
        table = pa.Table.from_pandas(frame, preserve_index=True)
        metadata = {
            "format_version": _FORMAT_VERSION,
            "feature_names": list(self.feature_names),
            "definition_hash": self.definition_hash,
            "horizon": self.horizon,
            "threshold": self.threshold,
            "labels": self.labels.model_dump(mode="json") if self.labels else None,
            "feature_params": self.feature_params,
        }
        table = table.replace_schema_metadata(
            {**(table.schema.metadata or {}), _METADATA_KEY: json.dumps(metadata).encode()}
        )
        buffer = io.BytesIO()
        pq.write_table(table, buffer)
        return write_atomically(path, buffer.getvalue())

    @classmethod
    def load(cls, path: Path | str) -> Dataset:
        """Read a file written by `save`, raising `DatasetError` if it is missing or not a dataset."""
        path = Path(path)
        try:
            table = pq.read_table(path)
        except FileNotFoundError as exc:
            raise DatasetError(f"dataset file not found: {path}") from exc
        except (OSError, pa.ArrowException) as exc:
            raise DatasetError(f"cannot read dataset file {path}: {exc}") from exc
        raw = (table.schema.metadata or {}).get(_METADATA_KEY)
        if raw is None:
            raise DatasetError(
                f"{path} is a Parquet file without dataset metadata; write it with Dataset.save"
            )
        metadata = json.loads(raw)
        if metadata.get("format_version") != _FORMAT_VERSION:
            raise DatasetError(
                f"{path} has dataset format {metadata.get('format_version')}, expected {_FORMAT_VERSION}"
            )
        frame = table.to_pandas()
        names = metadata["feature_names"]
        return cls(
            X=frame[names],
            y=frame[LABEL_COLUMN],
            next_return=frame[NEXT_RETURN_COLUMN],
            feature_names=names,
            definition_hash=metadata["definition_hash"],
            horizon=metadata["horizon"],
            threshold=metadata["threshold"],
            labels=LabelSettings(**metadata["labels"]) if metadata.get("labels") else None,
            feature_params=metadata.get("feature_params"),
        )


def build_dataset(
    candles: pd.DataFrame, labels: LabelSettings, features: FeatureManager | None = None
) -> Dataset:
    """Features and labels of `candles`, inner-joined: only rows that have both are kept."""
    features = features or FeatureManager()
    X = features.build(candles)
    y = labels_for(candles, labels)
    next_return = forward_return(candles, 1).dropna().rename(NEXT_RETURN_COLUMN)
    joined = X.index.intersection(y.index).intersection(next_return.index)
    index = pd.DatetimeIndex(joined, freq=None)  # rows may be missing: a 15-minute freq would mislead
    if index.empty:
        raise DatasetError(
            f"no candle has both features and a label: {len(X)} feature rows, {len(y)} labels "
            f"(warm-up {features.max_lookback} candles, horizon {labels.horizon}); fetch more days"
        )
    dataset = Dataset(
        X=X.loc[index],
        y=y.loc[index],
        next_return=next_return.loc[index],
        feature_names=list(features.feature_names),
        definition_hash=features.definition_hash,
        horizon=labels.horizon,
        threshold=labels.threshold,
        labels=labels,
        feature_params=features.params.to_dict(),
    )
    logger.info("dataset: %s", dataset.summary().sentence())
    return dataset
