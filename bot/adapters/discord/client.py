"""The Discord adapter: a discord.py client that translates events for the ConversationService.

Shape follows discord.py's examples/advanced_startup.py: the shared service and settings are
created once (DiscordAdapter) and passed into the client; `setup_hook` does the async start-up work
(register the slash commands and the persistent feedback buttons, sync the commands).

What this module owns, and nothing more:
- turning a mention, DM, thread follow-up, slash command or button click into an IncomingMessage;
- Discord's rules: answer interactions within 3 s (defer first), never ping (AllowedMentions.none()),
  ignore bots (itself included), open a thread per question where the channel allows it (and reply
  in place when opening one fails, for whatever reason), Manage Server / configured ids for admin
  commands;
- delivering the rendered messages (render.py owns the size limits): a message Discord refuses
  with its embeds is sent again as plain text; an answer that still cannot be delivered is logged
  as an error and counted (`QabotDiscordBot.undelivered`), never dropped silently.

Intents: the privileged Message Content intent is off unless DISCORD_MESSAGE_CONTENT_INTENT=true.
Discord delivers the text of messages that mention the bot and of DMs without it; it is needed
for follow-ups in the bot's threads that do not mention it, and for watched channels (questions
answered without a mention: `/qabot watch`, DISCORD_WATCHED_CHANNEL_IDS).
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import re
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

import aiohttp
import discord
from discord import app_commands

from bot.adapters.base import ChatAdapter, ReplyLimits
from bot.adapters.discord.render import (
    CONTENT_LIMIT,
    FEEDBACK_CUSTOM_ID_TEMPLATE,
    HANDOFF_CUSTOM_ID_TEMPLATE,
    QUOTE_LIMIT,
    TEACH_CUSTOM_ID_TEMPLATE,
    MessagePayload,
    button_custom_id,
    feedback_custom_id,
    handoff_content,
    plain_payloads,
    render_discord,
)
from bot.adapters.discord.settings import DiscordSettings
from bot.adapters.discord.text import clean_discord_text
from bot.conversation.models import (
    ADMIN_COMMANDS,
    TEACH_NAME,
    Action,
    Button,
    FeedbackVote,
    Handoff,
    IncomingMessage,
    Reply,
    ReplyKind,
    feedback_vote,
)
from bot.conversation.service import TEXT_HINT_FOLLOW_UP
from bot.core.split import clip, split_text

log = logging.getLogger(__name__)

# replies that open a thread on the asking message; refusals, limits and errors are answered in place
_THREAD_KINDS = frozenset({ReplyKind.ANSWER, ReplyKind.ABSTAIN, ReplyKind.HELP})
_USER_MESSAGE_TYPES = frozenset({discord.MessageType.default, discord.MessageType.reply})
_THREAD_NAME_LIMIT = 100
_OWN_THREADS_KEPT = 10_000


TEXT_HINT_MENTION_FOLLOW_UP = "Mention me in this thread to ask a follow-up."
TEXT_WATCH_NEEDS_INTENT = (
    "I can't read messages that don't mention me yet: switch on the Message Content intent in the Developer "
    "Portal (Bot > Privileged Gateway Intents) and set DISCORD_MESSAGE_CONTENT_INTENT=true, then restart me."
)
# what can fail on the way to Discord besides an HTTP error answer
_SEND_ERRORS = (discord.HTTPException, aiohttp.ClientError, asyncio.TimeoutError)


def default_intents(*, message_content: bool = False) -> discord.Intents:
    """The minimal intents: guilds, channel and DM messages.

    Discord includes the text of messages that mention the bot, and of DMs, without the privileged
    Message Content intent; `message_content=True` (which must also be switched on in the Developer
    Portal, docs/discord.md) adds the text of follow-ups in the bot's threads that do not mention it,
    and of the messages in watched channels. Slash commands and buttons never need it.
    """
    intents = discord.Intents.none()
    intents.guilds = True
    intents.guild_messages = True
    intents.dm_messages = True
    intents.message_content = message_content
    return intents


class FeedbackButton(discord.ui.DynamicItem[discord.ui.Button], template=FEEDBACK_CUSTOM_ID_TEMPLATE):
    """👍/👎 button whose custom_id carries the vote and answer id, so clicks work after a restart."""

    def __init__(self, vote: FeedbackVote, answer_id: str, *, label: str | None = None) -> None:
        up = vote is FeedbackVote.UP
        action_id = Action.FEEDBACK_UP if up else Action.FEEDBACK_DOWN
        custom_id = feedback_custom_id(action_id, answer_id)
        if custom_id is None:
            raise ValueError(f"answer id {answer_id!r} cannot be carried in a custom_id")
        emoji = "👍" if up else "👎"
        # the service's labels carry the emoji ("👍 Helpful"); Discord shows it in its own slot
        label = (label or "").removeprefix(emoji).strip() or ("Helpful" if up else "Not helpful")
        super().__init__(
            discord.ui.Button(style=discord.ButtonStyle.secondary, emoji=emoji, label=label, custom_id=custom_id)
        )
        self.vote = vote
        self.answer_id = answer_id

    @classmethod
    async def from_custom_id(
        cls, interaction: discord.Interaction, item: discord.ui.Button, match: re.Match[str], /
    ) -> FeedbackButton:
        vote = FeedbackVote.UP if match["vote"] == "up" else FeedbackVote.DOWN
        return cls(vote, match["answer_id"], label=item.label)

    async def callback(self, interaction: discord.Interaction) -> None:
        client = interaction.client
        if isinstance(client, QabotDiscordBot):
            await client.on_feedback(interaction, self.answer_id, self.vote)


class HandoffButton(discord.ui.DynamicItem[discord.ui.Button], template=HANDOFF_CUSTOM_ID_TEMPLATE):
    """ "Ask a person": its custom_id carries the answer id, so clicks work after a restart."""

    def __init__(self, answer_id: str, *, label: str | None = None) -> None:
        custom_id = button_custom_id(Action.HANDOFF, answer_id)
        if custom_id is None:
            raise ValueError(f"answer id {answer_id!r} cannot be carried in a custom_id")
        emoji = "🙋"
        label = (label or "").removeprefix(emoji).strip() or "Ask a person"
        super().__init__(
            discord.ui.Button(style=discord.ButtonStyle.secondary, emoji=emoji, label=label, custom_id=custom_id)
        )
        self.answer_id = answer_id

    @classmethod
    async def from_custom_id(
        cls, interaction: discord.Interaction, item: discord.ui.Button, match: re.Match[str], /
    ) -> HandoffButton:
        return cls(match["answer_id"], label=item.label)

    async def callback(self, interaction: discord.Interaction) -> None:
        client = interaction.client
        if isinstance(client, QabotDiscordBot):
            await client.on_handoff(interaction, self.answer_id)


class TeachButton(discord.ui.DynamicItem[discord.ui.Button], template=TEACH_CUSTOM_ID_TEMPLATE):
    """A "Teach qabot" choice (a candidate passage, or "Not covered"): its custom_id carries the offer and the
    choice, so a click works after a restart and on any process."""

    def __init__(self, value: str, *, label: str | None = None) -> None:
        not_covered = value.endswith(":none")
        action = Action.TEACH_NOT_COVERED if not_covered else Action.TEACH_PICK
        custom_id = button_custom_id(action, value)
        if custom_id is None:
            raise ValueError(f"{value!r} cannot be carried in a custom_id")
        style = discord.ButtonStyle.danger if not_covered else discord.ButtonStyle.primary
        super().__init__(discord.ui.Button(style=style, label=clip(label or "Pick", 80), custom_id=custom_id))
        self.value = value

    @classmethod
    async def from_custom_id(
        cls, interaction: discord.Interaction, item: discord.ui.Button, match: re.Match[str], /
    ) -> TeachButton:
        return cls(match["value"], label=item.label)

    async def callback(self, interaction: discord.Interaction) -> None:
        client = interaction.client
        if isinstance(client, QabotDiscordBot):
            await client.on_teach_pick(interaction, self.value)


def feedback_view(buttons: tuple[Button, ...]) -> discord.ui.View | None:
    """A view of the answer's buttons (feedback, "Ask a person"). Fully dynamic, so discord.py does not
    keep it in memory per message."""
    view = discord.ui.View(timeout=None)
    for b in buttons:
        vote = feedback_vote(b.action_id)
        if vote is not None:
            view.add_item(FeedbackButton(vote, b.value, label=b.label or None))
        elif b.action_id == Action.HANDOFF and button_custom_id(b.action_id, b.value) is not None:
            view.add_item(HandoffButton(b.value, label=b.label or None))
        elif b.action_id in (Action.TEACH_PICK, Action.TEACH_NOT_COVERED) and button_custom_id(b.action_id, b.value):
            view.add_item(TeachButton(b.value, label=b.label or None))
    return view if view.children else None


class QabotCommandTree(app_commands.CommandTree):
    async def on_error(self, interaction: discord.Interaction, error: app_commands.AppCommandError, /) -> None:
        log.error("slash command %s failed", getattr(interaction.command, "qualified_name", "?"), exc_info=error)
        text = "Sorry, something went wrong while answering. Please try again later."
        try:
            if interaction.response.is_done():
                await interaction.followup.send(text, ephemeral=True)
            else:
                await interaction.response.send_message(text, ephemeral=True)
        except discord.HTTPException:
            log.warning("could not tell the user about the failure", exc_info=True)


@dataclass(frozen=True)
class DiscordTarget:
    """Where a message goes: a channel, thread or DM, optionally as a reply to a message."""

    channel: discord.abc.Messageable
    reference: discord.Message | None = None


class DiscordAdapter(ChatAdapter):
    """The Discord adapter: its settings, limits and delivery; `serve` runs a QabotDiscordBot."""

    name = "discord"
    settings_class = DiscordSettings
    limits = ReplyLimits(message_chars=CONTENT_LIMIT, quote_chars=QUOTE_LIMIT)
    threads = True
    settings: DiscordSettings

    def clean_text(self, text: str) -> str:
        return clean_discord_text(text)

    async def serve(self, stop: asyncio.Event) -> None:
        token = self.settings.token.get_secret_value() if self.settings.token else ""
        bot = make_bot(self)
        async with bot:
            running = asyncio.create_task(bot.start(token), name="discord-client")
            stopping = asyncio.create_task(stop.wait(), name="discord-stop")
            try:
                await asyncio.wait({running, stopping}, return_when=asyncio.FIRST_COMPLETED)
            finally:
                stopping.cancel()
            if not running.done():
                await bot.close()
            await running  # raises why the client stopped, if it failed

    async def send(self, to: DiscordTarget, reply: Reply) -> bool:
        """The reply as messages with embeds (plain text where Discord refuses them); True when all arrived."""
        return await send_payloads(to.channel, render_discord(reply), reference=to.reference)

    async def send_text(self, to: DiscordTarget, text: str) -> None:
        chunks = split_text(text, CONTENT_LIMIT)
        await send_payloads(to.channel, [MessagePayload(content=c) for c in chunks], reference=to.reference)


class QabotDiscordBot(discord.Client):
    """qabot's discord.py client: events and interactions in, through its DiscordAdapter."""

    def __init__(self, *, adapter: DiscordAdapter, **options: Any) -> None:
        options.setdefault("allowed_mentions", discord.AllowedMentions.none())
        intents = default_intents(message_content=adapter.settings.message_content_intent)
        super().__init__(intents=intents, **options)
        self.adapter = adapter
        self.service = adapter.service
        self.settings = adapter.settings
        self.tree = QabotCommandTree(self)
        self._admin_role_ids = frozenset(adapter.settings.admin_role_ids)
        self._admin_user_ids = frozenset(adapter.settings.admin_user_ids)
        # thread id -> parent channel id of recent threads this process opened, for when a message
        # arrives in a thread discord.py has not cached; otherwise thread.owner_id (the bot) tells
        self._own_threads: OrderedDict[int, int] = OrderedDict()
        # answers that could not be delivered even as plain text (each is also logged as an error)
        self.undelivered = 0

    # ---- start-up ---------------------------------------------------------------------------

    async def setup_hook(self) -> None:
        if not self.intents.message_content:
            log.info(
                "Message Content intent is off: mentions, DMs and /ask are answered; follow-ups in my threads "
                "need a mention, and watched channels (/qabot watch) get no answers. To answer without a "
                "mention, enable the intent in the Developer Portal and set DISCORD_MESSAGE_CONTENT_INTENT=true."
            )
            if self.settings.watched_channel_ids:
                log.warning(
                    "DISCORD_WATCHED_CHANNEL_IDS is set but the Message Content intent is off: Discord does not "
                    "send me the text of messages that do not mention me, so those channels get no answers."
                )
        self.add_dynamic_items(FeedbackButton, HandoffButton, TeachButton)
        self._register_commands()
        if not self.syncs_commands:
            log.info("shards %s: the process running shard 0 registers the application commands", self.shard_ids)
            return
        # one bulk overwrite per start: commands appear/update without a separate deploy step
        try:
            synced = await self.tree.sync()
        except discord.HTTPException as exc:
            # the commands registered by an earlier start keep working; messages do not need them
            log.warning("could not sync application commands (%s); keeping the registered ones", exc)
        else:
            log.info("synced %d application commands", len(synced))

    def _register_commands(self) -> None:
        bot = self

        @app_commands.command(name="ask", description="Ask a question about the knowledge base")
        @app_commands.describe(question="Your question", private="Only you see the answer (default: no)")
        async def ask(interaction: discord.Interaction, question: str, private: bool = False) -> None:
            await bot.on_ask(interaction, question, private)

        admin = app_commands.Group(
            name="qabot",
            description="qabot administration (Manage Server or configured admins)",
            default_permissions=discord.Permissions(manage_guild=True),
            guild_only=True,
        )

        @app_commands.describe(undo="Remove the taught pair with this id")
        async def taught(interaction: discord.Interaction, undo: app_commands.Range[int, 1] | None = None) -> None:
            await bot.on_admin(interaction, "taught", f"undo {undo}" if undo is not None else "")

        @app_commands.describe(since="Only questions asked since: 7d, 24h, 30m, 2w or a date (2026-11-01)")
        async def report(interaction: discord.Interaction, since: str | None = None) -> None:
            await bot.on_admin(interaction, "report", f"--since {since}" if since else "")

        with_options = {"taught": taught, "report": report}  # the admin commands that take an option
        for name, description in ADMIN_COMMANDS.items():
            callback = with_options.get(name) or self._admin_callback(name)
            admin.add_command(app_commands.Command(name=name, description=description, callback=callback))

        # "Teach qabot" on a message's Apps menu: registered like the slash commands, for the same admins
        async def teach(interaction: discord.Interaction, message: discord.Message) -> None:
            await bot.on_teach(interaction, message)

        teach_menu = app_commands.ContextMenu(name=TEACH_NAME, callback=teach, type=discord.AppCommandType.message)
        teach_menu.default_permissions = discord.Permissions(manage_guild=True)
        teach_menu.guild_only = True

        self.tree.add_command(ask)
        self.tree.add_command(admin)
        self.tree.add_command(teach_menu)

    def _admin_callback(self, command: str) -> Any:
        async def run(interaction: discord.Interaction) -> None:
            await self.on_admin(interaction, command)

        return run

    @property
    def syncs_commands(self) -> bool:
        """Commands are global: with several shard processes only the one running shard 0 syncs them."""
        ids = getattr(self, "shard_ids", None)
        return ids is None or 0 in ids

    async def on_ready(self) -> None:
        shards = getattr(self, "shard_ids", None)
        log.info(
            "connected to Discord as %s (id %s)%s",
            self.user,
            getattr(self.user, "id", "?"),
            f", shards {shards} of {self.shard_count}" if shards is not None else "",
        )

    # ---- who is who -------------------------------------------------------------------------

    def is_admin(self, user: discord.abc.User, permissions: discord.Permissions | None = None) -> bool:
        """Manage Server (or Administrator), or a configured admin user id or role id."""
        if str(user.id) in self._admin_user_ids:
            return True
        if permissions is None and isinstance(user, discord.Member):
            permissions = user.guild_permissions
        if permissions is not None and (permissions.manage_guild or permissions.administrator):
            return True
        roles = getattr(user, "roles", ())
        return any(str(role.id) in self._admin_role_ids for role in roles)

    def _mentions_me(self, message: discord.Message) -> bool:
        # not ClientUser.mentioned_in: that is also true for @everyone
        me = self.user
        if me is None:
            return False
        if any(u.id == me.id for u in message.mentions):
            return True
        own_role = message.guild.self_role if message.guild else None
        return own_role is not None and own_role in message.role_mentions

    def _mentions_someone(self, message: discord.Message) -> bool:
        """The message mentions a person or a role other than the bot, or replies to someone else's
        message: it is addressed to them (@everyone and @here address everyone, the bot included)."""
        me = self.user
        if any(me is None or u.id != me.id for u in message.mentions):
            return True
        own_role = message.guild.self_role if message.guild else None
        if any(role != own_role for role in message.role_mentions):
            return True
        if message.reference is not None and message.type is discord.MessageType.reply:
            replied = message.reference.resolved
            return not (isinstance(replied, discord.Message) and me is not None and replied.author.id == me.id)
        return False

    def _is_own_thread(self, channel: Any) -> bool:
        if channel.id in self._own_threads:
            return True
        return isinstance(channel, discord.Thread) and self.user is not None and channel.owner_id == self.user.id

    # ---- messages ---------------------------------------------------------------------------

    def translate_message(self, message: discord.Message) -> IncomingMessage | None:
        """The IncomingMessage for a Discord message, or None when it is not for the bot."""
        author = message.author
        if author.bot or (self.user is not None and author.id == self.user.id):
            return None
        if message.type not in _USER_MESSAGE_TYPES:
            return None
        channel = message.channel
        common: dict[str, Any] = {
            "user_id": str(author.id),
            "message_id": str(message.id),
            "event_id": f"message:{message.id}",
            "is_admin": self.is_admin(author),
        }
        incoming = self.adapter.incoming
        if message.guild is None:
            return incoming(message.content, channel_id=str(channel.id), is_dm=True, addressed=True, **common)
        mentioned = self._mentions_me(message)
        text = message.content  # the adapter removes the mention (and every other bit of markup)
        in_thread = isinstance(channel, discord.Thread) or channel.id in self._own_threads
        if in_thread:
            parent_id = getattr(channel, "parent_id", None) or self._own_threads.get(channel.id) or channel.id
            if not mentioned and not self._is_own_thread(channel):
                return None
            if not mentioned and not self.intents.message_content:
                return None  # Discord sent it without its text: nothing to answer
            return incoming(text, channel_id=str(parent_id), thread_id=str(channel.id), addressed=mentioned, **common)
        if not mentioned:
            if not self.intents.message_content:
                return None  # Discord sent it without its text
            # answered only in a watched channel, only a question, only confidently (the service decides)
            return incoming(
                text,
                channel_id=str(channel.id),
                addressed=False,
                mentions_someone=self._mentions_someone(message),
                **common,
            )
        return incoming(text, channel_id=str(channel.id), addressed=True, **common)

    async def on_message(self, message: discord.Message) -> None:
        incoming = self.translate_message(message)
        if incoming is None:
            return
        reply = await asyncio.to_thread(self.service.handle, incoming)
        reply = with_repeat_link(reply, message.guild.id if message.guild else None)
        if not self.intents.message_content and TEXT_HINT_FOLLOW_UP in reply.hints:
            # without the intent a follow-up without a mention arrives empty: say to mention
            hints = tuple(TEXT_HINT_MENTION_FOLLOW_UP if h == TEXT_HINT_FOLLOW_UP else h for h in reply.hints)
            reply = dataclasses.replace(reply, hints=hints)
        if not reply.should_send:
            return
        send = self.adapter.send
        in_place = DiscordTarget(message.channel, reference=message)
        where: Any = message.channel  # where the answer went: the hand-off goes there too
        if incoming.is_dm:
            delivered = await send(DiscordTarget(message.channel), reply)
        elif incoming.thread_id is None and reply.kind in _THREAD_KINDS and not reply.private:
            thread = await self._open_thread(message, incoming.text)
            delivered = thread is not None and await send(DiscordTarget(thread), reply)
            where = thread if delivered else message.channel
            if not delivered:
                # no thread, or nothing could be posted in it: answer in place
                delivered = await send(in_place, reply)
        else:
            delivered = await send(in_place, reply)
        if reply.handoff is not None:
            await self.hand_off(reply.handoff, where)
        if not delivered:
            self.undelivered += 1
            where = self.service.pseudonyms.channel(self.adapter.name, str(message.channel.id))
            log.error("an answer in channel %s was NOT delivered (see the warnings above)", where)

    async def _open_thread(self, message: discord.Message, question: str) -> discord.Thread | None:
        """A new thread on the asking message, or None when one cannot be opened, for any reason
        (no permission, a thread already there, an HTTP error, a lost connection, ...)."""
        name = clip(" ".join(question.split()) or "qabot", _THREAD_NAME_LIMIT)
        try:
            thread = await message.create_thread(name=name)
        except Exception as exc:  # whatever the reason, the answer goes out as a reply instead
            where = self.service.pseudonyms.channel(self.adapter.name, str(message.channel.id))
            log.info("cannot open a thread in channel %s (%s); replying in place", where, type(exc).__name__)
            return None
        self._own_threads[thread.id] = message.channel.id
        while len(self._own_threads) > _OWN_THREADS_KEPT:
            self._own_threads.popitem(last=False)
        if thread.id != message.id:
            # Discord gives a thread started from a message the message's id, which the service
            # already remembers; tell it about any other id so follow-ups there are answered
            channel_id, thread_id = str(message.channel.id), str(thread.id)
            await asyncio.to_thread(self.service.remember_thread, self.adapter.name, channel_id, thread_id)
        return thread

    # ---- interactions -----------------------------------------------------------------------

    def _interaction_place(self, interaction: discord.Interaction) -> tuple[str, str | None]:
        channel = interaction.channel
        if isinstance(channel, discord.Thread):
            return str(channel.parent_id), str(channel.id)
        return str(interaction.channel_id), None

    def _interaction_message(self, interaction: discord.Interaction, text: str, **extra: Any) -> IncomingMessage:
        channel_id, thread_id = self._interaction_place(interaction)
        return self.adapter.incoming(
            text,
            user_id=str(interaction.user.id),
            channel_id=channel_id,
            thread_id=thread_id,
            is_dm=interaction.guild_id is None,
            is_admin=self.is_admin(interaction.user, interaction.permissions if interaction.guild_id else None),
            addressed=True,
            event_id=f"interaction:{interaction.id}",
            **extra,
        )

    async def on_ask(self, interaction: discord.Interaction, question: str, private: bool) -> None:
        # within 3 s or the interaction token dies: acknowledge first, answer after retrieval
        await interaction.response.defer(thinking=True, ephemeral=private)
        incoming = self._interaction_message(interaction, question, private=private, is_command=True)
        reply = await asyncio.to_thread(self.service.handle, incoming)
        await self._send_followups(interaction, reply, deferred_ephemeral=private)

    async def on_admin(self, interaction: discord.Interaction, command: str, options: str = "") -> None:
        # a rebuild takes longer than 3 s; the refusal for non-admins comes from the service (it logs it)
        await interaction.response.defer(thinking=True, ephemeral=True)
        incoming = self._interaction_message(interaction, f"/qabot {command} {options}".strip(), private=True)
        reply = await asyncio.to_thread(self.service.handle_admin, incoming, command)
        if command == "watch" and reply.kind is ReplyKind.ADMIN and not self.intents.message_content:
            reply = dataclasses.replace(reply, hints=(*reply.hints, TEXT_WATCH_NEEDS_INTENT))
        await self._send_followups(interaction, reply, deferred_ephemeral=True)

    async def on_teach(self, interaction: discord.Interaction, message: discord.Message) -> None:
        """ "Teach qabot" on a message: its candidate passages as buttons, privately (the service checks admin)."""
        await interaction.response.defer(thinking=True, ephemeral=True)
        # the target message's text comes with the interaction (no Message Content intent needed)
        incoming = self._interaction_message(interaction, message.content or "", private=True)
        reply = await asyncio.to_thread(self.service.teach_offer, incoming)
        await self._send_followups(interaction, reply, deferred_ephemeral=True)

    async def on_teach_pick(self, interaction: discord.Interaction, value: str) -> None:
        """A teach button: the pair is stored (or "not covered")."""
        await interaction.response.defer(thinking=True, ephemeral=True)
        admin = self.is_admin(interaction.user, interaction.permissions if interaction.guild_id else None)
        reply = await asyncio.to_thread(
            self.service.teach_pick, value, platform=self.adapter.name, user_id=str(interaction.user.id), is_admin=admin
        )
        await self._send_followups(interaction, reply, deferred_ephemeral=True)

    async def on_feedback(self, interaction: discord.Interaction, answer_id: str, vote: FeedbackVote) -> None:
        await interaction.response.defer(thinking=True, ephemeral=True)
        reply = await asyncio.to_thread(
            self.service.record_feedback,
            answer_id,
            vote,
            platform=self.adapter.name,
            user_id=str(interaction.user.id),
            channel_id=str(interaction.channel_id),
            handoff_for=self.adapter.handoff_for,
        )
        await self._send_followups(interaction, reply, deferred_ephemeral=True)

    async def on_handoff(self, interaction: discord.Interaction, answer_id: str) -> None:
        """The "Ask a person" button: the service tags the channel's role in the thread, once per thread."""
        await interaction.response.defer(thinking=True, ephemeral=True)
        reply = await asyncio.to_thread(
            self.service.request_handoff,
            answer_id,
            platform=self.adapter.name,
            user_id=str(interaction.user.id),
            channel_id=str(interaction.channel_id),
            handoff_for=self.adapter.handoff_for,
        )
        await self._send_followups(interaction, reply, deferred_ephemeral=True)

    async def hand_off(self, handoff: Handoff, fallback: Any = None) -> bool:
        """Tag the channel's role in the thread: the only mention qabot ever lets ping, that role alone."""
        try:
            role = int(handoff.to)
            target = self.get_channel(int(handoff.thread_id)) or fallback
            if target is None:
                target = await self.fetch_channel(int(handoff.thread_id))
            await target.send(
                content=handoff_content(handoff),
                allowed_mentions=discord.AllowedMentions(
                    everyone=False, users=False, roles=[discord.Object(id=role)], replied_user=False
                ),
            )
            return True
        except (ValueError, *_SEND_ERRORS) as exc:
            self.undelivered += 1
            where = self.service.pseudonyms.channel(self.adapter.name, handoff.channel_id)
            log.error("a hand-off in channel %s was NOT delivered: %s", where, _describe(exc))
            return False

    async def _send_followups(
        self, interaction: discord.Interaction, reply: Reply, *, deferred_ephemeral: bool
    ) -> None:
        payloads = render_discord(reply)
        private = deferred_ephemeral or reply.private
        if not payloads or (private and not deferred_ephemeral):
            # nothing to say, or a private reply after a public "thinking…": remove the placeholder
            # so the first follow-up is a new ephemeral message instead of editing a public one
            await interaction.delete_original_response()

        async def send(p: MessagePayload, _ref: Any = None) -> None:
            view = feedback_view(p.buttons) if p.buttons else None
            await interaction.followup.send(
                content=p.content,
                embeds=list(p.embeds),
                view=view if view is not None else discord.utils.MISSING,
                ephemeral=private,
                allowed_mentions=discord.AllowedMentions.none(),
                wait=True,
            )

        for payload in payloads:
            if not await deliver_payload(payload, send):
                self.undelivered += 1
                log.error("a reply to /%s was NOT delivered", getattr(interaction.command, "qualified_name", "?"))
                break
        if reply.handoff is not None:
            await self.hand_off(reply.handoff, interaction.channel)


