"""The fault matrix: each fault injected into real retrains, and what must hold after it.

Cases (each run `--runs` times; tests/test_fault_matrix.py pins each one):
- SIGKILL of the retrain process after each stage of `retrain.sequence` and in the middle of
  training, with a model in production: production unchanged (or, after the publish stage, the
  pair the run published), the store verifies and loads, its lock is free, the next run completes.
  A kill *inside* a promotion is tests/test_store_crash.py (200 kills at random instants).
- The file system of the store and its runs (a small tmpfs at `paths.models_dir`, runs in its default
  place inside) full before each stage: the run fails with an error naming the path
  (DiskFullError, or PromotionError for the store's own write), production unchanged.
- The exchange (tests/fake_bitbank.py, real candles in bitbank's format) failing in the middle of
  pagination, or answering a page in reverse order, twice over, or with two different candles for one
  time: retried, sorted or deduplicated to exactly the exchange's candles, or refused; never trained on.
- Two retrains started at once against one empty store, lined up so both promote at the same moment:
  exactly one promotes; the other is refused (ProductionChangedError) with production unchanged.
- The Prefect server stopped during a run (bench/fault_prefect.py): see that file.

Each retrain is the demo source (or the fake exchange), 30 days, one model, one trial: a few seconds.

Run: .venv/bin/python bench/fault_matrix.py [--runs 3] [--cases kill disk exchange concurrent prefect]
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
from bench_report import publish
from fault_run import STAGES, Launcher

PROJECT_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(PROJECT_ROOT / "tests"))

from fake_bitbank import FakeBitbank, Fault, day_path, load_recording, retime  # noqa: E402
from filelock import FileLock, Timeout  # noqa: E402

from retrain.data.candles import CANDLE_COLUMNS  # noqa: E402
from retrain.errors import ModelStoreError  # noqa: E402
from retrain.store import load_production, production_version, recover, verify_production  # noqa: E402
from retrain.store.history import read_events  # noqa: E402
from retrain.store.layout import StoreLayout  # noqa: E402

OUT = PROJECT_ROOT / "RESULTS.md"
SHARED_DATA = PROJECT_ROOT.parent / "shared" / "data"
RECORDING = "BTCUSDT_BINANCE_15m_20230801_20240731.csv"
TMPFS_SIZE = "24m"
"""Room for the seeded store and a few runs (a run directory is about 1.7 MB)."""

COMPLETED = {"promoted", "rejected"}


def small_env(models_dir: Path, **overrides: str) -> dict[str, str]:
    """RETRAIN_* settings of a small retrain on the demo source into `models_dir`."""
    return {
        "RETRAIN_CONFIG_DIR": str(PROJECT_ROOT / "config"),
        "RETRAIN_DATA__SOURCE": "demo",
        "RETRAIN_DATA__DAYS": "30",
        "RETRAIN_SPLIT__HOLDOUT_DAYS": "7",
        "RETRAIN_TUNING__N_TRIALS": "1",
        "RETRAIN_TRAINING__MODELS": '["lightgbm"]',
        "RETRAIN_TRAINING__CORES": "1",
        "RETRAIN_PATHS__MODELS_DIR": str(models_dir),
        **overrides,
    }


# -- what the store looks like after a fault -------------------------------------------------------


@dataclass(frozen=True)
class StoreState:
    production: str | None
    lock_free: bool
    intact: bool
    """Production verifies (hash, signature) and loads, or there is none and nothing claims otherwise."""
    leftovers: bool
    """Recovery found temporary files of an interrupted write to remove."""
    promotions: int
    problem: str | None = None

    @property
    def consistent(self) -> bool:
        return self.lock_free and self.intact


def inspect_store(models_dir: Path) -> StoreState:
    """What the bot would see: the lock (taken at once or not), the live pair, then recovery's work."""
    layout = StoreLayout(models_dir)
    lock_free = True
    if layout.lock_file.exists():
        try:
            FileLock(layout.lock_file, timeout=0).acquire().lock.release()
        except Timeout:
            lock_free = False
    production = production_version(models_dir)
    problem = None
    intact = True
    if production is not None:
        verified = verify_production(models_dir)
        intact = verified.intact
        problem = verified.problem
        if intact:
            try:
                intact = load_production(models_dir).metadata.version == production
            except ModelStoreError as exc:
                intact, problem = False, str(exc)
    leftovers = recover(models_dir, lock_timeout=5).changed if lock_free and layout.root.exists() else False
    promotions = sum(event.event == "promote" for event in read_events(layout.history_file))
    return StoreState(production, lock_free, intact, leftovers, promotions, problem)


