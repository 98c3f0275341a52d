"""Prefect tasks: thin, retryable wrappers over the stages in `retrain.stages`."""
