"""The conversation layer shared by every adapter (CLI, Slack, Discord)."""
