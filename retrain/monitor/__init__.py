"""Watching the production model between retrains: realised scores on matured labels, feature drift,
data freshness and model age, with alerts only after a breach holds (Prefect-free; see `run`)."""
