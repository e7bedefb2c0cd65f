"""The Discord adapter removes Discord's markup from a question before the core sees it (bot/adapters/discord/text.py)."""

from __future__ import annotations

import pytest

from bot.adapters.discord.text import clean_discord_text
from tests.discord.harness import running_bot

QUESTION = "how big is the ai market supposed to get"


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("<@123> what is ml?", "what is ml?"),
        ("<@!123> what is ml?", "what is ml?"),
        ("<@&456> what is ml?", "what is ml?"),
        ("<#789> what is ml?", "what is ml?"),
        ("@everyone @here what is ml?", "what is ml?"),
        ("what is ml <:thinking:123> <a:party:456>", "what is ml"),
        ("ml since <t:1700000000:R>?", "ml since ?"),
        ("why does </ask:987> quote?", "why does /ask quote?"),
        ("what is ||machine learning||?", "what is machine learning?"),
        ("-# small print\nwhat is ml?", "small print what is ml?"),
        ("mail me@here.example", "mail me@here.example"),
    ],
)
def test_discord_markup_is_removed(raw, expected):
    assert clean_discord_text(raw) == expected


async def test_the_service_gets_and_stores_the_question_without_markup(fake_discord, discord_service, discord_settings):
    gina = fake_discord.add_user("gina")
    async with running_bot(fake_discord, service=discord_service, settings=discord_settings) as bot:
        asked = await fake_discord.user_message(gina, f"<@&42> {QUESTION} ||<:money:7>||")  # "<@bot> " in front
        await bot.finished(asked["id"])
    [stored] = discord_service.feedback.answers()
    assert stored.question == QUESTION
