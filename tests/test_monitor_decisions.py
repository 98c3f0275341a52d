"""Hysteresis (`decide`), its state file, and the drift statistics on known distributions."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy.stats import kstest, norm

from retrain.errors import FeatureMismatchError, ModelIntegrityError
from retrain.monitor.checks import Breach
from retrain.monitor.drift import feature_drift, psi, reference_cdf
from retrain.monitor.reference import REFERENCE_FILE, DriftReference, build_reference, load_version_reference
from retrain.monitor.state import MonitorState, decide, load_state, save_state
from retrain.settings import MonitorSettings
from retrain.store import load_production_metadata, promote
from tests.store_helpers import VersionedModel, make_metadata

START = datetime(2025, 4, 8, 23, 5, tzinfo=UTC)
HOUR = timedelta(hours=1)
STALE = Breach(kind="data.stale", message="feed stuck")
DRIFT = Breach(kind="features.drifted", message="drift")


def _run(
    passes: list[list[Breach]], settings: MonitorSettings, state: MonitorState | None = None
) -> list[list[str]]:
    state = state or MonitorState()
    alerted = []
    for i, breaches in enumerate(passes):
        alerts, state = decide(state, breaches, START + i * HOUR, settings)
        alerted.append([alert.kind for alert in alerts])
    return alerted


def test_a_breach_alerts_on_the_consecutive_pass_then_waits_out_its_cooldown() -> None:
    settings = MonitorSettings(consecutive=3, cooldown_hours={"data_stale": 3})
    assert _run([[STALE]] * 7, settings) == [[], [], ["data.stale"], [], [], ["data.stale"], []]


def test_an_interrupted_breach_starts_its_count_over() -> None:
    settings = MonitorSettings(consecutive=2)
    assert _run([[DRIFT], [], [DRIFT], [STALE, DRIFT]], settings) == [[], [], [], ["features.drifted"]]


def test_a_new_production_version_starts_the_model_kinds_over_but_not_the_feed() -> None:
    settings = MonitorSettings(consecutive=2)
    state = MonitorState(version="a")
    _, state = decide(state, [STALE, DRIFT], START, settings)
    alerts, _ = decide(state.for_version("b"), [STALE, DRIFT], START + HOUR, settings)
    assert [alert.kind for alert in alerts] == ["data.stale"]


def test_the_state_survives_a_save_and_an_unreadable_file_starts_fresh(tmp_path: Path) -> None:
    path = tmp_path / "monitor_state.json"
    _, state = decide(MonitorState(version="a"), [STALE], START, MonitorSettings())
    save_state(state, path)
    assert load_state(path) == state
    path.write_text("{not json")
    assert load_state(path) == MonitorState()


def _reference(rows: int = 20_000, seed: int = 0) -> DriftReference:
    rng = np.random.default_rng(seed)
    X = pd.DataFrame({"a": rng.normal(size=rows), "b": rng.normal(size=rows)})
    return build_reference(X, np.tile([0.2, 0.6, 0.2], (10, 1)))


def test_the_reference_cdf_follows_the_training_distribution() -> None:
    reference = _reference()
    x = np.linspace(-3, 3, 61)
    cdf = reference_cdf(np.asarray(reference.levels), np.asarray(reference.quantiles["a"]), x)
    assert np.max(np.abs(cdf - norm.cdf(x))) < 0.02


def test_a_sample_from_the_training_distribution_does_not_drift_and_a_shifted_one_does() -> None:
    reference = _reference()
    rng = np.random.default_rng(1)
    recent = pd.DataFrame({"a": rng.normal(size=500), "b": rng.normal(loc=1.0, size=500)})
    report = feature_drift(recent, reference, fdr=0.01, min_psi=0.25)
    assert report.drifted_features == ["b"]
    assert report.share_drifted == 0.5
    assert report.features["a"].ks_statistic == pytest.approx(
        kstest(recent["a"], norm.cdf).statistic, abs=0.02
    )
    assert report.features["b"].psi > 0.25 > report.features["a"].psi


def test_psi_of_a_sample_matching_the_reference_deciles_is_zero() -> None:
    reference = _reference()
    levels, quantiles = np.asarray(reference.levels), np.asarray(reference.quantiles["a"])
    midpoints = np.interp(np.linspace(0.05, 0.95, 10), levels, quantiles)
    assert psi(levels, quantiles, np.repeat(midpoints, 10)) == pytest.approx(0.0, abs=1e-3)


def test_drift_refuses_rows_without_the_reference_features() -> None:
    with pytest.raises(FeatureMismatchError, match="'b'"):
        feature_drift(pd.DataFrame({"a": [0.0] * 50}), _reference(), fdr=0.01, min_psi=0.25)


def test_the_reference_round_trips_through_the_store_and_a_modified_one_is_refused(tmp_path: Path) -> None:
    without = promote(tmp_path / "a", VersionedModel("plain"), make_metadata())
    assert load_version_reference(tmp_path / "a", load_production_metadata(tmp_path / "a")) is None
    reference = _reference(rows=500)
    promote(
        tmp_path / "b",
        VersionedModel("watched"),
        make_metadata(),
        companions={REFERENCE_FILE: reference.to_bytes()},
    )
    metadata = load_production_metadata(tmp_path / "b")
    assert load_version_reference(tmp_path / "b", metadata) == reference
    assert reference.holdout_mix.shares == {"SELL": 0.0, "HOLD": 1.0, "BUY": 0.0}
    path = tmp_path / "b" / "archive" / metadata.version / REFERENCE_FILE
    path.chmod(0o644)
    path.write_text('{"levels": [0, 1]}')
    with pytest.raises(ModelIntegrityError, match=REFERENCE_FILE):
        load_version_reference(tmp_path / "b", metadata)
    assert without
