"""A loopback fake of the Slack platform: Web API, response_url endpoint and Socket Mode WebSocket.

One aiohttp server on 127.0.0.1 (port 0) that records every call, in the spirit of slack-bolt-python's
tests/mock_web_api_server. Point `AsyncWebClient(base_url=fake.api_url)` at it; response_url values
come from `fake.response_url()`; `apps.connections.open` returns a ws:// URL on the same server.

It says no the way Slack does (always on, so every test checks what it sends):
- blocks: more than 50, a section text over 3,000 characters, a text object without a visible
  character, a button text over 75 → `invalid_blocks`; all text objects together over
  BLOCK_TEXT_TOTAL_LIMIT → `msg_blocks_too_long`; `text` over 40,000 → `msg_too_long`.
  response_url answers those with HTTP 400 and the error as the body, as Slack's webhooks do.
- rate limits, when asked: `rate_limit_per_channel=True` allows one message per second per channel
  (chat.postMessage / chat.postEphemeral) and answers the excess with HTTP 429 `ratelimited` and a
  `Retry-After` header in whole seconds; `ratelimit_next[method] = n` refuses the next n calls.
- connection failures: `drop_next[method] = n` closes the connection without an answer n times.
- `refuse_blocks = "msg_blocks_too_long"` (any code) refuses every message that carries blocks.
- a block_id used twice in one message, or an action_id used twice within one block → `invalid_blocks`.
- chat.getPermalink knows the messages it posted and those a test announced (`remember_message`, e.g.
  a person's question): any other ts is `message_not_found`, a call without channel or message_ts is
  `invalid_arguments`; `fail["chat.getPermalink"] = "channel_not_found"` refuses them all.
Refused calls are recorded too (`Call.error`); `posts` lists only the delivered messages.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import itertools
import json
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

from aiohttp import WSMsgType, web

BOT_USER_ID = "UQABOT"
MAX_BLOCKS = 50
SECTION_TEXT_LIMIT = 3000
BUTTON_TEXT_LIMIT = 75
MESSAGE_TEXT_LIMIT = 40_000
# Slack refuses blocks whose texts total about 12,000 characters (undocumented; reported refused
# between 11,341 and 13,297): the fake refuses from the lowest report.
BLOCK_TEXT_TOTAL_LIMIT = 11_341
_POSTING = ("chat.postMessage", "chat.postEphemeral")
BOT_ID = "BQABOT"
TEAM_ID = "T0TEAM"


@dataclass
class Call:
    method: str  # Web API method ("chat.postMessage") or "response_url"
    args: dict[str, Any]
    token: str | None = None
    at: float = field(default_factory=time.perf_counter)
    path: str = ""
    error: str | None = None  # the error the fake answered with; None when it was accepted


def _text_objects(blocks: list[Any]) -> list[tuple[str, dict[str, Any]]]:
    """(where, text object) for every text object in blocks: section text/fields, context and button texts."""
    found: list[tuple[str, dict[str, Any]]] = []
    for block in blocks:
        if not isinstance(block, dict):
            continue
        kind = block.get("type", "")
        if isinstance(block.get("text"), dict):
            found.append((kind, block["text"]))
        accessory = block.get("accessory")
        if isinstance(accessory, dict) and isinstance(accessory.get("text"), dict):
            found.append((accessory.get("type", "element"), accessory["text"]))
        for f in block.get("fields") or []:
            if isinstance(f, dict):
                found.append((kind + ".field", f))
        for el in block.get("elements") or []:
            if not isinstance(el, dict):
                continue
            if el.get("type") in ("mrkdwn", "plain_text"):
                found.append((kind, el))
            elif isinstance(el.get("text"), dict):
                found.append((el.get("type", "element"), el["text"]))
    return found


def check_message(args: dict[str, Any]) -> str | None:
    """The error Slack would answer for this message payload, or None when it would accept it."""
    text = args.get("text")
    if isinstance(text, str) and len(text) > MESSAGE_TEXT_LIMIT:
        return "msg_too_long"
    blocks = args.get("blocks")
    if blocks is None:
        return None if (text or "").strip() else "no_text"
    if isinstance(blocks, str):
        try:
            blocks = json.loads(blocks)
        except ValueError:
            return "invalid_blocks_format"
    if not isinstance(blocks, list) or len(blocks) > MAX_BLOCKS:
        return "invalid_blocks"
    block_ids = [b.get("block_id") for b in blocks if isinstance(b, dict) and b.get("block_id")]
    if len(block_ids) != len(set(block_ids)):
        return "invalid_blocks"  # a block_id must be unique within a message
    for block in blocks:
        if not isinstance(block, dict):
            continue
        # an action_id must be unique within its block (Slack answers invalid_blocks)
        ids = [el.get("action_id") for el in (block.get("elements") or []) if isinstance(el, dict)]
        ids = [i for i in ids if i]
        if len(ids) != len(set(ids)):
            return "invalid_blocks"
    total = 0
    for where, obj in _text_objects(blocks):
        value = obj.get("text")
        if not isinstance(value, str) or not value.strip():
            return "invalid_blocks"  # "must be more than 0 characters"
        if where == "section" and len(value) > SECTION_TEXT_LIMIT:
            return "invalid_blocks"
        if where == "button" and len(value) > BUTTON_TEXT_LIMIT:
            return "invalid_blocks"
        total += len(value)
    if total >= BLOCK_TEXT_TOTAL_LIMIT:
        return "msg_blocks_too_long"
    return None


class FakeSlack:
    def __init__(self) -> None:
        self.calls: list[Call] = []
        self.users: dict[str, dict[str, Any]] = {}  # users.info answers by user id
        self.fail: dict[str, str] = {}  # method -> Slack error code to answer with (ok: false)
        self.rate_limit_per_channel = False  # one message per second per channel, 429 beyond
        self.ratelimit_next: dict[str, int] = {}  # method -> how many next calls get a 429
        self.drop_next: dict[str, int] = {}  # method -> how many next calls lose their connection
        self.retry_after_s = 1  # Retry-After of an injected 429 (ratelimit_next)
        self.refuse_blocks: str | None = None  # error code for any message with blocks
        self._last_post: dict[str, float] = {}  # channel -> when its last message was accepted
        self.envelope_acks: list[dict[str, Any]] = []
        self.ws_clients: list[web.WebSocketResponse] = []
        self._ts = itertools.count(1)
        self.messages: set[tuple[str, str]] = set()  # (channel, ts) of messages chat.getPermalink knows
        self._changed = asyncio.Condition()
        self._runner: web.AppRunner | None = None
        self.port = 0

    # ---- lifecycle ---------------------------------------------------------------------------

    async def start(self) -> FakeSlack:
        app = web.Application()
        app.add_routes(
            [
                web.post("/api/{method}", self._api),
                web.get("/api/{method}", self._api),
                web.post("/response/{rid}", self._response_url),
                web.get("/link", self._websocket),
            ]
        )
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = self._runner.addresses[0][1]
        return self

    async def stop(self) -> None:
        for ws in list(self.ws_clients):
            await ws.close()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/api/"

    def response_url(self, rid: str | None = None) -> str:
        return f"http://127.0.0.1:{self.port}/response/{rid or next(self._ts)}"

    # ---- recording ---------------------------------------------------------------------------

    async def _record(self, call: Call) -> None:
        async with self._changed:
            self.calls.append(call)
            self._changed.notify_all()

    def calls_to(self, *methods: str) -> list[Call]:
        return [c for c in self.calls if c.method in methods]

    @property
    def posts(self) -> list[Call]:
        """Messages delivered to people: chat.postMessage, chat.postEphemeral and response_url posts."""
        return [c for c in self.calls_to(*_POSTING, "response_url") if c.error is None]

    @property
    def refused(self) -> list[Call]:
        """Calls the fake said no to (errors, 429s, dropped connections)."""
        return [c for c in self.calls if c.error is not None]

    async def wait_for(self, predicate: Callable[[FakeSlack], bool], timeout: float = 20.0) -> None:
        async def _wait() -> None:
            async with self._changed:
                await self._changed.wait_for(lambda: predicate(self))

        await asyncio.wait_for(_wait(), timeout)

    async def wait_calls(self, method: str, count: int, timeout: float = 20.0) -> list[Call]:
        await self.wait_for(lambda f: len(f.calls_to(method)) >= count, timeout)
        return self.calls_to(method)

    # ---- Web API -----------------------------------------------------------------------------

    async def _api(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        args: dict[str, Any] = dict(parse_qsl(request.query_string))
        if request.can_read_body:
            raw = await request.text()
            if request.content_type == "application/json":
                args.update(json.loads(raw or "{}"))
            else:
                args.update(dict(parse_qsl(raw)))
        auth = request.headers.get("Authorization", "")
        token = auth[len("Bearer ") :] if auth.startswith("Bearer ") else args.get("token")
        call = Call(method=method, args=args, token=token, path=request.path)
        if self.drop_next.get(method, 0) > 0:
            self.drop_next[method] -= 1
            call.error = "connection_dropped"
            await self._record(call)
            assert request.transport is not None
            request.transport.abort()  # no answer at all: the client sees a disconnection
            raise ConnectionResetError("dropped by the fake")
        limited = self._rate_limited(method, args)
        if limited is not None:
            call.error = "ratelimited"
            await self._record(call)
            return web.json_response(
                {"ok": False, "error": "ratelimited"}, status=429, headers={"Retry-After": str(limited)}
            )
        if method in self.fail:
            call.error = self.fail[method]
        elif not token:
            call.error = "not_authed"
        elif method in _POSTING:
            call.error = self._check_message(args)
        elif method == "chat.getPermalink":
            call.error = self._check_permalink(args)
        await self._record(call)
        if call.error is not None:
            return web.json_response({"ok": False, "error": call.error})
        if method in _POSTING:
            self._last_post[str(args.get("channel"))] = time.monotonic()
        return web.json_response(self._answer(method, args))

    def remember_message(self, channel: str, ts: str) -> None:
        """A message that exists in `channel` (a person's question): chat.getPermalink finds it."""
        self.messages.add((channel, ts))

    def _check_permalink(self, args: dict[str, Any]) -> str | None:
        channel, ts = args.get("channel"), args.get("message_ts")
        if not channel or not ts:
            return "invalid_arguments"
        return None if (str(channel), str(ts)) in self.messages else "message_not_found"

    def _check_message(self, args: dict[str, Any]) -> str | None:
        if self.refuse_blocks and args.get("blocks"):
            return self.refuse_blocks
        return check_message(args)

    def _rate_limited(self, method: str, args: dict[str, Any]) -> int | None:
        """Retry-After (whole seconds) when this call is over the limit, else None."""
        if self.ratelimit_next.get(method, 0) > 0:
            self.ratelimit_next[method] -= 1
            return self.retry_after_s
        if self.rate_limit_per_channel and method in _POSTING:
            last = self._last_post.get(str(args.get("channel")))
            if last is not None:
                wait = 1.0 - (time.monotonic() - last)
                if wait > 0:
                    return max(1, math.ceil(wait))
        return None

    def _answer(self, method: str, args: dict[str, Any]) -> dict[str, Any]:
        if method == "auth.test":
            return {
                "ok": True,
                "url": "https://fake.slack.test/",
                "team": "Fake Team",
                "user": "qabot",
                "team_id": TEAM_ID,
                "user_id": BOT_USER_ID,
                "bot_id": BOT_ID,
                "is_enterprise_install": False,
            }
        if method == "chat.postMessage":
            ts = f"1700000000.{next(self._ts):06d}"
            self.messages.add((str(args.get("channel")), ts))
            return {
                "ok": True,
                "channel": args.get("channel"),
                "ts": ts,
                "message": {"text": args.get("text"), "ts": ts, "thread_ts": args.get("thread_ts")},
            }
        if method == "chat.postEphemeral":
            return {"ok": True, "message_ts": f"1700000000.{next(self._ts):06d}"}
        if method == "users.info":
            user_id = args.get("user", "")
            user = {"id": user_id, "is_admin": False, "is_owner": False, **self.users.get(user_id, {})}
            return {"ok": True, "user": user}
        if method == "chat.getPermalink":
            channel, ts = str(args["channel"]), str(args["message_ts"])
            return {
                "ok": True,
                "channel": channel,
                "permalink": f"https://fake.slack.test/archives/{channel}/p{ts.replace('.', '')}",
            }
        if method == "apps.connections.open":
            return {"ok": True, "url": f"ws://127.0.0.1:{self.port}/link"}
        return {"ok": True}

    async def _response_url(self, request: web.Request) -> web.Response:
        args = json.loads(await request.text() or "{}")
        call = Call(method="response_url", args=args, path=request.path, error=self._check_message(args))
        await self._record(call)
        if call.error is not None:
            return web.Response(status=400, text=call.error)
        return web.Response(text="ok")

    # ---- Socket Mode -------------------------------------------------------------------------

    async def _websocket(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(autoping=True)
        await ws.prepare(request)
        self.ws_clients.append(ws)
        await ws.send_json({"type": "hello", "num_connections": 1, "connection_info": {"app_id": "A0FAKE"}})
        await self._record(Call(method="ws.connected", args={}))
        try:
            async for msg in ws:
                if msg.type == WSMsgType.TEXT:
                    data = json.loads(msg.data)
                    self.envelope_acks.append(data)
                    await self._record(Call(method="ws.ack", args=data))
        finally:
            self.ws_clients.remove(ws)
        return ws

    async def send_envelope(self, envelope: dict[str, Any], *, connection: int = -1) -> None:
        """Deliver an envelope on one Socket Mode connection (an app may open several; Slack picks one per
        delivery, at random: the caller says which, e.g. `random.randrange(len(fake.ws_clients))`)."""
        await self.wait_for(lambda f: bool(f.ws_clients), timeout=10)
        await self.ws_clients[connection].send_json(envelope)


# --------------------------------------------------------------------------------------------
# signed requests, as Slack sends them in HTTP mode


def sign(secret: str, body: str, timestamp: int | None = None) -> dict[str, str]:
    """Headers Slack sends: v0 HMAC-SHA256 over "v0:{timestamp}:{body}"."""
    from slack_sdk.signature import SignatureVerifier

    ts = str(int(time.time()) if timestamp is None else timestamp)
    signature = SignatureVerifier(secret).generate_signature(timestamp=ts, body=body)
    return {"X-Slack-Request-Timestamp": ts, "X-Slack-Signature": signature}


def bad_signature(secret: str, body: str) -> dict[str, str]:
    ts = str(int(time.time()))
    digest = hmac.new(b"not-" + secret.encode(), f"v0:{ts}:{body}".encode(), hashlib.sha256).hexdigest()
    return {"X-Slack-Request-Timestamp": ts, "X-Slack-Signature": f"v0={digest}"}


_event_ids = itertools.count(1)
_ts_counter = itertools.count(1)


def next_ts() -> str:
    return f"1699999999.{next(_ts_counter):06d}"


def event_callback(event: dict[str, Any], *, event_id: str | None = None) -> dict[str, Any]:
    return {
        "token": "legacy-verification-token",
        "team_id": TEAM_ID,
        "api_app_id": "A0FAKE",
        "event": event,
        "type": "event_callback",
        "event_id": event_id or f"Ev{next(_event_ids):08d}",
        "event_time": int(time.time()),
        "authorizations": [{"team_id": TEAM_ID, "user_id": BOT_USER_ID, "is_bot": True}],
    }


def app_mention(
    text: str, *, user: str = "U1", channel: str = "C1", ts: str | None = None, thread_ts: str | None = None
) -> dict[str, Any]:
    ts = ts or next_ts()
    event: dict[str, Any] = {
        "type": "app_mention",
        "user": user,
        "text": f"<@{BOT_USER_ID}> {text}",
        "ts": ts,
        "channel": channel,
        "event_ts": ts,
    }
    if thread_ts:
        event["thread_ts"] = thread_ts
    return event


def message(
    text: str,
    *,
    user: str | None = "U1",
    channel: str = "C1",
    channel_type: str = "channel",
    ts: str | None = None,
    thread_ts: str | None = None,
    **extra: Any,
) -> dict[str, Any]:
    ts = ts or next_ts()
    event: dict[str, Any] = {
        "type": "message",
        "text": text,
        "ts": ts,
        "channel": channel,
        "channel_type": channel_type,
        "event_ts": ts,
        **extra,
    }
    if user is not None:
        event["user"] = user
    if thread_ts:
        event["thread_ts"] = thread_ts
    return event


def slash_command(command: str, text: str, *, user: str = "U1", channel: str = "C1", response_url: str) -> str:
    from urllib.parse import urlencode

    return urlencode(
        {
            "token": "legacy-verification-token",
            "team_id": TEAM_ID,
            "team_domain": "fake",
            "channel_id": channel,
            "channel_name": "directmessage" if channel.startswith("D") else "general",
            "user_id": user,
            "user_name": user.lower(),
            "command": command,
            "text": text,
            "api_app_id": "A0FAKE",
            "response_url": response_url,
            "trigger_id": f"trig.{next(_ts_counter)}",
        }
    )


def block_action(
    action_id: str,
    value: str,
    *,
    user: str = "U1",
    channel: str = "C1",
    response_url: str,
    message_ts: str | None = None,
    thread_ts: str | None = None,
    ephemeral: bool = False,
) -> str:
    from urllib.parse import urlencode

    container: dict[str, Any] = {
        "type": "message",
        "message_ts": message_ts or next_ts(),
        "channel_id": channel,
        "is_ephemeral": ephemeral,
    }
    if thread_ts:
        container["thread_ts"] = thread_ts
    payload: dict[str, Any] = {
        "type": "block_actions",
        "user": {"id": user, "username": user.lower(), "team_id": TEAM_ID},
        "api_app_id": "A0FAKE",
        "token": "legacy-verification-token",
        "container": container,
        "trigger_id": f"trig.{next(_ts_counter)}",
        "team": {"id": TEAM_ID, "domain": "fake"},
        "channel": {"id": channel, "name": "general"},
        "response_url": response_url,
        "actions": [
            {
                "action_id": action_id,
                "block_id": "qabot_actions",
                "type": "button",
                "value": value,
                "action_ts": str(time.time()),
            }
        ],
    }
    if not ephemeral:
        payload["message"] = {
            "type": "message",
            "user": BOT_USER_ID,
            "ts": container["message_ts"],
            "thread_ts": thread_ts,
        }
    return urlencode({"payload": json.dumps(payload)})


def message_action(
    callback_id: str,
    message_text: str,
    *,
    user: str = "U1",
    channel: str = "C1",
    author: str = "U2",
    message_ts: str | None = None,
    response_url: str,
) -> str:
    """A message shortcut as Slack sends it (interactivity request, form-encoded `payload`) when someone picks
    the app's shortcut on a message's ⋯ menu: type message_action, the message itself, a response_url."""
    from urllib.parse import urlencode

    ts = message_ts or next_ts()
    payload: dict[str, Any] = {
        "type": "message_action",
        "token": "legacy-verification-token",
        "action_ts": str(time.time()),
        "team": {"id": TEAM_ID, "domain": "fake"},
        "user": {"id": user, "username": user.lower(), "team_id": TEAM_ID, "name": user.lower()},
        "channel": {"id": channel, "name": "general"},
        "is_enterprise_install": False,
        "enterprise": None,
        "callback_id": callback_id,
        "trigger_id": f"trig.{next(_ts_counter)}",
        "response_url": response_url,
        "message_ts": ts,
        "message": {
            "type": "message",
            "user": author,
            "ts": ts,
            "text": message_text,
            "team": TEAM_ID,
            "blocks": [],
        },
    }
    return urlencode({"payload": json.dumps(payload)})