def jump_url(guild_id: int, channel_id: str, message_id: str) -> str:
    """Discord's link to a message (the first message of the earlier thread)."""
    return f"https://discord.com/channels/{guild_id}/{channel_id}/{message_id}"


def with_repeat_link(reply: Reply, guild_id: int | None) -> Reply:
    """The reply with a line linking the earlier thread it repeats (in the same guild), if any."""
    earlier = reply.repeat_of
    if earlier is None or guild_id is None:
        return reply
    if not (earlier.channel_id.isdigit() and earlier.thread_id.isdigit()):
        return reply
    url = jump_url(guild_id, earlier.channel_id, earlier.thread_id)
    line = f"{earlier.label(time.time())}: [see that thread]({url})"
    return dataclasses.replace(reply, hints=(*reply.hints, line))


class ShardedQabotDiscordBot(QabotDiscordBot, discord.AutoShardedClient):
    """The same bot over several gateway shards in one process (discord.py's AutoShardedClient): the shards
    DISCORD_SHARD_IDS of DISCORD_SHARD_COUNT, or all that Discord recommends (DISCORD_SHARD_COUNT=auto).
    Every shard answers with the same service; what a shard must know about another's answers (feedback,
    threads, the index version) lives in the shared database and state, so buttons and admin commands work
    whichever shard, and whichever process, receives them."""


