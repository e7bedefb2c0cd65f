"""The Slack adapter: a slack-bolt AsyncApp that turns Slack events into IncomingMessages.

The conversation layer (ConversationService) decides what to say; this module only translates:

- `app_mention` in a channel     -> question, answered in the thread of the asking message
- `message` in a DM (message.im) -> question, answered in the DM
- `message` in a thread          -> follow-up with addressed=False (the service answers it only in
                                    threads it has answered); a message that mentions the bot is left
                                    to its `app_mention` twin, because Slack sends both
- `message` at a channel's top level, without a mention -> addressed=False: the service answers it
                                    only in a watched channel (`/qabot watch`, SLACK_WATCHED_CHANNEL_IDS),
                                    only a question, only confidently, in the message's thread
- `/ask <text>`                  -> ack at once, then a private (ephemeral) answer with a
                                    "Share in channel" button
- `/qabot reindex|status|rollback|report|watch|unwatch|taught` -> ack at once, admin check, private result
- feedback buttons               -> ack, stored by the service, private thanks
- the "Teach qabot" message shortcut (callback_id qabot_teach) -> ack, admin check, the candidate passages
                                    as an ephemeral message (response_url); its buttons store the pick

Retries: Slack re-sends an event it thinks was not acknowledged (X-Slack-Retry-Num over HTTP,
retry_attempt in Socket Mode). Bolt passes retries to the listeners like any event, so every event's
`event_id` goes into the IncomingMessage and the service answers an event id once.

The service is synchronous (it embeds on the CPU); it runs on a worker thread via asyncio.to_thread so
the event loop keeps acknowledging requests within Slack's 3 s deadline.

Delivery: Slack allows about one message per second per channel and answers more with HTTP 429 and
`Retry-After`. Messages to one channel go out one at a time, in order (ChannelQueue), and the Web API
client carries slack_sdk's retry handlers (rate limits, connection errors, 500/503), so a 429 delays
an answer instead of losing it. Blocks Slack refuses (any `invalid_blocks`-family error) are sent
again as plain text. An answer that still cannot be delivered is logged as an error and counted
(`SlackAdapter.undelivered`), never dropped silently. Stopping waits for the answers in progress.

HTTP mode (SlackHttpServer): every request's signature is checked on the raw body before anything
parses it; unsigned, stale or replayed requests and signed but malformed bodies get 401/400 at once,
and slow clients are cut off (header and body read timeouts). Request bodies are never logged.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import functools
import json
import logging
import os
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import aiohttp
from aiohttp import web
from slack_bolt.adapter.aiohttp import to_aiohttp_response
from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler
from slack_bolt.async_app import AsyncApp
from slack_bolt.authorization import AuthorizeResult
from slack_bolt.request.async_request import AsyncBoltRequest
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.async_handler import AsyncRetryHandler
from slack_sdk.http_retry.builtin_async_handlers import (
    AsyncConnectionErrorRetryHandler,
    AsyncRateLimitErrorRetryHandler,
    AsyncServerErrorRetryHandler,
)
from slack_sdk.signature import SignatureVerifier
from slack_sdk.web.async_client import AsyncWebClient
from slack_sdk.web.async_slack_response import AsyncSlackResponse

from bot.adapters.base import ChatAdapter, ReplyLimits
from bot.adapters.slack.render import (
    QUOTE_LIMIT,
    SECTION_TEXT_LIMIT,
    escape_mrkdwn,
    handoff_text,
    render_slack_blocks,
    render_teach_blocks,
    with_link,
    without_actions,
)
from bot.adapters.slack.settings import DEFAULT_HTTP_HOST, SlackSettings
from bot.adapters.slack.text import clean_slack_text, mentions_someone
from bot.config import ConfigError
from bot.conversation.models import (
    ADMIN_COMMANDS,
    Action,
    Button,
    EarlierThread,
    Handoff,
    IncomingMessage,
    Reply,
    ReplyKind,
    feedback_vote,
)
from bot.ops.server import Probes, ops_routes
from bot.state.base import EventLog
from bot.state.local import RecentEvents

if TYPE_CHECKING:
    from bot.conversation.service import ConversationService

log = logging.getLogger("qabot.slack")

EVENTS_PATH = "/slack/events"
SHARE_LABEL = "Share in channel"
TEXT_SHARE_GONE = "That answer is no longer available to share. Ask again with /ask."
# message subtypes that still carry a person's question; every other subtype (edits, deletions,
# joins, bot_message, ...) is not a question
_QUESTION_SUBTYPES = {None, "thread_broadcast", "file_share"}
_ADMIN_CACHE_S = 300.0
HEADER_TIMEOUT_S = 10.0  # a connection must deliver a request's headers within this (slowloris)
BODY_TIMEOUT_S = 10.0  # ... and then its body within this
MAX_BODY_BYTES = 1 << 20  # Slack's payloads are a few KB
_SIGNATURE_WINDOW_S = 300  # Slack: refuse requests whose timestamp is more than 5 minutes off
# 429s: wait as long as Slack says (Retry-After), up to this many times per message; a channel's
# messages are queued (ChannelQueue), so one retry is usually enough
RATE_LIMIT_RETRIES = 5
DRAIN_TIMEOUT_S = 20.0  # on stop, answers in progress get this long to be posted
ADOPT_INTERVAL_S = 1.0  # how often a replica looks for events that a dead replica had accepted


def slack_retry_handlers() -> list[AsyncRetryHandler]:
    """slack_sdk's own retry handlers: rate limits (Retry-After), connection errors, 500/503."""
    return [
        AsyncRateLimitErrorRetryHandler(max_retry_count=RATE_LIMIT_RETRIES),
        AsyncConnectionErrorRetryHandler(max_retry_count=2),
        AsyncServerErrorRetryHandler(max_retry_count=2),
    ]


