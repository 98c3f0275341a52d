"""Deliver an `Alert` through the Prefect notification blocks named in `alerts.channels`, and emit it as
a Prefect event so Automations can react to it.

Delivery never raises: a broken Slack hook must not fail a promotion that already happened. Each failed
channel is logged with its reason and recorded in the returned `DeliveryReport`.

A channel is a block document slug, `<block-type-slug>/<block-name>` (the "Slug" column of
`prefect block ls`), because Prefect can only load a block whose type it is told: the base
`NotificationBlock` class looks for a block type of its own.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any
from uuid import UUID

import httpx
from prefect import Flow, task
from prefect.blocks.abstract import NotificationBlock, NotificationError
from prefect.blocks.core import Block
from prefect.blocks.notifications import AbstractAppriseNotificationBlock
from prefect.cache_policies import NO_CACHE
from prefect.client.schemas.objects import FlowRun, State
from prefect.events import emit_event
from prefect.exceptions import MissingContextError
from prefect.logging import get_run_logger
from prefect.logging.loggers import LoggingAdapter
from prefect.utilities.urls import url_for
from pydantic import BaseModel, ConfigDict, Field

from retrain.alerts import Alert, Severity, failure_alert
from retrain.errors import AlertChannelError

logger = logging.getLogger(__name__)

EVENT_PREFIX = "retrain.alert"
SEND_TIMEOUT_S = 120.0

_LOG_LEVELS = {
    Severity.INFO: logging.INFO,
    Severity.WARNING: logging.WARNING,
    Severity.CRITICAL: logging.ERROR,
}
# Apprise colours Slack/Discord messages by notify type: green, amber, red.
_APPRISE_NOTIFY_TYPES = {Severity.INFO: "info", Severity.WARNING: "warning", Severity.CRITICAL: "failure"}


class DeliveryReport(BaseModel):
    """Where an alert went, where it did not and why, and the id of the event emitted for it."""

    model_config = ConfigDict(frozen=True)

    kind: str
    event: str
    delivered: list[str] = Field(default_factory=list)
    failed: dict[str, str] = Field(default_factory=dict, description="channel -> reason")
    event_id: UUID | None = Field(None, description="None when events are off or the event was refused")

    @property
    def ok(self) -> bool:
        return not self.failed


def event_name(alert: Alert) -> str:
    """The Prefect event name Automations match, e.g. `retrain.alert.champion_degraded`."""
    return f"{EVENT_PREFIX}.{alert.kind}"


def deliver_alert(alert: Alert, channels: Sequence[str]) -> DeliveryReport:
    """Send `alert` to every channel, emit its event, and report; never raises."""
    log = _run_logger()
    log.log(_LOG_LEVELS[alert.severity], "%s\n%s", alert.title, alert.body)
    if not channels:
        log.info(
            "no alert channels configured (alerts.channels); alert %s only emitted as an event", alert.kind
        )
    delivered: list[str] = []
    failed: dict[str, str] = {}
    for channel in channels:
        try:
            _notify(channel, alert)
        except Exception as exc:  # any block type can fail in its own way; none may stop the caller
            reason = _reason(exc)
            log.error("alert %s not delivered to channel %r: %s", alert.kind, channel, reason)
            failed[channel] = reason
        else:
            log.info("alert %s delivered to channel %r", alert.kind, channel)
            delivered.append(channel)
    return DeliveryReport(
        kind=alert.kind,
        event=event_name(alert),
        delivered=delivered,
        failed=failed,
        event_id=_emit(alert, log),
    )


@task(
    name="send-alert",
    task_run_name="alert-{alert.kind}",
    retries=0,
    timeout_seconds=SEND_TIMEOUT_S,
    cache_policy=NO_CACHE,
)
def send_alert(alert: Alert, channels: list[str]) -> DeliveryReport:
    """Deliver an alert from a flow; a visible task run in the UI, with the delivery logs under it.

    Delivery failures are in the report, not raised. Only the timeout (a channel hanging past
    SEND_TIMEOUT_S) fails the task: call it with `return_state=True` where that must not fail the flow.
    """
    return deliver_alert(alert, channels)


def run_failure_alert(flow_run: FlowRun, state: State[Any]) -> Alert:
    """The critical alert for a flow run that ended Failed or Crashed, with a link to its logs."""
    return failure_alert(
        flow_run_name=flow_run.name,
        flow_run_id=str(flow_run.id),
        state_name=state.name or state.type.value,
        message=state.message or "",
        crashed=state.is_crashed(),
        run_url=url_for(flow_run),
    )


def failure_hook(channels: Sequence[str]) -> Callable[[Flow[..., Any], FlowRun, State[Any]], None]:
    """A flow state hook for both `on_failure` and `on_crashed` that alerts `channels`."""
    names = list(channels)

    def alert_run_failure(flow: Flow[..., Any], flow_run: FlowRun, state: State[Any]) -> None:
        deliver_alert(run_failure_alert(flow_run, state), names)

    return alert_run_failure


def _notify(channel: str, alert: Alert) -> None:
    block = _load_block(channel)
    if isinstance(block, AbstractAppriseNotificationBlock):
        block.notify_type = _APPRISE_NOTIFY_TYPES[alert.severity]
    # Apprise-based blocks swallow send failures unless asked to raise.
    with block.raise_on_failure():
        block.notify(body=alert.body, subject=alert.title, _sync=True)


def _load_block(channel: str) -> NotificationBlock:
    if channel.count("/") != 1 or not all(channel.split("/")):
        raise AlertChannelError(
            f"alert channel {channel!r} must be '<block-type-slug>/<block-name>' as listed in the Slug "
            f"column of `prefect block ls`, e.g. 'slack-webhook/{channel.strip('/') or 'trading-alerts'}'"
        )
    block = Block.load(channel, _sync=True)
    if not isinstance(block, NotificationBlock):
        raise AlertChannelError(
            f"alert channel {channel!r} is a {type(block).__name__} block, not a notification block"
        )
    return block


def _reason(exc: Exception) -> str:
    """Why a delivery failed, without the webhook URL (Slack and Discord URLs embed their secret)."""
    if isinstance(exc, httpx.HTTPStatusError):
        response = exc.response
        return f"HTTP {response.status_code} {response.reason_phrase} from {exc.request.url.host}"
    if isinstance(exc, NotificationError):
        return f"the block could not send: {' '.join(exc.log.split()) or 'no detail given'}"
    return f"{type(exc).__name__}: {exc}"


def _emit(alert: Alert, log: logging.Logger | LoggingAdapter) -> UUID | None:
    related: list[dict[str, str]] = []
    if alert.version is not None:
        resource = {
            "prefect.resource.id": f"retrain.model.{alert.version}",
            "prefect.resource.name": alert.version,
        }
    else:
        resource = {"prefect.resource.id": f"retrain.run.{alert.flow_run_id}"}
    if alert.flow_run_id is not None:
        related.append(
            {
                "prefect.resource.id": f"prefect.flow-run.{alert.flow_run_id}",
                "prefect.resource.role": "flow-run",
            }
        )
    payload = {**alert.details, "severity": alert.severity.value, "title": alert.title}
    try:
        event = emit_event(event_name(alert), resource=resource, related=related, payload=payload)
    except Exception as exc:  # an oversized or malformed event must not stop the caller either
        log.error("event %s for alert %s not emitted: %s", event_name(alert), alert.kind, _reason(exc))
        return None
    return None if event is None else event.id


def _run_logger() -> logging.Logger | LoggingAdapter:
    """The run logger inside a flow or task run (so the lines show in the UI), else the module logger."""
    try:
        return get_run_logger()
    except MissingContextError:
        return logger
