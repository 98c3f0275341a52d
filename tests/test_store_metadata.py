"""The metadata schema: round trip, versions, UTC times, macro-F1 first, provenance helpers."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from pydantic import ValidationError
from store_helpers import make_metadata

from retrain.store import ModelMetadata, collect_git_info, collect_library_versions
from retrain.store.metadata import SCHEMA_VERSION, is_version


def test_metadata_round_trips_through_its_json_unchanged() -> None:
    metadata = make_metadata()

    again = ModelMetadata.model_validate_json(metadata.to_json_bytes())

    assert again == metadata
    assert again.schema_version == SCHEMA_VERSION


def test_version_is_made_from_created_at_so_versions_sort_by_time() -> None:
    first = make_metadata(created_at=datetime(2026, 11, 24, 21, 42, 33, 5, tzinfo=UTC))
    second = make_metadata(created_at=datetime(2026, 11, 24, 21, 42, 33, 6, tzinfo=UTC))

    assert first.version.startswith("20261124T214233.000005Z-")
    assert is_version(first.version)
    assert sorted([second.version, first.version]) == [first.version, second.version]


def test_versions_made_at_the_same_instant_are_still_unique() -> None:
    instant = datetime(2026, 1, 1, tzinfo=UTC)

    versions = {make_metadata(created_at=instant).version for _ in range(50)}

    assert len(versions) == 50


def test_created_at_is_stored_in_utc_and_naive_times_are_refused() -> None:
    tokyo = timezone(timedelta(hours=9))

    metadata = make_metadata(created_at=datetime(2026, 11, 25, 6, 0, tzinfo=tokyo))

    assert metadata.created_at == datetime(2026, 11, 24, 21, 0, tzinfo=UTC)
    assert metadata.created_at.utcoffset() == timedelta(0)
    with pytest.raises(ValidationError, match="no time zone"):
        make_metadata(created_at=datetime(2026, 11, 25, 6, 0))


def test_macro_f1_becomes_the_first_key_of_every_metrics_section() -> None:
    metadata = make_metadata()

    metrics = metadata.performance_metrics

    assert list(metrics["ensemble"])[0] == "macro_f1"
    assert metadata.macro_f1 == pytest.approx(0.42)
    stored = ModelMetadata.model_validate_json(metadata.to_json_bytes())
    assert list(stored.performance_metrics["ensemble"]) == ["macro_f1", "accuracy"]


def test_class_encoding_must_map_exactly_the_classes_onto_codes() -> None:
    document = make_metadata().model_dump()

    with pytest.raises(ValidationError, match="exactly the classes"):
        ModelMetadata.model_validate({**document, "class_encoding": {"SELL": 0, "HOLD": 1}})
    with pytest.raises(ValidationError, match="0..n-1"):
        ModelMetadata.model_validate({**document, "class_encoding": {"SELL": 0, "HOLD": 1, "BUY": 5}})


@pytest.mark.parametrize(
    ("field", "value"),
    [("version", "v1"), ("model_sha256", "ABC"), ("unknown_field", 1)],
)
def test_malformed_identity_fields_are_refused(field: str, value: object) -> None:
    document = make_metadata().model_dump()

    with pytest.raises(ValidationError):
        ModelMetadata.model_validate({**document, field: value})


def test_git_info_is_null_outside_a_git_checkout(tmp_path: Path) -> None:
    info = collect_git_info(tmp_path)

    assert (info.commit, info.branch, info.dirty) == (None, None, None)


def test_git_info_records_commit_branch_and_dirty_flag(tmp_path: Path) -> None:
    def git(*args: str) -> str:
        return subprocess.run(
            ["git", "-C", str(tmp_path), "-c", "user.name=t", "-c", "user.email=t@t", *args],
            check=True,
            capture_output=True,
            text=True,
        ).stdout.strip()

    git("init", "-q", "-b", "weekly")
    (tmp_path / "code.py").write_text("a = 1\n")
    git("add", "code.py")
    git("commit", "-q", "-m", "first")

    clean = collect_git_info(tmp_path)
    (tmp_path / "code.py").write_text("a = 2\n")
    dirty = collect_git_info(tmp_path)

    assert clean.commit == git("rev-parse", "HEAD")
    assert clean.branch == "weekly"
    assert clean.dirty is False
    assert dirty.dirty is True


def test_library_versions_are_recorded_and_null_for_a_missing_library() -> None:
    versions = collect_library_versions(("numpy", "no-such-library-installed"))

    assert versions["numpy"] == __import__("numpy").__version__
    assert versions["no-such-library-installed"] is None


def test_importing_the_store_loads_no_heavy_library() -> None:
    probe = "import retrain.store, sys; print(sorted({'pandas', 'sklearn', 'prefect', 'numpy'} & set(sys.modules)))"

    loaded = subprocess.run([sys.executable, "-c", probe], check=True, capture_output=True, text=True)

    assert loaded.stdout.strip() == "[]"
