"""What training one model returns: the member, how it was chosen, and the trail for reports and plots."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import optuna
import pandas as pd
from optuna.trial import TrialState

from retrain.members import Member


@dataclass(frozen=True)
class TrialRecord:
    number: int
    value: float | None
    """Mean macro-F1 over the folds; None for a pruned or failed trial."""
    state: str
    duration_s: float | None
    params: dict[str, Any]
    fold_best_rounds: tuple[int, ...] = ()
    """Best boosting round of each fold the trial scored (a pruned trial scored fewer); empty for the forest."""


@dataclass(frozen=True)
class StudySummary:
    study_name: str
    n_trials: int
    n_complete: int
    n_pruned: int
    n_failed: int
    best_trial_number: int
    tuning_s: float
    """Wall-clock seconds of this run's tuning (trials of an earlier, resumed run not included)."""
    final_fit_s: float
    mean_complete_trial_s: float | None


@dataclass(frozen=True)
class TrainedModel:
    name: str
    member: Member
    feature_names: list[str]
    best_params: dict[str, Any]
    best_iteration: int | None
    """Boosting rounds of the final fit; None for the random forest."""
    cv_macro_f1: float
    cv_fold_macro_f1: list[float]
    oof_proba: np.ndarray
    """Best trial's class probabilities (columns SELL, HOLD, BUY) on the CV test windows."""
    oof_index: pd.DatetimeIndex
    """Timestamps of the `oof_proba` rows: the same rows for every model."""
    study: StudySummary
    history: list[TrialRecord]


def trial_history(study: optuna.Study) -> list[TrialRecord]:
    return [
        TrialRecord(
            number=t.number,
            value=t.value if t.state == TrialState.COMPLETE else None,
            state=t.state.name,
            duration_s=t.duration.total_seconds() if t.duration is not None else None,
            params=dict(t.params),
            fold_best_rounds=tuple(t.user_attrs.get("fold_best_rounds", ())),
        )
        for t in study.get_trials(deepcopy=False)
    ]


def summarise_study(
    study: optuna.Study, best_trial: int, tuning_s: float, final_fit_s: float
) -> StudySummary:
    history = trial_history(study)
    complete = [
        r.duration_s for r in history if r.state == TrialState.COMPLETE.name and r.duration_s is not None
    ]
    return StudySummary(
        study_name=study.study_name,
        n_trials=len(history),
        n_complete=sum(r.state == TrialState.COMPLETE.name for r in history),
        n_pruned=sum(r.state == TrialState.PRUNED.name for r in history),
        n_failed=sum(r.state == TrialState.FAIL.name for r in history),
        best_trial_number=best_trial,
        tuning_s=tuning_s,
        final_fit_s=final_fit_s,
        mean_complete_trial_s=float(np.mean(complete)) if complete else None,
    )