# -- one case run --------------------------------------------------------------------------------------


@dataclass
class CaseRun:
    promoted: bool
    """Production changed during the faulty run."""
    consistent: bool
    next_ok: bool
    held: bool
    """Everything the case says must hold did."""
    note: str = ""


@dataclass
class Case:
    name: str
    must_hold: str
    run: Callable[[Matrix], CaseRun] | None
    """None for a case that runs outside the launcher (the Prefect server)."""
    group: str
    results: list[CaseRun] = field(default_factory=list)


class Matrix:
    """Shared by the cases: the launcher, a scratch folder and a store seeded with one production model."""

    def __init__(self, launcher: Launcher, scratch: Path) -> None:
        self.launcher = launcher
        self.scratch = scratch
        self._seeded: Path | None = None
        self._count = 0

    def fresh_dir(self, label: str) -> Path:
        self._count += 1
        path = self.scratch / f"{self._count:03d}-{label}"
        path.mkdir()
        return path

    def seeded_store(self, into: Path | None = None) -> Path:
        """A copy of a store whose production model one small demo retrain promoted."""
        if self._seeded is None:
            seed = self.fresh_dir("seed") / "models"
            report = self.launcher.run(small_env(seed))
            if report["event"] != "outcome" or report["outcome"]["status"] != "promoted":
                raise RuntimeError(f"seeding the store failed: {report}")
            shutil.rmtree(seed / "runs")
            self._seeded = seed
        target = into if into is not None else self.fresh_dir("store") / "models"
        shutil.copytree(self._seeded, target, symlinks=True, dirs_exist_ok=True)
        return target

    def next_run_ok(self, models_dir: Path, **env: str) -> tuple[bool, dict[str, Any]]:
        report = self.launcher.run(small_env(models_dir, **env))
        ok = report["event"] == "outcome" and report["outcome"]["status"] in COMPLETED
        return ok, report


# -- SIGKILL ---------------------------------------------------------------------------------------------


def kill_after(stage: str) -> Callable[[Matrix], CaseRun]:
    def run(matrix: Matrix) -> CaseRun:
        models = matrix.seeded_store()
        before = production_version(models)
        pid = matrix.launcher.start(small_env(models), pause_after=stage)
        matrix.launcher.wait_for(pid, "paused", stage=stage)
        published = production_version(models)
        died = matrix.launcher.kill(pid)
        matrix.launcher.forget(pid)
        state = inspect_store(models)
        ok, report = matrix.next_run_ok(models)
        expected = published if stage in {"publish_stage", "report_stage"} else before
        return CaseRun(
            promoted=state.production != before,
            consistent=state.consistent,
            next_ok=ok,
            held=died == 9 and state.consistent and state.production == expected and ok,
            note=f"recovery had work: {state.leftovers}; next run: {_sentence(report)}",
        )

    return run


def kill_mid_training(matrix: Matrix) -> CaseRun:
    models = matrix.seeded_store()
    before = production_version(models)
    pid = matrix.launcher.start(small_env(models, RETRAIN_TUNING__N_TRIALS="3"), announce_trials=True)
    matrix.launcher.wait_for(pid, "trial", done=1)
    matrix.launcher.kill(pid)
    matrix.launcher.forget(pid)
    state = inspect_store(models)
    ok, _ = matrix.next_run_ok(models)
    return CaseRun(
        promoted=state.production != before,
        consistent=state.consistent,
        next_ok=ok,
        held=state.consistent and state.production == before and ok,
        note="killed after trial 1 of 3",
    )


# -- disk full -------------------------------------------------------------------------------------------


