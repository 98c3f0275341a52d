"""`retrain model info | verify | list | rollback` on a real store (the `model` sub-app itself)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from store_helpers import VersionedModel, make_metadata, promote_new
from typer.testing import CliRunner

from retrain.cli.model import app
from retrain.store import archive_rejected, production_version
from retrain.store.metadata import MODEL_FILE

runner = CliRunner()


def _model(*args: str, models_dir: Path) -> tuple[int, str]:
    result = runner.invoke(app, [*args, "--models-dir", str(models_dir)])
    return result.exit_code, result.output


def _damage(models_dir: Path, keep_bytes: int | None) -> None:
    path = models_dir / "production" / MODEL_FILE
    data = path.read_bytes()
    path.chmod(0o644)
    path.write_bytes(data[:keep_bytes] if keep_bytes else data[:-1] + bytes([data[-1] ^ 0xFF]))


def test_info_summarises_the_production_model(tmp_path: Path) -> None:
    version = promote_new(tmp_path)

    code, output = _model("info", models_dir=tmp_path)

    assert code == 0
    for expected in (
        f"version:     {version}",
        "model type:  ProductionEnsemble",
        "created at:  ",
        f"archive/{version}/{MODEL_FILE}",
        "features:    3",
        "samples:     15000",
        "macro-F1:    0.4200",
        "decision:    promoted: every gate check passed",
        "macro_f1=0.4200 accuracy=0.5100",
    ):
        assert expected in output


def test_info_json_prints_the_stored_metadata(tmp_path: Path) -> None:
    version = promote_new(tmp_path)

    code, output = _model("info", "--json", models_dir=tmp_path)

    assert code == 0
    document = json.loads(output)
    assert document["version"] == version
    assert document["training_info"]["samples_count"] == 15000


def test_info_without_production_fails_with_a_message(tmp_path: Path) -> None:
    code, output = _model("info", models_dir=tmp_path)

    assert code == 1
    assert "no model in production" in output


def test_verify_exits_zero_for_an_intact_model(tmp_path: Path) -> None:
    version = promote_new(tmp_path)

    code, output = _model("verify", models_dir=tmp_path)

    assert code == 0
    assert f"intact: production version {version}" in output


@pytest.mark.parametrize("keep_bytes", [None, 10], ids=["one-byte-changed", "truncated"])
def test_verify_exits_one_for_a_damaged_model_without_unpickling_it(
    tmp_path: Path, keep_bytes: int | None
) -> None:
    marker = tmp_path / "unpickled"
    promote_new(tmp_path / "models", marker=marker)
    _damage(tmp_path / "models", keep_bytes)

    code, output = _model("verify", models_dir=tmp_path / "models")

    assert code == 1
    assert "NOT intact" in output
    assert "SHA-256" in output
    assert not marker.exists()


def test_verify_exits_one_when_there_is_no_production_model(tmp_path: Path) -> None:
    code, output = _model("verify", models_dir=tmp_path)

    assert code == 1
    assert "no model in production" in output


def test_list_shows_every_version_its_status_and_the_history(tmp_path: Path) -> None:
    first = promote_new(tmp_path)
    live = promote_new(tmp_path)
    rejected_metadata = make_metadata(status="rejected", macro_f1=0.3)
    rejected = archive_rejected(tmp_path, VersionedModel(rejected_metadata.version), rejected_metadata)

    code, output = _model("list", models_dir=tmp_path)

    assert code == 0
    lines = output.splitlines()
    assert any(line.startswith(f"  {first}  previously live") and "macro-F1 0.4200" in line for line in lines)
    assert any(line.startswith(f"* {live}  live") for line in lines)
    assert any(line.startswith(f"  {rejected}  rejected") and "macro-F1 0.3000" in line for line in lines)
    history = lines[lines.index("history:") + 1 :]
    assert [line.split()[1] for line in history] == ["promote", "promote", "reject"]


def test_rollback_defaults_to_the_previous_version_and_is_listed(tmp_path: Path) -> None:
    first = promote_new(tmp_path)
    promote_new(tmp_path)

    code, output = _model("rollback", "--reason", "live losses", models_dir=tmp_path)

    assert code == 0
    assert f"production is now {first}" in output
    assert production_version(tmp_path) == first
    _, listing = _model("list", models_dir=tmp_path)
    assert f"rollback  {first}" in listing
    assert "live losses" in listing


def test_rollback_to_a_named_version(tmp_path: Path) -> None:
    first, _, _ = (promote_new(tmp_path) for _ in range(3))

    code, _ = _model("rollback", first, models_dir=tmp_path)

    assert code == 0
    assert production_version(tmp_path) == first


def test_rollback_to_an_unknown_version_fails_and_changes_nothing(tmp_path: Path) -> None:
    live = promote_new(tmp_path)

    code, output = _model("rollback", "20000101T000000.000000Z-00000000", models_dir=tmp_path)

    assert code == 1
    assert "is not in" in output
    assert production_version(tmp_path) == live


def test_models_dir_defaults_to_the_configured_one(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    version = promote_new(tmp_path)
    monkeypatch.setenv("RETRAIN_PATHS__MODELS_DIR", str(tmp_path))

    result = runner.invoke(app, ["verify"])

    assert result.exit_code == 0
    assert version in result.output
