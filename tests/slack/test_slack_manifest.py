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
