"""Signed models: with a signing key configured, nothing is unpickled unless its HMAC signature verifies."""

from __future__ import annotations

import hashlib
import json
import logging
import pickle
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from store_helpers import VersionedModel, make_metadata, promote_new
from typer.testing import CliRunner

from retrain.cli.model import app
from retrain.errors import (
    ModelSignatureError,
    SigningError,
    SigningKeyError,
    UnsignedModelError,
)
from retrain.store import (
    SIGNATURE_FILE,
    SIGNING_KEY_ENV,
    ModelMetadata,
    archive_rejected,
    list_versions,
    load_production,
    production_version,
    rollback,
    sign_version,
    verify_production,
)
from retrain.store.metadata import METADATA_FILE, MODEL_FILE

KEY = "k" * 16 + "0123456789abcdef0123456789abcdef"
OTHER_KEY = "o" * 48
BLOCK_ENV = "RETRAIN_STORE__SIGNING_KEY_BLOCK"

runner = CliRunner()


@pytest.fixture
def signing(monkeypatch: pytest.MonkeyPatch):
    """Set (or, with None, remove) the signing key in the environment, as an operator would."""

    def set_key(value: str | None) -> None:
        if value is None:
            monkeypatch.delenv(SIGNING_KEY_ENV, raising=False)
        else:
            monkeypatch.setenv(SIGNING_KEY_ENV, value)

    return set_key


def _file(models_dir: Path, version: str, name: str) -> Path:
    return models_dir / "archive" / version / name


def _rewrite(path: Path, data: bytes) -> None:
    path.chmod(0o644)
    path.write_bytes(data)


def _replace_pickle_and_recompute_its_hash(models_dir: Path, version: str, model: object) -> None:
    """What an attacker with write access does: new pickle, and the hash in the metadata to match."""
    data = pickle.dumps(model, protocol=5)
    _rewrite(_file(models_dir, version, MODEL_FILE), data)
    metadata_path = _file(models_dir, version, METADATA_FILE)
    metadata = ModelMetadata.model_validate_json(metadata_path.read_bytes())
    forged = metadata.model_copy(update={"model_sha256": hashlib.sha256(data).hexdigest()})
    _rewrite(metadata_path, forged.to_json_bytes())


def _edit_metadata(models_dir: Path, version: str, changes: dict[str, object], indent: int = 2) -> None:
    path = _file(models_dir, version, METADATA_FILE)
    document = json.loads(path.read_bytes())
    _rewrite(path, (json.dumps({**document, **changes}, indent=indent) + "\n").encode())


def _model(*args: str, models_dir: Path) -> tuple[int, str]:
    result = runner.invoke(app, [*args, "--models-dir", str(models_dir)])
    return result.exit_code, result.output


def test_signed_pair_loads_and_verifies(tmp_path: Path, signing) -> None:
    signing(KEY)
    marker = tmp_path / "unpickled"
    version = promote_new(tmp_path / "models", marker=marker)

    loaded = load_production(tmp_path / "models")

    assert loaded.model.version == version
    assert marker.exists()
    assert _file(tmp_path / "models", version, SIGNATURE_FILE).exists()
    assert verify_production(tmp_path / "models").signature == "verified"


def test_without_a_key_nothing_is_signed_and_loading_is_unchanged(tmp_path: Path) -> None:
    version = promote_new(tmp_path)

    assert load_production(tmp_path).model.version == version
    assert not _file(tmp_path, version, SIGNATURE_FILE).exists()
    assert verify_production(tmp_path).signature == "unsigned"


def test_tampered_pickle_with_recomputed_hash_is_refused_before_unpickling(tmp_path: Path, signing) -> None:
    signing(KEY)
    models, marker = tmp_path / "models", tmp_path / "unpickled"
    version = promote_new(models)
    _replace_pickle_and_recompute_its_hash(models, version, VersionedModel(version, marker=marker))

    with pytest.raises(ModelSignatureError, match="does not match its files") as raised:
        load_production(models)

    assert "nothing was unpickled" in str(raised.value)
    assert not marker.exists()
    assert not verify_production(models).intact
    # The SHA-256 alone is fooled: without the key the same pair is unpickled, which runs its code.
    signing(None)
    load_production(models)
    assert marker.exists()


@pytest.mark.parametrize(
    "changes",
    [
        {"feature_names": ["rsi_14", "ret_1", "atr_14"]},
        {"performance_metrics": {"ensemble": {"macro_f1": 0.99}}},
        {"decision": {"status": "promoted", "reasons": ["approved by nobody"], "checks": []}},
        {"model_weights": {"lightgbm": 1.0}},
        {"created_at": "2026-01-01T00:00:00Z"},
    ],
    ids=["feature-order", "metrics", "decision", "weights", "created-at"],
)
def test_tampered_metadata_is_refused_before_unpickling(
    tmp_path: Path, signing, changes: dict[str, object]
) -> None:
    signing(KEY)
    models, marker = tmp_path / "models", tmp_path / "unpickled"
    version = promote_new(models, marker=marker)
    _edit_metadata(models, version, changes)

    with pytest.raises(ModelSignatureError, match="does not match its files"):
        load_production(models)
    assert not marker.exists()


