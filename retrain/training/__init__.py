"""The training core: leak-free splits, per-model Optuna tuning on purged CV, and the final fit."""

from retrain.training.result import StudySummary, TrainedModel, TrialRecord
from retrain.training.split import Fold, HoldoutSplit, make_folds, split_holdout
from retrain.training.threads import CoreShare, available_cores, threads_per_model
from retrain.training.train import train_model, tune_worker

__all__ = [
    "CoreShare",
    "Fold",
    "HoldoutSplit",
    "StudySummary",
    "TrainedModel",
    "TrialRecord",
    "available_cores",
    "make_folds",
    "split_holdout",
    "threads_per_model",
    "train_model",
    "tune_worker",
]
