"""The shared conversation spec's Driver for Slack: a person on Slack, played with signed requests.

Every question goes through the real Bolt app over HTTP (signatures checked), exactly as Slack
delivers it: a channel mention arrives as `app_mention` *and* as its `message.channels` twin; a DM
as `message.im`; a thread reply without a mention as `message.channels` with `thread_ts`. What the
app sent to the fake Web API (chat.postMessage / chat.postEphemeral / response_url) is decoded into
Outbound messages.
"""

from __future__ import annotations

import re
from typing import Any

from bot.adapters.slack.render import BUTTON_LABEL_LIMIT, BUTTON_VALUE_LIMIT, MAX_BLOCKS, SECTION_TEXT_LIMIT
from bot.conversation.models import Action
from tests.slack.fake_slack import Call, app_mention, message
from tests.slack.harness import SlackHttpHarness, block_texts, buttons_of
from tests.spec.scenarios import SPEC_HANDOFF_GROUP, Outbound

_SAFE_ANGLE = re.compile(r"<(?:https?://|mailto:)")
_SUBTEAM = re.compile(r"<!subteam\^([A-Za-z0-9_-]+)(?:\|[^>]*)?>")
_LINK = re.compile(r"<(https?://[^|>]+)(?:\|[^>]*)?>")
MESSAGE_TEXT_LIMIT = 40_000


def pings_nobody(payload: dict[str, Any]) -> bool:
    """No raw <!everyone>/<!here>/<!channel>/<@U..>/<#C..> and no mention parsing switched on."""
    if payload.get("parse") == "full" or payload.get("link_names") in (True, 1, "1", "true"):
        return False
    for text in [payload.get("text") or "", *block_texts(payload)]:
        for m in re.finditer("<", text):
            if not _SAFE_ANGLE.match(text, m.start()):
                return False
    return True


def pings(payload: dict[str, Any]) -> tuple[str, ...]:
    """The user groups the message notifies: <!subteam^ID> in its text or blocks."""
    texts = [payload.get("text") or "", *block_texts(payload)]
    return tuple(dict.fromkeys(m.group(1) for t in texts for m in _SUBTEAM.finditer(t)))


def links(payload: dict[str, Any]) -> list[str]:
    texts = [payload.get("text") or "", *block_texts(payload)]
    return list(dict.fromkeys(m.group(1) for t in texts for m in _LINK.finditer(t)))


def within_limits(payload: dict[str, Any]) -> bool:
    blocks = payload.get("blocks") or []
    text = payload.get("text") or ""
    if not text or len(text) > MESSAGE_TEXT_LIMIT or len(blocks) > MAX_BLOCKS:
        return False
    action_ids: list[str] = []
    for block in blocks:
        if block.get("type") == "section" and len(block["text"]["text"]) > SECTION_TEXT_LIMIT:
            return False
        if block.get("type") == "context" and len(block.get("elements", [])) > 10:
            return False
        for el in block.get("elements", []):
            if el.get("type") == "button":
                action_ids.append(el["action_id"])
                if len(el["text"]["text"]) > BUTTON_LABEL_LIMIT or len(el.get("value", "")) > BUTTON_VALUE_LIMIT:
                    return False
    return len(action_ids) == len(set(action_ids))


def _visible_texts(payload: dict[str, Any]) -> list[str]:
    """Section and context texts (buttons are reported separately); the fallback text without blocks."""
    texts: list[str] = []
    for block in payload.get("blocks") or []:
        if block.get("type") == "section":
            texts.append(block["text"]["text"])
        elif block.get("type") == "context":
            texts.extend(el.get("text", "") for el in block.get("elements", []))
    return texts or [payload.get("text") or ""]


def decode(call: Call) -> Outbound:
    args = call.args
    if call.method == "response_url":
        private = args.get("response_type", "ephemeral") != "in_channel"
        thread = None
    else:
        private = call.method == "chat.postEphemeral"
        thread = args.get("thread_ts")
    visible = _visible_texts(args)
    buttons = buttons_of(args)
    return Outbound(
        text="\n".join(visible),
        private=private,
        thread_id=thread,
        pings_nobody=pings_nobody(args),
        within_limits=within_limits(args),
        buttons=list(buttons),
        raw={"method": call.method, "channel": args.get("channel"), "args": args},
        pings=pings(args),
        links=links(args),
    )


class SlackSpecDriver:
    platform = "slack"
    supports_threads = True
    handoff_group = SPEC_HANDOFF_GROUP

    def __init__(self, harness: SlackHttpHarness):
        self.harness = harness
        self.fake = harness.fake

    async def _collect(self, start: int) -> list[Outbound]:
        return [decode(c) for c in self.fake.posts[start:]]

    async def ask(
        self,
        text: str,
        *,
        user: str = "U1",
        channel: str = "C1",
        thread: str | None = None,
        mention: bool = True,
        dm: bool = False,
    ) -> list[Outbound]:
        start = len(self.fake.posts)
        if dm:
            dm_channel = "D" + channel.lstrip("CD")
            await self.harness.event(message(text, user=user, channel=dm_channel, channel_type="im", thread_ts=thread))
        elif mention:
            event = app_mention(text, user=user, channel=channel, thread_ts=thread)
            await self.harness.event(event)
            # Slack also delivers the same message as message.channels, under another event id
            twin = message(event["text"], user=user, channel=channel, ts=event["ts"], thread_ts=thread)
            await self.harness.event(twin)
        else:
            await self.harness.event(message(text, user=user, channel=channel, thread_ts=thread))
        return await self._collect(start)

    async def admin(self, command: str, *, user: str = "U1", admin: bool, channel: str = "C1") -> list[Outbound]:
        settings = self.harness.settings
        assert (user in settings.admin_user_ids) == admin or settings.workspace_admins_are_admins
        if admin and user not in settings.admin_user_ids:
            self.fake.users[user] = {"is_admin": True}
        start = len(self.fake.posts)
        await self.harness.command("/qabot", command, user=user, channel=channel)
        return await self._collect(start)

    async def click_feedback(self, outbound: Outbound, *, up: bool, user: str = "U1") -> list[Outbound]:
        return await self.click(outbound, Action.FEEDBACK_UP if up else Action.FEEDBACK_DOWN, user=user)

    async def click(self, outbound: Outbound, action_id: str, *, user: str = "U1") -> list[Outbound]:
        raw: dict[str, Any] = outbound.raw  # type: ignore[assignment]
        value = buttons_of(raw["args"])[action_id]
        channel = raw.get("channel") or "C1"
        start = len(self.fake.posts)
        await self.harness.click(
            action_id,
            value,
            user=user,
            channel=channel,
            thread_ts=outbound.thread_id,
            ephemeral=outbound.private,
        )
        return await self._collect(start)

    def feedback_count(self) -> int:
        return self.harness.service.feedback.feedback_count()
