"""bench/fault_matrix.py runs end to end on its cheapest case and writes its RESULTS.md section."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
TIMEOUT_S = 300


def test_fault_matrix_bench_writes_the_table_with_each_column(tmp_path: Path) -> None:
    out = tmp_path / "RESULTS.md"
    env = {key: value for key, value in os.environ.items() if not key.startswith("RETRAIN_")}
    result = subprocess.run(
        [sys.executable, "bench/fault_matrix.py", "--runs", "1", "--cases", "concurrent", "--out", str(out)],
        cwd=PROJECT_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
    )

    assert result.returncode == 0, result.stderr[-3000:]
    text = out.read_text()
    assert "## Fault matrix" in text and "bench/fault_matrix.py --runs 1 --cases concurrent" in text
    assert "| case | runs | promoted | store consistent | next run ok | must hold | held |" in text
    assert "| two retrains at once, one empty store | 1 | 1 | 1/1 | 1/1 |" in text
