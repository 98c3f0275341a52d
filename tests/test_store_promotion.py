"""Promotion: the pair goes live in one swap, is archived, and a failed write changes nothing."""

from __future__ import annotations

import errno
import hashlib
import json
import os
import pickle
import threading
from pathlib import Path

import pytest
from filelock import FileLock
from store_helpers import LARGE_PADDING, VersionedModel, make_metadata, promote_new

from retrain.errors import ConfigError, ProductionChangedError, PromotionError, PromotionLockTimeout
from retrain.store import (
    archive_rejected,
    list_versions,
    load_production,
    production_version,
    promote,
    read_history,
    recover,
    rollback,
)
from retrain.store.metadata import METADATA_FILE, MODEL_FILE


def _snapshot(models_dir: Path) -> dict[str, bytes]:
    """Every file under the models directory except the lock, by relative path."""
    return {
        str(path.relative_to(models_dir)): path.read_bytes()
        for path in sorted(models_dir.rglob("*"))
        if path.is_file() and path.name != ".promotion.lock"
    }


def test_promotion_puts_the_pair_behind_the_fixed_production_paths(tmp_path: Path) -> None:
    version = promote_new(tmp_path)

    production = tmp_path / "production"
    assert production.is_symlink()
    assert os.readlink(production) == f"archive/{version}"
    assert pickle.loads((production / MODEL_FILE).read_bytes()).version == version
    assert json.loads((production / METADATA_FILE).read_bytes())["version"] == version


def test_stored_metadata_records_the_hash_of_the_stored_pickle(tmp_path: Path) -> None:
    metadata = make_metadata()

    version = promote(tmp_path, VersionedModel(metadata.version), metadata)

    stored = json.loads((tmp_path / "archive" / version / METADATA_FILE).read_bytes())
    pickled = (tmp_path / "archive" / version / MODEL_FILE).read_bytes()
    assert version == metadata.version
    assert stored["model_sha256"] == hashlib.sha256(pickled).hexdigest()
    assert stored["model_file"] == MODEL_FILE
    assert metadata.model_sha256 is None


def test_pickle_bytes_are_stored_as_given(tmp_path: Path) -> None:
    metadata = make_metadata()
    payload = pickle.dumps(VersionedModel(metadata.version), protocol=4)

    version = promote(tmp_path, payload, metadata)

    assert (tmp_path / "archive" / version / MODEL_FILE).read_bytes() == payload


def test_promotion_is_recorded_with_the_version_it_replaced(tmp_path: Path) -> None:
    first = promote_new(tmp_path)
    second = promote_new(tmp_path)

    events = [(e.event, e.version, e.previous_version) for e in read_history(tmp_path)]

    assert events == [("promote", first, None), ("promote", second, first)]
    assert read_history(tmp_path)[-1].reason == "every gate check passed"


def test_rejected_challenger_is_archived_but_never_goes_live(tmp_path: Path) -> None:
    live = promote_new(tmp_path)
    rejected = make_metadata(status="rejected", macro_f1=0.1)

    archived = archive_rejected(tmp_path, VersionedModel(rejected.version), rejected)

    assert production_version(tmp_path) == live
    assert {info.version: info.status for info in list_versions(tmp_path)} == {
        live: "live",
        archived: "rejected",
    }
    assert read_history(tmp_path)[-1].event == "reject"


def test_promote_and_archive_rejected_refuse_the_other_decision(tmp_path: Path) -> None:
    rejected = make_metadata(status="rejected")
    promoted = make_metadata()

    with pytest.raises(PromotionError, match="only a 'promoted' decision goes live"):
        promote(tmp_path, b"model", rejected)
    with pytest.raises(PromotionError, match="keeps only 'rejected'"):
        archive_rejected(tmp_path, b"model", promoted)
    assert production_version(tmp_path) is None


def test_promoting_an_archived_version_again_is_refused(tmp_path: Path) -> None:
    metadata = make_metadata()
    promote(tmp_path, VersionedModel(metadata.version), metadata)
    promote_new(tmp_path)

    with pytest.raises(PromotionError, match="already in"):
        promote(tmp_path, VersionedModel(metadata.version), metadata)


