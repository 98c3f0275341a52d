"""Alerts reach real Prefect notification blocks (against a receiver on 127.0.0.1), failures are reported
instead of raised, and every alert is an event on the Prefect server that Automations can match."""

from __future__ import annotations

import json
import time
import uuid
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from prefect import flow
from prefect.blocks.notifications import CustomWebhookNotificationBlock, SlackWebhook
from prefect.client.orchestration import get_client
from prefect.events.filters import EventFilter, EventIDFilter, EventOccurredFilter
from prefect.types._datetime import now
from pydantic import SecretStr

from retrain.alerts import champion_degradation_alert, promotion_alert, rejection_alert
from tasks.alerts import DeliveryReport, deliver_alert, failure_hook, send_alert

if TYPE_CHECKING:
    from prefect.events import ReceivedEvent

    from tests.webhook_receiver import WebhookReceiver

pytestmark = [pytest.mark.e2e, pytest.mark.usefixtures("prefect_harness")]

PROMOTION = promotion_alert("v9", previous_version="v8", macro_f1=0.372, champion_macro_f1=0.351)
EVENT_WAIT_S = 20.0  # the server's event persister flushes every 5 s


def _save_custom_webhook(receiver: WebhookReceiver) -> str:
    """Save a custom-webhook block posting Slack-style JSON to the receiver; return its channel slug."""
    name = f"alerts-{uuid.uuid4().hex[:8]}"
    block = CustomWebhookNotificationBlock(
        name=name, url=f"{receiver.url}/hook", json_data={"title": "{{subject}}", "text": "{{body}}"}
    )
    block.save(name)
    return f"{block.get_block_type_slug()}/{name}"


def test_alert_reaches_a_custom_webhook_with_its_title_and_body(webhook_receiver: WebhookReceiver) -> None:
    channel = _save_custom_webhook(webhook_receiver)

    report = deliver_alert(PROMOTION, [channel])

    assert report.delivered == [channel]
    assert report.failed == {}
    [request] = webhook_receiver.requests
    assert request.method == "POST"
    assert request.path == "/hook"
    assert request.json == {"title": PROMOTION.title, "text": PROMOTION.body}


def test_missing_block_is_reported_and_other_channels_still_get_the_alert(
    webhook_receiver: WebhookReceiver,
) -> None:
    channel = _save_custom_webhook(webhook_receiver)
    missing = "custom-webhook/no-such-block"

    report = deliver_alert(PROMOTION, [missing, "bare-name", channel])

    assert report.delivered == [channel]
    assert "Unable to find block document named no-such-block" in report.failed[missing]
    assert "must be '<block-type-slug>/<block-name>'" in report.failed["bare-name"]
    assert len(webhook_receiver.requests) == 1


def test_receiver_answering_500_is_reported_not_raised(webhook_receiver: WebhookReceiver) -> None:
    channel = _save_custom_webhook(webhook_receiver)
    webhook_receiver.status = 500

    report = deliver_alert(PROMOTION, [channel])

    assert report.delivered == []
    assert report.failed == {channel: "HTTP 500 Internal Server Error from 127.0.0.1"}
    assert not report.ok


def test_receiver_down_is_reported_not_raised(webhook_receiver: WebhookReceiver) -> None:
    channel = _save_custom_webhook(webhook_receiver)
    webhook_receiver.stop()

    report = deliver_alert(PROMOTION, [channel])

    assert report.delivered == []
    assert "ConnectError" in report.failed[channel]


def test_apprise_block_that_cannot_send_is_reported_not_silently_dropped(
    webhook_receiver: WebhookReceiver,
) -> None:
    # Apprise's Slack plugin only posts to hooks.slack.com, so a local URL gives it nothing to send to;
    # Apprise blocks report that only when asked to raise, which deliver_alert does.
    name = f"slack-{uuid.uuid4().hex[:8]}"
    SlackWebhook(url=SecretStr(f"{webhook_receiver.url}/services/T0/B0/XXXX")).save(name)
    channel = f"slack-webhook/{name}"

    report = deliver_alert(PROMOTION, [channel])

    assert report.delivered == []
    assert report.failed[channel].startswith("the block could not send")
    assert webhook_receiver.requests == []


def test_alert_is_emitted_as_a_prefect_event_automations_can_match() -> None:
    alert = champion_degradation_alert(0.412, 0.351, tolerance=0.05, version="v7")
    assert alert is not None

    report = deliver_alert(alert, [])

    assert report.event == "retrain.alert.champion_degraded"
    assert report.event_id is not None
    stored = _wait_for_event(report.event_id)
    assert stored.event == "retrain.alert.champion_degraded"
    assert stored.resource.id == "retrain.model.v7"
    assert stored.payload["severity"] == "warning"
    assert stored.payload["fresh_macro_f1"] == 0.351
    assert stored.payload["title"] == alert.title


def test_send_alert_task_delivers_from_inside_a_flow(webhook_receiver: WebhookReceiver) -> None:
    channel = _save_custom_webhook(webhook_receiver)
    alert = rejection_alert([{"name": "min_macro_f1", "detail": "macro-F1 0.30 < floor 0.35"}], version="v8")

    @flow
    def reject() -> DeliveryReport:
        return send_alert(alert, [channel])

    report = reject()

    assert report.delivered == [channel]
    assert webhook_receiver.requests[0].json["title"] == alert.title


def test_failure_hook_alerts_when_the_flow_fails(webhook_receiver: WebhookReceiver) -> None:
    channel = _save_custom_webhook(webhook_receiver)
    hook = failure_hook([channel])

    @flow(on_failure=[hook], on_crashed=[hook])
    def doomed() -> None:
        raise ValueError("no candles after 2024-05-01T00:00Z")

    state = doomed(return_state=True)

    assert state.is_failed()
    [request] = webhook_receiver.requests
    title, text = request.json["title"], request.json["text"]
    assert title.startswith("[CRITICAL] Retraining run ") and title.endswith(" failed")
    assert "ValueError: no candles after 2024-05-01T00:00Z" in text
    assert str(state.state_details.flow_run_id) in text


def _wait_for_event(event_id: uuid.UUID) -> ReceivedEvent:
    """Poll the server until its persister has stored the event (it flushes in batches)."""
    deadline = time.monotonic() + EVENT_WAIT_S
    with get_client(sync_client=True) as client:
        while time.monotonic() < deadline:
            window = EventOccurredFilter(since=now("UTC") - timedelta(hours=1), until=now("UTC"))
            page = client.read_events(EventFilter(occurred=window, id=EventIDFilter(id=[event_id])), limit=1)
            if page.events:
                return page.events[0]
            time.sleep(0.25)
    pytest.fail(f"event {event_id} not found on the Prefect server within {EVENT_WAIT_S} s")


def test_model_rollback_sends_the_rolled_back_alert_to_the_channels(
    webhook_receiver: WebhookReceiver, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from store_helpers import promote_new
    from typer.testing import CliRunner

    from retrain.cli.model import app

    channel = _save_custom_webhook(webhook_receiver)
    monkeypatch.setenv("RETRAIN_ALERTS__CHANNELS", json.dumps([channel]))
    first = promote_new(tmp_path)
    second = promote_new(tmp_path)

    result = CliRunner().invoke(app, ["rollback", "--reason", "live losses", "--models-dir", str(tmp_path)])

    assert result.exit_code == 0, result.output
    [request] = webhook_receiver.requests
    assert request.json["title"] == f"[INFO] Rolled back to model {first} (from {second})"
    assert "live losses" in request.json["text"]
