"""The report kept beside a stored version."""

from __future__ import annotations

from pathlib import Path

import pytest
from store_helpers import promote_new

from retrain.errors import PromotionError, PromotionLockTimeout
from retrain.store import attach_report, verify_production
from retrain.store.layout import StoreLayout
from retrain.store.lock import promotion_lock


def _report(tmp_path: Path, text: str) -> Path:
    folder = tmp_path / f"report-{len(text)}"
    folder.mkdir()
    (folder / "report.md").write_text(text)
    (folder / "plot.png").write_bytes(b"\x89PNG")
    return folder


def test_report_lands_beside_the_version_and_the_pair_stays_intact(tmp_path: Path) -> None:
    models = tmp_path / "models"
    version = promote_new(models)

    target = attach_report(models, version, _report(tmp_path, "first"))

    assert target == models / "archive" / version / "report"
    assert (models / "production" / "report" / "report.md").read_text() == "first"
    assert (target / "plot.png").read_bytes() == b"\x89PNG"
    assert verify_production(models).intact


def test_a_second_report_replaces_the_first_and_leaves_no_staging_folder(tmp_path: Path) -> None:
    models = tmp_path / "models"
    version = promote_new(models)
    attach_report(models, version, _report(tmp_path, "first"))

    attach_report(models, version, _report(tmp_path, "second one"))

    assert (models / "archive" / version / "report" / "report.md").read_text() == "second one"
    assert sorted(p.name for p in (models / "archive" / version).iterdir() if p.name.startswith(".")) == []


def test_a_report_for_a_version_not_in_the_archive_is_refused(tmp_path: Path) -> None:
    models = tmp_path / "models"
    promote_new(models)

    with pytest.raises(PromotionError, match="not in the archive"):
        attach_report(models, "20260101T000000.000000Z-deadbeef", _report(tmp_path, "x"))


def test_attaching_waits_for_the_store_writer_lock(tmp_path: Path) -> None:
    models = tmp_path / "models"
    version = promote_new(models)

    with promotion_lock(StoreLayout(models), timeout=1), pytest.raises(PromotionLockTimeout):
        attach_report(models, version, _report(tmp_path, "x"), lock_timeout=0.1)
    assert not (models / "archive" / version / "report").exists()
