"""The bench scripts run end to end on tiny inputs and write their BENCHMARKS.md sections with every figure.

They run as the README tells users to run them (a subprocess from the project root), with budgets far
below the real measurements: these tests check that the scripts work, not the figures' values.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest

PROJECT_ROOT = Path(__file__).resolve().parent.parent
TIMEOUT_S = 240
NUMBER = r"[-+]?\d[\d.,e+-]*"


def run_bench(script: str, *args: str) -> subprocess.CompletedProcess[str]:
    """Run `bench/<script>` on one core; on a timeout it gets SIGTERM, so it can stop what it started."""
    env = {**os.environ, "RETRAIN_TRAINING__CORES": "1"}
    with subprocess.Popen(
        [sys.executable, f"bench/{script}", *args],
        cwd=PROJECT_ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    ) as process:
        try:
            stdout, stderr = process.communicate(timeout=TIMEOUT_S)
        except subprocess.TimeoutExpired:
            process.send_signal(signal.SIGTERM)
            stdout, stderr = process.communicate()
            pytest.fail(f"bench/{script} took over {TIMEOUT_S} s; stderr:\n{stderr[-3000:]}")
    assert process.returncode == 0, f"bench/{script} exited {process.returncode}; stderr:\n{stderr[-3000:]}"
    return subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr)


def section(markdown: Path, title: str) -> str:
    text = markdown.read_text()
    start = text.index(f"## {title}\n")
    following = text.find("\n## ", start + 1)
    return text[start : following if following >= 0 else len(text)]


def table_row(text: str, label: str) -> list[str]:
    """The cells after `label` of the markdown table row that starts with it."""
    match = re.search(rf"^\| {re.escape(label)} \|(.*)\|$", text, re.M)
    assert match is not None, f"no table row {label!r} in:\n{text}"
    return [cell.strip() for cell in match.group(1).split("|")]


def test_model_in_use_reports_size_load_memory_and_latency_against_targets(tmp_path: Path) -> None:
    out = tmp_path / "BENCHMARKS.md"
    run_bench(
        "model_in_use.py",
        *("--train-demo", "--trials", "1", "--days", "30", "--calls", "20", "--runs", "2"),
        *("--out", str(out)),
    )
    text = section(out, "Model in use: size, load, memory, latency")
    assert "Machine:" in text and "Command: `RETRAIN_TRAINING__CORES=1 .venv/bin/python" in text
    targets = {
        "model file (MB)": "<= 10",
        "load + verify in a fresh process (ms)": "<= 300",
        "RSS growth after loading (MB)": "<= 150",
        "single-candle predict_proba, median of 20 calls (ms)": "<= 5",
    }
    for label, target in targets.items():
        measured, shown_target, met = table_row(text, label)
        assert re.match(NUMBER, measured) and shown_target == target and met in {"yes", "**no**"}
    for label in (
        "of which garbage collection (ms)",
        "single-candle predict_proba, p99 of 20 calls (ms)",
        "1,000-row batch predict_proba (ms)",
    ):
        assert re.match(rf"{NUMBER} \({NUMBER}\.\.{NUMBER}, 2 runs\)", table_row(text, label)[0])
    for part in ("input checks (model_input)", "lightgbm", "xgboost", "random_forest"):
        single_median, single_p99, batch = table_row(text, part)[-3:]
        assert all(float(value) > 0 for value in (single_median, single_p99, batch))


@pytest.mark.e2e
def test_orchestration_overhead_compares_the_flow_with_the_direct_pipeline(tmp_path: Path) -> None:
    out = tmp_path / "BENCHMARKS.md"
    run_bench(
        "orchestration_overhead.py", *("--trials", "1", "--days", "20", "--rounds", "1", "--out", str(out))
    )
    text = section(out, "Orchestration overhead (20 days, 1 trials per model, dry run)")
    assert "Machine:" in text and "bench/orchestration_overhead.py --trials 1 --days 20" in text
    for label in ("Prefect flow (running server)", "direct `run_pipeline`"):
        call, process = table_row(text, label)
        assert float(call.split()[0]) > 0 and float(process.split()[0]) > float(call.split()[0])
    assert len(table_row(text, "overhead per round, s (flow - direct)")) == 2
    for cell in table_row(text, "overhead per round, % of direct (target <= 10%)"):
        assert re.match(rf"{NUMBER}% \(.*, 1 runs\), (met|\*\*missed\*\*)$", cell)


def test_full_retrain_reports_every_stage_and_keeps_a_store_model_in_use_can_measure(tmp_path: Path) -> None:
    out, store = tmp_path / "BENCHMARKS.md", tmp_path / "store"
    run_bench(
        "full_retrain.py",
        *("--runs", "1", "--days", "30", "--trials", "1", "--keep-store", str(store), "--out", str(out)),
    )
    text = section(out, "Full retrain (30 days, 1 trials per model)")
    assert "Machine:" in text and "bench/full_retrain.py --runs 1 --days 30 --trials 1" in text
    wall, target, met = table_row(text, "wall time, whole retrain (s)")
    assert re.match(rf"{NUMBER} \({NUMBER}\.\.{NUMBER}, 1 runs\)", wall) and target == "<= 600"
    assert table_row(text, "CPU utilisation while tuning (%)")[1] == ">= 85%"
    for stage in ("fetch_validate", "features_labels", "training", "ensemble", "evaluation", "promotion"):
        assert float(table_row(text, stage)[0].split()[0]) > 0, f"stage {stage} was not timed"
    for model in ("lightgbm", "xgboost", "random_forest"):
        assert table_row(text, model)[0].startswith("1 (")

    # the kept store's challenger, promoted or not, is what model_in_use.py then measures
    (version,) = [path.name for path in (store / "archive").iterdir()]
    run_bench(
        "model_in_use.py",
        *("--models-dir", str(store), "--version", version),
        *("--calls", "20", "--runs", "1", "--out", str(out)),
    )
    assert f"Model: version {version}" in section(out, "Model in use: size, load, memory, latency")


def test_sequential_reference_reports_the_speed_ratio_and_both_holdout_scores(tmp_path: Path) -> None:
    out = tmp_path / "BENCHMARKS.md"
    args = ("--rounds", "1", "--trials", "2", "--days", "30", "--pruner", "successive_halving")
    run_bench("sequential_reference.py", *args, "--out", str(out))
    text = section(out, "Against the sequential reference (30 days, 2 trials, successive halving pruner)")
    assert "Normal pruner: successive_halving." in text
    assert "studies one after another, tuning.pruner=none, fold datasets rebuilt in every trial" in text
    normal, sequential = table_row(text, "holdout macro-F1, ensemble")
    assert 0 <= float(normal) <= 1 and 0 <= float(sequential) <= 1
    assert re.search(rf"Speed ratio \(reference wall / normal wall, per round\): {NUMBER} \(", text)


def test_scale_reports_cost_per_10k_candles_for_each_length(tmp_path: Path) -> None:
    out = tmp_path / "BENCHMARKS.md"
    run_bench("scale.py", *("--days", "30", "45", "--trials", "1", "--runs", "1", "--out", str(out)))
    text = section(out, "Scale (30, 45 days, 1 trials)")
    assert table_row(text, "candles")[:2] == [str(30 * 96), str(45 * 96)]
    for label in ("data (fetch + validate)", "features + labels", "training"):
        cells = table_row(text, f"{label}, s per 10k candles")
        assert all(float(cell.split()[0]) > 0 for cell in cells[:2]) and cells[3] in {"yes", "**no**"}


def test_pruner_replay_records_unpruned_studies_and_ranks_the_configured_pruner(tmp_path: Path) -> None:
    out, studies = tmp_path / "BENCHMARKS.md", tmp_path / "studies"
    args = (
        "--windows",
        "latest",
        "--days",
        "20",
        "--trials",
        "6",
        "--studies",
        str(studies),
        "--out",
        str(out),
    )
    run_bench("pruner_replay.py", *args)
    assert [db.name for db in studies.iterdir()] == ["latest-20d-6t.db"]
    text = section(out, "Pruner replay (latest; 20 days, 6 trials)")
    ratio, regret, kept, _ = table_row(text, "configured: top 50% from fold 2, after 5 trials")
    assert float(ratio.split()[0]) >= 1.0 and re.match(rf"{NUMBER} / {NUMBER}$", regret)
    assert kept.endswith("of 3"), "one study per model"
    for model in ("lightgbm", "xgboost", "random_forest"):
        work_ratio, _, rank, pruned = table_row(text, f"latest {model}")
        assert float(work_ratio) >= 1.0 and 1 <= int(rank) <= 6 and 0 <= int(pruned) <= 5


def test_pruner_windows_compares_each_pruner_with_the_unpruned_run(tmp_path: Path) -> None:
    out = tmp_path / "BENCHMARKS.md"
    run_bench(
        "pruner_windows.py", *("--windows", "latest", "--days", "20", "--trials", "6", "--out", str(out))
    )
    text = section(out, "Pruners in real runs (latest; 20 days, 6 trials)")
    for pruner in ("percentile", "successive_halving"):
        speedup, cv, holdout = table_row(text, pruner)
        assert re.match(rf"{NUMBER}x \(", speedup) and re.match(rf"{NUMBER} / {NUMBER}$", cv)
        assert re.match(rf"{NUMBER} / {NUMBER}$", holdout)
    _, pruned, cv, holdout = table_row(text, "latest | unpruned")
    assert pruned == "0/0/0" and cv.count("(+0.0000)") == 3 and holdout.endswith("(+0.0000)")


def test_controls_reports_each_scrambled_seed_and_the_demo_outcomes(tmp_path: Path) -> None:
    out = tmp_path / "RESULTS.md"
    run_bench(
        "controls.py", *("--files", "W3", "--seeds", "1", "--trials", "1", "--days", "30", "--out", str(out))
    )
    text = section(out, "Controls: direction-scrambled candles and the demo")
    assert re.search(r"Scrambled copies promoted: \*\*\d of 1\*\*", text)
    for label in ("W3 scrambled, seed 0", "demo, demo_edge 0.0", "demo, default demo_edge"):
        assert table_row(text, label)[0] in {"promote", "reject", "inconclusive"}


def test_backtest_windows_reports_the_policy_against_persistence_and_the_cost_of_a_week(
    tmp_path: Path,
) -> None:
    out = tmp_path / "RESULTS.md"
    args = ("--windows", "W3", "--weeks", "1", "--trials", "1", "--days", "30", "--out", str(out))
    run_bench("backtest_windows.py", *args)
    text = section(out, "Backtest of the weekly policy on the BTC calendar windows")
    assert re.search(r"^\| W3 \(from \d{4}-\d\d-\d\d\) \| 1 \| [01] \|", text, re.M)
    assert re.search(rf"\*\*{NUMBER}x\*\* \(target <= 1.1x", text)


def test_monitor_pass_reports_the_cost_of_a_pass_against_its_target(tmp_path: Path) -> None:
    out = tmp_path / "BENCHMARKS.md"
    run_bench("monitor_pass.py", *("--runs", "1", "--trials", "1", "--days", "30", "--out", str(out)))
    text = section(out, "Monitor pass (7 days since the holdout)")
    assert re.search(rf"^\| one pass, wall s \| {NUMBER} \(", text, re.M)
    assert table_row(text, "met")[0] in {"yes", "**no**"}


def test_edge_reports_each_candidate_with_its_live_edge_value_and_scrambled_control(tmp_path: Path) -> None:
    out = tmp_path / "RESULTS.md"
    args = ("--candidates", "today", "labels_triple_barrier", "--windows", "W3", "--weeks", "1")
    run_bench("edge.py", *args, *("--trials", "1", "--days", "30", "--models", "lightgbm", "--out", str(out)))
    text = section(
        out,
        "Edge research: candidate configurations on the BTC calendar windows (lightgbm; 1 trials, 1 weeks)",
    )
    assert "`labels_triple_barrier` = {'labels.method': 'triple_barrier'}" in text
    for candidate in ("today", "labels_triple_barrier"):
        cells = table_row(text, f"{candidate} | W3")
        assert re.match(rf"{NUMBER} \[{NUMBER}, {NUMBER}\]$", cells[0]) and cells[6] in {
            "promote",
            "reject",
            "inconclusive",
        }
        assert table_row(text, candidate)[-1] in {
            "out (a scrambled copy passed the gate)",
            "edge in every window",
            "no edge shown",
        }