def blocks_refused(error: str | None) -> bool:
    """True for the errors that mean "these blocks", where the same message as plain text can pass:
    invalid_blocks, invalid_blocks_format, msg_blocks_too_long, too_many_blocks, msg_too_long, ..."""
    return bool(error) and ("block" in error or error in ("msg_too_long", "invalid_arguments"))


class ChannelQueue:
    """One message at a time per channel, first come first served (asyncio.Lock is fair).

    Slack's limit is per channel: queued behind a message that is waiting out a 429, the next one
    does not hit the limit again, and answers in one channel arrive in the order they were ready.
    """

    def __init__(self) -> None:
        self._locks: dict[str, tuple[asyncio.Lock, int]] = {}

    @contextlib.asynccontextmanager
    async def turn(self, channel: str) -> AsyncIterator[None]:
        lock, users = self._locks.get(channel, (asyncio.Lock(), 0))
        self._locks[channel] = (lock, users + 1)
        try:
            async with lock:
                yield
        finally:
            lock, users = self._locks[channel]
            if users <= 1:
                del self._locks[channel]  # no one waiting: forget the channel
            else:
                self._locks[channel] = (lock, users - 1)

    def __len__(self) -> int:
        return len(self._locks)


class Listeners:
    """The Bolt listeners' runs: how many are running and how many have finished.

    Stopping waits for the running ones (`drain`), so an answer being posted is not cut off;
    `wait_until` lets a caller wait for any other state (e.g. the n-th run to have ended).
    """

    def __init__(self) -> None:
        self.running = 0
        self.finished = 0
        self._changed = asyncio.Condition()

    def track(self, fn: Callable[..., Awaitable[None]]) -> Callable[..., Awaitable[None]]:
        # functools.wraps: Bolt passes arguments by the names of the wrapped listener's parameters
        @functools.wraps(fn)
        async def wrapper(*args: Any, **kwargs: Any) -> None:
            self.running += 1
            try:
                await fn(*args, **kwargs)
            finally:
                self.running -= 1
                self.finished += 1
                async with self._changed:
                    self._changed.notify_all()

        return wrapper

    async def wait_until(self, condition: Callable[[Listeners], bool], timeout: float) -> None:
        """Wait until `condition(self)` holds, e.g. `lambda ls: ls.finished >= n`; TimeoutError after `timeout` s."""
        async with asyncio.timeout(timeout), self._changed:
            await self._changed.wait_for(lambda: condition(self))

    async def drain(self, timeout: float = DRAIN_TIMEOUT_S) -> bool:
        """Wait until no listener is running; False when some still were after `timeout` seconds."""
        try:
            await self.wait_until(lambda ls: ls.running == 0, timeout)
        except TimeoutError:
            log.warning("stopped with %d Slack event(s) still being answered", self.running)
            return False
        return True


@dataclass(frozen=True)
class SlackTarget:
    """Where a message goes: a channel (and thread), through the request's Web API client."""

    client: AsyncWebClient
    channel: str
    thread_ts: str | None = None
    ephemeral_user: str | None = None  # only this user sees it (chat.postEphemeral)


