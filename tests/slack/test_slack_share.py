"""Slack's "Share in channel" reads the answer back from the database by its id: it works after the bot
restarted and on another replica than the one that answered /ask (the real Bolt app over HTTP, the real
index, on an SQLite file and on PostgreSQL)."""

from __future__ import annotations

from bot.conversation.models import Action
from bot.conversation.rebuild import RebuildCoordinator
from bot.conversation.service import ConversationService
from tests.slack.harness import SlackHttpHarness, block_texts, buttons_of

QUESTION = "how big is the ai market supposed to get"
GOLD = "740 billion by 2030"


def _service(engine_holder, core_settings, store) -> ConversationService:
    return ConversationService(
        engine_holder,
        settings=core_settings,
        feedback=store,
        rebuilder=RebuildCoordinator(engine_holder, core_settings.knowledge_dir, core_settings.index_dir),
    )


async def _replica(engine_holder, core_settings, slack_settings, fake_slack, database):
    store = database.open()
    harness = await SlackHttpHarness(_service(engine_holder, core_settings, store), slack_settings, fake_slack).start()
    return harness, store


def _assert_shared(fake_slack, response_url: str, channel: str) -> None:
    shared = fake_slack.calls_to("chat.postMessage")
    assert len(shared) == 1
    assert shared[0].args["channel"] == channel
    assert GOLD in "\n".join(block_texts(shared[0].args))
    buttons = buttons_of(shared[0].args)
    assert Action.SHARE not in buttons and "qabot_feedback_up" in buttons
    replaced = [c for c in fake_slack.calls_to("response_url") if response_url.endswith(c.path)]
    assert replaced and replaced[-1].args["replace_original"] is True
    assert Action.SHARE not in buttons_of(replaced[-1].args)


async def test_share_works_after_a_restart(engine_holder, core_settings, slack_settings, fake_slack, database):
    first, store = await _replica(engine_holder, core_settings, slack_settings, fake_slack, database)
    try:
        await first.command("/ask", QUESTION, channel="C7")
        private = fake_slack.posts[0].args
        share_value = buttons_of(private)[Action.SHARE]
    finally:
        await first.stop()
        store.close()  # the process is gone, and whatever it kept in memory with it

    second, store = await _replica(engine_holder, core_settings, slack_settings, fake_slack, database)
    try:
        _, response_url = await second.click(Action.SHARE, share_value, channel="C7", ephemeral=True)
    finally:
        await second.stop()
        store.close()
    _assert_shared(fake_slack, response_url, "C7")
    # the shared copy is the answer that was shown privately, feedback buttons for the same answer included
    shared = fake_slack.calls_to("chat.postMessage")[0].args
    assert buttons_of(shared)["qabot_feedback_up"] == share_value
    assert [t for t in block_texts(shared) if GOLD in t] == [t for t in block_texts(private) if GOLD in t]


async def test_share_works_on_another_replica(engine_holder, core_settings, slack_settings, fake_slack, database):
    one, store_one = await _replica(engine_holder, core_settings, slack_settings, fake_slack, database)
    two, store_two = await _replica(engine_holder, core_settings, slack_settings, fake_slack, database)
    try:
        await one.command("/ask", QUESTION, channel="C9")
        share_value = buttons_of(fake_slack.posts[0].args)[Action.SHARE]
        _, response_url = await two.click(Action.SHARE, share_value, channel="C9", ephemeral=True)
        # and a vote on the shared answer, received by the first replica, counts once for the answer
        await one.click("qabot_feedback_up", share_value, user="U5", channel="C9")
    finally:
        await one.stop()
        await two.stop()
        store_one.close()
        store_two.close()
    _assert_shared(fake_slack, response_url, "C9")
    with database.open() as store:
        assert [v["answer_id"] for v in store.votes()] == [share_value]
