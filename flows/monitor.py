"""The `monitor` flow: one pass over the production model (realised scores, drift, freshness, age), its
artifacts, and an event per alert. Runs hourly from the `monitor/hourly` deployment, or on demand."""

from __future__ import annotations

from typing import Any

from prefect import flow

from retrain.settings import SourceKind, load_run_settings
from tasks import monitor as tasks


@flow(name="monitor", timeout_seconds=600)
def monitor(
    source: SourceKind | None = None, data_path: str | None = None, models_dir: str | None = None
) -> dict[str, Any]:
    """Watch the production model once; alerts (after `monitor.consecutive` passes) become events
    `retrain.model.degraded`, `retrain.features.drifted`, `retrain.data.stale`, `retrain.model.expired`.

    Args:
        source: Candle source: exchange, csv or demo; default: data.source of the config.
        data_path: The candle file, for source csv.
        models_dir: The model store to watch; default: paths.models_dir.
    """
    settings = load_run_settings(source=source, data_path=data_path, models_dir=models_dir)
    report = tasks.run_pass(settings)
    tasks.publish_artifacts(settings, report)
    events = tasks.emit_alert_events(settings, report)
    return {
        "version": report.version,
        "market": report.market,
        "realised": {
            window: {"macro_f1": s.macro_f1, "persistence_macro_f1": s.persistence_macro_f1, "rows": s.rows}
            for window, s in report.realised.items()
        },
        "drifted_features": report.drifted_features,
        "breaches": [breach.kind for breach in report.breaches],
        "alerts": list(report.alerts),
        "events": events,
    }
