"""The `retrain` flow end to end on real candles, on a Prefect test server: a first run promotes with its
report, a second run on data whose recent market is scrambled is rejected by the gate and alerts."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from flow_helpers import (
    RECORDING,
    read_artifacts,
    read_flow_run,
    received_titles,
    scramble_last_days,
    use_alert_channel,
    use_fast_runs,
    write_candle_slice,
)

from flows.retrain import retrain
from retrain.settings import load_settings
from retrain.store import METADATA_FILE, MODEL_FILE, list_versions, load_production_metadata

if TYPE_CHECKING:
    from prefect.client.schemas.objects import State

    from tests.webhook_receiver import WebhookReceiver

pytestmark = [pytest.mark.e2e, pytest.mark.usefixtures("prefect_harness")]

DAYS = 60
LAST_DAY = "2024-04-30"
FIRST_DAY = "2024-03-02"  # the first of the DAYS days ending with LAST_DAY
REPORT_FILES = {
    "report.md",
    "confusion_matrices.png",
    "feature_importance.png",
    "equity_curve.png",
    "optuna_history.png",
}
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@dataclass(frozen=True)
class FirstRun:
    state: State[Any]
    summary: dict[str, Any]
    models_dir: Path
    candles: Path


def run_flow(candles: Path, models_dir: Path) -> State[Any]:
    return retrain(
        source="csv",
        data_path=str(candles),
        days=DAYS,
        trials=1,
        models_dir=str(models_dir),
        return_state=True,
    )


def production_files(models_dir: Path) -> dict[str, bytes]:
    production = models_dir / "production"
    return {name: (production / name).read_bytes() for name in (MODEL_FILE, METADATA_FILE)}


@pytest.fixture(scope="module")
def first_run(prefect_harness: None, shared_data: Path, tmp_path_factory: pytest.TempPathFactory) -> FirstRun:
    """The first retrain into an empty model store, on 60 real days (March-April 2024)."""
    root = tmp_path_factory.mktemp("flow-e2e")
    candles = write_candle_slice(shared_data / RECORDING, LAST_DAY, DAYS, root / "candles.csv")
    with pytest.MonkeyPatch.context() as patch:
        use_fast_runs(patch)
        # This run tests the promotion path, not the model: 60 days and one trial give no demonstrable
        # edge (its signals lose about 7% after fees here, interval [-17%, +2%]: inconclusive), so the
        # gate's interval checks are opened for it. The second run faces the configured gate.
        patch.setenv("RETRAIN_GATE__MIN_MARGIN_OVER_BASELINES", "-1")
        patch.setenv("RETRAIN_GATE__MIN_ECONOMIC_MARGIN", "-1")
        state = run_flow(candles, root / "models")
    assert state.is_completed(), f"first run ended {state.name}: {state.message}"
    return FirstRun(state, state.result(), root / "models", candles)


def test_first_run_promotes_and_puts_its_report_beside_the_version(first_run: FirstRun) -> None:
    version = first_run.summary["version"]
    models_dir = first_run.models_dir

    assert first_run.summary["status"] == "promoted"
    assert first_run.summary["previous_version"] is None
    assert os.readlink(models_dir / "production") == f"archive/{version}"
    metadata = load_production_metadata(models_dir)
    assert metadata.version == version
    assert metadata.decision.status == "promoted"
    report = models_dir / "archive" / version / "report"
    assert {path.name for path in report.iterdir()} == REPORT_FILES
    for name in REPORT_FILES - {"report.md"}:
        assert (report / name).read_bytes().startswith(PNG_SIGNATURE), name
    text = (report / "report.md").read_text()
    assert f"promoted (version {version})" in text
    assert all(f"]({name})" in text for name in REPORT_FILES - {"report.md"}), "report.md links its plots"
    assert re.search(r"^\| training \| \d+\.\d \|$", text, re.M), "the flow times its training stage"


def test_first_run_publishes_its_report_as_a_prefect_artifact(first_run: FirstRun) -> None:
    [artifact] = read_artifacts(first_run.state, "retrain-report")

    assert artifact.type == "markdown"
    assert f"promoted (version {first_run.summary['version']})" in str(artifact.data)
    assert str(artifact.data).count("](data:image/png;base64,iVBORw0KGgo") == 4, "the four plots, embedded"


def test_each_study_shows_its_progress_as_an_artifact(first_run: FirstRun) -> None:
    for model in ("lightgbm", "xgboost", "random-forest"):
        [artifact] = read_artifacts(first_run.state, f"study-{model}")
        assert artifact.type == "progress" and float(artifact.data) == 100.0
        assert "1 of 1 trials" in (artifact.description or "")


def test_holdout_metrics_and_the_versions_trend_are_table_artifacts(first_run: FirstRun) -> None:
    [metrics] = read_artifacts(first_run.state, "holdout-metrics")
    assert metrics.type == "table" and "persistence" in str(metrics.data)
    [trend] = read_artifacts(first_run.state, "retrain-versions-trend")
    assert first_run.summary["version"] in str(trend.data) and "holdout_macro_f1" in str(trend.data)


def test_flow_run_is_named_after_its_data_window(first_run: FirstRun) -> None:
    assert read_flow_run(first_run.state).name.endswith(f" {FIRST_DAY}..{LAST_DAY}")


def test_run_on_scrambled_recent_market_is_rejected_and_production_is_kept(
    first_run: FirstRun,
    webhook_receiver: WebhookReceiver,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    """Same candles, but the order of the market's moves in the last `split.holdout_days` (14) days is
    permuted (`scramble_last_days`): the recent market the challenger is judged on is noise the models
    never saw. Each candle keeps a real shape chained from the previous close, so the file passes
    validation; permuting whole rows, as this test did before the continuity checks, is now refused there.

    Only the holdout is scrambled, so the training rows stay identical and the challenger is a model of
    the real market facing a scrambled one, as the champion is: it scores macro-F1 0.336, under the
    0.35 floor and within the margins over the persistence and class-prior baselines.
    """
    use_fast_runs(monkeypatch)
    use_alert_channel(webhook_receiver, monkeypatch)
    holdout_days = load_settings().split.holdout_days
    scrambled = scramble_last_days(first_run.candles, holdout_days, seed=0, target=tmp_path / "scrambled.csv")
    champion = first_run.summary["version"]
    before = production_files(first_run.models_dir)

    state = run_flow(scrambled, first_run.models_dir)

    assert state.is_completed(), f"second run ended {state.name}: {state.message}"
    summary = state.result()
    assert summary["status"] == "rejected", summary["reasons"]
    assert summary["previous_version"] == champion
    statuses = {info.version: info.status for info in list_versions(first_run.models_dir)}
    assert statuses == {champion: "live", summary["version"]: "rejected"}
    assert os.readlink(first_run.models_dir / "production") == f"archive/{champion}"
    assert production_files(first_run.models_dir) == before
    [rejection] = [title for title in received_titles(webhook_receiver) if "rejected" in title]
    assert rejection.startswith(f"[INFO] Challenger {summary['version']} rejected: failed ")
    assert "min_macro_f1" in rejection


def test_core_library_logs_reach_the_runs_logs_as_sentences(tmp_path: Path) -> None:
    import logging

    from prefect import flow, task
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import LogFilter, LogFilterFlowRunId
    from prefect.settings import PREFECT_LOGGING_TO_API_ENABLED, temporary_settings

    import flows  # noqa: F401  (attaches the core loggers)
    from retrain.data.demo import DemoSource
    from retrain.dataset import build_dataset
    from retrain.settings import LabelSettings

    @task
    def build() -> int:
        candles = DemoSource(seed=5).fetch(8).set_index("timestamp")
        logging.getLogger("retrain.stages").info(
            "dataset: %s", build_dataset(candles, LabelSettings()).summary().sentence()
        )
        return 1

    @flow
    def logs_core() -> int:
        return build()

    with temporary_settings({PREFECT_LOGGING_TO_API_ENABLED: True}):
        state = logs_core(return_state=True)
        for handler in logging.getLogger("retrain").handlers:
            handler.flush()
    with get_client(sync_client=True) as client:
        logs = client.read_logs(
            log_filter=LogFilter(flow_run_id=LogFilterFlowRunId(any_=[state.state_details.flow_run_id]))
        )
    messages = [log.message for log in logs if log.name.startswith("retrain.")]
    assert any(message.startswith("dataset: ") and "labelled rows" in message for message in messages), (
        messages
    )
    assert not any("{" in message for message in messages), "a dict repr reached the logs"
