"""Prefect tasks of the monitor flow: one core pass, then its artifacts and events."""

from __future__ import annotations

from pathlib import Path

from prefect import task
from prefect.artifacts import create_table_artifact
from prefect.cache_policies import NO_CACHE
from prefect.events import emit_event
from prefect.logging import get_run_logger

from retrain.monitor.report import MonitorReport
from retrain.monitor.run import monitor_pass
from retrain.monitor.trend import VERSIONS_TREND_KEY, history_path, recent_passes, versions_trend
from retrain.settings import Settings

TREND_KEY = "retrain-monitor-trend"
EVENT_PREFIX = "retrain."


# No retries: unusable candles are already a finding (data.stale), and a retried pass would count a
# breach twice toward `monitor.consecutive`.
@task(name="monitor-pass", timeout_seconds=300, cache_policy=NO_CACHE)
def run_pass(settings: Settings) -> MonitorReport:
    report = monitor_pass(settings)
    get_run_logger().info("monitor: breaches %s, alerts %s", [b.kind for b in report.breaches], report.alerts)
    return report


@task(name="monitor-artifacts", timeout_seconds=60, cache_policy=NO_CACHE)
def publish_artifacts(settings: Settings, report: MonitorReport) -> None:
    """This pass's table, and the keyed trend of the last passes (one row each) in the Artifacts page."""
    create_table_artifact(
        table=report.window_rows(),
        description=f"Monitor of {report.version} ({report.market}): alerts {', '.join(report.alerts) or 'none'}",
    )
    create_table_artifact(
        table=recent_passes(history_path(settings.paths.models_dir), settings.monitor.trend_passes),
        key=TREND_KEY,
        description=f"Last {settings.monitor.trend_passes} monitor passes of the production model",
    )
    create_table_artifact(
        table=versions_trend(settings.paths.models_dir, settings.monitor.trend_passes),
        key=VERSIONS_TREND_KEY,
        description="Each version that went live: holdout macro-F1 at promotion, realised macro-F1 since",
    )


@task(name="monitor-events", timeout_seconds=60, cache_policy=NO_CACHE)
def emit_alert_events(settings: Settings, report: MonitorReport) -> list[str]:
    """One Prefect event per alert (`retrain.model.degraded`...), naming the model version, the market
    and the store, for automations and the degraded-model retrain trigger of `retrain/weekly` (which
    retrains the store named in the event)."""
    breaches = {breach.kind: breach for breach in report.breaches}
    emitted = []
    for kind in report.alerts:
        breach = breaches[kind]
        event = f"{EVENT_PREFIX}{kind}"
        emit_event(
            event=event,
            resource={
                "prefect.resource.id": f"retrain.model.{report.version}",
                "prefect.resource.name": f"{report.market} model {report.version}",
                "retrain.model.version": report.version,
                "retrain.market": report.market,
                "retrain.models_dir": str(Path(settings.paths.models_dir).resolve()),
            },
            payload={
                "message": breach.message,
                "value": breach.value,
                "limit": breach.limit,
                "checked_at": report.checked_at.isoformat(),
            },
        )
        emitted.append(event)
    return emitted
