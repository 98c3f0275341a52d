"""Rollback: back to the version live before (or a named one), atomically, verified and recorded."""

from __future__ import annotations

from pathlib import Path

import pytest
from store_helpers import VersionedModel, make_metadata, promote_new

from retrain.errors import ModelIntegrityError, NoProductionModelError, RollbackError
from retrain.store import (
    archive_rejected,
    list_versions,
    load_production,
    production_version,
    read_history,
    rollback,
)
from retrain.store.metadata import MODEL_FILE


def test_rollback_returns_to_the_version_live_before(tmp_path: Path) -> None:
    first = promote_new(tmp_path)
    second = promote_new(tmp_path)

    restored = rollback(tmp_path, reason="macro-F1 fell in live trading")

    assert restored == first
    assert load_production(tmp_path).model.version == first
    event = read_history(tmp_path)[-1]
    assert (event.event, event.version, event.previous_version) == ("rollback", first, second)
    assert event.reason == "macro-F1 fell in live trading"


def test_repeated_rollbacks_walk_further_back_until_none_is_left(tmp_path: Path) -> None:
    first, second, _ = (promote_new(tmp_path) for _ in range(3))

    assert rollback(tmp_path, reason="r") == second
    assert rollback(tmp_path, reason="r") == first
    with pytest.raises(RollbackError, match="no earlier version"):
        rollback(tmp_path, reason="r")


def test_rollback_after_a_new_promotion_returns_to_the_version_it_replaced(tmp_path: Path) -> None:
    _, second, _ = (promote_new(tmp_path) for _ in range(3))
    rollback(tmp_path, reason="third is broken")
    promote_new(tmp_path)

    assert rollback(tmp_path, reason="fourth is broken") == second


def test_rollback_to_a_named_version(tmp_path: Path) -> None:
    first, _, third = (promote_new(tmp_path) for _ in range(3))
    rollback(tmp_path, first, reason="r")

    assert rollback(tmp_path, third, reason="back to newest") == third
    assert {info.version: info.status for info in list_versions(tmp_path)}[first] == "previously live"


def test_rollback_refuses_unknown_live_and_rejected_versions(tmp_path: Path) -> None:
    live = promote_new(tmp_path)
    metadata = make_metadata(status="rejected")
    rejected = archive_rejected(tmp_path, VersionedModel(metadata.version), metadata)

    with pytest.raises(RollbackError, match="not in"):
        rollback(tmp_path, "20000101T000000.000000Z-00000000", reason="r")
    with pytest.raises(RollbackError, match="already in production"):
        rollback(tmp_path, live, reason="r")
    with pytest.raises(RollbackError, match="rejected challenger"):
        rollback(tmp_path, rejected, reason="r")
    assert production_version(tmp_path) == live


def test_rollback_refuses_a_tampered_target(tmp_path: Path) -> None:
    first = promote_new(tmp_path)
    live = promote_new(tmp_path)
    target = tmp_path / "archive" / first / MODEL_FILE
    target.chmod(0o644)
    target.write_bytes(target.read_bytes() + b"\x00")

    with pytest.raises(ModelIntegrityError, match="SHA-256"):
        rollback(tmp_path, reason="r")
    assert production_version(tmp_path) == live


def test_rollback_without_production_says_so(tmp_path: Path) -> None:
    with pytest.raises(NoProductionModelError, match="nothing to roll back"):
        rollback(tmp_path, reason="r")


def test_named_version_is_restored_when_production_was_removed(tmp_path: Path) -> None:
    first = promote_new(tmp_path)
    promote_new(tmp_path)
    (tmp_path / "production").unlink()

    assert rollback(tmp_path, first, reason="production link was deleted by hand") == first
    assert load_production(tmp_path).model.version == first
