"""Prefect flows. Importing this package sends the core library's log records (the `retrain` loggers,
INFO and up) to the Prefect run they happen in, so they show in the run's logs in the UI wherever the
flow runs: a worker, `retrain run`, the tests."""

from __future__ import annotations

import logging

from prefect.context import FlowRunContext, TaskRunContext
from prefect.logging.handlers import APILogHandler


class RunLogHandler(APILogHandler):
    """Prefect's API log handler, for records made inside a flow or task run only (the core library
    also logs outside runs: the direct pipeline, the bot)."""

    def emit(self, record: logging.LogRecord) -> None:
        if FlowRunContext.get() is not None or TaskRunContext.get() is not None:
            super().emit(record)


def attach_core_logs() -> None:
    core = logging.getLogger("retrain")
    if core.level == logging.NOTSET or core.level > logging.INFO:
        core.setLevel(logging.INFO)
    if not any(isinstance(handler, RunLogHandler) for handler in core.handlers):
        core.addHandler(RunLogHandler())


attach_core_logs()
