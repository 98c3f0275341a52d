"""Recovery after crashes, the history's resistance to torn lines, and the legacy layout import."""

from __future__ import annotations

import hashlib
import json
import os
import pickle
from pathlib import Path

import pytest
from store_helpers import VersionedModel, make_metadata, promote_new

from retrain.errors import PromotionError
from retrain.store import (
    list_versions,
    load_production,
    production_version,
    read_history,
    recover,
    rollback,
)
from retrain.store.archive import write_version
from retrain.store.layout import StoreLayout, link_target
from retrain.store.metadata import METADATA_FILE, MODEL_FILE
from retrain.store.promotion import activate

SEED_METADATA = {
    "model_type": "ProductionEnsemble",
    "created_at": "2025-10-01T03:00:00",
    "model_file": MODEL_FILE,
    "feature_names": ["rsi", "macd"],
    "performance_metrics": {"accuracy": 0.55, "macro_f1": 0.38},
    "model_weights": {"lightgbm": 0.6, "xgboost": 0.4},
    "training_samples": 12000,
}


def _version_files(models_dir: Path) -> dict[str, bytes]:
    archive = models_dir / "archive"
    return {str(p.relative_to(archive)): p.read_bytes() for p in sorted(archive.rglob("*")) if p.is_file()}


def _legacy_production(models_dir: Path, model: object) -> bytes:
    """The seed's in-place layout: a real `production` directory holding the pair."""
    production = models_dir / "production"
    production.mkdir(parents=True)
    payload = pickle.dumps(model)
    (production / MODEL_FILE).write_bytes(payload)
    (production / METADATA_FILE).write_text(json.dumps(SEED_METADATA))
    return payload


def test_recovery_removes_half_written_leftovers_and_keeps_complete_versions(tmp_path: Path) -> None:
    live = promote_new(tmp_path)
    archived = _version_files(tmp_path)
    half_written = tmp_path / "archive" / f".tmp-{live}-0badcafe"
    half_written.mkdir()
    (half_written / MODEL_FILE).write_bytes(b"\x80\x05partial")
    half_deleted = tmp_path / "archive" / ".trash-20200101T000000.000000Z-00000000-12345678"
    half_deleted.mkdir()
    os.symlink(link_target(live), tmp_path / ".production.tmp-deadbeef")

    report = recover(tmp_path)

    assert sorted(p.name for p in report.removed) == sorted(
        [half_written.name, half_deleted.name, ".production.tmp-deadbeef"]
    )
    assert sorted(os.listdir(tmp_path / "archive")) == [live]
    assert _version_files(tmp_path) == archived
    assert production_version(tmp_path) == live
    assert not recover(tmp_path).changed


def test_recovery_finishes_an_interrupted_first_promotion(tmp_path: Path) -> None:
    layout = StoreLayout(tmp_path)
    metadata = make_metadata()
    payload = pickle.dumps(VersionedModel(metadata.version))
    stored = metadata.model_copy(update={"model_sha256": hashlib.sha256(payload).hexdigest()})
    write_version(layout, stored, payload)
    os.symlink(link_target(metadata.version), layout.temp_link())

    report = recover(tmp_path)

    assert report.completed_swap == metadata.version
    assert load_production(tmp_path).model.version == metadata.version
    assert read_history(tmp_path)[-1].event == "recovered"


def test_recovery_records_a_rollback_whose_history_line_was_lost(tmp_path: Path) -> None:
    first, second, _ = (promote_new(tmp_path) for _ in range(3))
    activate(StoreLayout(tmp_path), second)

    report = recover(tmp_path)

    assert report.history_repaired
    event = read_history(tmp_path)[-1]
    assert (event.event, event.version) == ("recovered", second)
    assert rollback(tmp_path, reason="r") == first


def test_torn_history_line_is_skipped_and_never_joined_to_the_next(tmp_path: Path) -> None:
    first = promote_new(tmp_path)
    with open(tmp_path / "promotion_history.jsonl", "ab") as history:
        history.write(b'{"event": "promote", "vers')

    second = promote_new(tmp_path)

    assert [(e.event, e.version) for e in read_history(tmp_path)] == [("promote", first), ("promote", second)]
    lines = (tmp_path / "promotion_history.jsonl").read_bytes().splitlines()
    assert lines[1] == b'{"event": "promote", "vers'
    assert json.loads(lines[2])["version"] == second


def test_legacy_directory_is_imported_on_the_first_promotion(tmp_path: Path) -> None:
    payload = _legacy_production(tmp_path, VersionedModel("seed"))

    new = promote_new(tmp_path)

    assert (tmp_path / "production").is_symlink()
    statuses = {info.version: info.status for info in list_versions(tmp_path)}
    legacy = next(version for version, status in statuses.items() if status == "previously live")
    assert statuses == {legacy: "previously live", new: "live"}
    assert (tmp_path / "archive" / legacy / MODEL_FILE).read_bytes() == payload
    assert [e.event for e in read_history(tmp_path)] == ["migrate", "promote"]

    rollback(tmp_path, reason="back to the seed model")

    loaded = load_production(tmp_path)
    assert loaded.model.version == "seed"
    assert loaded.metadata.legacy_metadata == SEED_METADATA
    assert loaded.metadata.feature_names == ["rsi", "macd"]
    assert loaded.metadata.macro_f1 == pytest.approx(0.38)
    assert loaded.metadata.created_at.isoformat() == "2025-10-01T03:00:00+00:00"


def test_legacy_import_without_atomic_exchange_moves_the_directory_aside(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _legacy_production(tmp_path, VersionedModel("seed"))

    def unsupported(first: Path, second: Path) -> None:
        raise OSError(22, "Invalid argument")

    monkeypatch.setattr("retrain.store.legacy.exchange_entries", unsupported)

    report = recover(tmp_path)

    assert report.migrated == production_version(tmp_path)
    assert load_production(tmp_path).model.version == "seed"
    assert sorted(os.listdir(tmp_path)) == [
        ".promotion.lock",
        "archive",
        "production",
        "promotion_history.jsonl",
    ]


def test_crash_between_the_fallback_renames_is_completed_by_recovery(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _legacy_production(tmp_path, VersionedModel("seed"))

    def unsupported(first: Path, second: Path) -> None:
        raise OSError(22, "Invalid argument")

    real_replace = os.replace

    def crash(source: object, destination: object) -> None:
        if Path(str(destination)).name == "production":
            raise KeyboardInterrupt("killed between the two renames")
        real_replace(source, destination)

    with monkeypatch.context() as patch:
        patch.setattr("retrain.store.legacy.exchange_entries", unsupported)
        patch.setattr(os, "replace", crash)
        with pytest.raises(KeyboardInterrupt):
            recover(tmp_path)
    assert not (tmp_path / "production").exists()

    report = recover(tmp_path)

    assert report.completed_swap is not None
    assert load_production(tmp_path).model.version == "seed"
    assert not [name for name in os.listdir(tmp_path) if name.startswith(".production.tmp-")]


def test_legacy_directory_without_a_model_is_refused_clearly(tmp_path: Path) -> None:
    (tmp_path / "production").mkdir()
    (tmp_path / "production" / "notes.txt").write_text("not a model")

    with pytest.raises(PromotionError, match=f"without {MODEL_FILE}"):
        promote_new(tmp_path)
    assert (tmp_path / "production" / "notes.txt").exists()
