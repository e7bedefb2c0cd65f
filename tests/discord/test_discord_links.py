"""Each quote links to its place in the source on Discord (issue 9, item 6): through discord.py and
the loopback fake, which refuses an embed URL the way Discord does (50035), every quote's embed
carries its deep link and the message stays within Discord's limits."""

from __future__ import annotations

from tests.discord.fake_discord import URL_LIMIT, FakeDiscord
from tests.discord.harness import running_bot, within_limits
from tests.links_fixture import EXPECTED_LINKS, PAGE, linked_answer


async def test_every_quote_embed_links_to_its_passage(
    fake_discord: FakeDiscord, discord_service, discord_settings, monkeypatch
):
    monkeypatch.setattr(discord_service.engine, "answer", linked_answer)
    alice = fake_discord.add_user("alice")
    async with running_bot(fake_discord, service=discord_service, settings=discord_settings) as bot:
        mark = fake_discord.mark()
        asked = await fake_discord.user_message(alice, "what is a GAN used for?")
        await bot.finished(asked["id"])
        assert not [c for c in fake_discord.calls_since(mark) if c.status >= 400]
        sent = [c for c in fake_discord.sent_messages(mark) if c.body.get("embeds")]
        assert sent and all(within_limits(c.body) for c in sent)
        urls = [e.get("url") for c in sent for e in c.body["embeds"]]
        assert urls == list(EXPECTED_LINKS)
        assert all(len(u) <= URL_LIMIT for u in urls)
        assert "&" in PAGE and urls[0].startswith(PAGE + "#:~:text=")  # sent as is: JSON, not markup


async def test_a_deep_link_over_discords_limit_falls_back_to_the_page(
    fake_discord: FakeDiscord, discord_service, discord_settings, monkeypatch
):
    """The adapter checks its own limit: a deep link over 2,048 characters is the source_url instead."""
    import dataclasses

    page = "https://example.com/" + "q" * 1900
    answer = linked_answer("q")
    quote = dataclasses.replace(answer.quotes[0], source_url=page, link=page + "#:~:text=" + "w" * 200)
    monkeypatch.setattr(
        discord_service.engine, "answer", lambda q, context=(): dataclasses.replace(answer, quotes=(quote,))
    )
    bob = fake_discord.add_user("bob")
    async with running_bot(fake_discord, service=discord_service, settings=discord_settings) as bot:
        mark = fake_discord.mark()
        asked = await fake_discord.user_message(bob, "what is a GAN used for?")
        await bot.finished(asked["id"])
        assert not [c for c in fake_discord.calls_since(mark) if c.status >= 400]
        [embed] = [e for c in fake_discord.sent_messages(mark) for e in c.body.get("embeds") or []]
        assert embed["url"] == page
