"""What the production model costs the live bot: file size, load-and-verify time, memory, prediction latency.

The bot loads `production/` at start-up and after every promotion, then asks for one prediction per
closed 15-minute candle. Each load is timed in a fresh Python process, after its imports, so neither
already-unpickled objects nor a warm allocator flatter it; the RSS growth is measured around the same
call. Latencies are timed here on real-looking rows: features built by the production feature code
from demo candles, one single-row DataFrame per call, as the bot passes them.

`--train-demo` first trains a model with the production configuration (180 days, every member, the
configured folds) on demo candles into a temporary store; its gate is opened so that a weak demo
model is still promoted: this bench measures the model file, not its skill.

`--models-dir DIR --version V` measures an archived version, e.g. the challenger of
`full_retrain.py --keep-store DIR` whatever the gate decided.

Run: .venv/bin/python bench/model_in_use.py (--models-dir models [--version V] | --train-demo [--trials 5])
     [--calls 1000] [--runs 5] [--out BENCHMARKS.md]
"""

from __future__ import annotations

import argparse
import gc
import json
import logging
import os
import pickle
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import psutil
from bench_report import command_line, machine_summary, median_and_spread, write_section

from retrain.data.loading import load_candles
from retrain.ensemble import ProductionEnsemble
from retrain.errors import BenchmarkError, FeatureMismatchError
from retrain.features import FeatureManager
from retrain.members import LightGBMMember, RandomForestMember, XGBoostMember
from retrain.pipeline import run_pipeline
from retrain.settings import DataSettings, load_settings
from retrain.store import MODEL_FILE, Decision, ModelMetadata, load_production, promote
from retrain.store.layout import StoreLayout
from retrain.store.loading import read_verified_pair

SECTION = "Model in use: size, load, memory, latency"
MB = 1e6
BATCH_ROWS = 1000
WARM_UP_CALLS = 20
SAMPLE_DAYS = 30
"""Demo candles the sample rows are built from: enough for a 1,000-row batch after the warm-up."""
OPEN_GATE = {
    "min_macro_f1": 0.0,
    "min_margin_over_baselines": -1.0,
    "max_regression_vs_champion": 1.0,
    "min_class_support": 0,
    "min_economic_margin": -1.0,
}
TARGET_FILE_MB = 10.0
TARGET_LOAD_MS = 300.0
TARGET_RSS_MB = 150.0
TARGET_SINGLE_MS = 5.0

Predict = Callable[[Any], Any]


def train_demo_model(models_dir: Path, trials: int | None, days: int) -> None:
    """Train and promote one model on demo candles with the production configuration into `models_dir`."""
    overrides: dict[str, dict[str, Any]] = {
        "data": {"source": "demo", "days": days},
        "paths": {"models_dir": str(models_dir)},
        "gate": OPEN_GATE,
    }
    if trials is not None:
        overrides["tuning"] = {"n_trials": trials}
    publication = run_pipeline(load_settings(**overrides))
    if publication.status != "promoted":
        raise BenchmarkError(
            f"the demo model was {publication.status}, not promoted, although its gate was opened; "
            f"see the run report under {models_dir / 'runs'}"
        )


