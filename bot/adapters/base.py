"""The adapter contract: what every front end (the terminal, Slack, Discord, the next one) implements.

Shaped after Rasa's input and output channels and errbot's backends. An adapter:

- **receives** its platform's events and turns each into an `IncomingMessage` (`incoming()`), with its
  own mention syntax and markup removed (`clean_text`) and the platform facts the conversation rules
  need (admin, DM, addressed, threads, whether the channel is allowed);
- **sends** a `Reply`: `render_text` is the plain rendering every front end can show, cut into
  messages within the adapter's `limits`, with buttons written out as text (`button_text`) where the
  platform cannot show them. A chat adapter's one required output method is `send_text`; richer ones
  (Slack's blocks, Discord's embeds) override `send`;
- **owns its settings**: a pydantic-settings class with the adapter's environment prefix
  (`settings_class`), which names a missing secret and where to get it;
- **runs** until stopped (`run`); a chat adapter implements the asyncio `serve(stop)`.

The conversation rules (rate limits, admin commands, feedback, threads, errors) stay in
ConversationService: an adapter translates and renders, nothing more. A new platform is a package
under bot/adapters/ with an Adapter subclass, plus one line in bot/adapters/registry.py.
"""

from __future__ import annotations

import abc
import asyncio
import contextlib
import logging
import signal
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Any, ClassVar, Self

from pydantic import BeforeValidator, Field, SecretStr, ValidationError
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from bot.config import ConfigError
from bot.conversation.models import Button, IncomingMessage, Reply
from bot.core.render import PLAIN_QUOTE_LIMIT, render_plain
from bot.core.split import split_text

if TYPE_CHECKING:
    from bot.conversation.service import ConversationService

log = logging.getLogger(__name__)


# ---- settings -----------------------------------------------------------------------------------


def split_ids(value: Any) -> tuple[str, ...]:
    """ "C1, C2;C3" (an environment variable) or any sequence (a caller) as a tuple of ids."""
    if value is None:
        return ()
    if isinstance(value, str):
        return tuple(part.strip() for part in value.replace(";", ",").split(",") if part.strip())
    if isinstance(value, int):
        return (str(value),)
    return tuple(str(v).strip() for v in value if str(v).strip())


# A comma-separated list of platform ids in the environment (not JSON, which pydantic-settings expects).
IdList = Annotated[tuple[str, ...], NoDecode, BeforeValidator(split_ids)]

_ID_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-")


def split_id_map(value: Any) -> dict[str, str]:
    """ "C1=S1, C2=S2" (an environment variable) or a mapping as {channel id: id}; "*" is every other
    channel. Ids are letters, digits, '-' and '_' only (they end up inside platform markup)."""
    if value is None or value == "":
        return {}
    pairs = value.items() if isinstance(value, dict) else (p.partition("=")[::2] for p in split_ids(value))
    out: dict[str, str] = {}
    for key, target in pairs:
        key, target = str(key).strip(), str(target).strip()
        if not key or not target:
            raise ValueError("each entry must be CHANNEL_ID=ID (or *=ID for every channel)")
        for part in (key if key != "*" else "x", target):
            if not set(part) <= _ID_CHARS:
                raise ValueError(f"{part[:30]!r} is not a platform id (letters, digits, - and _ only)")
        out[key] = target
    return out


# channel id -> an id (e.g. the people to hand a channel's questions to), "C1=S1,*=S2" in the environment
IdMap = Annotated[dict[str, str], NoDecode, BeforeValidator(split_id_map)]


def secret(how: str, *, prefix: str | None = None, what: str | None = None) -> Any:
    """Field metadata for a secret: where a person gets it, and the prefix its value starts with."""
    extra: dict[str, Any] = {"how": how}
    if prefix is not None:
        extra.update(prefix=prefix, what=what or "a token")
    return Field(default=None, json_schema_extra=extra)


