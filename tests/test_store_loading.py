"""Hash-verified loading: the pair that was promoted, or a specific error and nothing unpickled."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path

import pytest
from store_helpers import make_metadata, promote_new

from retrain.errors import ModelIntegrityError, NoProductionModelError
from retrain.store import (
    load_production,
    load_production_metadata,
    production_version,
    promote,
    verify_production,
)
from retrain.store.metadata import METADATA_FILE, MODEL_FILE


def _production_file(models_dir: Path, name: str) -> Path:
    return models_dir / "archive" / str(production_version(models_dir)) / name


def _rewrite(path: Path, data: bytes) -> None:
    path.chmod(0o644)
    path.write_bytes(data)


def _flip_one_byte(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    _rewrite(path, bytes(data))


def _truncate(path: Path) -> None:
    _rewrite(path, path.read_bytes()[:-7])


def _edit_metadata(models_dir: Path, **changes: object) -> None:
    path = _production_file(models_dir, METADATA_FILE)
    _rewrite(path, json.dumps({**json.loads(path.read_bytes()), **changes}).encode())


def test_load_production_returns_the_promoted_model_and_its_metadata(tmp_path: Path) -> None:
    version = promote_new(tmp_path)

    loaded = load_production(tmp_path)

    assert loaded.metadata.version == version
    assert loaded.model.version == version
    assert (
        loaded.metadata.model_sha256
        == hashlib.sha256(_production_file(tmp_path, MODEL_FILE).read_bytes()).hexdigest()
    )


def test_intact_model_is_unpickled_which_the_marker_records(tmp_path: Path) -> None:
    marker = tmp_path / "unpickled"
    promote_new(tmp_path / "models", marker=marker)

    load_production(tmp_path / "models")

    assert marker.exists()


@pytest.mark.parametrize("damage", [_flip_one_byte, _truncate], ids=["one-byte-changed", "truncated"])
def test_damaged_pickle_is_refused_and_nothing_is_unpickled(tmp_path: Path, damage) -> None:
    marker = tmp_path / "unpickled"
    models = tmp_path / "models"
    version = promote_new(models, marker=marker)
    damage(_production_file(models, MODEL_FILE))

    with pytest.raises(ModelIntegrityError, match="SHA-256") as raised:
        load_production(models)

    assert "was not unpickled" in str(raised.value)
    assert not marker.exists()
    result = verify_production(models)
    assert (result.version, result.intact) == (version, False)
    assert not marker.exists()


def test_pickle_matching_its_hash_but_corrupt_raises_an_integrity_error(tmp_path: Path) -> None:
    promote(tmp_path, b"these bytes are no pickle", make_metadata())

    with pytest.raises(ModelIntegrityError, match="cannot be unpickled"):
        load_production(tmp_path)
    assert verify_production(tmp_path).intact


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"schema_version": 99}, "schema_version 99"),
        ({"model_file": "other.pkl"}, "model_file 'other.pkl'"),
        ({"model_sha256": None}, "no model_sha256"),
        ({"decision": {"status": "maybe"}}, "does not match the metadata schema"),
    ],
)
def test_invalid_metadata_is_refused(tmp_path: Path, changes: dict[str, object], message: str) -> None:
    promote_new(tmp_path)
    _edit_metadata(tmp_path, **changes)

    with pytest.raises(ModelIntegrityError, match=message):
        load_production(tmp_path)
    assert not verify_production(tmp_path).intact


def test_metadata_that_is_not_json_is_refused(tmp_path: Path) -> None:
    promote_new(tmp_path)
    _truncate(_production_file(tmp_path, METADATA_FILE))

    with pytest.raises(ModelIntegrityError, match="not valid JSON"):
        load_production_metadata(tmp_path)


def test_metadata_of_another_version_is_refused(tmp_path: Path) -> None:
    older = promote_new(tmp_path)
    promote_new(tmp_path)
    other = (tmp_path / "archive" / older / METADATA_FILE).read_bytes()
    _rewrite(_production_file(tmp_path, METADATA_FILE), other)

    with pytest.raises(ModelIntegrityError, match=f"describes version {older}"):
        load_production(tmp_path)


def test_missing_model_file_is_an_integrity_error(tmp_path: Path) -> None:
    promote_new(tmp_path)
    _production_file(tmp_path, MODEL_FILE).unlink()

    with pytest.raises(ModelIntegrityError, match="lacks"):
        load_production(tmp_path)


def test_empty_store_has_no_production_model(tmp_path: Path) -> None:
    assert production_version(tmp_path) is None
    with pytest.raises(NoProductionModelError, match="promote one first"):
        load_production(tmp_path)
    assert not verify_production(tmp_path).intact


def test_legacy_directory_is_never_loaded_unverified(tmp_path: Path) -> None:
    (tmp_path / "production").mkdir()
    (tmp_path / "production" / MODEL_FILE).write_bytes(b"legacy")

    with pytest.raises(NoProductionModelError, match="legacy directory"):
        load_production(tmp_path)


def test_production_version_reads_only_the_link(tmp_path: Path) -> None:
    version = promote_new(tmp_path)
    shutil.rmtree(tmp_path / "archive" / version)

    assert production_version(tmp_path) == version


def test_production_link_pointing_outside_the_archive_is_refused(tmp_path: Path) -> None:
    os.symlink("/tmp", tmp_path / "production")

    with pytest.raises(ModelIntegrityError, match="points to '/tmp'"):
        production_version(tmp_path)


def test_metadata_alone_loads_without_reading_the_pickle(tmp_path: Path) -> None:
    version = promote_new(tmp_path)
    _flip_one_byte(_production_file(tmp_path, MODEL_FILE))

    assert load_production_metadata(tmp_path).version == version
