"""A minimal fourth front end, the test double of the adapter contract (after Rasa's CollectingOutputChannel).

It plays a text-only platform: its settings have their own prefix and a required secret, its
mentions look like Microsoft Teams' (`<at>qabot</at>`), its messages hold at most 300 characters and
it cannot show buttons. `serve` asks the questions from COLLECT_QUESTIONS and `send_text` collects
what the adapter would post, in OUTBOX. Registered only by the tests that use it.
"""

from __future__ import annotations

import asyncio
import re
from typing import Any, ClassVar

from pydantic import SecretStr
from pydantic_settings import SettingsConfigDict

from bot.adapters.base import ChatAdapter, ChatSettings, IdList, ReplyLimits, secret

MENTION = re.compile(r"<at>[^<]*</at>")


class CollectingSettings(ChatSettings):
    model_config = SettingsConfigDict(env_prefix="COLLECT_")

    token: SecretStr | None = secret("any value: the collecting platform takes every token")
    questions: IdList = ()  # comma-separated

    def required(self) -> tuple[str, ...]:
        return ("token",)


class CollectingAdapter(ChatAdapter):
    name = "collecting"
    settings_class = CollectingSettings
    limits = ReplyLimits(message_chars=300, quote_chars=250)
    threads = False
    OUTBOX: ClassVar[list[tuple[Any, str]]] = []
    SEEN: ClassVar[list[str]] = []  # the questions as the service received them

    def clean_text(self, text: str) -> str:
        return " ".join(MENTION.sub(" ", text).split())

    async def serve(self, stop: asyncio.Event) -> None:
        for n, question in enumerate(self.settings.questions):
            msg = self.incoming(
                f"<at>qabot</at> {question}", user_id="29:user", channel_id="19:channel", event_id=str(n)
            )
            self.SEEN.append(msg.text)
            reply = await asyncio.to_thread(self.service.handle, msg)
            await self.send(msg.channel_id, reply)

    async def send_text(self, to: Any, text: str) -> None:
        self.OUTBOX.append((to, text))