@contextlib.contextmanager
def tmpfs(path: Path, size: str = TMPFS_SIZE) -> Iterator[Path]:
    """A small tmpfs mounted at `path` (needs root with CAP_SYS_ADMIN); unmounted afterwards."""
    path.mkdir(parents=True, exist_ok=True)
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)], capture_output=True, text=True
    )
    if mounted.returncode != 0:
        raise PermissionError(f"cannot mount a tmpfs at {path}: {mounted.stderr.strip()}")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)


def fill(folder: Path) -> Path:
    """Write a file into `folder` until its file system has no byte left."""
    filler = folder / "filler.bin"
    block = b"\0" * (1 << 16)
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT, 0o644)
    try:
        for size in (1 << 16, 1 << 12, 1 << 9, 1):
            while True:
                try:
                    os.write(fd, block[:size])
                except OSError as exc:
                    if exc.errno != errno.ENOSPC:
                        raise
                    break
    finally:
        os.close(fd)
    return filler


def disk_full_before(stage: str) -> Callable[[Matrix], CaseRun]:
    def run(matrix: Matrix) -> CaseRun:
        with tmpfs(matrix.fresh_dir("tmpfs") / "mnt") as mount:
            models = matrix.seeded_store(mount / "models")
            before = production_version(models)
            env = small_env(models)
            pid = matrix.launcher.start_paused_before(env, stage)
            expected = production_version(models)  # before report_stage: what the run published
            filler = fill(mount)
            matrix.launcher.resume(pid)
            report = matrix.launcher.result(pid)
            matrix.launcher.reap(pid)
            state = inspect_store(models)
            filler.unlink()
            ok, _ = matrix.next_run_ok(models)
        clear = report["event"] == "error" and (
            (report["type"] == "DiskFullError" and str(mount) in report["message"])
            or (report["type"] == "PromotionError" and "No space left" in report["message"])
        )
        return CaseRun(
            promoted=state.production != before,
            consistent=state.consistent,
            next_ok=ok,
            held=clear and state.consistent and state.production == expected and ok,
            note=f"{report.get('type', report.get('outcome'))}: {report.get('message', '')[:300]}",
        )

    return run


# -- the exchange ----------------------------------------------------------------------------------------


def _exchange_case(faults: list[Fault], *, refused: bool, note: str) -> Callable[[Matrix], CaseRun]:
    """A retrain on the fake bitbank with `faults` queued on a page in the middle of the window."""

    def run(matrix: Matrix) -> CaseRun:
        now = pd.Timestamp.now(tz="UTC")
        recording = retime(load_recording(SHARED_DATA / RECORDING), now)
        folder = matrix.fresh_dir("exchange")
        models = folder / "models"
        with FakeBitbank(recording, now=lambda: pd.Timestamp.now(tz="UTC")) as fake:
            env = small_env(
                models,
                RETRAIN_DATA__SOURCE="exchange",
                RETRAIN_DATA__API_URL=fake.url,
                RETRAIN_DATA__CACHE_DIR=str(folder / "cache"),
                RETRAIN_DATA__BACKOFF_BASE_S="0.01",
                RETRAIN_DATA__MAX_RETRIES="3",
                RETRAIN_DATA__REQUEST_TIMEOUT_S="20",
            )
            middle = day_path(fake.pair, now - pd.Timedelta(days=15))
            fake.inject(*faults, path=middle)
            report = matrix.launcher.run(env)
            served = fake.pending_faults() == 0
            cache_after_fault = (folder / "cache").exists() and any((folder / "cache").glob("*.parquet"))
            state = inspect_store(models)
            trained_exact = False
            if report["event"] == "outcome":
                candles = pd.read_parquet(Path(report["outcome"]["run_dir"]) / "candles.parquet")
                trained_exact = _equals_recording(candles, recording)
            again = matrix.launcher.run(env)
            next_ok = again["event"] == "outcome" and again["outcome"]["status"] in COMPLETED
            if refused:
                message = report.get("message", "")
                held = report["event"] == "error" and not cache_after_fault and next_ok
                detail = f"{report.get('type')}: {message[:300]}"
            else:
                held = trained_exact and next_ok
                detail = f"trained on exactly the exchange's candles: {trained_exact}"
        return CaseRun(
            promoted=state.production is not None,
            consistent=state.consistent,
            next_ok=next_ok,
            held=held and served and state.consistent,
            note=f"{note}; {detail}",
        )

    return run


