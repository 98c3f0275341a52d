"""Where one retrain run keeps its intermediate files.

Stages hand each other file paths, never DataFrames or models, so every Prefect task can be retried
on its own and every intermediate result can be inspected after the run.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class RunDir:
    root: Path

    @property
    def candles(self) -> Path:
        return self.root / "candles.parquet"

    @property
    def source(self) -> Path:
        return self.root / "source.json"

    @property
    def quality(self) -> Path:
        return self.root / "data_quality.json"

    @property
    def dataset(self) -> Path:
        return self.root / "dataset.parquet"

    def trained(self, model: str) -> Path:
        return self.root / f"trained_{model}.pkl"

    @property
    def ensemble(self) -> Path:
        return self.root / "ensemble.pkl"

    @property
    def weights(self) -> Path:
        return self.root / "weights.json"

    @property
    def evaluation(self) -> Path:
        return self.root / "evaluation.json"

    @property
    def equity_curves(self) -> Path:
        return self.root / "equity_curves.json"

    @property
    def champion(self) -> Path:
        return self.root / "champion.json"

    @property
    def decision(self) -> Path:
        return self.root / "decision.json"

    @property
    def durations(self) -> Path:
        return self.root / "durations.json"

    @property
    def report(self) -> Path:
        return self.root / "report"


def write_json(path: Path, payload: Any) -> Path:
    """Write JSON atomically, so a retried task never reads a half-written file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile("w", dir=path.parent, suffix=".tmp", delete=False) as handle:
        json.dump(payload, handle, indent=2, default=str)
    os.replace(handle.name, path)
    return path


def read_json(path: Path) -> Any:
    return json.loads(path.read_text())


def record_duration(run: RunDir, stage: str, seconds: float) -> None:
    """Add one stage's wall time to the run's durations (stages run one at a time, except training)."""
    durations = read_json(run.durations) if run.durations.exists() else {}
    durations[stage] = round(seconds, 3)
    write_json(run.durations, durations)
