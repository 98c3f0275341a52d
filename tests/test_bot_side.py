"""The trading bot's own documented code runs unchanged against a model this project promoted."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from retrain.data.demo import DemoSource
from retrain.features import FeatureManager
from retrain.pipeline import run_pipeline
from retrain.settings import load_settings
from retrain.store import load_production

OPEN_GATE = {
    "min_macro_f1": 0.0,
    "min_margin_over_baselines": -1.0,
    "max_regression_vs_champion": 1.0,
    "min_class_support": 0,
}


@pytest.fixture(scope="module")
def promoted(tmp_path_factory: pytest.TempPathFactory) -> Path:
    models_dir = tmp_path_factory.mktemp("models")
    settings = load_settings(
        data={"source": "demo", "days": 30},
        split={"holdout_days": 5},
        tuning={"n_trials": 1},
        training={"models": ["random_forest", "lightgbm"]},
        paths={"models_dir": str(models_dir)},
        gate=OPEN_GATE,
    )
    outcome = run_pipeline(settings)
    assert outcome.status == "promoted", outcome.reasons
    return models_dir


def test_the_bots_documented_snippet_runs_unchanged_on_a_promoted_model(
    promoted: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    metadata = json.loads((promoted / "production" / "production_model_metadata.json").read_text())
    market_data = DemoSource(seed=11).fetch(6)
    # The bot's code, verbatim (only the import paths and the loading of `model` differ).
    # fmt: off
    feature_manager = FeatureManager(); model = load_production(promoted).model  # noqa: E702
    print(metadata['model_type'], metadata['created_at'], metadata['performance_metrics']['f1_score'])
    print(metadata['model_file'], len(metadata['feature_names']), metadata['training_info']['samples_count'])
    for metric, value in metadata['performance_metrics'].items(): print(f"{metric}: {value}")  # noqa: E701
    features = feature_manager.generate_features(market_data)   # candles in, feature table out
    prediction = model.predict(features); probabilities = model.predict_proba(features)  # noqa: E702
    # fmt: on

    printed = capsys.readouterr().out
    assert printed.startswith("ProductionEnsemble ")
    for metric in ("f1_score", "accuracy", "precision", "recall"):
        assert 0.0 <= metadata["performance_metrics"][metric] <= 1.0
        assert f"{metric}: " in printed
    assert len(prediction) == len(features) == len(probabilities) > 0
    assert probabilities.shape[1] == 3


def test_model_info_names_type_members_weights_and_features(promoted: Path) -> None:
    model = load_production(promoted).model
    info = model.get_model_info()
    assert info["model_type"] == "ProductionEnsemble"
    assert set(info["members"]) == {"random_forest", "lightgbm"}
    assert abs(sum(info["weights"].values()) - 1.0) < 1e-9
    assert info["feature_count"] == len(info["feature_names"]) == len(FeatureManager().feature_names)


def test_generate_features_refuses_raw_candles_with_problems_by_name() -> None:
    from retrain.errors import CandleValidationError

    raw = DemoSource(seed=3).fetch(6)
    raw.loc[10, ["high", "low"]] = raw.loc[10, ["low", "high"]].to_numpy()
    with pytest.raises(CandleValidationError, match="open_close_outside_range"):
        FeatureManager().generate_features(raw)


def test_a_promoted_model_carries_its_drift_reference_hashed_in_its_metadata(promoted: Path) -> None:
    from retrain.monitor.reference import REFERENCE_FILE, load_version_reference
    from retrain.store import load_production_metadata

    metadata = load_production_metadata(promoted)
    reference = load_version_reference(promoted, metadata)
    assert reference is not None and REFERENCE_FILE in metadata.companion_files
    assert reference.feature_names == metadata.feature_names


@pytest.fixture(scope="module")
def promoted_with_groups(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A model trained on volatility-scaled labels and every feature group."""
    from retrain.features import GROUPS

    models_dir = tmp_path_factory.mktemp("models_groups")
    settings = load_settings(
        data={"source": "demo", "days": 30},
        split={"holdout_days": 5},
        tuning={"n_trials": 1},
        training={"models": ["random_forest"]},
        paths={"models_dir": str(models_dir)},
        labels={"method": "volatility"},
        features={"groups": list(GROUPS)},
        gate=OPEN_GATE,
    )
    outcome = run_pipeline(settings)
    assert outcome.status == "promoted", outcome.reasons
    return models_dir


def test_the_bot_builds_the_columns_of_a_model_trained_on_other_feature_groups(
    promoted_with_groups: Path,
) -> None:
    from retrain.errors import FeatureMismatchError

    loaded = load_production(promoted_with_groups)
    model, info = loaded.model, loaded.metadata.training_info
    market_data = DemoSource(seed=11).fetch(8)
    features = FeatureManager.for_model(model).generate_features(market_data)
    assert list(features.columns) == model.feature_names == loaded.metadata.feature_names
    assert model.predict_proba(features).shape == (len(features), 3)
    with pytest.raises(FeatureMismatchError, match=r"missing feature\(s\) \['htf_trend_1h_12'.*for_model"):
        model.predict(FeatureManager().generate_features(market_data))
    assert info is not None and info.labels is not None and info.labels["method"] == "volatility"
    assert (
        info.feature_params == model.feature_params and "higher_timeframes" in model.feature_params["groups"]
    )


def test_a_model_pickled_before_feature_parameters_were_recorded_gets_the_base_set(promoted: Path) -> None:
    import pickle

    model = load_production(promoted).model
    del model.__dict__["_feature_params"]  # as an ensemble pickled by the previous release
    old = pickle.loads(pickle.dumps(model))
    assert old.feature_params is None
    market_data = DemoSource(seed=11).fetch(6)
    features = FeatureManager.for_model(old).generate_features(market_data)
    assert list(features.columns) == FeatureManager().feature_names
    assert len(old.predict(features)) == len(features)