def test_promotion_against_a_champion_no_longer_live_is_refused(tmp_path: Path) -> None:
    champion = promote_new(tmp_path)
    replacement = promote_new(tmp_path)

    with pytest.raises(ProductionChangedError, match=f"no longer {champion}"):
        promote_new(tmp_path, expected_live=champion)

    assert production_version(tmp_path) == replacement
    assert promote_new(tmp_path, expected_live=replacement) == production_version(tmp_path)


def test_a_first_promotion_expecting_an_empty_store_is_refused_once_another_went_live(tmp_path: Path) -> None:
    first = promote_new(tmp_path, expected_live=None)

    with pytest.raises(ProductionChangedError, match=f"production is {first}, no longer empty"):
        promote_new(tmp_path, expected_live=None)

    assert production_version(tmp_path) == first


def test_unpicklable_model_is_refused_before_anything_is_written(tmp_path: Path) -> None:
    with pytest.raises(PromotionError, match="cannot be pickled"):
        promote(tmp_path, lambda row: row, make_metadata())
    assert not (tmp_path / "archive").exists()


@pytest.mark.parametrize("failing_call", ["write", "fsync"])
def test_failed_write_leaves_the_old_pair_live_and_untouched(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, failing_call: str
) -> None:
    live = promote_new(tmp_path)
    before = _snapshot(tmp_path)
    real_call = getattr(os, failing_call)
    calls = []

    def disk_full_on_second_call(fd: int, *args: object) -> object:
        calls.append(fd)
        if len(calls) == 2:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real_call(fd, *args)

    with monkeypatch.context() as patch:
        patch.setattr(os, failing_call, disk_full_on_second_call)
        with pytest.raises(PromotionError, match=f"No space left on device.*production serves {live}"):
            promote_new(tmp_path, padding=LARGE_PADDING * 4)

    assert len(calls) >= 2
    assert production_version(tmp_path) == live
    assert _snapshot(tmp_path) == before
    assert not recover(tmp_path).changed
    assert load_production(tmp_path).model.version == live


def test_retention_keeps_the_newest_versions(tmp_path: Path) -> None:
    versions = [promote_new(tmp_path, keep=3) for _ in range(5)]

    assert sorted(os.listdir(tmp_path / "archive")) == versions[-3:]


def test_retention_never_deletes_production_or_its_predecessor(tmp_path: Path) -> None:
    first = promote_new(tmp_path, keep=2)
    second = promote_new(tmp_path, keep=2)
    rollback(tmp_path, reason="second is broken")
    rejected = []
    for _ in range(3):
        metadata = make_metadata(status="rejected")
        rejected.append(archive_rejected(tmp_path, VersionedModel(metadata.version), metadata, keep=2))

    assert production_version(tmp_path) == first
    assert sorted(os.listdir(tmp_path / "archive")) == sorted([first, second, *rejected[-2:]])

    third = promote_new(tmp_path, keep=2)

    assert sorted(os.listdir(tmp_path / "archive")) == sorted([first, rejected[-1], third])


def test_keep_below_one_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="keep=0"):
        promote_new(tmp_path, keep=0)


def test_second_promoter_times_out_with_an_error_naming_the_lock(tmp_path: Path) -> None:
    live = promote_new(tmp_path)

    with FileLock(tmp_path / ".promotion.lock"), pytest.raises(PromotionLockTimeout) as raised:
        promote_new(tmp_path, lock_timeout=0.2)

    assert str(tmp_path / ".promotion.lock") in str(raised.value)
    assert "0.2 s" in str(raised.value)
    assert production_version(tmp_path) == live


def test_second_promoter_waits_for_the_lock_then_promotes(tmp_path: Path) -> None:
    live = promote_new(tmp_path)
    promoted: list[str] = []
    holder = FileLock(tmp_path / ".promotion.lock")
    holder.acquire()
    waiter = threading.Thread(target=lambda: promoted.append(promote_new(tmp_path, lock_timeout=60)))

    waiter.start()
    waiter.join(0.5)
    still_waiting = waiter.is_alive()
    unchanged = production_version(tmp_path)
    holder.release()
    waiter.join(60)

    assert still_waiting
    assert unchanged == live
    assert production_version(tmp_path) == promoted[0] != live
