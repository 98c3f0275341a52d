"""bench/dask_workers.py runs end to end on a tiny study and writes its section with every figure."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
NUMBER = r"\d[\d.]*"


def test_dask_workers_bench_times_one_study_on_one_and_two_workers_and_prints_the_cost_model(
    tmp_path: Path,
) -> None:
    out = tmp_path / "BENCHMARKS.md"
    result = subprocess.run(
        [sys.executable, "bench/dask_workers.py", "--trials", "2", "--days", "30", "--out", str(out)],
        cwd=PROJECT_ROOT,
        env={**os.environ, "RETRAIN_SPLIT__N_SPLITS": "2"},
        capture_output=True,
        text=True,
        timeout=400,
    )

    assert result.returncode == 0, result.stderr[-3000:]
    text = out.read_text()
    assert "## Dask workers: one study on 1 and 2 workers, cost for N hosts" in text
    for workers in (1, 2):
        assert re.search(
            rf"^\| {workers} \| {NUMBER} \({NUMBER}\.\.{NUMBER}, 1 runs\) \| {NUMBER} \|$", text, re.M
        )
    for hosts in (1, 2, 4, 8, 16):
        assert re.search(rf"^\| {hosts} \| {NUMBER} \| {NUMBER}x \| {NUMBER} \|$", text, re.M)
    assert "Serial share fitted" in result.stdout
