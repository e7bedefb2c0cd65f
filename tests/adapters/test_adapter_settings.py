"""Each adapter owns its settings (pydantic-settings, its own prefix); the names users already set keep working."""

from __future__ import annotations

import logging

import pytest

from bot.adapters.discord import DiscordSettings
from bot.adapters.slack import SlackSettings
from bot.adapters.terminal import TerminalSettings
from bot.config import ConfigError

BOT = "xoxb-1111-2222-SECRETBOT"
APP = "xapp-1-A1-SECRETAPP"


@pytest.fixture(autouse=True)
def _no_dotenv(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)  # a .env here only when a test writes one


def test_the_variables_in_env_example_keep_their_meaning(monkeypatch):
    env = {
        "DISCORD_TOKEN": "SECRETDISCORD",
        "DISCORD_MESSAGE_CONTENT_INTENT": "true",
        "DISCORD_ADMIN_ROLE_IDS": "123, 456,,",
        "DISCORD_ADMIN_USER_IDS": "789",
        "DISCORD_ALLOWED_CHANNEL_IDS": "11;12",
        "SLACK_BOT_TOKEN": BOT,
        "SLACK_APP_TOKEN": APP,
        "SLACK_SIGNING_SECRET": "SECRETSIGN",
        "SLACK_ADMIN_USER_IDS": "UADMIN",
        "SLACK_WORKSPACE_ADMINS_ARE_ADMINS": "no",
        "SLACK_ALLOWED_CHANNEL_IDS": "C1,C2",
        "SLACK_WATCHED_CHANNEL_IDS": "C2, C3",
        "DISCORD_WATCHED_CHANNEL_IDS": "12",
    }
    for var, value in env.items():
        monkeypatch.setenv(var, value)
    discord = DiscordSettings.load()
    assert discord.token.get_secret_value() == "SECRETDISCORD" and discord.message_content_intent
    assert discord.admin_role_ids == ("123", "456") and discord.admin_user_ids == ("789",)
    assert discord.allowed_channel_ids == ("11", "12")
    slack = SlackSettings.load()
    assert slack.bot_token.get_secret_value() == BOT and slack.app_token.get_secret_value() == APP
    assert slack.signing_secret.get_secret_value() == "SECRETSIGN"
    assert slack.admin_user_ids == ("UADMIN",) and not slack.workspace_admins_are_admins
    assert slack.allowed_channel_ids == ("C1", "C2")
    assert slack.watched_channel_ids == ("C2", "C3") and discord.watched_channel_ids == ("12",)
    slack.check()
    discord.check()


def test_defaults_without_any_setting():
    slack, discord = SlackSettings.load(), DiscordSettings.load()
    assert slack.bot_token is None and slack.workspace_admins_are_admins and slack.http_port is None
    assert slack.http_host == "127.0.0.1" and slack.api_url == "https://slack.com/api/"
    assert discord.token is None and not discord.message_content_intent and discord.allowed_channel_ids == ()
    assert TerminalSettings.load().admin


def test_dotenv_is_read_the_environment_wins_and_empty_means_default(monkeypatch, tmp_path):
    (tmp_path / ".env").write_text(
        f"SLACK_BOT_TOKEN={BOT}\nSLACK_ADMIN_USER_IDS=UFROMFILE\nSLACK_WORKSPACE_ADMINS_ARE_ADMINS=\nDISCORD_TOKEN=\n"
    )
    monkeypatch.setenv("SLACK_ADMIN_USER_IDS", "UFROMENV")
    slack = SlackSettings.load()
    assert slack.bot_token.get_secret_value() == BOT
    assert slack.admin_user_ids == ("UFROMENV",)
    assert slack.workspace_admins_are_admins  # VAR= means the default
    assert DiscordSettings.load().token is None


def test_options_from_the_command_line_win():
    assert SlackSettings.load(http_port=3000, http_host=None).http_port == 3000


@pytest.mark.parametrize(
    ("var", "value", "needle"),
    [
        ("SLACK_WORKSPACE_ADMINS_ARE_ADMINS", "maybe", "true or false, got 'maybe'"),
        ("SLACK_HTTP_PORT", "many", "a whole number, got 'many'"),
        ("DISCORD_MESSAGE_CONTENT_INTENT", "perhaps", "true or false"),
    ],
)
def test_bad_values_name_the_variable(monkeypatch, var, value, needle):
    monkeypatch.setenv(var, value)
    cls = SlackSettings if var.startswith("SLACK") else DiscordSettings
    with pytest.raises(ConfigError) as err:
        cls.load()
    assert var in str(err.value) and needle in str(err.value)


def test_missing_secrets_name_the_variable_and_where_to_get_it():
    with pytest.raises(ConfigError) as err:
        SlackSettings.load().check()
    text = str(err.value)
    assert "SLACK_BOT_TOKEN is not set" in text and "slack-manifest.yml" in text and "xoxb-" in text
    assert "SLACK_APP_TOKEN is not set" in text and "connections:write" in text
    with pytest.raises(ConfigError, match="SLACK_SIGNING_SECRET is not set"):
        SlackSettings.load(bot_token=BOT, http_port=3000).check()
    with pytest.raises(ConfigError, match=r"DISCORD_TOKEN is not set: .*discord.com/developers"):
        DiscordSettings.load().check()
    with pytest.raises(ConfigError, match="SLACK_BOT_TOKEN is not set"):
        SlackSettings.load(bot_token="xoxb-", app_token=APP).check()  # the bare prefix of the example


def test_swapped_tokens_are_named_without_echoing_them():
    with pytest.raises(ConfigError) as err:
        SlackSettings.load(bot_token=APP, app_token=BOT).check()
    text = str(err.value)
    assert "SLACK_BOT_TOKEN must be a Bot User OAuth Token starting with 'xoxb-', but it starts with 'xapp-'" in text
    assert "SLACK_APP_TOKEN must be an app-level token starting with 'xapp-'" in text
    assert "SECRET" not in text


def test_secrets_never_in_repr_str_or_logs(caplog):
    slack = SlackSettings.load(bot_token=BOT, app_token=APP, signing_secret="SECRETSIGN")
    discord = DiscordSettings.load(token="SECRETDISCORD")
    for text in (repr(slack), str(slack), f"{slack}", repr(discord), str(slack.model_dump())):
        assert "SECRET" not in text
    with caplog.at_level(logging.INFO):
        logging.getLogger("t").info("settings: %s %s", slack, discord)
    assert "SECRET" not in caplog.text


def test_each_platform_applies_its_own_channel_allow_list():
    from bot.adapters.discord import DiscordAdapter
    from bot.adapters.slack import SlackAdapter

    slack = SlackAdapter(object(), SlackSettings.load(bot_token=BOT, allowed_channel_ids="C1"))  # type: ignore[arg-type]
    discord = DiscordAdapter(object(), DiscordSettings.load())  # type: ignore[arg-type]
    assert slack.incoming("q", user_id="U1", channel_id="C1").in_allowed_channel
    assert not slack.incoming("q", user_id="U1", channel_id="C2").in_allowed_channel
    assert discord.incoming("q", user_id="1", channel_id="C2").in_allowed_channel  # no list: every channel
    assert slack.incoming("q", user_id="U1", channel_id="C1").supports_threads
