"""What the stages of a retrain hand each other: small typed records, the heavy results stay in the `RunDir`.

A Prefect task returns one of these, the flow passes it on, and the UI shows it as the task's result;
no stage reads another's output back by string key. `DatasetSummary` (retrain.dataset) and
`GateDecision` (retrain.gate) are hand-offs too, defined beside what they describe.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class _Record(BaseModel):
    model_config = ConfigDict(frozen=True)


class SourceRecord(_Record):
    """Where the candles came from (the source's own description) and the hash of exactly what was used."""

    description: dict[str, Any]
    data_sha256: str

    @property
    def market(self) -> str:
        """The market's name for run names: the symbol, else the file's stem, else the source kind."""
        symbol = self.description.get("symbol")
        if symbol:
            return str(symbol)
        path = self.description.get("path")
        return Path(path).stem if path else str(self.description.get("kind", "candles"))


class CandleWindow(_Record):
    """The fetch stage's hand-off: the validated candles' span."""

    market: str
    start: datetime
    end: datetime
    rows: int
    missing_candles: int

    def sentence(self) -> str:
        return (
            f"{self.rows} candles of {self.market}, {self.start:%Y-%m-%d %H:%M} .. {self.end:%Y-%m-%d %H:%M} "
            f"UTC ({self.missing_candles} missing)"
        )


class TrainedModelRef(_Record):
    """One model's study and final fit, as the training stage hands it on (the model is in the run dir)."""

    model: str
    path: Path
    cv_macro_f1: float
    n_trials: int
    n_pruned: int
    tuning_s: float

    def sentence(self) -> str:
        return (
            f"{self.model}: CV macro-F1 {self.cv_macro_f1:.4f} after {self.n_trials} trials "
            f"({self.n_pruned} pruned) in {self.tuning_s:.0f} s"
        )


class EnsembleRef(_Record):
    """The ensemble stage's hand-off: where the ensemble is and how its members are weighted."""

    path: Path
    weights: dict[str, float]
    oof_macro_f1: float


class ChampionRecord(_Record):
    """The model in production when the challenger was evaluated (None fields without one)."""

    version: str | None
    recorded_macro_f1: float | None = Field(description="its holdout macro-F1 when it was promoted")
    note: str | None = Field(description="why there is no usable champion, when there is none")
    live_version: str | None = Field(
        description="what production pointed to at evaluation, verified or not: promotion checks it is unchanged"
    )


class EvaluationSummary(_Record):
    """The evaluation stage's hand-off: the headline scores on the holdout (details in the run dir)."""

    holdout_start: datetime
    holdout_end: datetime
    rows: int
    ensemble_macro_f1: float
    baselines_macro_f1: dict[str, float]
    champion_macro_f1: float | None
    champion: ChampionRecord

    def sentence(self) -> str:
        baselines = ", ".join(f"{name} {score:.4f}" for name, score in self.baselines_macro_f1.items())
        champion = "none" if self.champion_macro_f1 is None else f"{self.champion_macro_f1:.4f}"
        return (
            f"holdout {self.holdout_start:%Y-%m-%d} .. {self.holdout_end:%Y-%m-%d} ({self.rows} rows): "
            f"ensemble macro-F1 {self.ensemble_macro_f1:.4f}; baselines {baselines}; champion {champion}"
        )


PublicationStatus = Literal["promoted", "rejected", "dry-run"]


class Publication(_Record):
    """What the publish stage did with the challenger."""

    version: str | None = Field(description="the stored version; None for a dry run")
    status: PublicationStatus
    previous_version: str | None = Field(
        description="what production served when the challenger was evaluated"
    )


class RetrainOutcome(_Record):
    """What one retrain did: the flow's return value and the CLI's last lines."""

    status: PublicationStatus
    outcome: str = Field(description="the gate's outcome")
    version: str | None
    previous_version: str | None
    macro_f1: float
    reasons: list[str]
    run_dir: str
    models_dir: str
    trigger: str | None = Field(None, description="what started the run, when an event did")

    def sentence(self) -> str:
        return (
            f"{self.status} (version {self.version or 'not stored'}; holdout macro-F1 {self.macro_f1:.4f}; "
            f"{'; '.join(self.reasons)})"
        )
