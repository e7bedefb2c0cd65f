"""A loopback fake of Discord: REST API and gateway on one aiohttp server bound to 127.0.0.1:0.

The real discord.py client talks to it over HTTP and a WebSocket (plain JSON text frames), with
`discord.http.Route.BASE` and `DiscordWebSocket.DEFAULT_GATEWAY` pointed here. Every REST call is
recorded; tests inject gateway dispatches (MESSAGE_CREATE, INTERACTION_CREATE) and read what the
bot sent back. It plays one guild with a few channels, roles and users, and keeps enough state
(threads, deferred interactions) to answer like Discord does.

Compression: discord.py 2.x asks for `compress=zlib-stream` in the gateway URL, but it decompresses
only binary frames and reads text frames as plain JSON, so the fake simply sends text frames.
Responses carry exactly `Content-Type: application/json`, the only type discord.py parses as JSON.

It says no the way Discord does (always on, so every test checks what the bot sends):
- a message (channel message or interaction follow-up) with content over 2,000 characters, more than
  10 embeds, an embed over its field limits or the embeds over 6,000 characters in all, or an embed
  URL that is not http(s), has whitespace or is over 2,048 characters: HTTP 400, code 50035
  ("Invalid Form Body"), nothing posted;
- the Message Content intent: a client that asks for it while `message_content_allowed` is False is
  closed with 4014 (discord.py: PrivilegedIntentsRequired); a client without it receives other
  people's guild messages that do not mention it with empty content, as Discord sends them;
- thread creation: `forbid_threads_in` answers 403 (50013); `thread_failures[channel] = 400` any other
  status, or "disconnect" to drop the connection without an answer (a non-HTTP failure);
- rate limits, when asked: `ratelimit_next = n` answers the next n message posts with 429 and a
  `retry_after`, which discord.py waits out and retries;
- `refuse_embeds = True` refuses every message that has embeds (50035), for refusals a renderer
  cannot foresee;
- allowed_mentions naming roles (or users) that its `parse` also lists, more than 100 of them, or ids
  that are not snowflakes: 50035.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

from aiohttp import WSMsgType, web

EPHEMERAL = 1 << 6
MESSAGE_CONTENT_INTENT = 1 << 15
CONTENT_LIMIT = 2000
EMBED_TOTAL_LIMIT = 6000
URL_LIMIT = 2048
_EMBED_FIELD_LIMITS = {"title": 256, "description": 4096}
MANAGE_GUILD = 1 << 5
# View Channel, Send Messages, Send Messages in Threads, Create Public Threads, Read Message History, Use App Commands
MEMBER_PERMISSIONS = (1 << 10) | (1 << 11) | (1 << 38) | (1 << 35) | (1 << 16) | (1 << 31)


def _json(data: Any, status: int = 200) -> web.Response:
    # exactly "application/json": discord.py parses a body as JSON only for that content type
    return web.Response(body=json.dumps(data).encode(), status=status, headers={"Content-Type": "application/json"})


def _now() -> str:
    return datetime.now(UTC).isoformat()


@dataclass
class Call:
    method: str
    path: str
    query: dict[str, str]
    body: Any
    # filled for message-creating calls: the channel it landed in, and whether only the asker sees it
    channel_id: str | None = None
    ephemeral: bool = False
    status: int = 200
    response: Any = None  # the JSON the fake answered (e.g. the message object Discord would store)


@dataclass
class FakeUser:
    id: str
    username: str
    bot: bool = False

    def payload(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "username": self.username,
            "discriminator": "0",
            "global_name": self.username,
            "avatar": None,
            "bot": self.bot,
            "public_flags": 0,
        }


@dataclass
class FakeInteraction:
    id: str
    token: str
    type: int
    channel_id: str
    callback_type: int | None = None
    callback_flags: int = 0
    original_pending: bool = False  # deferred with "thinking": the first follow-up replaces it


@dataclass
class FakeDiscord:
    """The fake. `await start()`, point discord.py at `api_base` / `gateway_url`, `await stop()`."""

    forbid_threads_in: set[str] = field(default_factory=set)  # channel ids where creating threads is 403
    # channel id -> HTTP status to refuse thread creation with, or "disconnect" to drop the connection
    thread_failures: dict[str, int | str] = field(default_factory=dict)
    message_content_allowed: bool = True  # the intent is switched on in the (fake) Developer Portal
    ratelimit_next: int = 0  # how many next message posts get a 429
    refuse_embeds: bool = False  # refuse every message with embeds (50035), as for a bad URL

    def __post_init__(self) -> None:
        self._ids = itertools.count(1_100_000_000_000_000_000)
        self.calls: list[Call] = []
        self._call_event = asyncio.Event()
        self.bot_user = FakeUser(self.snowflake(), "qabot", bot=True)
        self.application_id = self.bot_user.id
        self.guild_id = self.snowflake()
        self.admin_role_id = self.snowflake()  # a role with Manage Server
        self.helper_role_id = self.snowflake()  # a role without it (tests configure it as an admin role)
        self.channels: dict[str, dict[str, Any]] = {}  # id -> channel payload (text channels and threads)
        self.dm_channels: dict[str, str] = {}  # user id -> DM channel id
        self.users: dict[str, FakeUser] = {}
        self.member_roles: dict[str, list[str]] = {}
        self.interactions: dict[str, FakeInteraction] = {}
        self.commands: list[dict[str, Any]] = []
        self.identify: dict[str, Any] | None = None
        self.identifies: list[dict[str, Any]] = []  # every IDENTIFY, one per shard and per (re)connection
        self.identified = asyncio.Event()
        self._sockets: set[web.WebSocketResponse] = set()
        self._ws: web.WebSocketResponse | None = None
        self._shards: dict[int, web.WebSocketResponse] = {}  # shard id -> its gateway connection
        self.shard_count = 1  # what /gateway/bot recommends (automatic sharding asks it)
        self._identified_count = 1  # the shard count the connected clients identified with
        self._seq = 0
        self._runner: web.AppRunner | None = None
        self.port = 0
        self.general = self.add_channel("general")

    # ---- model --------------------------------------------------------------------------------

    def snowflake(self) -> str:
        return str(next(self._ids))

    def add_channel(self, name: str) -> str:
        cid = self.snowflake()
        self.channels[cid] = {
            "id": cid,
            "type": 0,
            "guild_id": self.guild_id,
            "name": name,
            "position": len(self.channels),
            "permission_overwrites": [],
            "nsfw": False,
            "parent_id": None,
            "topic": None,
            "last_message_id": None,
            "rate_limit_per_user": 0,
        }
        return cid

    def add_thread(self, parent_id: str, owner_id: str, name: str = "a thread") -> str:
        """A public thread that exists before the bot connects (it arrives in GUILD_CREATE)."""
        tid = self.snowflake()
        self.channels[tid] = self._thread(tid, parent_id, owner_id, name)
        return tid

    def _thread(self, tid: str, parent_id: str, owner_id: str, name: str, archive: int = 1440) -> dict[str, Any]:
        return {
            "id": tid,
            "guild_id": self.guild_id,
            "parent_id": parent_id,
            "owner_id": owner_id,
            "name": name,
            "type": 11,
            "last_message_id": None,
            "message_count": 0,
            "member_count": 1,
            "rate_limit_per_user": 0,
            "flags": 0,
            "thread_metadata": {
                "archived": False,
                "auto_archive_duration": archive,
                "archive_timestamp": _now(),
                "locked": False,
                "create_timestamp": _now(),
            },
        }

    def add_user(self, username: str, *, bot: bool = False, roles: list[str] | None = None) -> FakeUser:
        user = FakeUser(self.snowflake(), username, bot=bot)
        self.users[user.id] = user
        self.member_roles[user.id] = list(roles or [])
        return user

    @property
    def client_has_message_content(self) -> bool:
        return bool(self.identify and int(self.identify.get("intents", 0)) & MESSAGE_CONTENT_INTENT)

    def is_thread(self, channel_id: str) -> bool:
        return self.channels.get(channel_id, {}).get("type") == 11

    def dm_channel(self, user: FakeUser) -> str:
        if user.id not in self.dm_channels:
            self.dm_channels[user.id] = self.snowflake()
        return self.dm_channels[user.id]

    def member_payload(self, user: FakeUser, *, permissions: int | None = None) -> dict[str, Any]:
        data: dict[str, Any] = {
            "user": user.payload(),
            "roles": self.member_roles.get(user.id, []),
            "joined_at": _now(),
            "deaf": False,
            "mute": False,
            "flags": 0,
            "nick": None,
            "avatar": None,
            "pending": False,
        }
        if permissions is not None:
            data["permissions"] = str(permissions)
        return data

    def guild_payload(self) -> dict[str, Any]:
        return {
            "id": self.guild_id,
            "name": "Test Guild",
            "owner_id": self.snowflake(),  # nobody we play: owners get every permission
            "unavailable": False,
            "member_count": len(self.users) + 1,
            "roles": [
                {
                    "id": self.guild_id,
                    "name": "@everyone",
                    "permissions": str(MEMBER_PERMISSIONS),
                    "position": 0,
                    "color": 0,
                    "hoist": False,
                    "managed": False,
                    "mentionable": False,
                    "flags": 0,
                },
                {
                    "id": self.admin_role_id,
                    "name": "Moderators",
                    "permissions": str(MEMBER_PERMISSIONS | MANAGE_GUILD),
                    "position": 1,
                    "color": 0,
                    "hoist": False,
                    "managed": False,
                    "mentionable": True,
                    "flags": 0,
                },
                {
                    "id": self.helper_role_id,
                    "name": "Helpers",
                    "permissions": str(MEMBER_PERMISSIONS),
                    "position": 2,
                    "color": 0,
                    "hoist": False,
                    "managed": False,
                    "mentionable": True,
                    "flags": 0,
                },
            ],
            "channels": [c for c in self.channels.values() if c["type"] == 0],
            "threads": [c for c in self.channels.values() if c["type"] == 11],
            "members": [self.member_payload(self.bot_user)] + [self.member_payload(u) for u in self.users.values()],
            "emojis": [],
            "stickers": [],
            "features": [],
            "voice_states": [],
            "presences": [],
            "large": False,
            "joined_at": _now(),
        }

    # ---- server lifecycle ---------------------------------------------------------------------

    async def start(self) -> FakeDiscord:
        app = web.Application()
        api = "/api/v10"
        app.router.add_get("/", self._gateway)
        app.router.add_get(api + "/users/@me", self._me)
        app.router.add_get(api + "/oauth2/applications/@me", self._application)
        app.router.add_get(api + "/gateway", self._gateway_url)
        app.router.add_get(api + "/gateway/bot", self._gateway_url)
        app.router.add_put(api + "/applications/{app}/commands", self._bulk_commands)
        app.router.add_put(api + "/applications/{app}/guilds/{guild}/commands", self._bulk_commands)
        app.router.add_post(api + "/channels/{channel}/messages", self._create_message)
        app.router.add_post(api + "/channels/{channel}/messages/{message}/threads", self._create_thread)
        app.router.add_post(api + "/channels/{channel}/typing", self._typing)
        app.router.add_post(api + "/interactions/{id}/{token}/callback", self._interaction_callback)
        app.router.add_post(api + "/webhooks/{app}/{token}", self._followup)
        app.router.add_patch(api + "/webhooks/{app}/{token}/messages/{message}", self._edit_followup)
        app.router.add_delete(api + "/webhooks/{app}/{token}/messages/{message}", self._delete_followup)
        app.router.add_route("*", api + "/{tail:.*}", self._unknown)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        return self

    async def stop(self) -> None:
        for ws in list(self._sockets):
            await ws.close()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    @property
    def api_base(self) -> str:
        return f"http://127.0.0.1:{self.port}/api/v10"

    @property
    def gateway_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/"

    # ---- recording ----------------------------------------------------------------------------

    async def _record(self, request: web.Request, **extra: Any) -> Call:
        body: Any = None
        if request.can_read_body:
            raw = await request.read()
            body = json.loads(raw) if raw else None
        call = Call(request.method, request.path, dict(request.query), body, **extra)
        self.calls.append(call)
        self._call_event.set()
        return call

    def mark(self) -> int:
        return len(self.calls)

    def calls_since(self, mark: int, method: str | None = None, path: str | None = None) -> list[Call]:
        pattern = re.compile(path) if path else None
        return [
            c
            for c in self.calls[mark:]
            if (method is None or c.method == method) and (pattern is None or pattern.search(c.path))
        ]

    async def wait_for_call(self, predicate: Callable[[Call], bool], *, since: int = 0, timeout: float = 10.0) -> Call:
        async def find() -> Call:
            while True:
                for call in self.calls[since:]:
                    if predicate(call):
                        return call
                self._call_event.clear()
                await self._call_event.wait()

        return await asyncio.wait_for(find(), timeout)

    # ---- gateway ------------------------------------------------------------------------------

    async def _gateway(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        self._sockets.add(ws)
        try:
            await ws.send_str(json.dumps({"op": 10, "d": {"heartbeat_interval": 41250}}))
            async for msg in ws:
                if msg.type is not WSMsgType.TEXT:
                    continue
                data = json.loads(msg.data)
                op = data.get("op")
                if op == 1:
                    await ws.send_str(json.dumps({"op": 11}))
                elif op == 2:
                    self.identify = data["d"]
                    self.identifies.append(data["d"])
                    if int(self.identify.get("intents", 0)) & MESSAGE_CONTENT_INTENT and not (
                        self.message_content_allowed
                    ):
                        await ws.close(code=4014, message=b"Disallowed intent(s).")
                        break
                    shard_id, count = self.identify.get("shard") or (0, 1)
                    if not 0 <= shard_id < count:
                        await ws.close(code=4010, message=b"Invalid shard.")  # as Discord answers it
                        break
                    self._ws = ws
                    self._shards[shard_id] = ws
                    self._identified_count = count
                    await self._send_ready(ws, shard_id, count)
                    self.identified.set()
                elif op == 6:  # RESUME: the session id names the shard
                    shard_id = int(str(data["d"].get("session_id", "")).rpartition("-")[2] or 0)
                    self._ws = ws
                    self._shards[shard_id] = ws
                    await self._send(ws, "RESUMED", {})
        finally:
            self._sockets.discard(ws)
            if self._ws is ws:
                self._ws = None
            for shard_id in [k for k, v in self._shards.items() if v is ws]:
                del self._shards[shard_id]
        return ws

    def shard_of(self, guild_id: str | None, count: int | None = None) -> int:
        """Discord's rule: a guild's events go to shard (guild_id >> 22) % shard_count; DMs to shard 0."""
        count = count or self._identified_count
        return 0 if guild_id is None else (int(guild_id) >> 22) % count

    async def _send_ready(self, ws: web.WebSocketResponse, shard_id: int = 0, count: int = 1) -> None:
        mine = self.shard_of(self.guild_id, count) == shard_id
        ready = {
            "v": 10,
            "user": self.bot_user.payload() | {"verified": True, "mfa_enabled": False, "flags": 0},
            "guilds": [{"id": self.guild_id, "unavailable": True}] if mine else [],
            "session_id": f"fake-session-{shard_id}",
            "resume_gateway_url": self.gateway_url,
            "application": {"id": self.application_id, "flags": 0},
            "private_channels": [],
            "relationships": [],
            "shard": [shard_id, count],
        }
        await self._send(ws, "READY", ready)
        if mine:
            await self._send(ws, "GUILD_CREATE", self.guild_payload())

    async def _send(self, ws: web.WebSocketResponse, event: str, data: dict[str, Any]) -> None:
        self._seq += 1
        await ws.send_str(json.dumps({"op": 0, "t": event, "s": self._seq, "d": data}))

    async def dispatch(self, event: str, data: dict[str, Any]) -> None:
        """Send a gateway event to the connection of the shard it belongs to (by its guild; DMs: shard 0)."""
        ws = self._shards.get(self.shard_of(data.get("guild_id")), self._ws) if self._shards else self._ws
        if ws is None:
            raise RuntimeError("no client is connected to the fake gateway")
        await self._send(ws, event, data)

    # ---- what a test injects ------------------------------------------------------------------

    async def user_message(
        self,
        author: FakeUser,
        content: str,
        *,
        channel_id: str | None = None,
        mention_bot: bool = True,
        dm: bool = False,
        mention_users: tuple[FakeUser, ...] = (),
        reply_to: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """Dispatch MESSAGE_CREATE from `author`; a mention puts <@bot> in front like the Discord client does.
        `mention_users` are mentioned after it (<@id>); `reply_to` (a message payload) makes it a reply
        to that message (type 19), which also mentions its author, as the client does by default."""
        mentions = []
        if mention_bot and not dm:
            content = f"<@{self.bot_user.id}> {content}"
            mentions.append(self.bot_user.payload())
        for other in mention_users:
            content = f"<@{other.id}> {content}"
            mentions.append(other.payload())
        if reply_to is not None:
            mentions.append(reply_to["author"])
        bot_mentioned = any(m["id"] == self.bot_user.id for m in mentions)
        if not dm and not bot_mentioned and not self.client_has_message_content:
            content = ""  # Discord: no Message Content intent, no text of messages that do not mention the bot
        message: dict[str, Any] = {
            "id": self.snowflake(),
            "channel_id": self.dm_channel(author) if dm else (channel_id or self.general),
            "author": author.payload(),
            "content": content,
            "timestamp": _now(),
            "edited_timestamp": None,
            "tts": False,
            "mention_everyone": "@everyone" in content or "@here" in content,
            "mentions": mentions,
            "mention_roles": [],
            "attachments": [],
            "embeds": [],
            "pinned": False,
            "type": 0,
            "flags": 0,
        }
        if reply_to is not None:
            message["type"] = 19
            message["message_reference"] = {
                "type": 0,
                "message_id": reply_to["id"],
                "channel_id": reply_to["channel_id"],
                "guild_id": self.guild_id,
            }
            message["referenced_message"] = reply_to
        if not dm:
            message["guild_id"] = self.guild_id
            member = self.member_payload(author)
            member.pop("user")
            message["member"] = member
        await self.dispatch("MESSAGE_CREATE", message)
        return message

    def _interaction_base(
        self, itype: int, user: FakeUser, channel_id: str, permissions: int, dm: bool
    ) -> dict[str, Any]:
        iid = self.snowflake()
        token = f"itoken-{iid}"
        self.interactions[token] = FakeInteraction(iid, token, itype, channel_id)
        data: dict[str, Any] = {
            "id": iid,
            "application_id": self.application_id,
            "type": itype,
            "token": token,
            "version": 1,
            "channel_id": channel_id,
            "locale": "en-US",
            "app_permissions": str(MEMBER_PERMISSIONS),
            "entitlements": [],
            "authorizing_integration_owners": {"0": self.guild_id},
            "attachment_size_limit": 10 * 1024 * 1024,
        }
        if dm:
            data["channel"] = {"id": channel_id, "type": 1, "recipients": [user.payload()]}
            data["user"] = user.payload()
            data["context"] = 1
        else:
            channel = self.channels[channel_id]
            data["channel"] = channel
            data["guild_id"] = self.guild_id
            data["guild_locale"] = "en-US"
            data["guild"] = {"id": self.guild_id, "locale": "en-US", "features": []}
            data["member"] = self.member_payload(user, permissions=permissions)
            data["context"] = 0
        return data

    async def slash_command(
        self,
        user: FakeUser,
        name: str,
        options: list[dict[str, Any]] | None = None,
        *,
        channel_id: str | None = None,
        permissions: int = MEMBER_PERMISSIONS,
        dm: bool = False,
    ) -> dict[str, Any]:
        """Dispatch INTERACTION_CREATE type 2 (application command) as Discord does when a user runs it."""
        channel = self.dm_channel(user) if dm else (channel_id or self.general)
        data = self._interaction_base(2, user, channel, permissions, dm)
        registered = next((c for c in self.commands if c["name"] == name), None)
        data["data"] = {
            "id": registered["id"] if registered else self.snowflake(),
            "name": name,
            "type": 1,
            "options": options or [],
        }
        await self.dispatch("INTERACTION_CREATE", data)
        return data

    async def message_command(
        self,
        user: FakeUser,
        name: str,
        target: dict[str, Any],
        *,
        permissions: int = MEMBER_PERMISSIONS,
    ) -> dict[str, Any]:
        """Dispatch INTERACTION_CREATE type 2 for a message command (type 3) run on `target` (a message payload)
        from its Apps menu, as Discord does: the target's id and the message itself under data.resolved, with
        its content (message commands get it without the Message Content intent)."""
        data = self._interaction_base(2, user, target["channel_id"], permissions, False)
        registered = next((c for c in self.commands if c["name"] == name and c.get("type") == 3), None)
        data["data"] = {
            "id": registered["id"] if registered else self.snowflake(),
            "name": name,
            "type": 3,
            "target_id": target["id"],
            "resolved": {"messages": {target["id"]: target}},
        }
        await self.dispatch("INTERACTION_CREATE", data)
        return data

    async def click_button(
        self,
        user: FakeUser,
        message: dict[str, Any],
        custom_id: str,
        *,
        permissions: int = MEMBER_PERMISSIONS,
    ) -> dict[str, Any]:
        """Dispatch INTERACTION_CREATE type 3 (component) for a button on a message the bot sent."""
        channel_id = message["channel_id"]
        dm = channel_id in self.dm_channels.values()
        data = self._interaction_base(3, user, channel_id, permissions, dm)
        data["message"] = message
        data["data"] = {"custom_id": custom_id, "component_type": 2}
        await self.dispatch("INTERACTION_CREATE", data)
        return data

    # ---- REST ---------------------------------------------------------------------------------

    async def _me(self, request: web.Request) -> web.Response:
        await self._record(request)
        if not request.headers.get("Authorization", "").startswith("Bot "):
            return _json({"message": "401: Unauthorized", "code": 0}, status=401)
        return _json(self.bot_user.payload() | {"verified": True, "mfa_enabled": False, "flags": 0})

    async def _application(self, request: web.Request) -> web.Response:
        await self._record(request)
        return _json(
            {
                "id": self.application_id,
                "name": "qabot",
                "description": "",
                "icon": None,
                "bot_public": False,
                "bot_require_code_grant": False,
                "verify_key": "0" * 64,
                "owner": self.add_user_payload("owner"),
                "team": None,
                "flags": 0,
                "rpc_origins": [],
                "summary": "",
            }
        )

    def add_user_payload(self, name: str) -> dict[str, Any]:
        return FakeUser(self.snowflake(), name).payload()

    async def _gateway_url(self, request: web.Request) -> web.Response:
        await self._record(request)
        return _json(
            {
                "url": self.gateway_url.rstrip("/"),
                "shards": self.shard_count,
                "session_start_limit": {
                    "total": 1000,
                    "remaining": 999,
                    "reset_after": 0,
                    "max_concurrency": 1,
                },
            }
        )

    async def _bulk_commands(self, request: web.Request) -> web.Response:
        call = await self._record(request)
        out = []
        for cmd in call.body or []:
            problem = _command_problem(cmd)
            if problem is not None:  # Discord refuses the whole overwrite
                call.status = 400
                return _json({"message": "Invalid Form Body", "code": 50035, "errors": problem}, 400)
            registered = dict(cmd)
            registered.setdefault("type", 1)
            registered.setdefault("options", [])
            registered.setdefault("description", "")  # Discord answers "" for user and message commands
            registered.update(
                id=self.snowflake(),
                application_id=self.application_id,
                version=self.snowflake(),
            )
            registered.setdefault("default_member_permissions", None)
            registered.setdefault("dm_permission", True)
            registered.setdefault("nsfw", False)
            out.append(registered)
        self.commands = out
        return _json(out)

    def _message(self, channel_id: str, body: dict[str, Any], *, flags: int = 0) -> dict[str, Any]:
        msg: dict[str, Any] = {
            "id": self.snowflake(),
            "channel_id": channel_id,
            "author": self.bot_user.payload(),
            "content": body.get("content") or "",
            "timestamp": _now(),
            "edited_timestamp": None,
            "tts": False,
            "mention_everyone": False,
            "mentions": [],
            "mention_roles": [],
            "attachments": [],
            "embeds": body.get("embeds") or [],
            "components": body.get("components") or [],
            "pinned": False,
            "type": 19 if body.get("message_reference") else 0,
            "flags": flags,
        }
        if channel_id in self.channels:
            msg["guild_id"] = self.guild_id
        if body.get("message_reference"):
            msg["message_reference"] = body["message_reference"]
        return msg

    def _refusal(self, call: Call) -> web.Response | None:
        """Discord's answer when a message is over a limit or rate limited, else None."""
        if self.ratelimit_next > 0:
            self.ratelimit_next -= 1
            call.status = 429
            data = {"message": "You are being rate limited.", "retry_after": 0.2, "global": False}
            # discord.py treats a 429 without `Via` (Discord's responses pass a proxy) as a Cloudflare ban
            headers = {"Retry-After": "1", "X-RateLimit-Scope": "user", "Via": "1.1 google"}
            return web.Response(
                body=json.dumps(data).encode(),
                status=429,
                headers={"Content-Type": "application/json", **headers},
            )
        body = call.body or {}
        if not (body.get("content") or body.get("embeds") or body.get("components") or body.get("attachments")):
            call.status = 400
            return _json({"message": "Cannot send an empty message", "code": 50006}, status=400)
        errors = check_message(body)
        if self.refuse_embeds and body.get("embeds"):
            errors.setdefault("embeds", {"0": {"url": {"_errors": [{"code": "URL_TYPE_INVALID_URL"}]}}})
        if errors:
            call.status = 400
            call.response = {"message": "Invalid Form Body", "code": 50035, "errors": errors}
            return _json(call.response, status=400)
        return None

    async def _create_message(self, request: web.Request) -> web.Response:
        channel_id = request.match_info["channel"]
        call = await self._record(request, channel_id=channel_id)
        refused = self._refusal(call)
        if refused is not None:
            return refused
        call.response = self._message(channel_id, call.body or {})
        return _json(call.response)

    async def _create_thread(self, request: web.Request) -> web.Response:
        channel_id = request.match_info["channel"]
        message_id = request.match_info["message"]
        call = await self._record(request, channel_id=channel_id)
        if channel_id in self.forbid_threads_in or self.is_thread(channel_id):
            call.status = 403
            return _json({"message": "Missing Permissions", "code": 50013}, status=403)
        failure = self.thread_failures.get(channel_id)
        if failure == "disconnect":
            call.status = 0
            assert request.transport is not None
            request.transport.abort()  # no answer at all: the client sees a disconnection
            raise ConnectionResetError("dropped by the fake")
        if isinstance(failure, int):
            call.status = failure
            return _json({"message": "Invalid Form Body", "code": 50035}, status=failure)
        body = call.body or {}
        # Discord: a thread started from a message has the message's id
        thread = self._thread(
            message_id,
            channel_id,
            self.bot_user.id,
            body.get("name", ""),
            body.get("auto_archive_duration", 1440),
        )
        self.channels[message_id] = thread
        # Discord tells the gateway too; discord.py caches the thread from this event
        await self.dispatch("THREAD_CREATE", thread | {"newly_created": True})
        return _json(thread, status=201)

    async def _typing(self, request: web.Request) -> web.Response:
        await self._record(request, channel_id=request.match_info["channel"])
        return web.Response(status=204)

    async def _interaction_callback(self, request: web.Request) -> web.Response:
        token = request.match_info["token"]
        call = await self._record(request)
        interaction = self.interactions.get(token)
        if interaction is None or interaction.callback_type is not None:
            call.status = 400
            return _json({"message": "Interaction has already been acknowledged.", "code": 40060}, 400)
        body = call.body or {}
        interaction.callback_type = body.get("type")
        interaction.callback_flags = (body.get("data") or {}).get("flags", 0) or 0
        call.channel_id = interaction.channel_id
        call.ephemeral = bool(interaction.callback_flags & EPHEMERAL)
        interaction.original_pending = interaction.callback_type == 5
        result: dict[str, Any] = {
            "interaction": {
                "id": interaction.id,
                "type": interaction.type,
                "response_message_loading": interaction.callback_type == 5,
                "response_message_ephemeral": call.ephemeral,
            },
            "resource": {"type": interaction.callback_type},
        }
        if interaction.callback_type == 4:
            result["resource"]["message"] = self._message(
                interaction.channel_id, body.get("data") or {}, flags=interaction.callback_flags
            )
        return _json(result)

    async def _followup(self, request: web.Request) -> web.Response:
        token = request.match_info["token"]
        interaction = self.interactions.get(token)
        call = await self._record(request)
        if interaction is None or interaction.callback_type is None:
            call.status = 404
            return _json({"message": "Unknown Webhook", "code": 10015}, status=404)
        body = call.body or {}
        call.channel_id = interaction.channel_id
        refused = self._refusal(call)
        if refused is not None:
            return refused
        if interaction.original_pending:
            # the first follow-up after a "thinking" defer replaces it and keeps the defer's visibility
            call.ephemeral = bool(interaction.callback_flags & EPHEMERAL)
            interaction.original_pending = False
        else:
            call.ephemeral = bool((body.get("flags") or 0) & EPHEMERAL)
        msg = self._message(interaction.channel_id, body, flags=EPHEMERAL if call.ephemeral else 0)
        call.response = msg
        if request.query.get("wait") in ("true", "1", "True"):
            return _json(msg)
        return web.Response(status=204)

    async def _edit_followup(self, request: web.Request) -> web.Response:
        token = request.match_info["token"]
        interaction = self.interactions.get(token)
        call = await self._record(request)
        channel_id = interaction.channel_id if interaction else ""
        call.channel_id = channel_id
        if interaction is not None and request.match_info["message"] == "@original":
            interaction.original_pending = False
            call.ephemeral = bool(interaction.callback_flags & EPHEMERAL)
        return _json(self._message(channel_id, call.body or {}))

    async def _delete_followup(self, request: web.Request) -> web.Response:
        token = request.match_info["token"]
        interaction = self.interactions.get(token)
        await self._record(request)
        if interaction is not None and request.match_info["message"] == "@original":
            interaction.original_pending = False
        return web.Response(status=204)

    async def _unknown(self, request: web.Request) -> web.Response:
        call = await self._record(request)
        call.status = 404
        return _json({"message": "404: Not Found", "code": 0}, status=404)

    # ---- reading what the bot sent ------------------------------------------------------------

    def sent_messages(self, since: int = 0) -> list[Call]:
        """Calls that put a message in front of a user: channel messages and interaction follow-ups."""
        return [
            c
            for c in self.calls[since:]
            if c.method == "POST"
            and c.status < 300
            and (
                re.fullmatch(r"/api/v10/channels/\d+/messages", c.path)
                or re.fullmatch(r"/api/v10/webhooks/\d+/[^/]+", c.path)
            )
        ]


