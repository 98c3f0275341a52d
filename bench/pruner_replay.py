"""Which pruner: candidate pruners replayed on unpruned studies, for the work they save and the CV they lose.

First (`--record`, or when a window's studies are missing) each window's three studies run unpruned:
a dry-run retrain with `tuning.pruner=none` and the studies kept in a SQLite file per window
under `--studies`. Every trial then has all its fold scores and best rounds. Each candidate pruner
is replayed on those trials in their order: trial by trial it is fed the running CV mean after each
fold, exactly as `retrain.training.tuning` feeds it, and the trial stops where the pruner says so.

Reported per candidate, over every (window, model) study:
- work ratio: the fold fits of the unpruned study over those the pruner lets run. A fold's work is
  its fit rows (fold k of the expanding window fits k parts) times its boosting rounds (best round +
  early-stopping patience; the forest: its trees). Wall time follows this work, as the
  sequential-reference bench measures.
- CV regret: best CV macro-F1 of the study minus the best among the trials the pruner lets finish
  (0 when the best trial survives), and that trial's rank.

What a replay cannot show: with a pruner, TPE sees pruned trials and proposes different ones, so a
real pruned study is not this subset of the unpruned one. It ranks pruners on the same trials.

Run: .venv/bin/python bench/pruner_replay.py [--windows latest W1 W2] [--trials 50] [--days 180]
     [--studies /tmp/retrain-pruner-studies] [--record]
"""

from __future__ import annotations

import argparse
import logging
import statistics
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import optuna
from bench_report import publish
from measured_run import DATA_DIR, LATEST_BTC, measured_retrain
from optuna.trial import TrialState

from retrain.settings import Settings, load_settings
from retrain.training.tuning import make_pruner

OUT = Path(__file__).resolve().parents[1] / "BENCHMARKS.md"
WINDOWS = {
    "latest": LATEST_BTC.name,
    "W1": "BTCUSDT_BINANCE_15m_20211101_20220731.csv",
    "W2": "BTCUSDT_BINANCE_15m_20220801_20230731.csv",
    "W3": "BTCUSDT_BINANCE_15m_20230801_20240731.csv",
    "W4": "BTCUSDT_BINANCE_15m_20240801_20250731.csv",
}
"""The last `--days` of each file: the latest real candles, and the yearly windows of window_results.py."""

P = optuna.pruners
ALTERNATIVES: dict[str, Callable[[], optuna.pruners.BasePruner]] = {
    "median from fold 1": lambda: P.MedianPruner(5, n_warmup_steps=0),
    "top third from fold 2": lambda: P.PercentilePruner(33, n_startup_trials=5, n_warmup_steps=1),
    "top third from fold 1": lambda: P.PercentilePruner(33, n_startup_trials=5),
    "top quarter from fold 1": lambda: P.PercentilePruner(25, n_startup_trials=5),
    "successive halving from fold 2, factor 3": lambda: P.SuccessiveHalvingPruner(1, reduction_factor=3),
    "successive halving from fold 2, factor 2": lambda: P.SuccessiveHalvingPruner(1, reduction_factor=2),
    "hyperband, factor 3": lambda: P.HyperbandPruner(min_resource=1, max_resource=5, reduction_factor=3),
}


def window_files(windows: list[str]) -> str:
    return ", ".join(f"{window} ({WINDOWS[window]})" for window in windows)


def configured_label(settings: Settings) -> str:
    tuning = settings.tuning
    if tuning.pruner == "successive_halving":
        return f"configured: successive halving from fold {tuning.pruner_min_folds}, factor {tuning.pruner_reduction_factor}"
    return (
        f"configured: top {tuning.pruner_keep_percentile:g}% from fold {tuning.pruner_min_folds}, "
        f"after {tuning.pruner_startup_trials} trials"
    )


@dataclass(frozen=True)
class RecordedTrial:
    fold_scores: list[float]
    fold_work: np.ndarray

    @property
    def cv(self) -> float:
        return float(np.mean(self.fold_scores))


@dataclass(frozen=True)
class Replay:
    study: str
    work_ratio: float
    regret: float
    rank: int
    pruned: int


def record(window: str, days: int, trials: int, studies: Path) -> Path:
    """Run the window's three studies unpruned into `studies/<window>-<days>d-<trials>t.db`."""
    db = studies / f"{window}-{days}d-{trials}t.db"
    if db.exists():
        db.unlink()
    overrides = {
        "tuning": {"n_trials": trials, "storage": f"sqlite:///{db}", "pruner": "none"},
    }
    measured_retrain(DATA_DIR / WINDOWS[window], days, overrides, dry_run=True)
    return db