def _sentence(report: dict[str, Any]) -> str:
    """A child's end in a few words: the decision and the version it replaced, or the error."""
    if report["event"] == "outcome":
        outcome = report["outcome"]
        return f"{outcome['status']} (production was {outcome['previous_version']})"
    return f"{report['type']}: {report['message'][:200]}"


def _equals_recording(candles: pd.DataFrame, recording: pd.DataFrame) -> bool:
    """The run's validated candles are exactly the recorded ones for their span (no twin, no reorder)."""
    frame = candles.reset_index()
    stamps = recording["timestamp"]
    expected = recording[(stamps >= frame["timestamp"].iloc[0]) & (stamps <= frame["timestamp"].iloc[-1])]
    columns = list(CANDLE_COLUMNS)
    return len(frame) == len(expected) and (
        frame[columns].reset_index(drop=True).equals(expected[columns].reset_index(drop=True))
    )


# -- two retrains at once --------------------------------------------------------------------------------


def concurrent_retrains(matrix: Matrix) -> CaseRun:
    """Both fetch, train, evaluate and pass the gate against the same empty store; released together."""
    models = matrix.fresh_dir("concurrent") / "models"
    env = small_env(models)
    pids = [matrix.launcher.start(env, pause_after="gate_stage") for _ in range(2)]
    for pid in pids:
        matrix.launcher.wait_for(pid, "paused", stage="gate_stage")
    for pid in pids:
        matrix.launcher.resume(pid)
    reports = [matrix.launcher.result(pid) for pid in pids]
    for pid in pids:
        matrix.launcher.reap(pid)
    state = inspect_store(models)
    promoted = [r for r in reports if r["event"] == "outcome" and r["outcome"]["status"] == "promoted"]
    refused = [r for r in reports if r["event"] == "error" and r["type"] == "ProductionChangedError"]
    ok, _ = matrix.next_run_ok(models)
    return CaseRun(
        promoted=state.production is not None,
        consistent=state.consistent,
        next_ok=ok,
        held=len(promoted) == 1 and len(refused) == 1 and state.promotions == 1 and state.consistent and ok,
        note=f"{len(promoted)} promoted, {len(refused)} refused: "
        + "; ".join(r.get("message", "")[:160] for r in refused),
    )


# -- the matrix ------------------------------------------------------------------------------------------


def cases(groups: set[str]) -> list[Case]:
    kill_held = "production unchanged, store verifies and loads, lock free, next run completes"
    found: list[Case] = []
    found += [
        Case(f"SIGKILL after {stage}", kill_held, kill_after(stage), "kill")
        for stage in STAGES[:-1]
        if stage != "publish_stage"
    ]
    found += [
        Case(
            "SIGKILL after publish_stage",
            "production is the pair the run published, store verifies and loads, lock free, next run completes",
            kill_after("publish_stage"),
            "kill",
        ),
        Case("SIGKILL in the middle of training", kill_held, kill_mid_training, "kill"),
    ]
    found += [
        Case(
            f"disk full before {stage}",
            "run fails naming the full path (DiskFullError / PromotionError), "
            + (
                "production is the pair the run published before it"
                if stage == "report_stage"
                else "production unchanged"
            )
            + ", next run completes once space is freed",
            disk_full_before(stage),
            "disk",
        )
        for stage in STAGES
    ]
    exchange_refused = (
        "the run fails at fetch with an error naming the page, nothing cached or trained, next run completes"
    )
    exchange_fixed = "the run trains on exactly the exchange's candles, next run completes"
    found += [
        Case(
            "exchange: HTTP 500 twice mid-pagination",
            exchange_fixed,
            _exchange_case([Fault.HTTP_500] * 2, refused=False, note="retried"),
            "exchange",
        ),
        Case(
            "exchange: HTTP 500 through every retry mid-pagination",
            exchange_refused,
            _exchange_case([Fault.HTTP_500] * 4, refused=True, note="refused"),
            "exchange",
        ),
        Case(
            "exchange: a page in reverse order",
            exchange_fixed,
            _exchange_case([Fault.REVERSED], refused=False, note="sorted"),
            "exchange",
        ),
        Case(
            "exchange: every candle of a page twice",
            exchange_fixed,
            _exchange_case([Fault.DUPLICATED], refused=False, note="exact repeats dropped"),
            "exchange",
        ),
        Case(
            "exchange: two different candles for one time, once",
            exchange_fixed,
            _exchange_case([Fault.CONFLICTING], refused=False, note="page fetched again"),
            "exchange",
        ),
        Case(
            "exchange: two different candles for one time, every retry",
            exchange_refused,
            _exchange_case([Fault.CONFLICTING] * 4, refused=True, note="refused"),
            "exchange",
        ),
    ]
    found.append(
        Case(
            "two retrains at once, one empty store",
            "exactly one promotes, the other is refused (ProductionChangedError), store consistent",
            concurrent_retrains,
            "concurrent",
        )
    )
    return [case for case in found if case.group in groups]


