"""The shared conversation spec's Driver for Discord: a person on Discord, played through FakeDiscord.

Every action is a real gateway dispatch to the real QabotDiscordBot; the answer is decoded from the
REST calls the bot made (channel messages, interaction follow-ups) into spec Outbounds.
Spec names ("U1", "C1") map to Discord snowflakes created on first use.
"""

from __future__ import annotations

import re
from typing import Any

from bot.conversation.models import Action
from bot.conversation.service import ConversationService
from tests.discord.fake_discord import MANAGE_GUILD, MEMBER_PERMISSIONS, Call, FakeDiscord, FakeUser
from tests.discord.harness import ObservedBot, custom_ids, message_text, pings_nobody, within_limits
from tests.spec.scenarios import Outbound


def _action_id(custom_id: str) -> str:
    """qabot:fb:up:<answer id> -> the platform-neutral action id the spec checks."""
    if custom_id.startswith("qabot:fb:up:"):
        return Action.FEEDBACK_UP
    if custom_id.startswith("qabot:fb:down:"):
        return Action.FEEDBACK_DOWN
    if custom_id.startswith("qabot:ask:"):
        return Action.HANDOFF
    return custom_id


_ROLE_MENTION = re.compile(r"<@&(\d+)>")
_MD_LINK = re.compile(r"\]\((https?://[^)\s]+)\)")


def pings(body: dict[str, Any]) -> tuple[str, ...]:
    """The roles this message notifies: mentioned in its content and allowed by its allowed_mentions."""
    allowed = body.get("allowed_mentions") or {}
    roles = {str(r) for r in allowed.get("roles") or ()}
    everyone = "roles" in (allowed.get("parse") or ())
    return tuple(dict.fromkeys(m for m in _ROLE_MENTION.findall(body.get("content") or "") if everyone or m in roles))


class DiscordDriver:
    platform = "discord"
    supports_threads = True

    def __init__(
        self,
        fake: FakeDiscord,
        bot: ObservedBot,
        service: ConversationService,
        *,
        channels: dict[str, str] | None = None,
        handoff_group: str = "",
    ) -> None:
        self.fake = fake
        self.bot = bot
        self.service = service
        self._users: dict[str, FakeUser] = {}
        self._channels: dict[str, str] = dict(channels or {})  # spec names created before the bot started
        self.handoff_group = handoff_group  # the role DISCORD_HANDOFF_ROLES names for the hand-off channel

    def user(self, name: str) -> FakeUser:
        if name not in self._users:
            self._users[name] = self.fake.add_user(name)
        return self._users[name]

    def channel(self, name: str) -> str:
        if name not in self._channels:
            self._channels[name] = self.fake.add_channel(name)
        return self._channels[name]

    def _outbound(self, call: Call) -> Outbound:
        body = call.body or {}
        ids = custom_ids(body)
        thread = call.channel_id if call.channel_id and self.fake.is_thread(call.channel_id) else None
        return Outbound(
            text=message_text(body),
            private=call.ephemeral,
            thread_id=thread,
            pings_nobody=pings_nobody(body),
            within_limits=within_limits(body),
            buttons=[_action_id(c) for c in ids],
            raw={"call": call, "message": call.response, "custom_ids": ids},
            pings=pings(body),
            links=_MD_LINK.findall(body.get("content") or ""),
        )

    async def _sent_after(self, mark: int, key: str) -> list[Outbound]:
        await self.bot.finished(key)
        return [self._outbound(c) for c in self.fake.sent_messages(mark)]

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
        mark = self.fake.mark()
        channel_id = thread if thread is not None else self.channel(channel)
        message = await self.fake.user_message(self.user(user), text, channel_id=channel_id, mention_bot=mention, dm=dm)
        return await self._sent_after(mark, message["id"])

    async def admin(self, command: str, *, user: str = "U1", admin: bool, channel: str = "C1") -> list[Outbound]:
        mark = self.fake.mark()
        permissions = MEMBER_PERMISSIONS | MANAGE_GUILD if admin else MEMBER_PERMISSIONS
        interaction = await self.fake.slash_command(
            self.user(user),
            "qabot",
            [{"name": command, "type": 1, "options": []}],
            channel_id=self.channel(channel),
            permissions=permissions,
        )
        return await self._sent_after(mark, interaction["id"])

    async def click_feedback(self, outbound: Outbound, *, up: bool, user: str = "U1") -> list[Outbound]:
        return await self.click(outbound, Action.FEEDBACK_UP if up else Action.FEEDBACK_DOWN, user=user)

    async def click(self, outbound: Outbound, action_id: str, *, user: str = "U1") -> list[Outbound]:
        raw: dict[str, Any] = outbound.raw  # type: ignore[assignment]
        custom_id = next(c for c in raw["custom_ids"] if _action_id(c) == action_id)
        mark = self.fake.mark()
        interaction = await self.fake.click_button(self.user(user), raw["message"], custom_id)
        return await self._sent_after(mark, interaction["id"])

    def feedback_count(self) -> int:
        return self.service.feedback.feedback_count()
