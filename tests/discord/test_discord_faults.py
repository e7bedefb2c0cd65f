"""Discord's refusals and failures: bad URLs, refused embeds, failed thread creation, 429s, the Message
Content intent, oversized passages, rate-limited /ask. The fake says no the way Discord does."""

from __future__ import annotations

import logging
from collections.abc import Callable

import pytest

from bot.conversation.service import ConversationService
from bot.core.types import Answer, AnswerKind, Confidence, Quote
from tests.discord.fake_discord import EPHEMERAL, FakeDiscord
from tests.discord.harness import custom_ids, message_text, running_bot, within_limits

QUESTION = "what is machine learning?"
ANSWER_WORDS = "learn from data"


def _answer_with(text: str, *, source_url: str | None = None, section: str = "Body") -> Callable[[str], Answer]:
    def answer(question: str, context=()) -> Answer:
        quote = Quote(
            text=text,
            document="A Document",
            doc_path="doc.md",
            section=section,
            section_path=tuple(section.split(" > ")),
            score=0.9,
            passage_id="p1",
            source_url=source_url,
        )
        return Answer(question, question, AnswerKind.ANSWER, Confidence.HIGH, (quote,), message="Here it is:")

    return answer


def _thread_posts(fake: FakeDiscord, mark: int, thread_id: str):
    return [c for c in fake.sent_messages(mark) if c.channel_id == thread_id]


@pytest.mark.parametrize(
    "url", ["https://example.com/a document.pdf", "https://example.com/" + "x" * 2100, "https:// example.com"]
)
async def test_a_malformed_source_url_no_longer_breaks_every_answer(
    fake_discord: FakeDiscord, discord_service, discord_settings, monkeypatch, url
):
    """Before: the URL went into the embed; Discord refused (50035), the mention left an empty thread."""
    monkeypatch.setattr(discord_service.engine, "answer", _answer_with("Machine learning is fun.", source_url=url))
    alice = fake_discord.add_user("alice")
    async with running_bot(fake_discord, service=discord_service, settings=discord_settings) as bot:
        mark = fake_discord.mark()
        asked = await fake_discord.user_message(alice, QUESTION)
        await bot.finished(asked["id"])
        assert not [c for c in fake_discord.calls_since(mark) if c.status >= 400]
        [sent] = _thread_posts(fake_discord, mark, asked["id"])
        assert sent.body["embeds"] and "url" not in sent.body["embeds"][0]
        assert "Machine learning is fun." in message_text(sent.body)

        # /ask too: before, a generic "something went wrong"
        mark = fake_discord.mark()
        interaction = await fake_discord.slash_command(alice, "ask", [{"name": "question", "type": 3, "value": "ml"}])
        await bot.finished(interaction["id"])
        [followup] = fake_discord.sent_messages(mark)
        assert "Machine learning is fun." in message_text(followup.body)


async def test_a_refused_embed_is_sent_again_as_plain_text(
    fake_discord: FakeDiscord, discord_service, discord_settings
):
    fake_discord.refuse_embeds = True
    bob = fake_discord.add_user("bob")
    async with running_bot(fake_discord, service=discord_service, settings=discord_settings) as bot:
        mark = fake_discord.mark()
        asked = await fake_discord.user_message(bob, QUESTION)
        await bot.finished(asked["id"])
        refused = [c for c in fake_discord.calls_since(mark) if c.status == 400]
        assert refused and all(c.body.get("embeds") for c in refused)
        sent = _thread_posts(fake_discord, mark, asked["id"])
        assert sent and all(not c.body.get("embeds") and within_limits(c.body) for c in sent)
        assert ANSWER_WORDS in "\n".join(message_text(c.body) for c in sent)
        assert len(custom_ids(sent[-1].body)) == 2, "the feedback buttons come along"
        assert bot.undelivered == 0

        mark = fake_discord.mark()
        interaction = await fake_discord.slash_command(
            bob,
            "ask",
            [{"name": "question", "type": 3, "value": QUESTION}, {"name": "private", "type": 5, "value": True}],
        )
        await bot.finished(interaction["id"])
        followups = fake_discord.sent_messages(mark)
        assert followups and all(c.ephemeral and not c.body.get("embeds") for c in followups)
        assert ANSWER_WORDS in "\n".join(message_text(c.body) for c in followups)


@pytest.mark.parametrize("failure", ["disconnect", 400, 404])
async def test_thread_creation_failing_for_any_reason_falls_back_to_a_reply(
    fake_discord: FakeDiscord, discord_service, discord_settings, failure
):
    """Before: only an HTTP error was caught; a dropped connection lost the answer."""
    channel = fake_discord.add_channel("flaky")
    fake_discord.thread_failures[channel] = failure
    carol = fake_discord.add_user("carol")
    async with running_bot(fake_discord, service=discord_service, settings=discord_settings) as bot:
        mark = fake_discord.mark()
        asked = await fake_discord.user_message(carol, QUESTION, channel_id=channel)
        await bot.finished(asked["id"], timeout=60)
        assert fake_discord.calls_since(mark, "POST", r"/threads$")
        sent = fake_discord.sent_messages(mark)
        assert sent and all(c.channel_id == channel for c in sent)
        assert str(sent[0].body["message_reference"]["message_id"]) == asked["id"]
        assert ANSWER_WORDS in "\n".join(message_text(c.body) for c in sent)