def test_metadata_reformatted_without_any_change_of_value_is_refused(tmp_path: Path, signing) -> None:
    signing(KEY)
    version = promote_new(tmp_path)
    _edit_metadata(tmp_path, version, {}, indent=4)  # same fields and values, different bytes

    with pytest.raises(ModelSignatureError, match="does not match its files"):
        load_production(tmp_path)


def test_wrong_key_is_refused_naming_both_key_ids(tmp_path: Path, signing) -> None:
    signing(KEY)
    models, marker = tmp_path / "models", tmp_path / "unpickled"
    promote_new(models, marker=marker)
    signing(OTHER_KEY)

    with pytest.raises(ModelSignatureError, match="does not verify with the configured key") as raised:
        load_production(models)
    assert "retrain model sign" in str(raised.value)
    assert not marker.exists()


def test_corrupt_signature_file_is_refused(tmp_path: Path, signing) -> None:
    signing(KEY)
    version = promote_new(tmp_path)
    _rewrite(_file(tmp_path, version, SIGNATURE_FILE), b"{not json")

    with pytest.raises(ModelSignatureError, match="not a valid signature file"):
        load_production(tmp_path)


def test_unsigned_pair_with_a_key_set_is_refused_with_the_sign_hint(tmp_path: Path, signing) -> None:
    models, marker = tmp_path / "models", tmp_path / "unpickled"
    version = promote_new(models, marker=marker)
    signing(KEY)

    with pytest.raises(UnsignedModelError, match=f"retrain model sign {version}"):
        load_production(models)
    assert not marker.exists()


def test_sign_command_makes_an_unsigned_pair_load(tmp_path: Path, signing) -> None:
    models, marker = tmp_path / "models", tmp_path / "unpickled"
    version = promote_new(models, marker=marker)
    signing(KEY)

    code, output = _model("sign", models_dir=models)

    assert code == 0
    assert f"signed: version {version}" in output
    assert load_production(models).model.version == version
    assert marker.exists()
    assert _model("sign", version, models_dir=models) == (0, output.replace("signed", "already signed", 1))


def test_sign_refuses_a_pickle_that_does_not_match_its_hash(tmp_path: Path, signing) -> None:
    version = promote_new(tmp_path)
    path = _file(tmp_path, version, MODEL_FILE)
    _rewrite(path, path.read_bytes() + b"appended")
    signing(KEY)

    code, output = _model("sign", version, models_dir=tmp_path)

    assert code == 1
    assert "SHA-256" in output
    assert not _file(tmp_path, version, SIGNATURE_FILE).exists()


def test_sign_never_replaces_a_failing_signature_unless_asked(tmp_path: Path, signing) -> None:
    signing(KEY)
    version = promote_new(tmp_path)
    signing(OTHER_KEY)

    with pytest.raises(SigningError, match="--replace"):
        sign_version(tmp_path)
    assert sign_version(tmp_path, version, replace=True).outcome == "re-signed"
    assert load_production(tmp_path).model.version == version


def test_sign_without_a_key_exits_two(tmp_path: Path) -> None:
    promote_new(tmp_path)

    code, output = _model("sign", models_dir=tmp_path)

    assert code == 2
    assert SIGNING_KEY_ENV in output


def test_sign_refuses_a_version_that_is_not_archived(tmp_path: Path, signing) -> None:
    promote_new(tmp_path)
    signing(KEY)

    code, output = _model("sign", "20000101T000000.000000Z-00000000", models_dir=tmp_path)

    assert code == 1
    assert "is not in" in output


def test_verify_exit_codes_and_what_was_checked(tmp_path: Path, signing, monkeypatch) -> None:
    unsigned, signed, tampered = tmp_path / "unsigned", tmp_path / "signed", tmp_path / "tampered"
    promote_new(unsigned)
    signing(KEY)
    promote_new(signed)
    version = promote_new(tampered)
    _replace_pickle_and_recompute_its_hash(tampered, version, VersionedModel(version, padding=b"evil"))

    assert _model("verify", models_dir=signed)[0] == 0
    assert "(signature verified)" in _model("verify", models_dir=signed)[1]
    code, output = _model("verify", models_dir=tampered)
    assert (code, "NOT intact" in output, "does not match its files" in output) == (1, True, True)
    code, output = _model("verify", models_dir=unsigned)
    assert (code, "retrain model sign" in output) == (1, True)

    signing(None)
    code, output = _model("verify", models_dir=signed)
    assert (code, "the signature was not checked" in output) == (0, True)
    code, output = _model("verify", models_dir=unsigned)
    assert (code, "unsigned, and no signing key is configured" in output) == (0, True)

    monkeypatch.setenv(BLOCK_ENV, "model-signing-key")
    for name in ("prefect", "prefect.blocks", "prefect.blocks.system"):
        monkeypatch.setitem(sys.modules, name, None)
    code, output = _model("verify", models_dir=signed)
    assert (code, "Prefect is not installed" in output, SIGNING_KEY_ENV in output) == (2, True, True)


