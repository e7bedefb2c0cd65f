"""Run the real QabotDiscordBot against FakeDiscord, and read back what it sent.

`ObservedBot` is the production client plus one thing a test needs: knowing when the bot has
finished with a message or interaction (it may legitimately send nothing), and any exception it hit.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import AsyncIterator
from typing import Any

import discord

from bot.adapters.discord import DiscordAdapter, DiscordSettings, QabotDiscordBot
from bot.adapters.discord.client import ShardedQabotDiscordBot
from bot.conversation.models import FeedbackVote
from tests.discord.fake_discord import FakeDiscord

TOKEN = "fake-discord-token"
ADMIN_USER_ID = "424242424242424242"  # configured in DISCORD_ADMIN_USER_IDS by the fixtures


class ObservedBot(QabotDiscordBot):
    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("guild_ready_timeout", 0.05)  # the fake sends its one GUILD_CREATE at once
        super().__init__(**kwargs)
        self._done: dict[str, asyncio.Event] = {}
        self.errors: list[BaseException] = []

    def _event(self, key: str) -> asyncio.Event:
        return self._done.setdefault(key, asyncio.Event())

    async def finished(self, key: str, timeout: float = 30.0) -> None:
        """Wait until the bot is done with message / interaction `key` (its snowflake)."""
        await asyncio.wait_for(self._event(str(key)).wait(), timeout)
        if self.errors:
            raise AssertionError(f"the bot failed: {self.errors!r}") from self.errors[0]

    async def _observe(self, key: int, coro: Any) -> None:
        try:
            await coro
        except BaseException as exc:
            self.errors.append(exc)
            raise
        finally:
            self._event(str(key)).set()

    async def on_message(self, message: discord.Message) -> None:
        await self._observe(message.id, super().on_message(message))

    async def on_ask(self, interaction: discord.Interaction, question: str, private: bool) -> None:
        await self._observe(interaction.id, super().on_ask(interaction, question, private))

    async def on_admin(self, interaction: discord.Interaction, command: str, options: str = "") -> None:
        await self._observe(interaction.id, super().on_admin(interaction, command, options))

    async def on_teach(self, interaction: discord.Interaction, message: discord.Message) -> None:
        await self._observe(interaction.id, super().on_teach(interaction, message))

    async def on_teach_pick(self, interaction: discord.Interaction, value: str) -> None:
        await self._observe(interaction.id, super().on_teach_pick(interaction, value))

    async def on_feedback(self, interaction: discord.Interaction, answer_id: str, vote: FeedbackVote) -> None:
        await self._observe(interaction.id, super().on_feedback(interaction, answer_id, vote))

    async def on_handoff(self, interaction: discord.Interaction, answer_id: str) -> None:
        await self._observe(interaction.id, super().on_handoff(interaction, answer_id))


class ObservedShardedBot(ObservedBot, ShardedQabotDiscordBot):
    """ShardedQabotDiscordBot, observed: the same production methods over discord.py's AutoShardedClient."""


@contextlib.asynccontextmanager
async def running_bot(
    fake: FakeDiscord, *, service: Any, settings: DiscordSettings, **kwargs: Any
) -> AsyncIterator[ObservedBot]:
    """Start an ObservedBot (of a real DiscordAdapter) against `fake`, wait for READY, and close it
    (and its task) at the end. Settings with DISCORD_SHARD_COUNT run the shards they name."""
    if settings.sharded:
        kwargs.setdefault("shard_count", settings.shard_total)
        kwargs.setdefault("shard_ids", settings.shard_id_list)
        bot: ObservedBot = ObservedShardedBot(adapter=DiscordAdapter(service, settings), **kwargs)
    else:
        bot = ObservedBot(adapter=DiscordAdapter(service, settings), **kwargs)
    start = asyncio.create_task(bot.start(TOKEN), name="discord-bot")
    ready = asyncio.create_task(bot.wait_until_ready())
    try:
        done, _ = await asyncio.wait({start, ready}, timeout=20, return_when=asyncio.FIRST_COMPLETED)
        if start in done:
            start.result()  # raises why it stopped
            raise AssertionError("the bot stopped before it was ready")
        if ready not in done:
            raise AssertionError("the bot did not become ready in time")
        yield bot
    finally:
        ready.cancel()
        await bot.close()
        if not start.done():
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.wait_for(start, 10)
        elif not start.cancelled():
            start.exception()  # already raised above; mark it retrieved


# ---- reading the fake's record ---------------------------------------------------------------

_ESCAPED = re.compile(r"\\([^\sA-Za-z0-9])")  # Discord hides a backslash before punctuation


def visible_text(markdown: str) -> str:
    """Roughly what a person sees: quote markers and markdown escapes removed."""
    lines = []
    for line in markdown.splitlines():
        if line.startswith("> "):
            line = line[2:]
        elif line == ">":
            line = ""
        lines.append(_ESCAPED.sub(r"\1", line))
    return "\n".join(lines)


def message_text(body: dict[str, Any]) -> str:
    """All text of a message payload: content and every embed part, as shown."""
    parts = [body.get("content") or ""]
    for embed in body.get("embeds") or []:
        parts.append(embed.get("title") or "")
        parts.append(embed.get("description") or "")
        for f in embed.get("fields") or []:
            parts.append(f.get("name") or "")
            parts.append(f.get("value") or "")
        parts.append((embed.get("footer") or {}).get("text") or "")
    return visible_text("\n".join(p for p in parts if p))


def custom_ids(body: dict[str, Any]) -> list[str]:
    return [
        c.get("custom_id", "")
        for row in body.get("components") or []
        for c in row.get("components") or []
        if c.get("type") == 2
    ]


def within_limits(body: dict[str, Any]) -> bool:
    """Discord's size limits, checked on the JSON the bot sent."""
    content = body.get("content") or ""
    embeds = body.get("embeds") or []
    if len(content) > 2000 or len(embeds) > 10:
        return False
    total = 0
    for e in embeds:
        title, desc = e.get("title") or "", e.get("description") or ""
        footer = (e.get("footer") or {}).get("text") or ""
        author = (e.get("author") or {}).get("name") or ""
        if len(title) > 256 or len(desc) > 4096 or len(footer) > 2048 or len(author) > 256:
            return False
        fields = e.get("fields") or []
        if len(fields) > 25:
            return False
        for f in fields:
            if len(f.get("name") or "") > 256 or len(f.get("value") or "") > 1024:
                return False
            total += len(f.get("name") or "") + len(f.get("value") or "")
        total += len(title) + len(desc) + len(footer) + len(author)
    return total <= 6000 and bool(content or embeds)


def pings_nobody(body: dict[str, Any]) -> bool:
    am = body.get("allowed_mentions")
    return (
        isinstance(am, dict)
        and am.get("parse") == []
        and not am.get("users")
        and not am.get("roles")
        and not am.get("replied_user")
    )