def recorded_trials(db: Path, patience: int) -> dict[str, list[RecordedTrial]]:
    """The complete trials of each model's study in `db`, in trial order."""
    storage = f"sqlite:///{db}"
    studies = {}
    for summary in optuna.get_all_study_summaries(storage):
        model = summary.study_name.split("-", 1)[0]
        trials = optuna.load_study(study_name=summary.study_name, storage=storage).get_trials(
            deepcopy=False, states=(TrialState.COMPLETE,)
        )
        studies[model] = [_recorded(model, t, patience) for t in trials]
    return studies


def _recorded(model: str, trial: optuna.trial.FrozenTrial, patience: int) -> RecordedTrial:
    scores = list(trial.user_attrs["fold_macro_f1"])
    parts = np.arange(1, len(scores) + 1, dtype=float)
    if model == "random_forest":
        work = parts * trial.params["n_estimators"]
    else:
        work = parts * (np.asarray(trial.user_attrs["fold_best_rounds"], dtype=float) + patience)
    return RecordedTrial(fold_scores=scores, fold_work=work)


def replay(
    study: str, make_pruner: Callable[[], optuna.pruners.BasePruner], trials: list[RecordedTrial]
) -> Replay:
    pruner_study = optuna.create_study(
        study_name=f"replay of {study}",  # Hyperband picks each trial's bracket from the name: fixed
        direction="maximize",
        sampler=optuna.samplers.RandomSampler(seed=0),
        pruner=make_pruner(),
    )
    work_done, finished = 0.0, []
    for recorded in trials:
        trial = pruner_study.ask()
        folds = len(recorded.fold_scores)
        for step in range(folds):
            trial.report(float(np.mean(recorded.fold_scores[: step + 1])), step)
            if step < folds - 1 and trial.should_prune():
                pruner_study.tell(trial, state=TrialState.PRUNED)
                break
        else:
            pruner_study.tell(trial, recorded.cv)
            finished.append(recorded.cv)
        work_done += float(recorded.fold_work[: step + 1].sum())
    all_cv = [t.cv for t in trials]
    chosen = max(finished)
    return Replay(
        study=study,
        work_ratio=sum(float(t.fold_work.sum()) for t in trials) / work_done,
        regret=max(all_cv) - chosen,
        rank=1 + sum(cv > chosen for cv in all_cv),
        pruned=len(trials) - len(finished),
    )


def replay_table(replays: dict[str, list[Replay]]) -> str:
    lines = [
        "| pruner | work ratio, median (min..max) | CV regret, mean / max | best trial kept | trials pruned, median |",
        "|---|---|---|---|---|",
    ]
    for name, rows in replays.items():
        ratios, regrets = [r.work_ratio for r in rows], [r.regret for r in rows]
        lines.append(
            f"| {name} | {statistics.median(ratios):.2f} ({min(ratios):.2f}..{max(ratios):.2f}) "
            f"| {statistics.mean(regrets):.4f} / {max(regrets):.4f} "
            f"| {sum(r.rank == 1 for r in rows)} of {len(rows)} "
            f"| {statistics.median(r.pruned for r in rows):.0f} |"
        )
    return "\n".join(lines)


def detail_table(rows: list[Replay]) -> str:
    lines = [
        "| study | work ratio | CV regret | rank of the chosen trial | pruned |",
        "|---|---|---|---|---|",
    ]
    lines += [f"| {r.study} | {r.work_ratio:.2f} | {r.regret:.4f} | {r.rank} | {r.pruned} |" for r in rows]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--windows", nargs="+", default=["latest", "W1", "W2"], choices=list(WINDOWS))
    parser.add_argument("--trials", type=int, default=50)
    parser.add_argument("--days", type=int, default=180)
    parser.add_argument("--studies", type=Path, default=Path("/tmp/retrain-pruner-studies"))
    parser.add_argument("--record", action="store_true", help="re-run the unpruned studies even if stored")
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    args.studies.mkdir(parents=True, exist_ok=True)
    settings = load_settings()
    configured = configured_label(settings)
    candidates = {configured: lambda: make_pruner(settings.tuning), **ALTERNATIVES}
    studies: dict[str, list[RecordedTrial]] = {}
    for window in args.windows:
        db = args.studies / f"{window}-{args.days}d-{args.trials}t.db"
        if args.record or not db.exists():
            db = record(window, args.days, args.trials, args.studies)
        for model, trials in recorded_trials(db, settings.training.early_stopping_rounds).items():
            studies[f"{window} {model}"] = trials
    replays = {
        name: [replay(study, make, trials) for study, trials in studies.items()]
        for name, make in candidates.items()
    }
    body = (
        f"Studies: {args.trials} unpruned trials per model on the last {args.days} days of "
        f"{window_files(args.windows)}; the percentile and median "
        "alternatives start after 5 trials.\n\n"
        f"{replay_table(replays)}\n\nPer study, {configured}:\n\n{detail_table(replays[configured])}\n"
    )
    title = f"Pruner replay ({', '.join(args.windows)}; {args.days} days, {args.trials} trials)"
    publish(args.out, title, "bench/pruner_replay.py", body)


if __name__ == "__main__":
    main()