@contextmanager
def garbage_collection_time() -> Iterator[list[float]]:
    """Seconds spent in each garbage collection while the block runs (a full collection in a process
    holding pandas, scikit-learn and the boosters traverses every object they made)."""
    pauses: list[float] = []
    started: list[float] = []

    def on_collection(phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            started.append(time.perf_counter())
        elif started:
            pauses.append(time.perf_counter() - started.pop())

    gc.callbacks.append(on_collection)
    try:
        yield pauses
    finally:
        gc.callbacks.remove(on_collection)


def probe_load(models_dir: Path) -> dict[str, float]:
    """One `load_production` in this process (imports already done): seconds, of which garbage
    collection, and RSS growth in bytes."""
    process = psutil.Process()
    rss_before = process.memory_info().rss
    with garbage_collection_time() as pauses:
        started = time.perf_counter()
        load_production(models_dir)
        seconds = time.perf_counter() - started
    return {
        "seconds": seconds,
        "gc_seconds": sum(pauses),
        "rss_growth": process.memory_info().rss - rss_before,
    }


def measure_loads(models_dir: Path, runs: int) -> list[dict[str, float]]:
    """`probe_load` in `runs` fresh interpreters, one after another."""
    results = []
    for _ in range(runs):
        child = subprocess.run(
            [sys.executable, __file__, "--probe-load", str(models_dir)], capture_output=True, text=True
        )
        if child.returncode != 0:
            raise BenchmarkError(
                f"the load probe exited with code {child.returncode}; its stderr:\n{child.stderr[-3000:]}"
            )
        results.append(json.loads(child.stdout.splitlines()[-1]))
    return results


def sample_rows(feature_names: list[str]) -> pd.DataFrame:
    """Feature rows as the bot builds them (demo candles through the production feature code)."""
    features = FeatureManager()
    if features.feature_names != feature_names:
        raise FeatureMismatchError(
            f"the model needs the features {feature_names}, but this code builds {features.feature_names}: "
            "benchmark it with the code version it was trained with"
        )
    candles = load_candles(DataSettings(source="demo", days=SAMPLE_DAYS)).candles
    return features.build(candles)


def call_latencies(predict: Predict, inputs: list[Any]) -> np.ndarray:
    """Seconds per call, one call per input, after a few untimed warm-up calls."""
    for item in inputs[:WARM_UP_CALLS]:
        predict(item)
    seconds = np.empty(len(inputs))
    for i, item in enumerate(inputs):
        started = time.perf_counter()
        predict(item)
        seconds[i] = time.perf_counter() - started
    return seconds


@dataclass(frozen=True)
class Latency:
    """Milliseconds, one value per run: single-row median and p99 over the calls, and the batch call."""

    single_median: list[float]
    single_p99: list[float]
    batch: list[float]


def measure_latency(predict: Predict, singles: list[Any], batch: Any, runs: int) -> Latency:
    median, p99, batch_ms = [], [], []
    for _ in range(runs):
        ms = call_latencies(predict, singles) * 1000
        median.append(float(np.median(ms)))
        p99.append(float(np.percentile(ms, 99)))
        batch_ms.append(float(call_latencies(predict, [batch])[0] * 1000))
    return Latency(median, p99, batch_ms)


def member_shape(member: object) -> str:
    if isinstance(member, LightGBMMember | XGBoostMember):
        return f"{member.best_iteration} rounds"
    if isinstance(member, RandomForestMember):
        params = member.forest.get_params()
        return f"{params['n_estimators']} trees, max_depth {params['max_depth']}"
    return type(member).__name__


def verdict(value: float, target: float) -> str:
    return "yes" if value <= target else "**no**"


def figures_table(file_mb: float, loads: list[dict[str, float]], ensemble: Latency, calls: int) -> str:
    load_ms = [load["seconds"] * 1000 for load in loads]
    gc_ms = [load["gc_seconds"] * 1000 for load in loads]
    rss_mb = [load["rss_growth"] / MB for load in loads]
    rows = [
        ("model file (MB)", f"{file_mb:.3g}", file_mb, TARGET_FILE_MB),
        (
            "load + verify in a fresh process (ms)",
            median_and_spread(load_ms),
            np.median(load_ms),
            TARGET_LOAD_MS,
        ),
        ("of which garbage collection (ms)", median_and_spread(gc_ms), None, None),
        ("RSS growth after loading (MB)", median_and_spread(rss_mb), np.median(rss_mb), TARGET_RSS_MB),
        (
            f"single-candle predict_proba, median of {calls} calls (ms)",
            median_and_spread(ensemble.single_median),
            np.median(ensemble.single_median),
            TARGET_SINGLE_MS,
        ),
        (
            f"single-candle predict_proba, p99 of {calls} calls (ms)",
            median_and_spread(ensemble.single_p99),
            None,
            None,
        ),
        (f"{BATCH_ROWS:,}-row batch predict_proba (ms)", median_and_spread(ensemble.batch), None, None),
    ]
    lines = ["| figure | measured: median (min..max, runs) | target | met |", "|---|---|---|---|"]
    for name, measured, value, target in rows:
        checked = ("-", "-") if target is None else (f"<= {target:g}", verdict(float(value), target))
        lines.append(f"| {name} | {measured} | {checked[0]} | {checked[1]} |")
    return "\n".join(lines)


def unpickle_ms(blob: bytes, runs: int) -> float:
    """Median milliseconds to unpickle `blob` (in this process: the libraries are warm)."""
    seconds = []
    for _ in range(runs):
        started = time.perf_counter()
        pickle.loads(blob)
        seconds.append(time.perf_counter() - started)
    return float(np.median(seconds)) * 1000


def members_table(
    model: ProductionEnsemble, singles: list[pd.DataFrame], batch: pd.DataFrame, runs: int
) -> str:
    """Where the time goes: the input checks, then each member on the checked array, and each member's
    share of the model file and of its unpickling."""
    arrays = [model.model_input(frame) for frame in singles]
    batch_array = model.model_input(batch)
    lines = [
        "| part | weight | shape | pickled MB | unpickle ms | single-row median ms | single-row p99 ms | "
        f"{BATCH_ROWS:,}-row batch ms |",
        "|---|---|---|---|---|---|---|---|",
    ]
    checks = measure_latency(model.model_input, singles, batch, runs)
    lines.append(_member_line(["input checks (model_input)", "-", "-", "-", "-"], checks))
    weights = model.weights
    for name, member in model.members.items():
        latency = measure_latency(member.predict_proba, arrays, batch_array, runs)
        blob = pickle.dumps(member, protocol=5)
        weight = f"{weights[name]:.2f}" if weights[name] > 0 else "0 (never consulted)"
        cells = [
            name,
            weight,
            member_shape(member),
            f"{len(blob) / MB:.3g}",
            f"{unpickle_ms(blob, runs):.3g}",
        ]
        lines.append(_member_line(cells, latency))
    return "\n".join(lines)


def _member_line(cells: list[str], latency: Latency) -> str:
    timings = [latency.single_median, latency.single_p99, latency.batch]
    return "| " + " | ".join([*cells, *(f"{np.median(values):.3g}" for values in timings)]) + " |"


def describe_model(metadata: ModelMetadata) -> str:
    info = metadata.training_info
    source = info.data_source.get("kind", "unknown")
    return (
        f"Model: version {metadata.version}, trained on {info.samples_count:,} rows of {source} candles "
        f"({info.data_start:%Y-%m-%d} .. {info.data_end:%Y-%m-%d}), members {list(metadata.model_weights)}."
    )


def copy_version_live(models_dir: Path, version: str, target: Path) -> None:
    """Put a verified copy of an archived version live in the empty store `target`: the load measured is
    then exactly the bot's `load_production`, whether or not the gate promoted that version."""
    metadata, model_bytes = read_verified_pair(StoreLayout(models_dir), version)
    if metadata.decision.status != "promoted":
        reasons = [
            f"put live in a scratch store by bench/model_in_use.py to measure it; the gate said: "
            f"{'; '.join(metadata.decision.reasons)}"
        ]
        metadata = metadata.model_copy(update={"decision": Decision(status="promoted", reasons=reasons)})
    promote(target, model_bytes, metadata, expected_live=None)


def benchmark(models_dir: Path, calls: int, runs: int) -> str:
    """The markdown body of the section: the figures against their targets, then the parts of a call."""
    loaded = load_production(models_dir)
    model: ProductionEnsemble = loaded.model
    rows = sample_rows(model.feature_names)
    file_mb = (models_dir / "production" / MODEL_FILE).stat().st_size / MB
    loads = measure_loads(models_dir, runs)
    singles = [rows.iloc[[i % len(rows)]] for i in range(calls)]
    batch = rows.iloc[:BATCH_ROWS]
    ensemble = measure_latency(model.predict_proba, singles, batch, runs)
    return (
        f"{describe_model(loaded.metadata)}\n\n{figures_table(file_mb, loads, ensemble, calls)}\n\n"
        f"Per part (medians over {runs} runs; members are timed on the already-checked float array, as "
        f"the ensemble calls them):\n\n{members_table(model, singles, batch, runs)}\n"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    which = parser.add_mutually_exclusive_group(required=True)
    which.add_argument("--models-dir", type=Path, help="model store whose production model is measured")
    which.add_argument("--train-demo", action="store_true", help="first train a model on demo candles")
    which.add_argument("--probe-load", type=Path, help=argparse.SUPPRESS)
    parser.add_argument(
        "--version",
        help="with --models-dir: an archived version to measure instead (e.g. a rejected challenger)",
    )
    parser.add_argument("--trials", type=int, default=None, help="with --train-demo: trials per model")
    parser.add_argument("--days", type=int, default=180, help="with --train-demo: days of demo candles")
    parser.add_argument("--calls", type=int, default=1000, help="single-candle calls per run")
    parser.add_argument("--runs", type=int, default=5, help="fresh-process loads and latency runs")
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parents[1] / "BENCHMARKS.md")
    args = parser.parse_args()
    if args.probe_load is not None:
        print(json.dumps(probe_load(args.probe_load)))
        return
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    load_average = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="retrain-model-in-use-") as scratch:
        models_dir = args.models_dir
        if args.version is not None:
            models_dir = Path(scratch)
            copy_version_live(args.models_dir, args.version, models_dir)
        if args.train_demo:
            models_dir = Path(scratch)
            train_demo_model(models_dir, args.trials, args.days)
        body = benchmark(models_dir, args.calls, args.runs)
    print(body)
    write_section(
        args.out,
        SECTION,
        f"{machine_summary()} Load average at start: {load_average:.1f}.\n\n"
        f"Command: `{command_line('bench/model_in_use.py')}`\n\n{body}",
    )


if __name__ == "__main__":
    main()
