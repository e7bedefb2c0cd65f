"""`qabot run` turns start-up failures into one clear line and an exit code, never a traceback."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

import bot.cli as cli

TOKENS = {"slack": {"SLACK_BOT_TOKEN": "xoxb-1", "SLACK_APP_TOKEN": "xapp-1"}, "discord": {"DISCORD_TOKEN": "t"}}


@pytest.fixture
def runner(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)  # no .env from the repository
    monkeypatch.setattr(cli, "_settings_cache", None)
    monkeypatch.setenv("QABOT_INDEX_DIR", str(tmp_path / "no-index"))
    monkeypatch.setenv("QABOT_FEEDBACK_DB", str(tmp_path / "feedback.sqlite3"))
    return CliRunner()


@pytest.mark.parametrize("platform", ["slack", "discord"])
def test_unreachable_platform_is_one_clear_line(runner, monkeypatch, platform):
    from bot.adapters.registry import adapter_class

    async def unreachable(*_args, **_kwargs):
        raise ConnectionError("Cannot connect to host: Name or service not known")

    monkeypatch.setattr(adapter_class(platform), "serve", unreachable)
    for var, value in TOKENS[platform].items():
        monkeypatch.setenv(var, value)
    result = runner.invoke(cli.app, ["run", platform])
    assert result.exit_code == cli.EXIT_FAILED
    assert "reachable" in result.output and "ConnectionError" in result.output
    assert "Traceback" not in result.output


@pytest.mark.parametrize(("platform", "variable"), [("slack", "SLACK_BOT_TOKEN"), ("discord", "DISCORD_TOKEN")])
def test_missing_token_names_the_variable_and_exits_2(runner, platform, variable):
    result = runner.invoke(cli.app, ["run", platform])
    assert result.exit_code == cli.EXIT_USAGE
    assert variable in result.output and "is not set" in result.output
    assert "Traceback" not in result.output


def test_unknown_front_end_lists_the_known_ones(runner):
    result = runner.invoke(cli.app, ["run", "irc"])
    assert result.exit_code == cli.EXIT_USAGE
    assert "'irc'" in result.output and all(name in result.output for name in ("slack", "discord", "terminal"))


def test_http_mode_only_where_the_adapter_has_one(runner, monkeypatch):
    monkeypatch.setenv("DISCORD_TOKEN", "t")
    result = runner.invoke(cli.app, ["run", "discord", "--http", "3000"])
    assert result.exit_code == cli.EXIT_USAGE and "no HTTP mode" in result.output
