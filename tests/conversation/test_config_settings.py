"""The shared settings (QABOT_*). Each adapter's own settings: tests/adapters/test_adapter_settings.py."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.config import ConfigError, Settings


def test_defaults():
    s = Settings.from_env({}, dotenv_path=None)
    assert s.index_dir == Path("index") and s.knowledge_dir == Path("knowledge")
    assert s.feedback_db == Path("data/qabot.sqlite3")
    assert s.dms_enabled
    assert s.user_rate_limit == 6 and s.channel_rate_limit == 30 and s.rate_window_s == 60
    assert s.rate_limit_exempt_platforms == ("terminal",)
    assert s.log_level == "INFO"


def test_from_env_parses_types(tmp_path):
    env = {
        "QABOT_INDEX_DIR": str(tmp_path / "idx"),
        "QABOT_DMS_ENABLED": "no",
        "QABOT_USER_RATE_LIMIT": "2",
        "QABOT_RATE_WINDOW_S": "30.5",
        "QABOT_LOG_LEVEL": "DEBUG",
    }
    s = Settings.from_env(env, dotenv_path=None)
    assert s.index_dir == tmp_path / "idx"
    assert not s.dms_enabled
    assert s.user_rate_limit == 2 and s.rate_window_s == 30.5 and s.log_level == "DEBUG"


def test_explicit_overrides_win(tmp_path):
    s = Settings.from_env({"QABOT_INDEX_DIR": "/env/index"}, dotenv_path=None, index_dir=tmp_path)
    assert s.index_dir == tmp_path


def test_dotenv_is_read_but_does_not_override_env(tmp_path):
    dotenv = tmp_path / ".env"
    dotenv.write_text("QABOT_FEEDBACK_DB=/from/dotenv.sqlite3\nQABOT_INDEX_DIR=/from/dotenv\nQABOT_USER_RATE_LIMIT=\n")
    s = Settings.from_env({"QABOT_INDEX_DIR": "/from/env"}, dotenv_path=dotenv)
    assert s.feedback_db == Path("/from/dotenv.sqlite3")
    assert s.index_dir == Path("/from/env")
    assert s.user_rate_limit == 6  # VAR= means default


def test_missing_dotenv_is_fine(tmp_path):
    assert Settings.from_env({}, dotenv_path=tmp_path / "nope.env").index_dir == Path("index")


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


def test_no_platform_settings_in_the_shared_ones():
    from dataclasses import fields

    names = [f.name for f in fields(Settings)]
    assert not [n for n in names if n.startswith(("slack", "discord"))], names


def test_constructor_accepts_strings():
    s = Settings(index_dir="x")
    assert s.index_dir == Path("x")
    assert s.replace(dms_enabled=False).dms_enabled is False


def test_overrides_mapping_and_none_values(tmp_path):
    s = Settings.from_env(
        {"QABOT_KNOWLEDGE_DIR": "/env/k"}, dotenv_path=None, overrides={"index_dir": tmp_path, "knowledge_dir": None}
    )
    assert s.index_dir == tmp_path and s.knowledge_dir == Path("/env/k")
    with pytest.raises(TypeError):
        Settings.from_env({}, dotenv_path=None, no_such_setting=1)