def test_rejected_challengers_are_signed_too(tmp_path: Path, signing) -> None:
    signing(KEY)
    metadata = make_metadata(status="rejected")

    version = archive_rejected(tmp_path, VersionedModel(metadata.version), metadata)

    assert _file(tmp_path, version, SIGNATURE_FILE).exists()
    assert [info.signed for info in list_versions(tmp_path)] == [True]


def test_rollback_refuses_a_target_whose_signature_fails(tmp_path: Path, signing) -> None:
    signing(KEY)
    first = promote_new(tmp_path)
    live = promote_new(tmp_path)
    _replace_pickle_and_recompute_its_hash(tmp_path, first, VersionedModel(first, padding=b"evil"))

    with pytest.raises(ModelSignatureError):
        rollback(tmp_path, reason="test")
    assert production_version(tmp_path) == live


def test_key_too_short_is_refused_and_nothing_is_stored(tmp_path: Path, signing) -> None:
    signing("short-key")

    with pytest.raises(SigningKeyError, match="at least 32"):
        promote_new(tmp_path)
    assert not (tmp_path / "archive").exists()


def test_block_named_without_prefect_installed_is_a_clear_error(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv(BLOCK_ENV, "model-signing-key")
    for name in ("prefect", "prefect.blocks", "prefect.blocks.system"):
        monkeypatch.setitem(sys.modules, name, None)

    with pytest.raises(SigningKeyError, match=f"Prefect is not installed.*{SIGNING_KEY_ENV}"):
        promote_new(tmp_path)
    assert not (tmp_path / "archive").exists()


def test_the_key_is_written_neither_to_the_store_nor_to_the_logs(
    tmp_path: Path, signing, caplog: pytest.LogCaptureFixture
) -> None:
    signing(KEY)
    caplog.set_level(logging.DEBUG)
    promote_new(tmp_path)
    sign_version(tmp_path)
    load_production(tmp_path)

    stored = b"".join(path.read_bytes() for path in tmp_path.rglob("*") if path.is_file())
    assert KEY.encode() not in stored
    assert KEY not in caplog.text


def test_loading_with_the_key_in_the_environment_imports_neither_prefect_nor_the_settings(
    tmp_path: Path, signing
) -> None:
    signing(KEY)
    promote(tmp_path)
    probe = (
        "import sys; from retrain.store import load_production; "
        f"load_production({str(tmp_path)!r}); "
        "print(sorted({'prefect', 'retrain.settings', 'pandas'} & set(sys.modules)))"
    )

    loaded = subprocess.run([sys.executable, "-c", probe], check=True, capture_output=True, text=True)

    assert loaded.stdout.strip() == "[]"


def promote(models_dir: Path) -> str:
    """A signable pair whose pickle needs only the standard library to load (for a bare subprocess)."""
    from retrain.store import promote as store_promote

    return store_promote(models_dir, {"weights": [0.5, 0.5]}, make_metadata())


def test_key_from_a_prefect_secret_block_signs_what_the_environment_key_verifies(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, prefect_harness, signing
) -> None:
    from prefect.blocks.system import Secret

    Secret(value=KEY).save("model-signing-key", overwrite=True)
    monkeypatch.setenv(BLOCK_ENV, "model-signing-key")
    version = promote_new(tmp_path)

    assert verify_production(tmp_path).signature == "verified"
    signing(KEY)  # the bot: same key, from its environment, without Prefect
    assert load_production(tmp_path).model.version == version
    monkeypatch.setenv(BLOCK_ENV, "no-such-block")
    signing(None)
    with pytest.raises(SigningKeyError, match="no-such-block"):
        load_production(tmp_path)


def test_block_named_in_the_configuration_file_is_honoured_and_an_edit_is_seen_at_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = tmp_path / "config"
    shutil.copytree(Path(__file__).resolve().parent.parent / "config", config)
    monkeypatch.setenv("RETRAIN_CONFIG_DIR", str(config))
    for name in ("prefect", "prefect.blocks", "prefect.blocks.system"):
        monkeypatch.setitem(sys.modules, name, None)
    unified = config / "unified.yaml"
    original = unified.read_text()
    assert "signing_key_block: null" in original
    promote_new(tmp_path / "models")  # read once with no block: signing off

    unified.write_text(original.replace("signing_key_block: null", "signing_key_block: model-signing-key"))
    with pytest.raises(SigningKeyError, match="'model-signing-key'"):
        load_production(tmp_path / "models")

    unified.write_text(original)
    load_production(tmp_path / "models")
