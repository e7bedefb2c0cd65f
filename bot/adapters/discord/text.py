"""A Discord message's text without Discord's markup: the question as the core should see it.

Discord's message format (discord.com/developers/docs/reference#message-formatting): people as
<@123> or <@!123>, roles as <@&123>, channels as <#123>, slash commands as </ask:123>, custom emoji
as <:name:123> or <a:name:123>, timestamps as <t:1700000000:R>; "@everyone" and "@here" are typed
words; ||spoilers|| and "-# " subtext lines are Discord-only Markdown.
"""

from __future__ import annotations

import re

_MENTION = re.compile(r"<(?:@[!&]?\d+|#\d+|a?:\w+:\d+|t:-?\d+(?::[tTdDfFR])?)>")
_COMMAND = re.compile(r"</([\w -]+):\d+>")
_MASS_MENTION = re.compile(r"(?<![\w.])@(?:everyone|here)\b")
_SPOILER = re.compile(r"\|\|(.+?)\|\|", re.DOTALL)
_SUBTEXT = re.compile(r"^-# ", re.MULTILINE)


def clean_discord_text(text: str) -> str:
    """Mentions, emoji and timestamps removed, commands as /name, spoilers opened, whitespace collapsed."""
    text = _COMMAND.sub(lambda m: f"/{m.group(1)}", text)
    text = _MENTION.sub(" ", text)
    text = _MASS_MENTION.sub(" ", text)
    text = _SPOILER.sub(r"\1", text)
    text = _SUBTEXT.sub("", text)
    return " ".join(text.split())
