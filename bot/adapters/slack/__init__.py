"""The Slack adapter (slack-bolt): events, slash commands and buttons in; Block Kit answers out.

`SlackAdapter(service, SlackSettings.load())` holds the Bolt app (`.app`) and serves it over Socket
Mode, or over HTTP when SLACK_HTTP_PORT / `--http PORT` is set; `render_slack_blocks(reply)` renders
a Reply within Slack's limits. Set-up steps: docs/slack.md.
"""

from bot.adapters.slack.app import SlackAdapter, SlackHttpServer
from bot.adapters.slack.render import render_slack_blocks
from bot.adapters.slack.settings import SlackSettings

__all__ = ["SlackAdapter", "SlackHttpServer", "SlackSettings", "render_slack_blocks"]
