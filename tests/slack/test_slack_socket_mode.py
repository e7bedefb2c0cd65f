"""Socket Mode end to end: apps.connections.open -> loopback WebSocket -> hello -> events_api envelope."""

from __future__ import annotations

import asyncio
import threading

import pytest

from bot.adapters.slack import SlackAdapter
from bot.config import ConfigError
from tests.slack.fake_slack import app_mention, event_callback

QUESTION = "how big is the ai market supposed to get"


def envelope(envelope_id: str, event: dict, *, event_id: str, retry_attempt: int = 0) -> dict:
    return {
        "envelope_id": envelope_id,
        "type": "events_api",
        "accepts_response_payload": False,
        "retry_attempt": retry_attempt,
        "retry_reason": "timeout" if retry_attempt else "",
        "payload": event_callback(event, event_id=event_id),
    }


class CountingService:
    """The real service; counts finished handle() calls so the test knows a retry was processed."""

    def __init__(self, service):
        self._service = service
        self.handled: list[str | None] = []

    def handle(self, msg):
        reply = self._service.handle(msg)
        self.handled.append(msg.event_id)
        return reply

    def __getattr__(self, name):
        return getattr(self._service, name)


async def _until(predicate, timeout: float = 10.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not predicate():
        assert asyncio.get_running_loop().time() < deadline, "timed out"
        await asyncio.sleep(0.01)


async def test_socket_mode_acks_the_envelope_and_answers_in_the_thread(slack_service, slack_settings, fake_slack):
    service = CountingService(slack_service)
    stop = asyncio.Event()
    runner = asyncio.create_task(SlackAdapter(service, slack_settings).serve(stop))
    try:
        await fake_slack.wait_calls("ws.connected", 1, timeout=10)
        [opened] = fake_slack.calls_to("apps.connections.open")
        assert opened.token == "xapp-test-token"  # the app-level token opens the socket

        event = app_mention(QUESTION)
        await fake_slack.send_envelope(envelope("env-1", event, event_id="EvSOCK1"))
        await fake_slack.wait_for(lambda f: any(a.get("envelope_id") == "env-1" for a in f.envelope_acks))
        [post] = await fake_slack.wait_calls("chat.postMessage", 1)
        assert post.args["channel"] == "C1" and post.args["thread_ts"] == event["ts"]
        assert post.token == "xoxb-test-token"

        # Slack re-sends the same event in a new envelope when it thinks the ack was lost
        await fake_slack.send_envelope(envelope("env-2", event, event_id="EvSOCK1", retry_attempt=1))
        await fake_slack.wait_for(lambda f: any(a.get("envelope_id") == "env-2" for a in f.envelope_acks))
        await _until(lambda: service.handled == ["EvSOCK1", "EvSOCK1"])  # the retry reached the service...
        await asyncio.sleep(0.05)
        assert len(fake_slack.calls_to("chat.postMessage")) == 1  # ...which did not answer it again
    finally:
        stop.set()
        await asyncio.wait_for(runner, 10)
    assert not fake_slack.ws_clients  # the socket was closed on the way out


async def test_a_rejected_bot_token_stops_before_connecting(slack_service, slack_settings, fake_slack):
    fake_slack.fail["auth.test"] = "invalid_auth"
    with pytest.raises(ConfigError, match="SLACK_BOT_TOKEN"):
        await SlackAdapter(slack_service, slack_settings).serve(asyncio.Event())
    assert fake_slack.calls_to("apps.connections.open") == []


class GatedService(CountingService):
    """The real service, holding every answer until the test opens the gate."""

    def __init__(self, service):
        super().__init__(service)
        self.entered = threading.Event()
        self.gate = threading.Event()

    def handle(self, msg):
        self.entered.set()
        assert self.gate.wait(10)
        return super().handle(msg)


async def test_stopping_waits_for_the_answers_in_progress(slack_service, slack_settings, fake_slack):
    """Before: a stop (Ctrl-C, `docker compose stop`) returned at once and the answer being worked on was lost."""
    service = GatedService(slack_service)
    stop = asyncio.Event()
    runner = asyncio.create_task(SlackAdapter(service, slack_settings).serve(stop))
    try:
        await fake_slack.wait_calls("ws.connected", 1, timeout=10)
        await fake_slack.send_envelope(envelope("env-1", app_mention(QUESTION), event_id="EvDRAIN"))
        await _until(service.entered.is_set)
        stop.set()
        await asyncio.sleep(0.3)
        assert not runner.done(), "serve() returned while an answer was still being worked out"
        service.gate.set()
        await asyncio.wait_for(runner, 10)
    finally:
        service.gate.set()
        stop.set()
    assert len(fake_slack.calls_to("chat.postMessage")) == 1
