"""The Prefect UI as an operator sees it, in a real browser (headless Chromium): a run's report artifact
shows the metrics table and every plot, and the run page shows the core library's log lines."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from prefect_stack import PROJECT_ROOT, _free_port, _start, _stop, _subprocess_env, _wait_for_health

sys.path.insert(0, str(PROJECT_ROOT / "scripts"))
from ui_screenshots import CHROMEDRIVER, CHROMIUM, headless_chromium, open_report, open_run  # noqa: E402

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def ui(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, dict[str, str]]]:
    """A `prefect server` with its UI on 127.0.0.1, and the environment that points runs at it."""
    missing = [path for path in (CHROMIUM, CHROMEDRIVER) if not os.path.exists(path)]
    if missing:
        pytest.fail(f"{missing} not installed: apt-get install chromium chromium-driver (.ci/run does)")
    root = tmp_path_factory.mktemp("ui")
    port = _free_port()
    env = _subprocess_env(root / "prefect-home", f"http://127.0.0.1:{port}/api")
    server = _start("prefect-server", {**env, "PORT": str(port)}, root / "server.log")
    try:
        _wait_for_health(env["PREFECT_API_URL"], server, root / "server.log")
        yield f"http://127.0.0.1:{port}", env
    finally:
        _stop(server)


def test_report_artifact_shows_the_metrics_table_and_every_plot_in_a_browser(
    ui: tuple[str, dict[str, str]], tmp_path: Path
) -> None:
    url, env = ui
    run = subprocess.run(
        [sys.executable, "-m", "retrain.cli", "run", "--source", "demo", "--days", "40", "--trials", "1"]
        + ["--models-dir", str(tmp_path / "models")],
        cwd=PROJECT_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    query = {"artifacts": {"key": {"any_": ["retrain-report"]}}, "sort": "CREATED_DESC", "limit": 1}
    [artifact] = httpx.post(f"{url}/api/artifacts/filter", json=query, timeout=30).json()

    with headless_chromium() as driver:
        view = open_report(driver, url, artifact["id"], tmp_path / "report.png")
        page = open_run(driver, url, artifact["flow_run_id"], tmp_path / "run.png", expect="dataset: ")

    assert view.tables >= 3, "metrics, gate and durations tables"
    assert "Holdout metrics" in view.text and "Promotion gate" in view.text
    assert view.images == 4 and view.loaded_images == 4, f"{view.loaded_images} of {view.images} plots loaded"
    assert (tmp_path / "report.png").stat().st_size > 10_000
    logs = httpx.post(
        f"{url}/api/logs/filter",
        json={"logs": {"flow_run_id": {"any_": [artifact["flow_run_id"]]}}},
        timeout=30,
    ).json()
    core = [log["message"] for log in logs if log["name"].startswith("retrain.")]
    assert any(message.startswith("dataset: ") for message in core), core
    assert any(message.startswith("trained ") for message in core), core
    assert "dataset: " in page, "the core library's log lines show on the run page"