class SlackAdapter(ChatAdapter):
    """qabot on Slack: the Bolt app (`app`) and its listeners, delivery within Slack's limits, and
    `serve` over Socket Mode (the default) or HTTP (SLACK_HTTP_PORT / `--http PORT`)."""

    name = "slack"
    settings_class = SlackSettings
    limits = ReplyLimits(message_chars=SECTION_TEXT_LIMIT, quote_chars=QUOTE_LIMIT)
    threads = True
    settings: SlackSettings

    def __init__(self, service: ConversationService, settings: SlackSettings) -> None:
        super().__init__(service, settings)
        self.client = AsyncWebClient(
            token=_secret(settings.bot_token),
            base_url=settings.api_url.rstrip("/") + "/",
            retry_handlers=slack_retry_handlers(),
        )
        self.auth = SingleFlightAuth(self.client)
        self._admin_cache: dict[str, tuple[float, bool]] = {}
        self._answer_slots = asyncio.Semaphore(_default_answer_threads())
        self.queue = ChannelQueue()
        self.listeners = Listeners()
        # messages that could not be delivered even after retries (each is also logged as an error)
        self.undelivered = 0
        # the event log's calls (Redis with QABOT_REDIS_URL) on threads of their own: never queued behind
        # the answers on the default executor, never blocking the event loop while Redis is slow
        self._event_log_calls = ThreadPoolExecutor(max_workers=2, thread_name_prefix="qabot-event-log")
        self.app = self._build_app()

    def clean_text(self, text: str) -> str:
        return clean_slack_text(text)

    # ---- admin check -------------------------------------------------------------------------

    async def is_admin(self, user_id: str, client: AsyncWebClient) -> bool:
        """Configured SLACK_ADMIN_USER_IDS, or (if enabled) a workspace admin / owner per users.info."""
        if user_id in self.settings.admin_user_ids:
            return True
        if not self.settings.workspace_admins_are_admins:
            return False
        now = time.monotonic()
        cached = self._admin_cache.get(user_id)
        if cached is not None and cached[0] > now:
            return cached[1]
        try:
            resp = await client.users_info(user=user_id)
        except SlackApiError as err:
            log.warning("users.info failed: %s", err.response.get("error"))
            return False
        user = resp.get("user") or {}
        allowed = bool(user.get("is_admin") or user.get("is_owner") or user.get("is_primary_owner"))
        self._admin_cache[user_id] = (now + _ADMIN_CACHE_S, allowed)
        return allowed

    # ---- service calls -----------------------------------------------------------------------

    async def _handle(self, msg: IncomingMessage) -> Reply:
        # Answering is mostly CPU work that holds the GIL part of the time: many more threads than
        # cores would not answer faster, only starve the event loop that acknowledges Slack within 3 s.
        async with self._answer_slots:
            return await asyncio.to_thread(self.service.handle, msg)

    # ---- posting -----------------------------------------------------------------------------

    async def _post_once(
        self, client: AsyncWebClient, *, channel: str, ephemeral_user: str | None, **kwargs: Any
    ) -> None:
        """chat.postMessage / chat.postEphemeral in the channel's turn; raises SlackApiError."""
        # parse="none" + no link_names: Slack does not turn "@everyone" or names into mentions
        kwargs.update(parse="none", link_names=False)
        if kwargs.get("blocks") == []:
            kwargs.pop("blocks")  # a plain-text message
        async with self.queue.turn(channel):
            if ephemeral_user is not None:
                await client.chat_postEphemeral(channel=channel, user=ephemeral_user, **kwargs)
            else:
                await client.chat_postMessage(channel=channel, unfurl_links=False, unfurl_media=False, **kwargs)

    async def post(
        self,
        client: AsyncWebClient,
        *,
        channel: str,
        blocks: list[dict[str, Any]],
        text: str,
        thread_ts: str | None = None,
        ephemeral_user: str | None = None,
    ) -> bool:
        """Deliver a message; blocks Slack refuses are sent again as plain text. False when it could
        not be delivered (after the client's retries); that is logged as an error, never silent."""
        common = {"channel": channel, "text": text, "thread_ts": thread_ts, "ephemeral_user": ephemeral_user}
        try:
            try:
                await self._post_once(client, blocks=blocks, **common)
                return True
            except SlackApiError as err:
                error = err.response.get("error")
                if not blocks or not blocks_refused(error):
                    raise
                log.error("Slack refused the blocks (%s); sending the plain text instead", error)
            await self._post_once(client, **common)
            return True
        except SlackApiError as err:
            reason = str(err.response.get("error"))
        except (TimeoutError, aiohttp.ClientError) as err:
            reason = type(err).__name__
        self.undelivered += 1
        where = self.service.pseudonyms.channel(self.name, channel)
        log.error("a message to channel %s was NOT delivered: %s", where, reason)
        return False

    async def reply(self, respond: Any, *, blocks: list[dict[str, Any]], text: str, **kwargs: Any) -> bool:
        """Answer through the command's or button's response_url; plain text when the blocks are refused."""
        try:
            resp = await respond(blocks=blocks or None, text=text, **kwargs)
            status, body = getattr(resp, "status_code", 200), str(getattr(resp, "body", ""))
            if status >= 400 and blocks and blocks_refused(body):
                log.error("Slack refused the blocks (%s); sending the plain text instead", body[:40])
                resp = await respond(text=text, **kwargs)
                status, body = getattr(resp, "status_code", 200), str(getattr(resp, "body", ""))
            if status < 400:
                return True
            reason = f"HTTP {status} {body[:40]}"
        except (TimeoutError, aiohttp.ClientError) as err:
            reason = type(err).__name__
        self.undelivered += 1
        log.error("a reply through response_url was NOT delivered: %s", reason)
        return False

    async def send(self, to: SlackTarget, reply: Reply) -> bool:
        """A Reply as Block Kit blocks (plain text where Slack refuses them); True when it arrived."""
        if not reply.should_send:
            return True
        blocks, text = render_slack_blocks(reply)
        if reply.repeat_of is not None:
            url = await self.permalink(to.client, reply.repeat_of)
            if url:
                blocks = with_link(blocks, reply.repeat_of.label(time.time()), url, "see that thread")
        delivered = await self.post(
            to.client,
            channel=to.channel,
            blocks=blocks,
            text=text,
            thread_ts=to.thread_ts,
            ephemeral_user=to.ephemeral_user,
        )
        if reply.handoff is not None:
            await self.hand_off(to.client, reply.handoff)
        return delivered

    async def permalink(self, client: AsyncWebClient, earlier: EarlierThread) -> str | None:
        """chat.getPermalink of the earlier thread's first message; None when Slack cannot give it (the
        message was deleted, the bot left the channel, ...): the answer then goes out without the link."""
        try:
            resp = await client.chat_getPermalink(channel=earlier.channel_id, message_ts=earlier.thread_id)
        except SlackApiError as err:
            log.info("no permalink for an earlier thread (%s); answering without the link", err.response.get("error"))
            return None
        except (TimeoutError, aiohttp.ClientError) as err:
            log.info("no permalink for an earlier thread (%s); answering without the link", type(err).__name__)
            return None
        url = resp.get("permalink")
        return url if isinstance(url, str) else None

    async def hand_off(self, client: AsyncWebClient, handoff: Handoff) -> bool:
        """Tag the channel's user group in the thread (a public message, the group's mention notifies it)."""
        return await self.post(
            client, channel=handoff.channel_id, blocks=[], text=handoff_text(handoff), thread_ts=handoff.thread_id
        )

    async def send_text(self, to: SlackTarget, text: str) -> None:
        await self.post(
            to.client,
            channel=to.channel,
            blocks=[],
            text=escape_mrkdwn(text),
            thread_ts=to.thread_ts,
            ephemeral_user=to.ephemeral_user,
        )

    # ---- events ------------------------------------------------------------------------------

    async def on_app_mention(self, event: dict[str, Any], body: dict[str, Any], client: AsyncWebClient) -> None:
        channel = event.get("channel", "")
        if channel.startswith("D"):
            return  # in a DM the same message also arrives as message.im, which answers it
        if _from_bot(event):
            return
        # answers live in the thread of the asking message; that thread is the conversation
        thread_ts = event.get("thread_ts") or event.get("ts")
        await self._answer_event(event, body, client, thread_ts=thread_ts, addressed=True, is_dm=False)

    async def on_message(
        self, event: dict[str, Any], body: dict[str, Any], client: AsyncWebClient, context: dict[str, Any]
    ) -> None:
        if event.get("subtype") not in _QUESTION_SUBTYPES or _from_bot(event):
            return
        if event.get("user") is None or event.get("user") == context.get("bot_user_id"):
            return
        if event.get("channel_type") == "im":
            await self._answer_event(event, body, client, thread_ts=event.get("thread_ts"), addressed=True, is_dm=True)
            return
        bot_user_id = context.get("bot_user_id")
        text = event.get("text") or ""
        if bot_user_id and f"<@{bot_user_id}>" in text:
            return  # its app_mention twin answers it
        # in a thread: a follow-up if the thread is the bot's; at the top level: answered only in a
        # watched channel, in the message's own thread (the service decides both)
        thread_ts = event.get("thread_ts") or event.get("ts")
        await self._answer_event(
            event,
            body,
            client,
            thread_ts=thread_ts,
            addressed=False,
            is_dm=False,
            mentions_someone=mentions_someone(text, bot_user_id),
        )

    async def _answer_event(
        self,
        event: dict[str, Any],
        body: dict[str, Any],
        client: AsyncWebClient,
        *,
        thread_ts: str | None,
        addressed: bool,
        is_dm: bool,
        mentions_someone: bool = False,
    ) -> None:
        user = event.get("user", "")
        channel = event.get("channel", "")
        msg = self.incoming(
            event.get("text") or "",
            user_id=user,
            channel_id=channel,
            thread_id=thread_ts,
            message_id=event.get("ts"),
            is_dm=is_dm,
            is_admin=user in self.settings.admin_user_ids,
            addressed=addressed,
            mentions_someone=mentions_someone,
            event_id=body.get("event_id"),
        )
        reply = await self._handle(msg)
        target = SlackTarget(client, channel, thread_ts, ephemeral_user=user if reply.private else None)
        await self.send(target, reply)

    # ---- /ask --------------------------------------------------------------------------------

    async def on_ask(self, ack: Any, command: dict[str, Any], respond: Any) -> None:
        await ack()  # within 3 s; the answer follows through response_url
        channel = command.get("channel_id", "")
        msg = self.incoming(
            command.get("text") or "",
            user_id=command.get("user_id", ""),
            channel_id=channel,
            is_dm=channel.startswith("D") or command.get("channel_name") == "directmessage",
            is_admin=command.get("user_id") in self.settings.admin_user_ids,
            addressed=True,
            private=True,
            is_command=True,
        )
        reply = await self._handle(msg)
        if not reply.should_send:
            return
        if reply.kind is ReplyKind.ANSWER:
            reply = self._with_share_button(reply)
        blocks, text = render_slack_blocks(reply)
        await self.reply(respond, blocks=blocks, text=text, response_type="ephemeral", replace_original=False)

    def _with_share_button(self, reply: Reply) -> Reply:
        """The button carries the answer's id; sharing reads the answer back from the store, so any
        replica can share it, also after a restart. An answer the store did not take has no id: no button."""
        if not reply.answer_id:
            return reply
        buttons = [b for b in reply.buttons if b.action_id != Action.SHARE]
        buttons.insert(0, Button(action_id=Action.SHARE, label=SHARE_LABEL, value=reply.answer_id))
        return dataclasses.replace(reply, buttons=tuple(buttons))

    async def on_share(self, ack: Any, body: dict[str, Any], action: dict[str, Any], respond: Any, client: Any) -> None:
        await ack()
        stored = await asyncio.to_thread(self.service.stored_reply, action.get("value", ""))
        if stored is None:
            await self.reply(
                respond,
                text=TEXT_SHARE_GONE,
                blocks=[],
                response_type="ephemeral",
                replace_original=False,
            )
            return
        blocks, text = render_slack_blocks(stored)
        blocks = without_actions(blocks, [Action.SHARE])  # a stored answer has none; one share per answer
        channel = (body.get("channel") or {}).get("id") or (body.get("container") or {}).get("channel_id", "")
        try:
            await self._post_once(client, channel=channel, ephemeral_user=None, blocks=blocks, text=text)
        except SlackApiError as err:
            # not a member of the channel: the slash command's response_url can still post visibly
            log.info("chat.postMessage for share failed (%s); using response_url", err.response.get("error"))
            await self.reply(
                respond,
                blocks=blocks,
                text=text,
                response_type="in_channel",
                replace_original=False,
            )
        # the private copy loses its share button, so one answer is shared once
        await self.reply(respond, blocks=blocks, text=text, response_type="ephemeral", replace_original=True)

    # ---- feedback ----------------------------------------------------------------------------

    async def on_feedback(
        self, ack: Any, body: dict[str, Any], action: dict[str, Any], respond: Any, client: Any
    ) -> None:
        await ack()
        vote = feedback_vote(action.get("action_id", ""))
        if vote is None:
            return
        user = (body.get("user") or {}).get("id", "")
        container = body.get("container") or {}
        channel = (body.get("channel") or {}).get("id") or container.get("channel_id", "")
        reply = await asyncio.to_thread(
            self.service.record_feedback,
            action.get("value", ""),
            vote,
            platform=self.name,
            user_id=user,
            channel_id=channel,
            handoff_for=self.handoff_for,
        )
        await self._acknowledge(body, respond, client, reply, user=user, channel=channel, container=container)

    async def on_handoff(
        self, ack: Any, body: dict[str, Any], action: dict[str, Any], respond: Any, client: Any
    ) -> None:
        """The "Ask a person" button: the service tags the channel's group in the thread, once per thread."""
        await ack()
        user = (body.get("user") or {}).get("id", "")
        container = body.get("container") or {}
        channel = (body.get("channel") or {}).get("id") or container.get("channel_id", "")
        reply = await asyncio.to_thread(
            self.service.request_handoff,
            action.get("value", ""),
            platform=self.name,
            user_id=user,
            channel_id=channel,
            handoff_for=self.handoff_for,
        )
        await self._acknowledge(body, respond, client, reply, user=user, channel=channel, container=container)

    async def _acknowledge(
        self,
        body: dict[str, Any],
        respond: Any,
        client: Any,
        reply: Reply,
        *,
        user: str,
        channel: str,
        container: dict[str, Any],
    ) -> None:
        """A button's private acknowledgement, then the hand-off it started, if any (public, in the thread)."""
        if reply.should_send:
            await self._acknowledge_privately(
                body, respond, client, reply, user=user, channel=channel, container=container
            )
        if reply.handoff is not None:
            await self.hand_off(client, reply.handoff)

    async def _acknowledge_privately(
        self,
        body: dict[str, Any],
        respond: Any,
        client: Any,
        reply: Reply,
        *,
        user: str,
        channel: str,
        container: dict[str, Any],
    ) -> None:
        blocks, text = render_slack_blocks(reply)
        if container.get("is_ephemeral") and body.get("response_url"):
            await self.reply(respond, blocks=blocks, text=text, response_type="ephemeral", replace_original=False)
            return
        thread_ts = (body.get("message") or {}).get("thread_ts") or container.get("thread_ts")
        try:
            await self._post_once(
                client, channel=channel, ephemeral_user=user, blocks=blocks, text=text, thread_ts=thread_ts
            )
        except SlackApiError as err:
            # e.g. an answer shared into a channel the bot is not in: reply through the button's URL
            log.info("chat.postEphemeral for feedback failed (%s); using response_url", err.response.get("error"))
            if body.get("response_url"):
                await self.reply(respond, blocks=blocks, text=text, response_type="ephemeral", replace_original=False)

    # ---- "Teach qabot" ---------------------------------------------------------------------------

    async def on_teach(self, ack: Any, shortcut: dict[str, Any], respond: Any, client: AsyncWebClient) -> None:
        """The message shortcut on a question: its candidate passages, privately, as buttons (admins only)."""
        await ack()
        user = (shortcut.get("user") or {}).get("id", "")
        channel = (shortcut.get("channel") or {}).get("id", "")
        message = shortcut.get("message") or {}
        msg = self.incoming(
            message.get("text") or "",
            user_id=user,
            channel_id=channel,
            message_id=message.get("ts"),
            is_dm=channel.startswith("D"),
            is_admin=await self.is_admin(user, client),
            addressed=True,
            private=True,
        )
        reply = await asyncio.to_thread(self.service.teach_offer, msg)
        blocks, text = render_teach_blocks(reply)
        await self.reply(respond, blocks=blocks, text=text, response_type="ephemeral", replace_original=False)

    async def on_teach_pick(
        self, ack: Any, body: dict[str, Any], action: dict[str, Any], respond: Any, client: AsyncWebClient
    ) -> None:
        """A candidate's button or "Not covered": stored; the choices are replaced by what was taught."""
        await ack()
        user = (body.get("user") or {}).get("id", "")
        admin = await self.is_admin(user, client)
        reply = await asyncio.to_thread(
            self.service.teach_pick, action.get("value", ""), platform=self.name, user_id=user, is_admin=admin
        )
        blocks, text = render_slack_blocks(reply)
        await self.reply(respond, blocks=blocks, text=text, response_type="ephemeral", replace_original=True)

    # ---- /qabot ------------------------------------------------------------------------------

    async def on_qabot(self, ack: Any, command: dict[str, Any], respond: Any, client: AsyncWebClient) -> None:
        await ack()
        words = (command.get("text") or "").split()
        sub = words[0].lower() if words else ""
        if sub not in ADMIN_COMMANDS:
            usage = ", ".join(f"`/qabot {name}`" for name in ADMIN_COMMANDS)
            await self.reply(
                respond,
                blocks=[],
                text=f"Usage: {usage} (admins only). To ask a question, use `/ask <question>` or mention me.",
                response_type="ephemeral",
                replace_original=False,
            )
            return
        user = command.get("user_id", "")
        channel = command.get("channel_id", "")
        admin = await self.is_admin(user, client)
        msg = self.incoming(
            command.get("text") or "",
            user_id=user,
            channel_id=channel,
            is_dm=channel.startswith("D"),
            is_admin=admin,
            addressed=True,
            private=True,
        )
        if admin and sub == "reindex":
            await self.reply(
                respond,
                blocks=[],
                text="Rebuilding the index… I'll post the result here.",
                response_type="ephemeral",
                replace_original=False,
            )
        reply = await asyncio.to_thread(self.service.handle_admin, msg, sub)
        if not reply.should_send:
            return
        blocks, text = render_slack_blocks(reply)
        await self.reply(respond, blocks=blocks, text=text, response_type="ephemeral", replace_original=False)

    # ---- the Bolt app and serving -------------------------------------------------------------

    def _build_app(self) -> AsyncApp:
        """The Bolt app with qabot's listeners; it connects nowhere by itself (see serve).

        Bolt's own signature check is off: it parses the body before checking, and logs the body of
        a refused request; SlackHttpServer checks every request on its raw body first, and Socket
        Mode needs no signatures.
        """
        client = self.client
        # The app's own client carries no token: Bolt gives each request a client with the token that
        # `authorize` returns (giving both would make Bolt warn that the token is ignored).
        app_client = AsyncWebClient(
            token=None,
            base_url=client.base_url,
            timeout=client.timeout,
            ssl=client.ssl,
            proxy=client.proxy,
            session=client.session,
            headers=client.headers,
            logger=client.logger,
            retry_handlers=client.retry_handlers,  # Bolt copies them into each request's client
        )
        app = AsyncApp(
            client=app_client,
            authorize=self.auth.as_bolt_authorize(),
            signing_secret=_secret(self.settings.signing_secret) or "",
            request_verification_enabled=False,
            name="qabot",
        )
        track = self.listeners.track
        app.event("app_mention")(track(self._finishing(self.on_app_mention)))
        app.event("message")(track(self._finishing(self.on_message)))
        app.command("/ask")(track(self.on_ask))
        app.command("/qabot")(track(self.on_qabot))
        app.action(Action.SHARE.value)(track(self.on_share))
        for action in (Action.FEEDBACK_UP, Action.FEEDBACK_DOWN):
            app.action(action.value)(track(self.on_feedback))
        app.action(Action.HANDOFF.value)(track(self.on_handoff))
        app.shortcut(Action.TEACH.value)(track(self.on_teach))  # the "Teach qabot" message shortcut
        for action in (Action.TEACH_PICK, Action.TEACH_NOT_COVERED):
            app.action(action.value)(track(self.on_teach_pick))
        return app

    def _finishing(self, fn: Callable[..., Awaitable[None]]) -> Callable[..., Awaitable[None]]:
        """An event listener that tells the event log when its event is dealt with (however it ended), so no
        other replica answers it again. The listener must take `body` (Bolt passes arguments by name)."""

        @functools.wraps(fn)
        async def wrapper(*args: Any, **kwargs: Any) -> None:
            try:
                await fn(*args, **kwargs)
            finally:
                event_id = (kwargs.get("body") or {}).get("event_id")
                if isinstance(event_id, str) and event_id:
                    # at once: the sooner it is recorded, the smaller the window in which a replica dying
                    # after posting the answer gets it answered a second time (docs/scaling.md)
                    await asyncio.get_running_loop().run_in_executor(
                        self._event_log_calls, self.service.events.finish, f"slack:{event_id}"
                    )

        return wrapper

    async def adopt_orphans(self) -> int:
        """Answer the events that replicas which died had acknowledged but not answered (Slack will not send
        them again); returns how many were taken over."""
        payloads = await asyncio.get_running_loop().run_in_executor(self._event_log_calls, self.service.events.adopt)
        for payload in payloads:
            try:
                request = AsyncBoltRequest(body=payload, headers={"content-type": ["application/json"]})
                await self.app.async_dispatch(request)
            except Exception:  # a payload that does not parse: nothing to answer
                log.exception("could not take over an event of a replica that stopped")
        return len(payloads)

    async def _adopting(self, stop: asyncio.Event, interval_s: float = ADOPT_INTERVAL_S) -> None:
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), interval_s)
            if not stop.is_set():
                await self.adopt_orphans()

    async def serve(self, stop: asyncio.Event) -> None:
        """Socket Mode by default, HTTP mode when SLACK_HTTP_PORT / `--http` is set, until `stop` is set.
        Raises ConfigError, before connecting, when Slack rejects the bot token."""
        adopting = asyncio.create_task(self._adopting(stop), name="slack-adopt")
        try:
            await self._serve(stop)
        finally:
            adopting.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await adopting

    async def _serve(self, stop: asyncio.Event) -> None:
        try:
            auth = await self.auth.auth_test()
        except SlackApiError as err:
            raise ConfigError(
                f"Slack rejected SLACK_BOT_TOKEN ({err.response.get('error')}): copy the Bot User OAuth Token "
                "(xoxb-...) from OAuth & Permissions at https://api.slack.com/apps into .env."
            ) from None
        log.info("connected to Slack team %s as %s", auth.get("team"), auth.get("user"))
        if self.settings.http_port is None:
            handler = AcceptingSocketModeHandler(self.app, _secret(self.settings.app_token), self.service.events)
            await handler.connect_async()
            log.info("Slack Socket Mode connected")
            try:
                await stop.wait()
            finally:
                await handler.close_async()
                await self.listeners.drain()
        else:
            server = SlackHttpServer(
                self.app,
                signing_secret=_secret(self.settings.signing_secret) or "",
                host=self.settings.http_host,
                port=self.settings.http_port,
                events=self.service.events,
                probes=Probes(self.service),
            )
            await server.start()
            try:
                await stop.wait()
            finally:
                await server.stop()
                await self.listeners.drain()