_CHAT_INPUT_NAME = re.compile(r"^[-_'\w]{1,32}$")


def _command_problem(cmd: dict[str, Any]) -> str | None:
    """What Discord's bulk overwrite refuses in one application command (50035), or None."""
    kind = cmd.get("type", 1)
    name = cmd.get("name") or ""
    description = cmd.get("description") or ""
    if kind == 1:
        if not _CHAT_INPUT_NAME.match(name) or name != name.lower():
            return f"name {name!r}: chat input commands are 1-32 lowercase characters without spaces"
        if not 1 <= len(description) <= 100:
            return "description: 1-100 characters for chat input commands"
    elif kind in (2, 3):
        if not 1 <= len(name) <= 32:
            return f"name {name!r}: 1-32 characters"
        if description:
            return "description: must be empty for user and message commands"
        if cmd.get("options"):
            return "options: user and message commands take none"
    else:
        return f"type {kind!r} is not a command type"
    return None


def _bad_url(url: Any) -> str | None:
    if not isinstance(url, str):
        return "URL_TYPE_INVALID_URL"
    if len(url) > URL_LIMIT:
        return "BASE_TYPE_MAX_LENGTH"
    try:
        parts = urlsplit(url)
    except ValueError:
        return "URL_TYPE_INVALID_URL"
    if parts.scheme not in ("http", "https") or not parts.netloc or any(c.isspace() for c in url):
        return "URL_TYPE_INVALID_URL"
    return None


