"""Discord's settings (DISCORD_*): the bot token, the Message Content intent, admins and channels."""

from __future__ import annotations

from pydantic import Field, SecretStr
from pydantic_settings import SettingsConfigDict

from bot.adapters.base import ChatSettings, IdList, IdMap, secret


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

    def required(self) -> tuple[str, ...]:
        return ("token",)
