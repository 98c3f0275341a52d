"""A small real model trained on real candles and promoted into a store, for the monitor tests.

Two fitted scikit-learn forests in a `ProductionEnsemble`, trained on 120 days of BTC/USDT and
evaluated on the 7 days after them; the drift reference is written into its version directory, as
promotion does.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.ensemble import ExtraTreesClassifier, RandomForestClassifier

from retrain.data.csv_source import read_candle_file
from retrain.data.validation import validate_candles
from retrain.dataset import build_dataset
from retrain.ensemble import ProductionEnsemble
from retrain.features import FeatureManager, FeatureParams
from retrain.monitor.reference import REFERENCE_FILE, build_reference
from retrain.settings import LabelSettings, Settings
from retrain.store import promote
from tests.ensemble_helpers import FittedMember
from tests.store_helpers import make_metadata

CANDLE_FILE = "BTCUSDT_BINANCE_15m_20240801_20250731.csv"
TRAIN_DAYS = 120
HOLDOUT_DAYS = 7


@dataclass(frozen=True)
class TrainedModel:
    ensemble: ProductionEnsemble
    holdout_end: pd.Timestamp
    reference_rows: int


def load_real_candles(shared_data: Path, settings: Settings) -> pd.DataFrame:
    candles, _ = validate_candles(read_candle_file(shared_data / CANDLE_FILE), settings.data)
    return candles


def train_model(
    candles: pd.DataFrame, settings: Settings, train_end: pd.Timestamp
) -> tuple[TrainedModel, pd.DataFrame, np.ndarray]:
    """Fit on the `TRAIN_DAYS` before `train_end` minus the holdout; returns the model, X_train, holdout proba."""
    period = candles[
        (candles.index >= train_end - pd.Timedelta(days=TRAIN_DAYS)) & (candles.index < train_end)
    ]
    features = FeatureManager(FeatureParams.from_settings(settings.features))
    dataset = build_dataset(period, settings.labels, features)
    holdout = dataset.X.index >= train_end - pd.Timedelta(days=HOLDOUT_DAYS)
    X_train, y_train = dataset.X[~holdout].to_numpy(), dataset.y[~holdout].to_numpy()
    forest = RandomForestClassifier(n_estimators=20, max_depth=5, random_state=0, n_jobs=1).fit(
        X_train, y_train
    )
    extra = ExtraTreesClassifier(n_estimators=20, max_depth=6, random_state=0, n_jobs=1).fit(X_train, y_train)
    ensemble = ProductionEnsemble(
        {"forest": FittedMember("forest", forest), "extra": FittedMember("extra", extra)},
        {"forest": 2.0, "extra": 1.0},
        dataset.feature_names,
        feature_definition_hash=dataset.definition_hash,
        feature_params=dataset.feature_params,
    )
    holdout_proba = ensemble.predict_proba(dataset.X[holdout])
    model = TrainedModel(ensemble, dataset.X.index[holdout][-1], int((~holdout).sum()))
    return model, dataset.X[~holdout], holdout_proba


def promote_model(
    models_dir: Path,
    model: TrainedModel,
    *,
    created_at: datetime,
    reference: tuple[pd.DataFrame, np.ndarray] | None = None,
    labels: LabelSettings | None = None,
) -> str:
    """Promote `model` with metadata naming its holdout end (and the `labels` it was trained on, when not
    the fixed default); write its reference when given."""
    base = make_metadata(created_at=created_at)
    if labels is not None and base.training_info is not None:
        info = base.training_info.model_copy(update={"labels": labels.model_dump(mode="json")})
        base = base.model_copy(update={"training_info": info})
    metadata = base.model_copy(
        update={
            "feature_names": model.ensemble.feature_names,
            "feature_hash": model.ensemble.feature_definition_hash,
            "performance_metrics": {"holdout": {"end": model.holdout_end.isoformat()}},
        }
    )
    companions = {REFERENCE_FILE: build_reference(*reference).to_bytes()} if reference is not None else None
    return promote(models_dir, model.ensemble, metadata, companions=companions)