def table(matrix_cases: list[Case]) -> str:
    lines = [
        "| case | runs | promoted | store consistent | next run ok | must hold | held |",
        "|---|---|---|---|---|---|---|",
    ]
    for case in matrix_cases:
        results = case.results
        n = len(results)
        lines.append(
            f"| {case.name} | {n} | {sum(r.promoted for r in results)} | "
            f"{sum(r.consistent for r in results)}/{n} | {sum(r.next_ok for r in results)}/{n} | "
            f"{case.must_hold} | {sum(r.held for r in results)}/{n} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--cases", nargs="+", default=["kill", "disk", "exchange", "concurrent", "prefect"])
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()
    groups = set(args.cases)
    started = time.perf_counter()
    selected = cases(groups)
    notes: list[str] = []
    with tempfile.TemporaryDirectory(prefix="retrain-faults-") as scratch:
        with Launcher(Path(scratch), env=_clean_env()) as launcher:
            matrix = Matrix(launcher, Path(scratch))
            for case in selected:
                for _ in range(args.runs):
                    assert case.run is not None
                    result = case.run(matrix)
                    case.results.append(result)
                    print(json.dumps({"case": case.name, **result.__dict__}), flush=True)
                notes.append(f"- {case.name}: {case.results[-1].note}")
        if "prefect" in groups:
            selected.append(_prefect_case(Path(scratch), args.runs))
            notes.append(f"- {selected[-1].name}: {selected[-1].results[-1].note}")
    body = "\n".join(
        [
            f"Each retrain: demo source (or the fake exchange replaying {RECORDING}), 30 days, lightgbm, "
            "1 trial, into a store holding one production model (empty for the exchange and "
            "concurrency cases). A kill inside a promotion: tests/test_store_crash.py. "
            f"Wall time {time.perf_counter() - started:.0f} s.",
            "",
            table(selected),
            "",
            "Last run of each case:",
            "",
            *notes,
        ]
    )
    publish(args.out, "Fault matrix", "bench/fault_matrix.py", body)
    if not all(r.held for case in selected for r in case.results):
        raise SystemExit("a fault case did not hold (see the table)")


def _prefect_case(scratch: Path, runs: int) -> Case:
    """The Prefect server stopped during training (bench/fault_prefect.py), as a matrix row."""
    from fault_prefect import MUST_HOLD, NAME, held, prefect_server_stopped

    case = Case(NAME, MUST_HOLD, None, "prefect")
    for result in prefect_server_stopped(scratch, runs):
        case.results.append(
            CaseRun(
                promoted=result.production is not None,
                consistent=result.consistent,
                next_ok=result.next_returncode == 0,
                held=held(result, None),
                note=(
                    f"stopped during {result.stopped_during}; exit {result.returncode}: "
                    f"`{result.failure_line}`; after the server restart the flow run shows "
                    f"`{result.flow_run_state}`; next run exit {result.next_returncode} ({result.next_status})"
                ),
            )
        )
    return case


def _clean_env() -> dict[str, str]:
    """This process's environment without RETRAIN_* (each case sets its own)."""
    return {k: v for k, v in os.environ.items() if not k.startswith("RETRAIN_")}


if __name__ == "__main__":
    main()
