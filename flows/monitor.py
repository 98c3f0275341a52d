"""The `monitor` flow: one pass over the production model (realised scores, drift, freshness, age), its
artifacts, and an event per alert. Runs hourly from the `retrain/monitor` deployment, or on demand."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from prefect import flow

from retrain.settings import Settings, SourceKind, load_settings
from tasks import monitor as tasks


def _settings(source: SourceKind | None, data_path: str | None, models_dir: str | None) -> Settings:
    """The configuration with this run's parameters on top (a parameter left out keeps the config)."""
    sections = {
        "data": {"source": source, "csv_path": data_path},
        "paths": {
            "models_dir": models_dir,
            "runs_dir": str(Path(models_dir) / "runs") if models_dir else None,
        },
    }
    overrides = {
        name: {k: v for k, v in values.items() if v is not None} for name, values in sections.items()
    }
    return load_settings(**{name: values for name, values in overrides.items() if values})


@flow(name="monitor", timeout_seconds=600)
def monitor(
    source: SourceKind | None = None, data_path: str | None = None, models_dir: str | None = None
) -> dict[str, Any]:
    """Watch the production model once; alerts (after `monitor.consecutive` passes) become events
    `retrain.model.degraded`, `retrain.features.drifted`, `retrain.data.stale`, `retrain.model.expired`."""
    settings = _settings(source, data_path, models_dir)
    report = tasks.run_pass(settings)
    tasks.publish_artifacts(settings, report)
    events = tasks.emit_alert_events(report)
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
