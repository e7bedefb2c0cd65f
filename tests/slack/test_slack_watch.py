"""Watched channels on Slack, through the real Bolt app over HTTP: questions answered without a mention.

Slack delivers every message of a channel the bot is in as `message.channels` (`message.groups` in a
private channel); a top-level one has no `thread_ts`.
"""

from __future__ import annotations

from bot.conversation.factory import open_feedback_store
from bot.conversation.service import ConversationService
from tests.slack.conftest import ADMIN
from tests.slack.fake_slack import BOT_USER_ID, app_mention, message, next_ts
from tests.slack.harness import SlackHttpHarness, block_texts, buttons_of

QUESTION = "how big is the ai market supposed to get?"
GOLD = "740 billion by 2030"


def _watching(settings, *channels: str):
    return settings.model_copy(update={"watched_channel_ids": channels})


async def test_a_question_in_a_watched_channel_is_answered_in_its_thread(slack_service, slack_settings, fake_slack):
    harness = await SlackHttpHarness(slack_service, _watching(slack_settings, "CASK"), fake_slack).start()
    try:
        event = message(QUESTION, channel="CASK")
        await harness.event(event)
        assert len(fake_slack.posts) == 1, fake_slack.posts
        post = fake_slack.posts[0]
        assert post.method == "chat.postMessage" and post.args["channel"] == "CASK"
        assert post.args["thread_ts"] == event["ts"]
        assert GOLD in "\n".join(block_texts(post.args))
        assert set(buttons_of(post.args)) == {"qabot_feedback_up", "qabot_feedback_down"}

        # a follow-up in that thread needs no mention
        await harness.event(message("and by when?", channel="CASK", thread_ts=event["ts"]))
        assert len(fake_slack.posts) == 2 and fake_slack.posts[1].args["thread_ts"] == event["ts"]

        # the same question in a channel nobody watches: nothing
        await harness.event(message(QUESTION, channel="COTHER"))
        assert len(fake_slack.posts) == 2
    finally:
        await harness.stop()


async def test_chatter_and_messages_to_people_get_silence(slack_service, slack_settings, fake_slack):
    harness = await SlackHttpHarness(slack_service, _watching(slack_settings, "CASK"), fake_slack).start()
    try:
        for text in (
            "morning all! coffee first",
            "generative ai is overhyped imo",
            f"<@U0PRIYA> {QUESTION}",  # asked of a person
            f"<!subteam^S0DATA|@data-team> {QUESTION}",  # asked of a user group
            "what's the best pizza topping in Naples?",  # a question the knowledge does not answer
        ):
            await harness.event(message(text, channel="CASK"))
        # a reply in a person's thread is between people, even when it is a question
        await harness.event(message(QUESTION, channel="CASK", thread_ts=next_ts()))
        assert fake_slack.posts == []
    finally:
        await harness.stop()


async def test_a_mention_in_a_watched_channel_is_answered_once(slack_service, slack_settings, fake_slack):
    harness = await SlackHttpHarness(slack_service, _watching(slack_settings, "CASK"), fake_slack).start()
    try:
        event = app_mention(QUESTION, channel="CASK")
        await harness.event(event)
        # Slack also delivers it as message.channels: left to its app_mention twin
        await harness.event(message(event["text"], channel="CASK", ts=event["ts"]))
        assert len(fake_slack.posts) == 1
        assert f"<@{BOT_USER_ID}>" in event["text"]
    finally:
        await harness.stop()


async def test_watch_from_slack_survives_a_restart(core_settings, engine_holder, slack_settings, fake_slack):
    def service() -> ConversationService:
        return ConversationService(engine_holder, settings=core_settings, feedback=open_feedback_store(core_settings))

    first = service()
    harness = await SlackHttpHarness(first, slack_settings, fake_slack).start()
    try:
        await harness.command("/qabot", "watch", user=ADMIN, channel="CHELP")
        (confirm,) = fake_slack.posts
        assert confirm.method == "response_url" and confirm.args["response_type"] == "ephemeral"
        assert "watching this channel now" in confirm.args["text"]
        refused_before = len(fake_slack.posts)
        await harness.command("/qabot", "unwatch", user="U0NOBODY", channel="CHELP")
        assert "only admins" in fake_slack.posts[refused_before].args["text"]
    finally:
        await harness.stop()
        first.feedback.close()

    second = service()  # a new process: the watched channel comes from the database
    harness = await SlackHttpHarness(second, slack_settings, fake_slack).start()
    try:
        before = len(fake_slack.posts)
        await harness.event(message(QUESTION, channel="CHELP"))
        answers = fake_slack.posts[before:]
        assert len(answers) == 1 and GOLD in "\n".join(block_texts(answers[0].args))
    finally:
        await harness.stop()
        second.feedback.close()
