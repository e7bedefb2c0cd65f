"""The Discord adapter (discord.py 2.x): a thin translator between Discord and the ConversationService."""

from bot.adapters.discord.client import DiscordAdapter, FeedbackButton, QabotDiscordBot, default_intents
from bot.adapters.discord.render import MessagePayload, render_discord
from bot.adapters.discord.settings import DiscordSettings

__all__ = [
    "DiscordAdapter",
    "DiscordSettings",
    "FeedbackButton",
    "MessagePayload",
    "QabotDiscordBot",
    "default_intents",
    "render_discord",
]
