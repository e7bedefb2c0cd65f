"""Discord front end (discord.py 2.x): a thin translator between Discord and the ConversationService."""

from bot.adapters.discord.client import FeedbackButton, QabotDiscordBot, default_intents, run_discord
from bot.adapters.discord.render import MessagePayload, render_discord

__all__ = [
    "FeedbackButton",
    "MessagePayload",
    "QabotDiscordBot",
    "default_intents",
    "render_discord",
    "run_discord",
]
