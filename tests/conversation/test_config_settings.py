from __future__ import annotations

import logging
from pathlib import Path

import pytest

from bot.config import ConfigError, Settings, required_for

BOT = "xoxb-1111-2222-SECRETBOT"
APP = "xapp-1-A1-SECRETAPP"


def test_defaults():
    s = Settings.from_env({}, dotenv_path=None)
    assert s.index_dir == Path("index") and s.knowledge_dir == Path("knowledge")
    assert s.feedback_db == Path("data/qabot.sqlite3")
    assert s.dms_enabled and s.slack_workspace_admins_are_admins
    assert s.user_rate_limit == 6 and s.channel_rate_limit == 30 and s.rate_window_s == 60
    assert s.discord_token is None and s.allowed_channels("slack") is None
    assert s.log_level == "INFO"


def test_from_env_parses_types(tmp_path):
    env = {
        "QABOT_INDEX_DIR": str(tmp_path / "idx"),
        "DISCORD_ADMIN_ROLE_IDS": "123, 456,,",
        "SLACK_ALLOWED_CHANNEL_IDS": "C1,C2",
        "QABOT_DMS_ENABLED": "no",
        "SLACK_WORKSPACE_ADMINS_ARE_ADMINS": "false",
        "QABOT_USER_RATE_LIMIT": "2",
        "QABOT_RATE_WINDOW_S": "30.5",
        "QABOT_LOG_LEVEL": "DEBUG",
        "SLACK_BOT_TOKEN": BOT,
    }
    s = Settings.from_env(env, dotenv_path=None)
    assert s.index_dir == tmp_path / "idx"
    assert s.discord_admin_role_ids == ("123", "456")
    assert s.allowed_channels("slack") == frozenset({"C1", "C2"}) and s.allowed_channels("discord") is None
    assert not s.dms_enabled and not s.slack_workspace_admins_are_admins
    assert s.user_rate_limit == 2 and s.rate_window_s == 30.5 and s.log_level == "DEBUG"
    assert s.slack_bot_token == BOT


def test_explicit_overrides_win(tmp_path):
    s = Settings.from_env({"QABOT_INDEX_DIR": "/env/index"}, dotenv_path=None, index_dir=tmp_path)
    assert s.index_dir == tmp_path


def test_dotenv_is_read_but_does_not_override_env(tmp_path):
    dotenv = tmp_path / ".env"
    dotenv.write_text(f"SLACK_BOT_TOKEN={BOT}\nQABOT_INDEX_DIR=/from/dotenv\nQABOT_USER_RATE_LIMIT=\n")
    s = Settings.from_env({"QABOT_INDEX_DIR": "/from/env"}, dotenv_path=dotenv)
    assert s.slack_bot_token == BOT
    assert s.index_dir == Path("/from/env")
    assert s.user_rate_limit == 6  # VAR= means default


def test_missing_dotenv_is_fine(tmp_path):
    assert Settings.from_env({}, dotenv_path=tmp_path / "nope.env").slack_bot_token is None


@pytest.mark.parametrize(
    ("var", "value", "needle"),
    [("QABOT_USER_RATE_LIMIT", "many", "whole number"), ("QABOT_DMS_ENABLED", "maybe", "true or false")],
)
def test_bad_values_name_the_variable(var, value, needle):
    with pytest.raises(ConfigError) as err:
        Settings.from_env({var: value}, dotenv_path=None)
    assert var in str(err.value) and needle in str(err.value)


def test_zero_rate_limit_rejected():
    with pytest.raises(ConfigError, match="QABOT_CHANNEL_RATE_LIMIT"):
        Settings.from_env({"QABOT_CHANNEL_RATE_LIMIT": "0"}, dotenv_path=None)


def test_missing_token_names_variable_and_where_to_get_it():
    s = Settings.from_env({}, dotenv_path=None)
    with pytest.raises(ConfigError) as err:
        s.require("slack_bot_token", "SLACK_APP_TOKEN")
    text = str(err.value)
    assert "SLACK_BOT_TOKEN is not set" in text and "slack-manifest.yml" in text and "xoxb-" in text
    assert "SLACK_APP_TOKEN is not set" in text and "connections:write" in text
    with pytest.raises(ConfigError, match=r"DISCORD_TOKEN is not set: .*discord.com/developers"):
        s.check_platform("discord")


def test_swapped_tokens_are_caught_without_echoing_them():
    s = Settings(slack_bot_token=APP, slack_app_token=BOT)
    with pytest.raises(ConfigError) as err:
        s.check_platform("slack")
    text = str(err.value)
    assert "SLACK_BOT_TOKEN must be a Bot User OAuth Token starting with 'xoxb-'" in text
    assert "SECRET" not in text


def test_socket_and_http_mode_need_different_secrets():
    assert required_for("slack", http=False) == ("slack_bot_token", "slack_app_token")
    assert required_for("slack", http=True) == ("slack_bot_token", "slack_signing_secret")
    assert required_for("discord") == ("discord_token",)
    assert required_for("terminal") == ()
    Settings(slack_bot_token=BOT, slack_signing_secret="abc").check_platform("slack", http=True)
    with pytest.raises(ConfigError, match="SLACK_SIGNING_SECRET"):
        Settings(slack_bot_token=BOT, slack_app_token=APP).check_platform("slack", http=True)
    with pytest.raises(ValueError):
        required_for("irc")


def test_secrets_never_in_repr_str_or_logs(caplog):
    s = Settings(
        discord_token="SECRETDISCORD", slack_bot_token=BOT, slack_app_token=APP, slack_signing_secret="SECRETSIGN"
    )
    for text in (repr(s), str(s), f"{s}", str(s.safe_dict())):
        assert "SECRET" not in text
    assert "slack_bot_token=***" in repr(s) and s.safe_dict()["discord_token"] == "set"
    with caplog.at_level(logging.INFO):
        logging.getLogger("t").info("settings: %s", s)
    assert "SECRET" not in caplog.text


def test_constructor_accepts_strings():
    s = Settings(index_dir="x", slack_admin_user_ids="U1, U2")
    assert s.index_dir == Path("x") and s.admin_user_ids("slack") == frozenset({"U1", "U2"})
    assert s.replace(dms_enabled=False).dms_enabled is False


def test_overrides_mapping_and_none_values(tmp_path):
    s = Settings.from_env(
        {"QABOT_KNOWLEDGE_DIR": "/env/k"}, dotenv_path=None, overrides={"index_dir": tmp_path, "knowledge_dir": None}
    )
    assert s.index_dir == tmp_path and s.knowledge_dir == Path("/env/k")
    with pytest.raises(TypeError):
        Settings.from_env({}, dotenv_path=None, no_such_setting=1)