def check_message(body: dict[str, Any]) -> dict[str, Any]:
    """Discord's 50035 `errors` object for this message body; empty when Discord would accept it."""
    errors: dict[str, Any] = {}
    content = body.get("content") or ""
    if len(content) > CONTENT_LIMIT:
        errors["content"] = {"_errors": [{"code": "BASE_TYPE_MAX_LENGTH"}]}
    embeds = body.get("embeds") or []
    if len(embeds) > 10:
        errors["embeds"] = {"_errors": [{"code": "BASE_TYPE_MAX_LENGTH"}]}
    total = 0
    for n, embed in enumerate(embeds):
        bad: dict[str, Any] = {}
        for key, limit in _EMBED_FIELD_LIMITS.items():
            if len(embed.get(key) or "") > limit:
                bad[key] = {"_errors": [{"code": "BASE_TYPE_MAX_LENGTH"}]}
        for key in ("url",):
            if key in embed and (code := _bad_url(embed[key])):
                bad[key] = {"_errors": [{"code": code}]}
        for key in ("thumbnail", "image"):
            if key in embed and (code := _bad_url((embed[key] or {}).get("url"))):
                bad[key] = {"url": {"_errors": [{"code": code}]}}
        footer = (embed.get("footer") or {}).get("text") or ""
        if len(footer) > 2048:
            bad["footer"] = {"text": {"_errors": [{"code": "BASE_TYPE_MAX_LENGTH"}]}}
        fields = embed.get("fields") or []
        for f in fields:
            if len(f.get("name") or "") > 256 or len(f.get("value") or "") > 1024:
                bad["fields"] = {"_errors": [{"code": "BASE_TYPE_MAX_LENGTH"}]}
        total += len(embed.get("title") or "") + len(embed.get("description") or "") + len(footer)
        total += len((embed.get("author") or {}).get("name") or "")
        total += sum(len(f.get("name") or "") + len(f.get("value") or "") for f in fields)
        if bad:
            errors.setdefault("embeds", {})[str(n)] = bad
    if total > EMBED_TOTAL_LIMIT:
        errors.setdefault("embeds", {})["_errors"] = [
            {"code": "BASE_TYPE_MAX_LENGTH", "message": "Embed size exceeds maximum size of 6000"}
        ]
    mentions = body.get("allowed_mentions")
    if isinstance(mentions, dict):
        parse = mentions.get("parse") or []
        for kind in ("roles", "users"):
            ids = mentions.get(kind)
            if ids and kind in parse:  # Discord: parse:["roles"] and roles:[...] are mutually exclusive
                errors.setdefault("allowed_mentions", {})["_errors"] = [
                    {"code": "MESSAGE_ALLOWED_MENTIONS_PARSE_EXCLUSIVE"}
                ]
            if ids and (len(ids) > 100 or not all(str(i).isdigit() for i in ids)):
                errors.setdefault("allowed_mentions", {})[kind] = {"_errors": [{"code": "BASE_TYPE_BAD_LENGTH"}]}
    return errors
