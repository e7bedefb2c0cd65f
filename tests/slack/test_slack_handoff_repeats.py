"""Slack's side of hand-off to people and repeats (issue 9, items 2 and 4), through the real Bolt app over
HTTP against the fake Web API: the user group's mention, the thread, the escaping of the question, and
chat.getPermalink (which can fail: the answer then goes out without the link)."""

from __future__ import annotations

import pytest
import pytest_asyncio

from bot.adapters.slack.settings import SlackSettings
from bot.config import ConfigError
from bot.conversation.models import Action
from tests.slack.fake_slack import app_mention
from tests.slack.harness import SlackHttpHarness, block_texts, buttons_of
from tests.slack.spec_driver import pings, pings_nobody

GROUP = "S0HELPERS"
ML = "what is machine learning?"


@pytest_asyncio.fixture
async def slack(slack_service, slack_settings, fake_slack):
    settings = slack_settings.model_copy(update={"handoff_groups": {"C1": GROUP}})
    harness = await SlackHttpHarness(slack_service, settings, fake_slack).start()
    try:
        yield harness
    finally:
        await harness.stop()


def _posts_in(fake, channel: str):
    return [c for c in fake.calls_to("chat.postMessage") if c.args.get("channel") == channel and c.error is None]


async def test_an_abstention_tags_the_user_group_in_the_thread_with_the_question_escaped(slack, fake_slack):
    # as Slack sends it: the person typed "<!everyone> is a 3 < 5 refund & a ticket thing?"
    event = app_mention("<!everyone> is a 3 &lt; 5 refund &amp; a ticket thing?", channel="C1")
    await slack.event(event)
    posts = _posts_in(fake_slack, "C1")
    tags = [p for p in posts if pings(p.args)]
    assert len(tags) == 1, [p.args for p in posts]
    tag = tags[0].args
    assert pings(tag) == (GROUP,)
    assert tag["text"].startswith(f"<!subteam^{GROUP}> ")
    assert tag["thread_ts"] == event["ts"]
    assert tag["parse"] == "none" and tag["link_names"] in (False, "0", 0, "false")
    # the person's words cannot ping anyone: the adapter dropped the mention, and Slack's control
    # characters in the question are escaped again
    assert "<!everyone>" not in tag["text"] and "3 &lt; 5 refund &amp; a ticket" in tag["text"]
    assert tag["text"].count("<") == 1
    # the answer itself (posted first) still pings nobody
    assert pings_nobody(posts[0].args) and posts.index(tags[0]) > 0


async def test_a_channel_without_a_group_tags_nobody(slack, fake_slack):
    await slack.event(app_mention("how do I get a refund for my ticket?", channel="C2"))
    posts = _posts_in(fake_slack, "C2")
    assert posts and all(pings_nobody(p.args) for p in posts)
    assert all(Action.HANDOFF not in buttons_of(p.args) for p in posts)


async def test_a_repeat_links_the_earlier_thread_by_its_permalink(slack, fake_slack):
    first = app_mention(ML, channel="C1")
    await slack.event(first)
    await slack.event(app_mention("What is machine learning", channel="C1"))
    (call,) = fake_slack.calls_to("chat.getPermalink")
    assert (call.args["channel"], call.args["message_ts"]) == ("C1", first["ts"])
    answer = _posts_in(fake_slack, "C1")[-1].args
    link = f"<https://fake.slack.test/archives/C1/p{first['ts'].replace('.', '')}|see that thread>"
    assert any(link in t for t in block_texts(answer)), block_texts(answer)
    assert pings_nobody(answer)
    assert Action.HANDOFF in buttons_of(answer)


@pytest.mark.parametrize("error", ["channel_not_found", "message_not_found"])
async def test_a_permalink_slack_refuses_leaves_the_link_out_not_the_answer(slack, fake_slack, error):
    await slack.event(app_mention(ML, channel="C1"))
    fake_slack.fail["chat.getPermalink"] = error
    await slack.event(app_mention("What is machine learning", channel="C1"))
    (call,) = fake_slack.calls_to("chat.getPermalink")
    assert call.error == error
    answer = _posts_in(fake_slack, "C1")[-1].args
    assert "machine learning" in "\n".join(block_texts(answer)).lower()
    assert not any("see that thread" in t for t in block_texts(answer))


async def test_a_deleted_first_message_is_message_not_found(slack, fake_slack):
    first = app_mention(ML, channel="C1")
    await slack.event(first)
    fake_slack.messages.discard(("C1", first["ts"]))  # the person deleted the question
    await slack.event(app_mention("What is machine learning", channel="C1"))
    (call,) = fake_slack.calls_to("chat.getPermalink")
    assert call.error == "message_not_found"
    assert not any("see that thread" in t for t in block_texts(_posts_in(fake_slack, "C1")[-1].args))


def test_a_handoff_group_must_be_an_id(monkeypatch):
    monkeypatch.setenv("SLACK_HANDOFF_GROUPS", "C1=<!everyone>")
    with pytest.raises(ConfigError, match="SLACK_HANDOFF_GROUPS"):
        SlackSettings.load(_env_file=None)
    monkeypatch.setenv("SLACK_HANDOFF_GROUPS", "C1=S1, *=S2")
    settings = SlackSettings.load(_env_file=None)
    assert (settings.handoff_for("C1"), settings.handoff_for("C9")) == ("S1", "S2")