async def test_a_429_from_discord_delays_the_answer(fake_discord: FakeDiscord, discord_service, discord_settings):
    fake_discord.ratelimit_next = 1
    dave = fake_discord.add_user("dave")
    async with running_bot(fake_discord, service=discord_service, settings=discord_settings) as bot:
        mark = fake_discord.mark()
        asked = await fake_discord.user_message(dave, QUESTION, dm=True)
        await bot.finished(asked["id"])
        assert fake_discord.calls_since(mark, "POST", r"/messages$")[0].status == 429
        assert ANSWER_WORDS in "\n".join(message_text(c.body) for c in fake_discord.sent_messages(mark))


async def test_a_one_megabyte_passage_is_one_message(
    fake_discord: FakeDiscord, discord_service, discord_settings, monkeypatch
):
    """Before: a single 1 MB passage was posted as 244 messages."""
    text = " ".join(f"Sentence {i} of a very long paragraph." for i in range(30_000))  # ~1 MB
    monkeypatch.setattr(discord_service.engine, "answer", _answer_with(text, section="Part > Chapter"))
    erin = fake_discord.add_user("erin")
    async with running_bot(fake_discord, service=discord_service, settings=discord_settings) as bot:
        mark = fake_discord.mark()
        asked = await fake_discord.user_message(erin, QUESTION)
        await bot.finished(asked["id"])
        [sent] = fake_discord.sent_messages(mark)
        shown = message_text(sent.body)
        assert "Sentence 0 of a very long paragraph." in shown and "Sentence 29999" not in shown
        assert "Shortened; the full passage is in A Document › Part › Chapter." in shown


async def test_without_the_message_content_intent_mentions_and_dms_work(
    fake_discord: FakeDiscord, discord_service, discord_settings, caplog
):
    """Before: the bot asked for the privileged intent and could not start where it was not granted."""
    fake_discord.message_content_allowed = False
    frank = fake_discord.add_user("frank")
    with caplog.at_level(logging.INFO, logger="bot.adapters.discord.client"):
        async with running_bot(fake_discord, service=discord_service, settings=discord_settings) as bot:
            assert "Message Content intent is off" in caplog.text
            mark = fake_discord.mark()
            asked = await fake_discord.user_message(frank, QUESTION)
            await bot.finished(asked["id"])
            sent = _thread_posts(fake_discord, mark, asked["id"])
            text = "\n".join(message_text(c.body) for c in sent)
            assert ANSWER_WORDS in text
            assert "Mention me in this thread to ask a follow-up." in text and "no need to mention" not in text

            # an unmentioned follow-up arrives without its text: ignored, no reply, no error
            mark = fake_discord.mark()
            chatter = await fake_discord.user_message(frank, QUESTION, channel_id=asked["id"], mention_bot=False)
            assert chatter["content"] == ""
            await bot.finished(chatter["id"])
            assert fake_discord.calls_since(mark) == []
            # with a mention it is answered in the thread
            again = await fake_discord.user_message(frank, "how do ML systems learn", channel_id=asked["id"])
            await bot.finished(again["id"])
            assert _thread_posts(fake_discord, mark, asked["id"])

            mark = fake_discord.mark()
            dm = await fake_discord.user_message(frank, QUESTION, dm=True)
            await bot.finished(dm["id"])
            assert ANSWER_WORDS in "\n".join(message_text(c.body) for c in fake_discord.sent_messages(mark))


async def test_asking_for_the_intent_where_it_is_not_granted_fails_like_discord(
    fake_discord: FakeDiscord, discord_service, discord_settings
):
    import discord

    fake_discord.message_content_allowed = False
    settings = discord_settings.model_copy(update={"message_content_intent": True})
    with pytest.raises(discord.PrivilegedIntentsRequired):
        async with running_bot(fake_discord, service=discord_service, settings=settings):
            pass


async def test_ask_from_someone_already_rate_limited_gets_a_reply(
    fake_discord: FakeDiscord, core_settings, discord_settings, engine_holder
):
    """Before: the "thinking…" message was deleted and nothing was sent."""
    from bot.conversation.feedback import FeedbackStore

    settings = core_settings.replace(user_rate_limit=1)
    service = ConversationService(engine_holder, settings=settings, feedback=FeedbackStore(settings.feedback_db))
    gina = fake_discord.add_user("gina")
    try:
        async with running_bot(fake_discord, service=service, settings=discord_settings) as bot:
            replies = []
            for _ in range(3):
                mark = fake_discord.mark()
                interaction = await fake_discord.slash_command(
                    gina, "ask", [{"name": "question", "type": 3, "value": QUESTION}]
                )
                await bot.finished(interaction["id"])
                replies.append(fake_discord.sent_messages(mark))
    finally:
        service.feedback.close()
    assert ANSWER_WORDS in message_text(replies[0][0].body)
    for sent in replies[1:]:
        [notice] = sent
        assert notice.ephemeral and notice.body.get("flags", 0) & EPHEMERAL
        assert message_text(notice.body).count("Please try again in") == 1
