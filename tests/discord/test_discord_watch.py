"""Watched channels on Discord, over the real protocol: questions answered without a mention.

Discord sends the text of a message that does not mention the bot only to a client with the
privileged Message Content intent (FakeDiscord blanks it otherwise, as Discord does).
"""

from __future__ import annotations

import logging

from bot.conversation.factory import open_feedback_store
from bot.conversation.service import ConversationService
from tests.discord.fake_discord import MANAGE_GUILD, MEMBER_PERMISSIONS, FakeDiscord
from tests.discord.harness import custom_ids, message_text, pings_nobody, running_bot, within_limits

QUESTION = "what is machine learning?"
ANSWER_WORDS = "learn from data"


def _watching(settings, *channels: str, intent: bool = True):
    return settings.model_copy(update={"message_content_intent": intent, "watched_channel_ids": tuple(channels)})


async def test_a_question_in_a_watched_channel_is_answered_in_a_new_thread(
    fake_discord: FakeDiscord, discord_service, discord_settings
):
    ada = fake_discord.add_user("ada")
    watched = fake_discord.add_channel("ask-ai")
    settings = _watching(discord_settings, watched)
    async with running_bot(fake_discord, service=discord_service, settings=settings) as bot:
        mark = fake_discord.mark()
        asked = await fake_discord.user_message(ada, QUESTION, channel_id=watched, mention_bot=False)
        await bot.finished(asked["id"])
        create = fake_discord.calls_since(mark, "POST", r"/threads$")
        assert len(create) == 1 and create[0].body["name"] == QUESTION
        sent = fake_discord.sent_messages(mark)
        assert sent and all(c.channel_id == asked["id"] for c in sent)  # the thread on the asking message
        assert ANSWER_WORDS in "\n".join(message_text(c.body) for c in sent)
        assert all(pings_nobody(c.body) and within_limits(c.body) for c in sent)
        assert len(custom_ids(sent[-1].body)) == 2

        # in a channel nobody watches, the same message gets nothing
        mark = fake_discord.mark()
        other = await fake_discord.user_message(ada, QUESTION, mention_bot=False)
        await bot.finished(other["id"])
        assert fake_discord.sent_messages(mark) == []


async def test_chatter_and_messages_to_people_get_silence(fake_discord: FakeDiscord, discord_service, discord_settings):
    ada, bo = fake_discord.add_user("ada"), fake_discord.add_user("bo")
    watched = fake_discord.add_channel("ask-ai")
    settings = _watching(discord_settings, watched)
    async with running_bot(fake_discord, service=discord_service, settings=settings) as bot:
        mark = fake_discord.mark()
        said = await fake_discord.user_message(
            ada, "machine learning is cool, ngl", channel_id=watched, mention_bot=False
        )
        await bot.finished(said["id"])
        off_topic = await fake_discord.user_message(
            ada, "what's the best pizza topping in Naples?", channel_id=watched, mention_bot=False
        )
        await bot.finished(off_topic["id"])
        to_bo = await fake_discord.user_message(
            ada, QUESTION, channel_id=watched, mention_bot=False, mention_users=(bo,)
        )
        await bot.finished(to_bo["id"])
        reply_to_ada = await fake_discord.user_message(
            bo, "what is machine learning used for then?", channel_id=watched, mention_bot=False, reply_to=to_bo
        )
        await bot.finished(reply_to_ada["id"])
        # a reply in ada's own thread is between people
        thread = fake_discord.add_thread(watched, ada.id)
        in_thread = await fake_discord.user_message(bo, QUESTION, channel_id=thread, mention_bot=False)
        await bot.finished(in_thread["id"])
        assert fake_discord.sent_messages(mark) == []
        assert not fake_discord.calls_since(mark, "POST", r"/threads$")


async def test_watch_from_chat_survives_a_restart(
    fake_discord: FakeDiscord, core_settings, engine_holder, discord_settings
):
    ada = fake_discord.add_user("ada")
    channel = fake_discord.add_channel("help")
    settings = discord_settings.model_copy(update={"message_content_intent": True})

    def service() -> ConversationService:
        return ConversationService(engine_holder, settings=core_settings, feedback=open_feedback_store(core_settings))

    first = service()
    async with running_bot(fake_discord, service=first, settings=settings) as bot:
        mark = fake_discord.mark()
        interaction = await fake_discord.slash_command(
            ada,
            "qabot",
            [{"name": "watch", "type": 1, "options": []}],
            channel_id=channel,
            permissions=MEMBER_PERMISSIONS | MANAGE_GUILD,
        )
        await bot.finished(interaction["id"])
        sent = fake_discord.sent_messages(mark)
        assert sent and all(c.ephemeral for c in sent)
        assert "watching this channel now" in message_text(sent[-1].body)
    first.feedback.close()

    second = service()  # a new process: the watched channel comes from the database
    try:
        async with running_bot(fake_discord, service=second, settings=settings) as bot:
            mark = fake_discord.mark()
            asked = await fake_discord.user_message(ada, QUESTION, channel_id=channel, mention_bot=False)
            await bot.finished(asked["id"])
            assert ANSWER_WORDS in "\n".join(message_text(c.body) for c in fake_discord.sent_messages(mark))
    finally:
        second.feedback.close()


async def test_without_the_message_content_intent_watching_says_what_is_missing(
    fake_discord: FakeDiscord, discord_service, discord_settings, caplog
):
    ada = fake_discord.add_user("ada")
    watched = fake_discord.add_channel("ask-ai")
    settings = _watching(discord_settings, watched, intent=False)
    with caplog.at_level(logging.INFO):
        async with running_bot(fake_discord, service=discord_service, settings=settings) as bot:
            mark = fake_discord.mark()
            asked = await fake_discord.user_message(ada, QUESTION, channel_id=watched, mention_bot=False)
            await bot.finished(asked["id"])
            assert fake_discord.sent_messages(mark) == []  # Discord sent it without its text

            interaction = await fake_discord.slash_command(
                ada,
                "qabot",
                [{"name": "watch", "type": 1, "options": []}],
                channel_id=watched,
                permissions=MEMBER_PERMISSIONS | MANAGE_GUILD,
            )
            await bot.finished(interaction["id"])
            text = "\n".join(message_text(c.body) for c in fake_discord.sent_messages(mark))
            assert "Message Content intent" in text and "DISCORD_MESSAGE_CONTENT_INTENT=true" in text
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any("DISCORD_WATCHED_CHANNEL_IDS" in w and "Message Content intent" in w for w in warnings)
