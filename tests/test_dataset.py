"""Dataset: features and labels aligned, and one Parquet file that round-trips everything."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from retrain.data.demo import DemoSource
from retrain.dataset import Dataset, build_dataset
from retrain.errors import DatasetError
from retrain.features import FeatureManager
from retrain.labels import CLASSES, make_labels
from retrain.settings import LabelSettings

LABELS = LabelSettings(horizon=4, threshold=0.005)


@pytest.fixture(scope="module")
def candles() -> pd.DataFrame:
    return DemoSource(3, end=pd.Timestamp("2025-06-01", tz="UTC")).fetch(20).set_index("timestamp")


@pytest.fixture(scope="module")
def dataset(candles: pd.DataFrame) -> Dataset:
    return build_dataset(candles, LABELS)


def test_parquet_round_trip_preserves_data_index_and_metadata(dataset: Dataset, tmp_path: Path) -> None:
    path = dataset.save(tmp_path / "runs" / "dataset.parquet")
    loaded = Dataset.load(path)
    pd.testing.assert_frame_equal(loaded.X, dataset.X)
    pd.testing.assert_series_equal(loaded.y, dataset.y)
    pd.testing.assert_series_equal(loaded.next_return, dataset.next_return)
    assert loaded.X.index.equals(dataset.X.index)
    assert loaded.X.index.dtype == dataset.X.index.dtype
    assert loaded.feature_names == dataset.feature_names
    assert (loaded.definition_hash, loaded.horizon, loaded.threshold) == (
        dataset.definition_hash, dataset.horizon, dataset.threshold,
    )  # fmt: skip
    assert loaded.summary() == dataset.summary()
    assert [p.name for p in path.parent.iterdir()] == ["dataset.parquet"]


def test_features_have_no_nan_and_align_with_labels(dataset: Dataset, candles: pd.DataFrame) -> None:
    assert np.isfinite(dataset.X.to_numpy()).all()
    assert dataset.y.index.equals(dataset.X.index)
    assert dataset.next_return.index.equals(dataset.X.index)
    expected_labels = make_labels(candles, LABELS.horizon, LABELS.threshold).loc[dataset.X.index]
    pd.testing.assert_series_equal(dataset.y, expected_labels)
    close = candles["close"]
    expected_next = (close.shift(-1) / close - 1).loc[dataset.X.index]
    np.testing.assert_allclose(dataset.next_return.to_numpy(), expected_next.to_numpy(), rtol=1e-12)


def test_rows_lacking_features_or_labels_are_dropped(dataset: Dataset, candles: pd.DataFrame) -> None:
    lookback = FeatureManager().max_lookback
    assert dataset.X.index[0] == candles.index[lookback]
    assert dataset.X.index[-1] == candles.index[-1 - LABELS.horizon]
    assert len(dataset) == len(candles) - lookback - LABELS.horizon


def test_class_distribution_counts_every_class_by_name(dataset: Dataset) -> None:
    distribution = dataset.class_distribution()
    assert list(distribution) == list(CLASSES)
    assert sum(distribution.values()) == len(dataset)
    assert distribution["BUY"] == int((dataset.y == 2).sum())


def test_summary_is_json_ready_and_names_the_window(dataset: Dataset) -> None:
    summary = json.loads(dataset.summary().model_dump_json())
    assert summary["rows"] == len(dataset)
    assert pd.Timestamp(summary["start"]) == dataset.X.index[0]
    assert pd.Timestamp(summary["end"]) == dataset.X.index[-1]
    assert summary["feature_count"] == len(dataset.feature_names)
    assert summary["feature_hash"] == FeatureManager().definition_hash
    assert (summary["horizon"], summary["threshold"]) == (LABELS.horizon, LABELS.threshold)


def test_load_refuses_a_parquet_file_without_dataset_metadata(dataset: Dataset, tmp_path: Path) -> None:
    path = tmp_path / "plain.parquet"
    dataset.X.to_parquet(path)
    with pytest.raises(DatasetError, match="without dataset metadata"):
        Dataset.load(path)
    with pytest.raises(DatasetError, match="not found"):
        Dataset.load(tmp_path / "absent.parquet")


def test_dataset_refuses_misaligned_parts(dataset: Dataset) -> None:
    with pytest.raises(DatasetError, match="one timestamp index"):
        Dataset(
            X=dataset.X,
            y=dataset.y.iloc[1:],
            next_return=dataset.next_return,
            feature_names=dataset.feature_names,
            definition_hash=dataset.definition_hash,
            horizon=dataset.horizon,
            threshold=dataset.threshold,
        )


def test_too_few_candles_for_warm_up_and_horizon_is_refused(candles: pd.DataFrame) -> None:
    lookback = FeatureManager().max_lookback
    with pytest.raises(DatasetError, match="fetch more days"):
        build_dataset(candles.iloc[: lookback + LABELS.horizon], LABELS)


def test_dataset_refuses_columns_that_differ_from_feature_names(dataset: Dataset) -> None:
    with pytest.raises(DatasetError, match="position 0"):
        Dataset(
            X=dataset.X[dataset.feature_names[::-1]],
            y=dataset.y,
            next_return=dataset.next_return,
            feature_names=dataset.feature_names,
            definition_hash=dataset.definition_hash,
            horizon=dataset.horizon,
            threshold=dataset.threshold,
        )


def test_round_trip_keeps_the_label_method_and_feature_groups(candles: pd.DataFrame, tmp_path: Path) -> None:
    from retrain.features import GROUPS, FeatureParams
    from retrain.labels import labels_for

    labels = LabelSettings(method="triple_barrier", barrier_unit="volatility")
    built = build_dataset(candles, labels, FeatureManager(FeatureParams(groups=GROUPS)))
    loaded = Dataset.load(built.save(tmp_path / "dataset.parquet"))
    assert loaded.labels == labels and "triple barrier" in loaded.summary().sentence()
    assert FeatureParams.from_dict(loaded.feature_params) == FeatureParams(groups=GROUPS)
    pd.testing.assert_series_equal(loaded.y, labels_for(candles, labels).loc[loaded.y.index])


def test_a_dataset_without_label_settings_means_fixed_labels_at_its_threshold(dataset: Dataset) -> None:
    old = Dataset(
        X=dataset.X, y=dataset.y, next_return=dataset.next_return, feature_names=dataset.feature_names,
        definition_hash=dataset.definition_hash, horizon=4, threshold=0.005,
    )  # fmt: skip
    assert old.labels == LabelSettings() and old.feature_params is None
