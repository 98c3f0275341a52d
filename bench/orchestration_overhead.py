"""Time Prefect adds to a retrain: the flow against a running Prefect server versus the same stages
called directly (`retrain.pipeline.run_pipeline`).

Both variants do identical work: the same small-budget retrain, on the same demo candles (written once
to a Parquet file, so both read the same rows), with the same seed, each into a fresh temporary model
store as a dry run. They alternate (flow first, then direct first, ...) so that a drift in the
machine's load hits both alike. Every run is a fresh Python process, as a worker starts one per flow
run: the process time includes the interpreter start and the imports (Prefect's for the flow only);
the call time is the flow or pipeline call alone, timed inside that process.

Run: .venv/bin/python bench/orchestration_overhead.py [--trials 1] [--days 30] [--rounds 3]
     [--out BENCHMARKS.md]
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from bench_report import command_line, machine_summary, median_and_spread, write_section

from retrain.data.demo import DemoSource
from retrain.errors import BenchmarkError
from retrain.pipeline import run_pipeline
from retrain.settings import load_settings

VARIANTS = ("flow", "direct")
LABELS = {"flow": "Prefect flow (running server)", "direct": "direct `run_pipeline`"}
TARGET_OVERHEAD = 0.10
SERVER_START_TIMEOUT_S = 120.0
SERVER_STOP_TIMEOUT_S = 30.0
OUTPUT_TAIL = 3000


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def quiet_prefect_env(home: Path) -> dict[str, str]:
    """This process's environment with a private Prefect home and no telemetry."""
    env = {key: value for key, value in os.environ.items() if key != "PREFECT_API_URL"}
    return env | {
        "PREFECT_HOME": str(home),
        "DO_NOT_TRACK": "1",
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    }


def _wait_healthy(server: subprocess.Popen[bytes], api_url: str, log: Path) -> None:
    deadline = time.monotonic() + SERVER_START_TIMEOUT_S
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise BenchmarkError(
                f"the Prefect server exited with code {server.returncode} before it was healthy; "
                f"its output:\n{log.read_text()[-OUTPUT_TAIL:]}"
            )
        try:
            with urllib.request.urlopen(f"{api_url}/health", timeout=2) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(0.5)
    raise BenchmarkError(
        f"the Prefect server at {api_url} was not healthy after {SERVER_START_TIMEOUT_S:.0f} s; "
        f"its output:\n{log.read_text()[-OUTPUT_TAIL:]}"
    )