class AdapterSettings(BaseSettings):
    """An adapter's settings: its environment prefix, then `.env`, then defaults.

    Precedence: values passed in (a command-line option), then real environment variables, then the
    `.env` file, then defaults. `VAR=` (empty) means "use the default". Secrets are `SecretStr`:
    repr() and logs show `'**********'`. `check()` names every missing or malformed setting this
    run needs, with where to get its value.
    """

    model_config = SettingsConfigDict(
        env_file=".env", env_file_encoding="utf-8", env_ignore_empty=True, extra="ignore", frozen=True
    )

    # prefixes of the platform's kinds of token, so a token pasted into the wrong variable can be named
    # without echoing it
    known_secret_prefixes: ClassVar[tuple[str, ...]] = ()

    @classmethod
    def load(cls, **overrides: Any) -> Self:
        """The settings from the environment and `.env`; `overrides` whose value is None are ignored."""
        values = {key: value for key, value in overrides.items() if value is not None}
        try:
            return cls(**values)
        except ValidationError as err:
            raise ConfigError(cls._explain(err)) from None

    @classmethod
    def env_name(cls, field: str) -> str:
        return f"{cls.model_config.get('env_prefix', '')}{field}".upper()

    def required(self) -> tuple[str, ...]:
        """Field names this configuration needs to run (e.g. a token)."""
        return ()

    def check(self) -> None:
        """Raise ConfigError naming every required setting that is missing or malformed, and how to fix it."""
        problems = [p for p in (self._problem(name) for name in self.required()) if p]
        if problems:
            raise ConfigError("\n".join(problems))

    def _problem(self, name: str) -> str | None:
        var = self.env_name(name)
        extra = type(self).model_fields[name].json_schema_extra
        meta: dict[str, Any] = extra if isinstance(extra, dict) else {}
        how = meta.get("how") or f"set {var} in the environment or in .env"
        value = getattr(self, name)
        if isinstance(value, SecretStr):
            value = value.get_secret_value()
        prefix = meta.get("prefix")
        if value in (None, "", ()) or (prefix and value == prefix):
            return f"{var} is not set: {how}."
        if prefix and not str(value).startswith(prefix):
            # name a known kind of token, never echo the value (it may be another secret)
            known = {*self.known_secret_prefixes, prefix}
            seen = next((p for p in sorted(known) if str(value).startswith(p)), None)
            got = f"it starts with {seen!r}" if seen else "it looks like a different kind of value"
            return f"{var} must be {meta.get('what')} starting with {prefix!r}, but {got}: {how}."
        return None

    @classmethod
    def _explain(cls, err: ValidationError) -> str:
        lines = []
        for problem in err.errors():
            field = str(problem["loc"][0]) if problem["loc"] else ""
            var = cls.env_name(field) if field else cls.__name__
            kind = problem.get("type", "")
            want = (
                "true or false"
                if kind.startswith("bool")
                else "a whole number"
                if kind.startswith("int")
                else "a number"
                if kind.startswith("float")
                else problem.get("msg", "valid").lower().removeprefix("value error, ")
            )
            annotation = str(cls.model_fields[field].annotation) if field in cls.model_fields else ""
            shown = "" if "SecretStr" in annotation else f", got {problem.get('input')!r}"
            lines.append(f"{var} must be {want}{shown}")
        return "\n".join(lines)


class ChatSettings(AdapterSettings):
    """What every chat platform's settings have: admin user ids and a channel allow-list."""

    # platform user ids allowed to run admin commands (besides what the platform itself grants)
    admin_user_ids: IdList = ()
    # answer only in these channels; empty: every channel the bot can read
    allowed_channel_ids: IdList = ()
    # answer questions in these channels without a mention (besides those watched with `/qabot watch`)
    watched_channel_ids: IdList = ()

    def handoff_for(self, channel_id: str) -> str:
        """The people (a group or role id) to hand this channel's questions to; '' for nobody (the default)."""
        return ""

    @staticmethod
    def _lookup(mapping: dict[str, str], channel_id: str) -> str:
        return mapping.get(channel_id) or mapping.get("*", "")


# ---- the contract -------------------------------------------------------------------------------


@dataclass(frozen=True)
class ReplyLimits:
    """A front end's limits: one text message, and one quote before bot.core.trim shortens it."""

    message_chars: int | None = None  # None: no limit (the terminal)
    quote_chars: int = PLAIN_QUOTE_LIMIT


