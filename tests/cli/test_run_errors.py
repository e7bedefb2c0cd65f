"""`qabot run` turns start-up failures into one clear line and an exit code, never a traceback."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

import bot.cli as cli


@pytest.fixture
def runner(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)  # no .env from the repository
    monkeypatch.setattr(cli, "_settings_cache", None)
    for var in ("SLACK_BOT_TOKEN", "SLACK_APP_TOKEN", "SLACK_SIGNING_SECRET", "DISCORD_TOKEN"):
        monkeypatch.delenv(var, raising=False)
    return CliRunner()


@pytest.mark.parametrize("platform", ["slack", "discord"])
def test_unreachable_platform_is_one_clear_line(runner, monkeypatch, platform):
    import bot.adapters.discord.client as discord_client
    import bot.adapters.slack.app as slack_app

    def unreachable(*_args, **_kwargs):
        raise ConnectionError("Cannot connect to host: Name or service not known")

    monkeypatch.setattr(slack_app, "run_slack", unreachable)
    monkeypatch.setattr(discord_client, "run_discord", unreachable)
    result = runner.invoke(cli.app, ["run", platform])
    assert result.exit_code == cli.EXIT_FAILED
    assert "reachable" in result.output and "ConnectionError" in result.output
    assert "Traceback" not in result.output


@pytest.mark.parametrize(("platform", "variable"), [("slack", "SLACK_BOT_TOKEN"), ("discord", "DISCORD_TOKEN")])
def test_missing_token_names_the_variable_and_exits_2(runner, platform, variable):
    result = runner.invoke(cli.app, ["run", platform])
    assert result.exit_code == cli.EXIT_USAGE
    assert variable in result.output
    assert "Traceback" not in result.output
