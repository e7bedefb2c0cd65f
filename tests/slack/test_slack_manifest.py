"""slack-manifest.yml asks for exactly what the app listens to."""

from __future__ import annotations

from pathlib import Path

import yaml

MANIFEST = Path(__file__).resolve().parents[2] / "slack-manifest.yml"


def test_manifest_matches_the_app():
    m = yaml.safe_load(MANIFEST.read_text(encoding="utf-8"))
    assert m["display_information"]["name"] == "qabot"
    assert m["features"]["bot_user"]["display_name"] == "qabot"
    assert set(m["oauth_config"]["scopes"]["bot"]) == {
        "app_mentions:read",
        "chat:write",
        "im:history",
        "im:read",
        "channels:history",
        "groups:history",
        "commands",
        "users:read",
    }
    assert set(m["settings"]["event_subscriptions"]["bot_events"]) == {
        "app_mention",
        "message.im",
        "message.channels",
        "message.groups",
    }
    assert {c["command"] for c in m["features"]["slash_commands"]} == {"/ask", "/qabot"}
    assert m["settings"]["interactivity"]["is_enabled"] is True
    assert m["settings"]["socket_mode_enabled"] is True
    assert m["features"]["app_home"]["messages_tab_enabled"] is True  # DMs need the Messages tab


def test_the_qabot_command_lists_every_admin_command():
    from bot.conversation.models import ADMIN_COMMANDS

    m = yaml.safe_load(MANIFEST.read_text(encoding="utf-8"))
    qabot = next(c for c in m["features"]["slash_commands"] if c["command"] == "/qabot")
    hinted = {part.strip() for part in qabot["usage_hint"].split("|")}
    assert hinted == set(ADMIN_COMMANDS)
    assert all(name in qabot["description"] for name in ADMIN_COMMANDS)
    assert len(qabot["description"]) <= 2000 and len(qabot["usage_hint"]) <= 1000  # the manifest schema's limits


def test_the_teach_shortcut_is_a_message_shortcut_the_app_listens_to():
    """Within the manifest schema's limits (name <= 24, description <= 150 characters, type message|global),
    and its callback_id is the action id the Bolt app registers for it."""
    from bot.adapters.slack.app import SlackAdapter
    from bot.conversation.models import TEACH_NAME, Action

    m = yaml.safe_load(MANIFEST.read_text(encoding="utf-8"))
    (shortcut,) = m["features"]["shortcuts"]
    assert set(shortcut) == {"name", "type", "callback_id", "description"}  # additionalProperties: false
    assert shortcut["name"] == TEACH_NAME and len(shortcut["name"]) <= 24
    assert shortcut["type"] == "message"
    assert shortcut["callback_id"] == Action.TEACH.value
    assert 1 <= len(shortcut["description"]) <= 150
    assert hasattr(SlackAdapter, "on_teach")