def make_bot(adapter: DiscordAdapter, **options: Any) -> QabotDiscordBot:
    """The client for the adapter's settings: one connection, or the shards this process runs."""
    settings = adapter.settings
    if not settings.sharded:
        return QabotDiscordBot(adapter=adapter, **options)
    options.setdefault("shard_count", settings.shard_total)
    options.setdefault("shard_ids", settings.shard_id_list)
    return ShardedQabotDiscordBot(adapter=adapter, **options)


async def send_payloads(
    target: discord.abc.Messageable,
    payloads: list[MessagePayload],
    *,
    reference: discord.Message | None = None,
) -> bool:
    """Send every payload in order; True when all of them arrived (a refused embed as plain text)."""
    for n, payload in enumerate(payloads):
        ref = reference if n == 0 else None

        async def send(p: MessagePayload, ref: discord.Message | None = ref) -> None:
            kwargs: dict[str, Any] = {
                "content": p.content,
                "embeds": list(p.embeds),
                "allowed_mentions": discord.AllowedMentions.none(),
            }
            view = feedback_view(p.buttons) if p.buttons else None
            if view is not None:
                kwargs["view"] = view
            if ref is not None:
                await ref.reply(mention_author=False, **kwargs)
            else:
                await target.send(**kwargs)

        if not await deliver_payload(payload, send):
            return False
    return True


async def deliver_payload(payload: MessagePayload, send: Any) -> bool:
    """send(payload); if Discord refuses it and it has embeds, send it again as plain text."""
    try:
        await send(payload)
        return True
    except _SEND_ERRORS as exc:
        if not payload.embeds:
            log.warning("sending a message failed: %s", _describe(exc))
            return False
        log.warning("Discord refused a message with embeds (%s); sending it as plain text", _describe(exc))
    try:
        first, *rest = plain_payloads(payload)
        await send(first)  # in reply to the question, like the message it replaces
        for plain in rest:
            await send(plain, None)
        return True
    except _SEND_ERRORS as exc:
        log.warning("sending the plain text failed too: %s", _describe(exc))
        return False


def _describe(exc: BaseException) -> str:
    """An error in one line without the request: status and Discord's code, or the exception's type."""
    if isinstance(exc, discord.HTTPException):
        return f"HTTP {exc.status}, code {exc.code}"
    return type(exc).__name__
