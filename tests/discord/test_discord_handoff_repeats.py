"""Discord's side of hand-off to people and repeats (issue 9, items 2 and 4), the real client against
FakeDiscord: the role's mention with allowed_mentions that let only that role ping, in the thread, the
question escaped; "Ask a person" after a restart of the bot; the jump URL of the earlier thread."""

from __future__ import annotations

import re

from bot.conversation.models import Action
from tests.discord.fake_discord import FakeDiscord, check_message
from tests.discord.harness import custom_ids, message_text, pings_nobody, running_bot
from tests.discord.spec_driver import pings

ML = "what is machine learning?"
OFF_TOPIC = "@everyone how do I get a **refund** for my ticket?"


async def test_an_abstention_tags_only_the_role_in_the_thread(
    fake_discord: FakeDiscord, discord_service, discord_settings
):
    role = fake_discord.snowflake()
    settings = discord_settings.model_copy(update={"handoff_roles": {fake_discord.general: role}})
    alice = fake_discord.add_user("alice")
    async with running_bot(fake_discord, service=discord_service, settings=settings) as bot:
        mark = fake_discord.mark()
        asked = await fake_discord.user_message(alice, OFF_TOPIC)
        await bot.finished(asked["id"])
        sent = fake_discord.sent_messages(mark)
    thread = asked["id"]
    tags = [c for c in sent if pings(c.body)]
    assert len(tags) == 1, [c.body for c in sent]
    tag = tags[0]
    assert tag.channel_id == thread and sent.index(tag) == len(sent) - 1  # after the answer, in its thread
    assert tag.body["content"].startswith(f"<@&{role}> ")
    allowed = tag.body["allowed_mentions"]
    assert allowed["parse"] == [] and [str(r) for r in allowed["roles"]] == [role]
    assert not allowed.get("users") and not allowed.get("replied_user")
    assert not check_message(tag.body)  # Discord would take it
    # the person's words ping nobody and show as typed
    assert "@everyone" not in tag.body["content"] and "\\*\\*refund\\*\\*" in tag.body["content"]
    assert all(pings_nobody(c.body) for c in sent if c is not tag)


async def test_ask_a_person_works_after_a_restart_and_tags_once(
    fake_discord: FakeDiscord, discord_service, discord_settings
):
    role = fake_discord.snowflake()
    settings = discord_settings.model_copy(update={"handoff_roles": {fake_discord.general: role}})
    alice, bob = fake_discord.add_user("alice"), fake_discord.add_user("bob")
    async with running_bot(fake_discord, service=discord_service, settings=settings) as bot:
        mark = fake_discord.mark()
        asked = await fake_discord.user_message(alice, ML)
        await bot.finished(asked["id"])
        answer = fake_discord.sent_messages(mark)[-1]
    ask_person = [c for c in custom_ids(answer.body) if c.startswith("qabot:ask:")]
    assert len(ask_person) == 1 and re.fullmatch(r"qabot:ask:[A-Za-z0-9_-]+", ask_person[0])
    # a new process: the button's custom_id carries all it needs
    async with running_bot(fake_discord, service=discord_service, settings=settings) as bot:
        mark = fake_discord.mark()
        click = await fake_discord.click_button(bob, answer.response, ask_person[0])
        await bot.finished(click["id"])
        first = fake_discord.sent_messages(mark)
        mark = fake_discord.mark()
        click = await fake_discord.click_button(alice, answer.response, ask_person[0])
        await bot.finished(click["id"])
        second = fake_discord.sent_messages(mark)
    tags = [c for c in first if pings(c.body)]
    assert len(tags) == 1 and tags[0].channel_id == asked["id"]
    assert "asked for a person" in tags[0].body["content"] and ML in tags[0].body["content"]
    assert any(c.ephemeral and "asked people" in message_text(c.body) for c in first)
    assert not any(pings(c.body) for c in second)
    assert any(c.ephemeral and "already" in message_text(c.body) for c in second)


async def test_a_repeat_links_the_earlier_thread_by_its_jump_url(
    fake_discord: FakeDiscord, discord_service, discord_settings
):
    alice = fake_discord.add_user("alice")
    async with running_bot(fake_discord, service=discord_service, settings=discord_settings) as bot:
        first = await fake_discord.user_message(alice, ML)
        await bot.finished(first["id"])
        mark = fake_discord.mark()
        again = await fake_discord.user_message(alice, "What is Machine Learning")
        await bot.finished(again["id"])
        sent = fake_discord.sent_messages(mark)
    url = f"https://discord.com/channels/{fake_discord.guild_id}/{fake_discord.general}/{first['id']}"
    assert any(f"[see that thread]({url})" in (c.body.get("content") or "") for c in sent), [c.body for c in sent]
    assert all(pings_nobody(c.body) and not check_message(c.body) for c in sent)
    assert not any(Action.HANDOFF in custom_ids(c.body) for c in sent)  # no hand-off configured here


def test_the_fake_refuses_roles_both_parsed_and_listed():
    body = {"content": "<@&1>", "allowed_mentions": {"parse": ["roles"], "roles": ["1"]}}
    assert "allowed_mentions" in check_message(body)