class AcceptingSocketModeHandler(AsyncSocketModeHandler):
    """Bolt's Socket Mode handler that records each event in the event log before acknowledging it, as
    SlackHttpServer does, so another replica answers it if this one dies first."""

    def __init__(self, app: AsyncApp, app_token: str | None, events: EventLog) -> None:
        super().__init__(app, app_token)
        self.events = events

    async def handle(self, client: Any, req: Any) -> None:
        payload = req.payload if req.type == "events_api" else None
        if isinstance(payload, dict) and isinstance(payload.get("event_id"), str):
            self.events.accept(f"slack:{payload['event_id']}", json.dumps(payload))
        await super().handle(client, req)


def _secret(value: Any) -> str | None:
    return value.get_secret_value() if value is not None else None


class SingleFlightAuth:
    """Bolt's `authorize` for one workspace: one auth.test per process, shared by every request.

    Bolt's default single-team authorization caches auth.test only once a call has returned, so a
    burst of events at start-up (Slack redelivering a backlog after a restart) fires one auth.test
    per event and delays every ack behind it. Here concurrent requests wait for the one call.
    """

    def __init__(self, client: AsyncWebClient):
        self.client = client
        self._result: AsyncSlackResponse | None = None
        self._lock = asyncio.Lock()

    async def auth_test(self) -> AsyncSlackResponse:
        if self._result is None:
            async with self._lock:
                if self._result is None:
                    self._result = await self.client.auth_test()
        return self._result

    def as_bolt_authorize(self) -> Callable[..., Awaitable[AuthorizeResult]]:
        # Bolt injects arguments by parameter name, so it needs a plain function (no `self`)
        async def authorize(user_id: str | None) -> AuthorizeResult:
            return await self.authorize(user_id)

        return authorize

    async def authorize(self, user_id: str | None) -> AuthorizeResult:
        result = await self.auth_test()
        return AuthorizeResult(
            enterprise_id=result.get("enterprise_id"),
            team_id=result.get("team_id"),
            bot_id=result.get("bot_id"),
            bot_user_id=result.get("user_id"),
            bot_token=self.client.token,
            user_id=user_id,
            bot_scopes=result.headers.get("x-oauth-scopes"),
        )


