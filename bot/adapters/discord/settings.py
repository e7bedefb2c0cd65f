"""Discord's settings (DISCORD_*): the bot token, the Message Content intent, admins and channels."""

from __future__ import annotations

from pydantic import SecretStr
from pydantic_settings import SettingsConfigDict

from bot.adapters.base import ChatSettings, IdList, secret


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

    def required(self) -> tuple[str, ...]:
        return ("token",)
