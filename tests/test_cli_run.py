"""`retrain run` and `retrain model` catch a mistake before any work: no Prefect server, no alert, nothing
created."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from conftest import PROJECT_ROOT


def _retrain(*args: str) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [sys.executable, "-m", "retrain.cli", *args],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    # Typer draws its error in a box: keep the words only.
    result.stderr = " ".join(re.sub(r"[\u2500-\u257f]", " ", result.stderr).split())
    return result


def test_an_unknown_model_is_refused_naming_the_allowed_ones_before_prefect_starts() -> None:
    result = _retrain("run", "--model", "foo")

    assert result.returncode == 2
    assert "foo is not a model; choose from lightgbm, xgboost, random_forest" in result.stderr
    assert "temporary server" not in result.stderr.lower()


def test_an_invalid_configuration_value_is_refused_before_prefect_starts() -> None:
    result = _retrain("run", "--source", "csv")

    assert result.returncode == 2
    assert "data.csv_path is not set" in result.stderr
    assert "temporary server" not in result.stderr.lower()


def test_rollback_with_a_mistyped_models_dir_fails_and_creates_nothing(tmp_path: Path) -> None:
    missing = tmp_path / "modles"

    result = _retrain("model", "rollback", "--models-dir", str(missing))

    assert result.returncode != 0
    assert "does not exist" in result.stderr
    assert not missing.exists()


def test_run_refuses_a_models_dir_whose_parent_does_not_exist(tmp_path: Path) -> None:
    result = _retrain("run", "--models-dir", str(tmp_path / "no" / "such" / "store"))

    assert result.returncode == 2
    assert "does not exist" in result.stderr
    assert not (tmp_path / "no").exists()