def _default_answer_threads() -> int:
    # twice the cores: answering also waits on SQLite commits (feedback log), so a few more threads
    # than cores keep the CPU busy; measured on 2 cores, 2 threads were slower and 8 no faster than 4
    return max(2, min(8, 2 * (os.cpu_count() or 1)))


def _from_bot(event: dict[str, Any]) -> bool:
    return bool(event.get("bot_id")) or event.get("subtype") == "bot_message" or bool(event.get("bot_profile"))


class SlackHttpServer:
    """HTTP mode: events, commands and buttons all POST to /slack/events; GET /healthz for checks.

    Each request is checked before Bolt sees it, in this order, without parsing the body:
    headers within HEADER_TIMEOUT_S and the body within BODY_TIMEOUT_S of the connection (else the
    connection is closed / 408), at most MAX_BODY_BYTES (413), a numeric timestamp within 5 minutes
    and a valid `X-Slack-Signature` over the raw body (401), a UTF-8 body (400). Then a replay of a
    command or button click already handled (same signature within the 5 minutes) is acknowledged
    and dropped (events are de-duplicated by their event_id in the service), and a body that is not a JSON object (broken JSON, an array, a `payload=` that is not JSON) gets
    400. Only then does Bolt parse and dispatch it. Log lines name the reason, never the body.
    """

    def __init__(
        self,
        app: AsyncApp,
        *,
        host: str = DEFAULT_HTTP_HOST,
        port: int = 3000,
        signing_secret: str,
        path: str = EVENTS_PATH,
        header_timeout_s: float = HEADER_TIMEOUT_S,
        body_timeout_s: float = BODY_TIMEOUT_S,
        max_body_bytes: int = MAX_BODY_BYTES,
        events: EventLog | None = None,
        probes: Probes | None = None,
    ):
        self.app = app
        if not signing_secret:
            raise ValueError("HTTP mode needs the signing secret (SLACK_SIGNING_SECRET)")
        self.verifier = SignatureVerifier(signing_secret)
        self.path = path
        self.host = host
        self.requested_port = port
        self.port: int | None = None
        self.header_timeout_s = header_timeout_s
        self.body_timeout_s = body_timeout_s
        self.refused = 0  # requests answered 4xx without reaching Bolt
        # replayed commands and clicks (by signature), and the events accepted but not answered yet: in this
        # process, or shared by every replica (the service's EventLog, in Redis with QABOT_REDIS_URL)
        self.events: EventLog = events if events is not None else RecentEvents(ttl_s=_SIGNATURE_WINDOW_S + 60)
        self.web_app = web.Application(client_max_size=max_body_bytes)
        self.web_app.add_routes([web.post(path, self._events)])
        # /healthz, and with the service's probes /readyz and /metrics too
        self.web_app.add_routes(ops_routes(probes) if probes is not None else [web.get("/healthz", self._health)])
        self._runner: web.AppRunner | None = None

    async def _health(self, _request: web.Request) -> web.Response:
        return web.json_response({"ok": True})

    def _refuse(self, status: int, reason: str) -> web.Response:
        self.refused += 1
        log.warning("refused a Slack request with %d: %s", status, reason)
        return web.json_response({"error": reason}, status=status)

    def _replayed(self, signature: str) -> bool:
        return self.events.seen_before(f"slack-request:{signature}")

    async def _events(self, request: web.Request) -> web.StreamResponse:
        try:
            async with asyncio.timeout(self.body_timeout_s):
                raw = await request.read()
        except TimeoutError:
            response = self._refuse(408, f"the body did not arrive within {self.body_timeout_s:g} s")
            response.force_close()
            return response
        except web.HTTPRequestEntityTooLarge:
            return self._refuse(413, "body too large")
        timestamp = request.headers.get("X-Slack-Request-Timestamp", "")
        signature = request.headers.get("X-Slack-Signature", "")
        if not (timestamp.isascii() and timestamp.isdigit() and len(timestamp) <= 12):
            return self._refuse(401, "missing or non-numeric X-Slack-Request-Timestamp")
        if abs(time.time() - int(timestamp)) > _SIGNATURE_WINDOW_S:
            return self._refuse(401, "stale X-Slack-Request-Timestamp (check the clock)")
        try:
            body = raw.decode("utf-8")
        except UnicodeDecodeError:
            return self._refuse(400, "body is not UTF-8")
        if not self.verifier.is_valid(body, timestamp, signature):
            return self._refuse(401, "invalid X-Slack-Signature")
        try:
            bolt_request = AsyncBoltRequest(body=body, query=request.query_string, headers=dict(request.headers))
            if not isinstance(bolt_request.body, dict):
                raise TypeError("not a JSON object")
        except (ValueError, TypeError, AttributeError, KeyError):  # json.JSONDecodeError is a ValueError
            return self._refuse(400, "signed, but the body is not a JSON object or form data")
        # Events carry an event_id that the service answers once (Slack's own retries may even reuse
        # the signature); slash commands and button clicks carry none: a replay would run them again
        event_id = bolt_request.body.get("event_id")
        if event_id is None and self._replayed(signature):
            log.warning("ignored a replayed Slack request (same signature within 5 minutes)")
            return web.Response(status=200)
        if isinstance(event_id, str) and event_id:
            # kept until answered: if this replica dies after the 200 (Slack will not retry), another answers it
            self.events.accept(f"slack:{event_id}", body)
        return await to_aiohttp_response(await self.app.async_dispatch(bolt_request))

    async def start(self) -> None:
        # keepalive_timeout also closes a connection whose request headers have not all arrived in
        # time (aiohttp closes a handler still waiting for a request when it fires): the header timeout
        self._runner = web.AppRunner(
            self.web_app, access_log=None, keepalive_timeout=self.header_timeout_s, lingering_time=0
        )
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.requested_port)
        await site.start()
        self.port = self._runner.addresses[0][1]  # the real port when 0 was asked for
        log.info("Slack HTTP mode listening on %s:%s%s", self.host, self.port, self.path)

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
