"""The Slack front end (slack-bolt): events, slash commands and buttons in; Block Kit answers out.

`run_slack(settings, http_port=None)` runs it (Socket Mode unless an HTTP port is given);
`build_slack_app(service, settings)` builds the Bolt app alone (tests); `render_slack_blocks(reply)`
renders a Reply within Slack's limits. Set-up steps: docs/slack.md.
"""

from bot.adapters.slack.app import build_slack_app, run_slack, serve_slack
from bot.adapters.slack.render import render_slack_blocks

__all__ = ["build_slack_app", "render_slack_blocks", "run_slack", "serve_slack"]