class Adapter(abc.ABC):
    """One front end in front of the ConversationService."""

    name: ClassVar[str]  # the registry's name and the `platform` of its messages: "slack"
    settings_class: ClassVar[type[AdapterSettings]]
    limits: ClassVar[ReplyLimits] = ReplyLimits()
    threads: ClassVar[bool] = False  # answers in a channel go into a thread (follow-ups need no mention)
    # True: `qabot run` stops when there is no usable index (the terminal); a chat bot keeps running
    # and tells whoever asks how to fix it, and an admin can build the index from chat
    needs_index: ClassVar[bool] = False

    def __init__(self, service: ConversationService, settings: AdapterSettings) -> None:
        self.service = service
        self.settings = settings

    # ---- in: platform events -> IncomingMessage ---------------------------------------------

    def clean_text(self, text: str) -> str:
        """The question without this platform's mention syntax and markup (the core never sees them)."""
        return text.strip()

    def allows_channel(self, channel_id: str) -> bool:
        return True

    def handoff_for(self, channel_id: str) -> str:
        """The people to hand this channel's questions to (the adapter's setting); '' for nobody."""
        return ""

    def watches_channel(self, channel_id: str) -> bool:
        """This adapter's settings name the channel as watched (questions answered without a mention)."""
        return False

    def incoming(self, text: str, *, user_id: str, channel_id: str, **facts: Any) -> IncomingMessage:
        """An IncomingMessage from this platform: its text cleaned, its platform facts filled in."""
        facts.setdefault("handoff_to", self.handoff_for(channel_id))
        facts.setdefault("watched", self.watches_channel(channel_id))
        return IncomingMessage(
            platform=self.name,
            user_id=user_id,
            channel_id=channel_id,
            text=self.clean_text(text),
            supports_threads=self.threads,
            in_allowed_channel=self.allows_channel(channel_id),
            **facts,
        )

    # ---- out: Reply -> text -----------------------------------------------------------------

    def button_text(self, buttons: Sequence[Button]) -> str:
        """Buttons written out, for a platform that cannot show them."""
        return "Buttons: " + ", ".join(b.label for b in buttons)

    def render_text(self, reply: Reply, *, extras: bool = True) -> list[str]:
        """The reply as plain-text messages within `limits`: its text (quotes capped at the adapter's
        quote limit), then, with `extras`, its hints and its buttons as text."""
        if not reply.should_send:
            return []
        answer = reply.answer
        parts = [render_plain(answer, quote_limit=self.limits.quote_chars) if answer is not None else reply.text]
        if extras:
            parts.extend(reply.hints)
            if reply.buttons:
                parts.append(self.button_text(reply.buttons))
        full = "\n".join(part for part in parts if part and part.strip())
        if self.limits.message_chars is None:
            return [full] if full.strip() else []
        return split_text(full, self.limits.message_chars)

    # ---- lifecycle --------------------------------------------------------------------------

    @abc.abstractmethod
    def run(self) -> None:
        """Connect and answer until stopped (blocks)."""


class ChatAdapter(Adapter):
    """An asyncio front end: `serve(stop)` connects, answers until `stop` is set, and disconnects."""

    settings: ChatSettings

    def allows_channel(self, channel_id: str) -> bool:
        allowed = self.settings.allowed_channel_ids
        return not allowed or channel_id in allowed

    def handoff_for(self, channel_id: str) -> str:
        return self.settings.handoff_for(channel_id)

    def watches_channel(self, channel_id: str) -> bool:
        return channel_id in self.settings.watched_channel_ids

    @abc.abstractmethod
    async def serve(self, stop: asyncio.Event) -> None:
        """Connect, answer until `stop` is set, then disconnect. Raises ConfigError for rejected credentials."""

    @abc.abstractmethod
    async def send_text(self, to: Any, text: str) -> None:
        """Post one plain-text message to `to` (whatever addresses a message on this platform)."""

    async def send(self, to: Any, reply: Reply) -> bool:
        """Deliver `reply` to `to`: by default its plain rendering, message by message, buttons as
        text. True when it arrived; what cannot be delivered is logged by the adapter, never dropped
        silently."""
        for text in self.render_text(reply):
            await self.send_text(to, text)
        return True

    def run(self) -> None:
        """serve() until Ctrl-C or SIGTERM (e.g. `docker compose stop`), which stop it cleanly."""

        async def main() -> None:
            stop = asyncio.Event()
            loop = asyncio.get_running_loop()
            for sig in (signal.SIGINT, signal.SIGTERM):
                with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):  # not the main thread
                    loop.add_signal_handler(sig, stop.set)
            await self.serve(stop)

        asyncio.run(main())
        log.info("%s stopped", self.name)
