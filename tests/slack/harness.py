"""The real qabot Slack app in HTTP mode on 127.0.0.1, talking to a FakeSlack; signed requests in."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any

import aiohttp

from bot.adapters.slack import SlackAdapter, SlackSettings
from bot.adapters.slack.app import EVENTS_PATH, SlackHttpServer
from tests.slack.fake_slack import FakeSlack, block_action, event_callback, message_action, sign, slash_command


@dataclass
class Sent:
    status: int
    body: str
    elapsed_s: float
    sent_at: float


class SlackHttpHarness:
    """The real SlackAdapter's Bolt app behind the real SlackHttpServer on 127.0.0.1 (any free port)."""

    def __init__(self, service: Any, settings: SlackSettings, fake: FakeSlack):
        assert settings.api_url == fake.api_url, "point SlackSettings.api_url at the fake"
        self.service = service
        self.settings = settings
        self.fake = fake
        self.adapter = SlackAdapter(service, settings)
        self.app = self.adapter.app
        self.server = SlackHttpServer(self.app, signing_secret=self.secret, host="127.0.0.1", port=0)
        self.session: aiohttp.ClientSession | None = None

    async def start(self) -> SlackHttpHarness:
        await self.server.start()
        self.session = aiohttp.ClientSession()
        return self

    async def stop(self) -> None:
        if self.session is not None:
            await self.session.close()
        await self.server.stop()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.port}{EVENTS_PATH}"

    @property
    def secret(self) -> str:
        return self.settings.signing_secret.get_secret_value()

    async def post(
        self, body: str, content_type: str, *, headers: dict[str, str] | None = None, timestamp: int | None = None
    ) -> Sent:
        assert self.session is not None
        h = {"Content-Type": content_type, **sign(self.secret, body, timestamp)}
        h.update(headers or {})
        started = time.perf_counter()
        async with self.session.post(self.url, data=body.encode(), headers=h) as resp:
            text = await resp.text()
        return Sent(resp.status, text, time.perf_counter() - started, started)

    # ---- Slack requests ------------------------------------------------------------------------

    async def event(
        self,
        event: dict[str, Any],
        *,
        event_id: str | None = None,
        retry_num: int | None = None,
        wait: bool = True,
        **kw: Any,
    ) -> Sent:
        """Send an Events API request; by default wait until the app's listener has finished with it."""
        body = json.dumps(event_callback(event, event_id=event_id))
        if event.get("channel") and event.get("ts"):  # the person's message now exists on Slack
            self.fake.remember_message(event["channel"], event["ts"])
        headers = kw.pop("headers", {}) or {}
        if retry_num is not None:
            headers.update({"X-Slack-Retry-Num": str(retry_num), "X-Slack-Retry-Reason": "http_timeout"})
        return await self._submit(body, "application/json", wait=wait, headers=headers, **kw)

    async def _submit(self, body: str, content_type: str, *, wait: bool, **kw: Any) -> Sent:
        """Post a signed request; with `wait`, until the app's listener has finished with it (if accepted)."""
        before = self.adapter.listeners.finished
        sent = await self.post(body, content_type, **kw)
        if wait and sent.status == 200:
            await self.adapter.listeners.wait_until(lambda ls: ls.finished >= before + 1, 30)
        return sent

    async def command(
        self, command: str, text: str, *, user: str = "U1", channel: str = "C1", wait: bool = True
    ) -> tuple[Sent, str]:
        response_url = self.fake.response_url()
        body = slash_command(command, text, user=user, channel=channel, response_url=response_url)
        return await self._submit(body, "application/x-www-form-urlencoded", wait=wait), response_url

    async def click(
        self,
        action_id: str,
        value: str,
        *,
        user: str = "U1",
        channel: str = "C1",
        thread_ts: str | None = None,
        message_ts: str | None = None,
        ephemeral: bool = False,
        wait: bool = True,
    ) -> tuple[Sent, str]:
        response_url = self.fake.response_url()
        body = block_action(
            action_id,
            value,
            user=user,
            channel=channel,
            response_url=response_url,
            thread_ts=thread_ts,
            message_ts=message_ts,
            ephemeral=ephemeral,
        )
        return await self._submit(body, "application/x-www-form-urlencoded", wait=wait), response_url

    async def shortcut(
        self, callback_id: str, message_text: str, *, user: str = "U1", channel: str = "C1", wait: bool = True
    ) -> tuple[Sent, str]:
        """A message shortcut on a message with `message_text` (as Slack sends it); (sent, its response_url)."""
        response_url = self.fake.response_url()
        body = message_action(callback_id, message_text, user=user, channel=channel, response_url=response_url)
        return await self._submit(body, "application/x-www-form-urlencoded", wait=wait), response_url


def buttons_of(payload: dict[str, Any]) -> dict[str, str]:
    """action_id -> value of every button in a message payload."""
    out: dict[str, str] = {}
    for block in payload.get("blocks") or []:
        if block.get("type") == "actions":
            for el in block.get("elements", []):
                out[el["action_id"]] = el.get("value", "")
    return out


def block_texts(payload: dict[str, Any]) -> list[str]:
    """Every mrkdwn / plain_text string in a message payload (section, context and button texts)."""
    texts: list[str] = []
    for block in payload.get("blocks") or []:
        if "text" in block and isinstance(block["text"], dict):
            texts.append(block["text"].get("text", ""))
        for el in block.get("elements", []):
            t = el.get("text")
            if isinstance(t, dict):
                texts.append(t.get("text", ""))
            elif isinstance(t, str):
                texts.append(t)
    return texts
