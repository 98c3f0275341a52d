"""Where one retrain run keeps its intermediate files, and the only code that reads or writes them.

Stages hand each other small typed records and keep the heavy results (candles, the dataset, trained
models, the evaluation) here, so every Prefect task can be retried on its own and every intermediate
result can be inspected after the run. Every write is atomic (`retrain.files`): a retried task never
reads half a file.
"""

from __future__ import annotations

import json
import pickle
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd

from retrain.data.validation import DataQualityReport
from retrain.dataset import Dataset
from retrain.ensemble import ProductionEnsemble
from retrain.evaluation import EvaluationResult
from retrain.files import write_atomically, write_json, write_pickle
from retrain.gate import GateDecision
from retrain.handoffs import ChampionRecord, SourceRecord
from retrain.training.result import TrainedModel
from retrain.weights import WeightFit


def new_run_dir(runs: Path, label: str, *, now: datetime | None = None) -> RunDir:
    """A fresh run directory under `runs`, named by its UTC start time and `label` (a flow run id...)."""
    started = now or datetime.now(UTC)
    return RunDir(Path(runs) / f"{started:%Y%m%dT%H%M%S%fZ}-{label}")


@dataclass(frozen=True)
class RunDir:
    root: Path

    @property
    def report_dir(self) -> Path:
        """Where the report's markdown and plots are written (copied beside a stored version)."""
        return self.root / "report"

    # -- candles ---------------------------------------------------------------------------------

    def write_candles(self, candles: pd.DataFrame, source: SourceRecord, quality: DataQualityReport) -> None:
        self.write_quality(quality)
        write_atomically(self._path("candles.parquet"), candles.to_parquet())
        write_json(self._path("source.json"), source.model_dump(mode="json"))

    def write_quality(self, quality: DataQualityReport) -> None:
        """The validation report, written even when validation refused the candles."""
        write_json(self._path("data_quality.json"), quality.model_dump(mode="json"))

    def read_candles(self) -> pd.DataFrame:
        return pd.read_parquet(self._path("candles.parquet"))

    def read_source(self) -> SourceRecord:
        return SourceRecord.model_validate(self._json("source.json"))

    def read_quality(self) -> DataQualityReport:
        return DataQualityReport.model_validate(self._json("data_quality.json"))

    # -- dataset and models ----------------------------------------------------------------------

    def write_dataset(self, dataset: Dataset) -> None:
        dataset.save(self._path("dataset.parquet"))

    def read_dataset(self) -> Dataset:
        return Dataset.load(self._path("dataset.parquet"))

    def has_dataset(self) -> bool:
        """Whether the dataset stage has written its file (an extra tuning worker waits for it)."""
        return self._path("dataset.parquet").exists()

    def trained_path(self, model: str) -> Path:
        return self._path(f"trained_{model}.pkl")

    def write_trained(self, trained: TrainedModel) -> Path:
        return write_pickle(self.trained_path(trained.name), trained)

    def read_trained(self, models: list[str]) -> dict[str, TrainedModel]:
        return {model: pickle.loads(self.trained_path(model).read_bytes()) for model in models}

    def write_ensemble(self, ensemble: ProductionEnsemble, weights: WeightFit) -> Path:
        write_json(self._path("weights.json"), weights.model_dump(mode="json"))
        return write_pickle(self._path("ensemble.pkl"), ensemble)

    def read_ensemble(self) -> ProductionEnsemble:
        return pickle.loads(self.ensemble_bytes())

    def ensemble_bytes(self) -> bytes:
        """The ensemble's pickle as written, for the store (which hashes exactly these bytes)."""
        return self._path("ensemble.pkl").read_bytes()

    def read_weights(self) -> WeightFit:
        return WeightFit.model_validate(self._json("weights.json"))

    # -- evaluation, gate --------------------------------------------------------------------------

    def write_evaluation(self, evaluation: EvaluationResult, champion: ChampionRecord) -> None:
        write_json(self._path("evaluation.json"), evaluation.model_dump(mode="json"))
        write_json(self._path("equity_curves.json"), evaluation.equity_curves)
        write_json(self._path("champion.json"), champion.model_dump(mode="json"))

    def read_evaluation(self) -> EvaluationResult:
        result = EvaluationResult.model_validate(self._json("evaluation.json"))
        return result.model_copy(update={"equity_curves": self._json("equity_curves.json")})

    def read_champion(self) -> ChampionRecord:
        return ChampionRecord.model_validate(self._json("champion.json"))

    def write_decision(self, decision: GateDecision) -> None:
        write_json(self._path("decision.json"), decision.model_dump(mode="json"))

    def read_decision(self) -> GateDecision:
        return GateDecision.model_validate(self._json("decision.json"))

    # -- durations and report ----------------------------------------------------------------------

    def record_duration(self, stage: str, seconds: float) -> None:
        """Add one stage's wall time (stages that write it run one at a time)."""
        durations = self.durations()
        durations[stage] = round(seconds, 3)
        write_json(self._path("durations.json"), durations)

    def durations(self) -> dict[str, float]:
        path = self._path("durations.json")
        return self._json("durations.json") if path.exists() else {}

    def write_report(self, markdown: str) -> Path:
        return write_atomically(self.report_dir / "report.md", markdown.encode())

    def _path(self, name: str) -> Path:
        return self.root / name

    def _json(self, name: str) -> Any:
        return json.loads(self._path(name).read_text())
