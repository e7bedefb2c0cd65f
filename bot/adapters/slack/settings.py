"""Slack's settings (SLACK_*): tokens, admins, channels, HTTP mode and the Web API's address."""

from __future__ import annotations

from pydantic import Field, SecretStr
from pydantic_settings import SettingsConfigDict

from bot.adapters.base import ChatSettings, IdMap, secret

DEFAULT_API_URL = "https://slack.com/api/"
# HTTP mode binds the loopback interface unless told otherwise: the plain-HTTP port is meant to sit
# behind a TLS reverse proxy on the same host; `--host 0.0.0.0` exposes it (e.g. inside a container).
DEFAULT_HTTP_HOST = "127.0.0.1"


class SlackSettings(ChatSettings):
    """`qabot run slack`: Socket Mode (bot + app token) unless `http_port` is set (bot token + signing secret)."""

    model_config = SettingsConfigDict(env_prefix="SLACK_")
    known_secret_prefixes = ("xoxb-", "xoxp-", "xapp-", "xoxa-", "xoxe-", "xoxs-")

    bot_token: SecretStr | None = secret(
        "create the app from slack-manifest.yml at https://api.slack.com/apps (Create New App > From an "
        "app manifest), install it to the workspace, then copy OAuth & Permissions > Bot User OAuth Token "
        "(xoxb-...) into .env as SLACK_BOT_TOKEN=...",
        prefix="xoxb-",
        what="a Bot User OAuth Token",
    )
    app_token: SecretStr | None = secret(
        "in the app's page at https://api.slack.com/apps open Basic Information > App-Level Tokens, "
        "generate a token with the connections:write scope (xapp-...) and put it into .env as "
        "SLACK_APP_TOKEN=... (needed for Socket Mode)",
        prefix="xapp-",
        what="an app-level token",
    )
    signing_secret: SecretStr | None = secret(
        "in the app's page at https://api.slack.com/apps open Basic Information > App Credentials, copy "
        "the Signing Secret into .env as SLACK_SIGNING_SECRET=... (needed for HTTP mode)"
    )
    # workspace admins and owners (users.info) are qabot admins too
    workspace_admins_are_admins: bool = True
    # HTTP mode (`qabot run slack --http PORT [--host HOST]`): events, commands and buttons on /slack/events
    http_port: int | None = None
    http_host: str = DEFAULT_HTTP_HOST
    # the Web API's base URL (tests point it at a fake on 127.0.0.1)
    api_url: str = DEFAULT_API_URL
    # hand-off to people: channel id -> user group id (S...), "C0123=S0456,*=S0789"; the group is tagged
    # (<!subteam^ID>) in a thread when the bot abstains or an answer gets a 👎, once per thread, and every
    # answer there gets an "Ask a person" button. Empty: off
    handoff_groups: IdMap = Field(default_factory=dict)

    def handoff_for(self, channel_id: str) -> str:
        return self._lookup(self.handoff_groups, channel_id)

    def required(self) -> tuple[str, ...]:
        if self.http_port is not None:
            return ("bot_token", "signing_secret")
        return ("bot_token", "app_token")