@contextmanager
def prefect_server(home: Path) -> Iterator[str]:
    """A `prefect server start` on a free local port, in its own process group; yields its API URL and
    always stops the whole group (the server and anything it started)."""
    port = free_port()
    log = home / "server.log"
    with log.open("wb") as output:
        server = subprocess.Popen(
            [sys.executable, "-m", "prefect", "server", "start", "--host", "127.0.0.1", "--port", str(port)],
            env=quiet_prefect_env(home) | {"PREFECT_UI_ENABLED": "false"},
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        api_url = f"http://127.0.0.1:{port}/api"
        _wait_healthy(server, api_url, log)
        yield api_url
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(timeout=SERVER_STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait()


def run_variant(variant: str, candles: Path, days: int, trials: int, models_dir: Path) -> float:
    """One dry-run retrain in this process; seconds of the call alone (imports excluded)."""
    if variant == "flow":
        from flows.retrain import retrain  # Prefect is imported by the flow variant only

        started = time.perf_counter()
        state = retrain(
            source="csv",
            data_path=str(candles),
            days=days,
            trials=trials,
            models_dir=str(models_dir),
            dry_run=True,
            return_state=True,
        )
        seconds = time.perf_counter() - started
        if not state.is_completed():
            raise BenchmarkError(f"the flow run ended {state.name}: {state.message}")
        return seconds
    settings = load_settings(
        data={"source": "csv", "csv_path": str(candles), "days": days},
        tuning={"n_trials": trials},
        paths={"models_dir": str(models_dir)},
    )
    started = time.perf_counter()
    run_pipeline(settings, dry_run=True)
    return time.perf_counter() - started


def timed_child(
    variant: str, candles: Path, args: argparse.Namespace, env: dict[str, str]
) -> dict[str, float]:
    """`run_variant` in a fresh interpreter with a fresh model store: call and whole-process seconds."""
    with tempfile.TemporaryDirectory(prefix=f"retrain-overhead-{variant}-") as models_dir:
        command = [sys.executable, __file__, "--child", variant, "--candles", str(candles)]
        command += ["--days", str(args.days), "--trials", str(args.trials), "--models-dir", models_dir]
        started = time.perf_counter()
        child = subprocess.run(command, env=env, capture_output=True, text=True)
        process_s = time.perf_counter() - started
    if child.returncode != 0:
        raise BenchmarkError(
            f"the {variant} run exited with code {child.returncode}; its stderr:\n{child.stderr[-OUTPUT_TAIL:]}"
        )
    return {"call": json.loads(child.stdout.splitlines()[-1])["seconds"], "process": process_s}


def measure(args: argparse.Namespace, scratch: Path) -> dict[str, list[dict[str, float]]]:
    """Both variants `args.rounds` times, alternating which goes first, against one Prefect server."""
    candles = scratch / "demo_candles.parquet"
    DemoSource(seed=load_settings().data.demo_seed).fetch(args.days).to_parquet(candles)
    home = scratch / "prefect-home"
    home.mkdir()
    results: dict[str, list[dict[str, float]]] = {variant: [] for variant in VARIANTS}
    with prefect_server(home) as api_url:
        env = quiet_prefect_env(home) | {"PREFECT_API_URL": api_url}
        for round_ in range(args.rounds):
            order = VARIANTS if round_ % 2 == 0 else VARIANTS[::-1]
            for variant in order:
                results[variant].append(timed_child(variant, candles, args, env))
                print(f"round {round_ + 1}: {variant} {results[variant][-1]}", flush=True)
    return results


def _paired(results: dict[str, list[dict[str, float]]], kind: str, relative: bool) -> list[float]:
    """Per round: flow minus direct, in seconds or as a share of the direct run."""
    pairs = zip(results["flow"], results["direct"], strict=True)
    return [f[kind] / d[kind] - 1 if relative else f[kind] - d[kind] for f, d in pairs]


def _percent_spread(ratios: list[float]) -> str:
    median = statistics.median(ratios)
    verdict = "met" if median <= TARGET_OVERHEAD else "**missed**"
    return f"{median:+.1%} ({min(ratios):+.1%}..{max(ratios):+.1%}, {len(ratios)} runs), {verdict}"


def overhead_table(results: dict[str, list[dict[str, float]]]) -> str:
    """Both variants' times, the per-round overhead in seconds and in percent, and the run length at
    which the per-call overhead would fall to the target."""
    lines = [
        "| | call s: median (min..max, runs) | process s: median (min..max, runs) |",
        "|---|---|---|",
    ]
    for variant in VARIANTS:
        cells = [median_and_spread([r[kind] for r in results[variant]]) for kind in ("call", "process")]
        lines.append(f"| {LABELS[variant]} | {' | '.join(cells)} |")
    seconds = [median_and_spread(_paired(results, kind, relative=False)) for kind in ("call", "process")]
    lines.append(f"| overhead per round, s (flow - direct) | {' | '.join(seconds)} |")
    percent = [_percent_spread(_paired(results, kind, relative=True)) for kind in ("call", "process")]
    lines.append(
        f"| overhead per round, % of direct (target <= {TARGET_OVERHEAD:.0%}) | {' | '.join(percent)} |"
    )
    fixed = statistics.median(_paired(results, "call", relative=False))
    return (
        "\n".join(lines)
        + f"\n\nPrefect's work per run (the flow run, its task runs and their API calls) is the same "
        f"whatever the days and trials. If the overhead stays at the median {fixed:.1f} s per call, a run "
        f"whose direct call takes {max(fixed, 0) / TARGET_OVERHEAD:.0f} s or more stays within "
        f"{TARGET_OVERHEAD:.0%}.\n"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=1, help="Optuna trials per model")
    parser.add_argument("--days", type=int, default=30, help="days of demo candles")
    parser.add_argument("--rounds", type=int, default=3, help="runs of each variant, alternating")
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parents[1] / "BENCHMARKS.md")
    parser.add_argument("--child", choices=VARIANTS, help=argparse.SUPPRESS)
    parser.add_argument("--candles", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--models-dir", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child is not None:
        seconds = run_variant(args.child, args.candles, args.days, args.trials, args.models_dir)
        print(json.dumps({"seconds": seconds}))
        return
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(128 + signal.SIGTERM))  # unwind: stop the server
    load_average = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="retrain-overhead-") as scratch:
        results = measure(args, Path(scratch))
    body = overhead_table(results)
    print(body)
    write_section(
        args.out,
        f"Orchestration overhead ({args.days} days, {args.trials} trials per model, dry run)",
        f"{machine_summary()} Load average at start: {load_average:.1f}.\n\n"
        f"Command: `{command_line('bench/orchestration_overhead.py')}`\n\n{body}\n",
    )


if __name__ == "__main__":
    main()
