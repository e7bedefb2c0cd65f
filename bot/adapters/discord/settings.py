"""Discord's settings (DISCORD_*): the bot token, the Message Content intent, admins and channels."""

from __future__ import annotations

from pydantic import AliasChoices, Field, SecretStr, field_validator
from pydantic_settings import SettingsConfigDict

from bot.adapters.base import ChatSettings, IdList, IdMap, secret
from bot.config import ConfigError


class DiscordSettings(ChatSettings):
    """`qabot run discord`: the bot token is all it needs."""

    model_config = SettingsConfigDict(env_prefix="DISCORD_")

    token: SecretStr | None = secret(
        "create an application at https://discord.com/developers/applications, open Bot > Reset Token, "
        "copy the token into .env as DISCORD_TOKEN=..."
    )
    # the privileged Message Content intent: only needed for follow-ups in threads without a mention
    # (switch it on in the Developer Portal too)
    message_content_intent: bool = False
    # role ids whose members may run admin commands, besides members with Manage Server
    admin_role_ids: IdList = ()
    # hand-off to people: channel id -> role id, "123=456,*=789"; the role is tagged (<@&ID>, and only
    # that role may be pinged) in a thread when the bot abstains or an answer gets a 👎, once per thread,
    # and every answer there gets an "Ask a person" button. Empty: off
    handoff_roles: IdMap = Field(default_factory=dict)

    def handoff_for(self, channel_id: str) -> str:
        return self._lookup(self.handoff_roles, channel_id)

    # Sharding (docs/scaling.md): the gateway split into `shard_count` shards, of which this process runs
    # `shard_ids` (default: all of them); "auto" runs as many as Discord recommends, all in this process.
    # Unset: one connection, no sharding. QABOT_DISCORD_SHARD_COUNT / _IDS are accepted as well.
    shard_count: str | None = Field(
        default=None, validation_alias=AliasChoices("shard_count", "DISCORD_SHARD_COUNT", "QABOT_DISCORD_SHARD_COUNT")
    )
    shard_ids: IdList = Field(
        default=(), validation_alias=AliasChoices("shard_ids", "DISCORD_SHARD_IDS", "QABOT_DISCORD_SHARD_IDS")
    )

    @field_validator("shard_count", mode="before")
    @classmethod
    def _count_as_text(cls, value: object) -> object:
        return str(value).strip().lower() if isinstance(value, int | str) and str(value).strip() else None

    def check(self) -> None:
        problems = []
        try:
            super().check()
        except ConfigError as err:
            problems.append(str(err))
        count = self.shard_count
        if count is not None and count != "auto" and not (count.isdigit() and int(count) >= 1):
            problems.append(f"DISCORD_SHARD_COUNT must be a whole number of shards (1 or more) or auto, got {count!r}")
        elif self.shard_ids:
            if count is None or count == "auto":
                problems.append("DISCORD_SHARD_IDS needs DISCORD_SHARD_COUNT, the total number of shards")
            elif not all(s.isdigit() and int(s) < int(count) for s in self.shard_ids):
                problems.append(
                    f"DISCORD_SHARD_IDS must be shard numbers from 0 to {int(count) - 1}, got {','.join(self.shard_ids)}"
                )
        if problems:
            raise ConfigError("\n".join(problems))

    @property
    def sharded(self) -> bool:
        return self.shard_count is not None

    @property
    def shard_total(self) -> int | None:
        """The number of shards; None: not sharded, or as many as Discord recommends ("auto")."""
        return int(self.shard_count) if self.shard_count and self.shard_count.isdigit() else None

    @property
    def shard_id_list(self) -> list[int] | None:
        """The shards this process runs; None: all of them."""
        return [int(s) for s in self.shard_ids] or None

    def required(self) -> tuple[str, ...]:
        return ("token",)
