"""The real Bolt app in HTTP mode on 127.0.0.1, signed requests in, a fake Web API out, the real index."""

from __future__ import annotations

import asyncio
import json
import threading
import time

import pytest

from bot.config import ConfigError
from bot.conversation.models import Action
from tests.slack.conftest import ADMIN
from tests.slack.fake_slack import BOT_ID, BOT_USER_ID, app_mention, event_callback, message, next_ts
from tests.slack.harness import SlackHttpHarness, block_texts, buttons_of

QUESTION = "how big is the ai market supposed to get"
GOLD = "740 billion by 2030"


async def test_mention_is_answered_once_in_its_thread(slack_http, fake_slack):
    event = app_mention(QUESTION, channel="C1")
    sent = await slack_http.event(event)

    assert sent.status == 200
    posts = fake_slack.posts
    assert len(posts) == 1, posts
    post = posts[0]
    assert post.method == "chat.postMessage"
    assert post.token == "xoxb-test-token"
    assert post.args["channel"] == "C1"
    assert post.args["thread_ts"] == event["ts"]
    assert post.args["text"]  # fallback text always set
    texts = "\n".join(block_texts(post.args))
    assert GOLD in texts
    assert any(t.startswith("> ") for t in block_texts(post.args)), "quotes are block quotes"
    assert set(buttons_of(post.args)) == {"qabot_feedback_up", "qabot_feedback_down"}
    assert post.args.get("parse") == "none" and not post.args.get("link_names")


async def test_reply_inside_a_thread_stays_in_that_thread(slack_http, fake_slack):
    parent = next_ts()
    await slack_http.event(app_mention(QUESTION, thread_ts=parent))
    assert fake_slack.posts[0].args["thread_ts"] == parent


async def test_bad_signature_is_refused(slack_http, fake_slack):
    body = json.dumps(event_callback(app_mention(QUESTION)))
    from tests.slack.fake_slack import bad_signature

    assert slack_http.session is not None
    async with slack_http.session.post(
        slack_http.url,
        data=body,
        headers={"Content-Type": "application/json", **bad_signature(slack_http.secret, body)},
    ) as resp:
        assert resp.status == 401
    await asyncio.sleep(0.2)  # nothing may be running in the background either
    assert fake_slack.posts == []
    assert slack_http.adapter.listeners.finished == 0


async def test_stale_timestamp_is_refused(slack_http, fake_slack):
    stale = int(time.time()) - 301
    sent = await slack_http.event(app_mention(QUESTION), timestamp=stale, wait=False)
    assert sent.status == 401
    fresh = await slack_http.event(app_mention(QUESTION), timestamp=int(time.time()) - 5)
    assert fresh.status == 200
    assert len(fake_slack.posts) == 1


async def test_retried_event_is_not_answered_twice(slack_http, fake_slack):
    event = app_mention(QUESTION)
    first = await slack_http.event(event, event_id="EvRETRY1")
    retry = await slack_http.event(event, event_id="EvRETRY1", retry_num=1)
    assert first.status == retry.status == 200
    assert slack_http.adapter.listeners.finished == 2  # the retry reached the listener...
    assert len(fake_slack.posts) == 1  # ...and was not answered again


async def test_retry_racing_the_first_delivery_is_answered_once(slack_http, fake_slack):
    event = app_mention(QUESTION)
    await asyncio.gather(
        slack_http.event(event, event_id="EvRACE", wait=False),
        slack_http.event(event, event_id="EvRACE", retry_num=1, wait=False),
        slack_http.event(event, event_id="EvRACE", retry_num=2, wait=False),
    )
    await slack_http.adapter.listeners.wait_until(lambda ls: ls.finished >= 3, 30)
    assert len(fake_slack.posts) == 1


async def test_mention_and_its_message_twin_are_answered_once(slack_http, fake_slack):
    """Slack sends app_mention and message.channels for the same message, with different event ids."""
    mention = app_mention(QUESTION, thread_ts=None)
    twin = message(mention["text"], ts=mention["ts"], thread_ts=mention["ts"])
    await slack_http.event(mention)
    await slack_http.event(twin)
    assert len(fake_slack.posts) == 1


async def test_direct_message_is_answered(slack_http, fake_slack):
    await slack_http.event(message(QUESTION, channel="D1", channel_type="im"))
    assert len(fake_slack.posts) == 1
    post = fake_slack.posts[0]
    assert post.args["channel"] == "D1"
    assert post.args.get("thread_ts") is None
    assert GOLD in "\n".join(block_texts(post.args))


async def test_follow_up_in_the_bots_thread_needs_no_mention(slack_http, fake_slack):
    mention = app_mention(QUESTION)
    await slack_http.event(mention)
    await slack_http.event(message("what subfields does ai include?", thread_ts=mention["ts"]))
    assert len(fake_slack.posts) == 2
    assert fake_slack.posts[1].args["thread_ts"] == mention["ts"]

    # the same words in someone else's thread, or at the top level, are not for the bot
    await slack_http.event(message("what subfields does ai include?", thread_ts=next_ts()))
    await slack_http.event(message("what subfields does ai include?"))
    assert len(fake_slack.posts) == 2


async def test_bots_are_ignored(slack_http, fake_slack):
    mention = app_mention(QUESTION)
    await slack_http.event(mention)
    # another bot in the thread
    await slack_http.event(
        message("what subfields does ai include?", thread_ts=mention["ts"], bot_id="BOTHER", user="UOTHERBOT")
    )
    await slack_http.event(
        message("what subfields does ai include?", thread_ts=mention["ts"], subtype="bot_message", user=None)
    )
    # the bot's own answer arriving as a message event: Bolt drops it before any listener runs
    own = await slack_http.event(
        message("> a quote", thread_ts=mention["ts"], user=BOT_USER_ID, bot_id=BOT_ID), wait=False
    )
    assert own.status == 200
    # an edit of a question is not a new question
    await slack_http.event(
        message("", thread_ts=mention["ts"], subtype="message_changed", user=None, message={"text": QUESTION})
    )
    await asyncio.sleep(0.1)
    assert len(fake_slack.posts) == 1


class GatedService:
    """The real service, but handle() waits for a gate: shows the ack does not wait for the answer."""

    def __init__(self, service):
        self._service = service
        self.gate = threading.Event()

    def handle(self, msg):
        assert self.gate.wait(10)
        return self._service.handle(msg)

    def __getattr__(self, name):
        return getattr(self._service, name)


async def test_ask_acks_at_once_then_answers_privately_with_a_share_button(slack_service, slack_settings, fake_slack):
    gated = GatedService(slack_service)
    harness = await SlackHttpHarness(gated, slack_settings, fake_slack).start()
    try:
        sent, response_url = await harness.command("/ask", QUESTION, wait=False)
        assert sent.status == 200
        assert sent.elapsed_s < 1.0
        assert fake_slack.posts == []  # acknowledged while the answer is still being worked out
        gated.gate.set()
        await harness.adapter.listeners.wait_until(lambda ls: ls.finished >= 1, 30)
    finally:
        await harness.stop()

    posts = fake_slack.posts
    assert len(posts) == 1
    post = posts[0]
    assert post.method == "response_url" and post.path == response_url.split(str(fake_slack.port))[1]
    assert post.args["response_type"] == "ephemeral"
    assert GOLD in "\n".join(block_texts(post.args))
    assert set(buttons_of(post.args)) == {Action.SHARE, "qabot_feedback_up", "qabot_feedback_down"}


async def test_share_button_posts_the_answer_in_the_channel(slack_http, fake_slack):
    await slack_http.command("/ask", QUESTION, channel="C7")
    private = fake_slack.posts[0].args
    share_value = buttons_of(private)[Action.SHARE]

    _, response_url = await slack_http.click(Action.SHARE, share_value, channel="C7", ephemeral=True)

    shared = fake_slack.calls_to("chat.postMessage")
    assert len(shared) == 1
    assert shared[0].args["channel"] == "C7"
    assert GOLD in "\n".join(block_texts(shared[0].args))
    assert Action.SHARE not in buttons_of(shared[0].args)
    assert "qabot_feedback_up" in buttons_of(shared[0].args)
    # the private copy loses its share button
    replaced = [c for c in fake_slack.calls_to("response_url") if response_url.endswith(c.path)]
    assert replaced and replaced[-1].args["replace_original"] is True
    assert Action.SHARE not in buttons_of(replaced[-1].args)


async def test_share_where_the_bot_is_not_a_member_goes_through_the_response_url(slack_http, fake_slack):
    await slack_http.command("/ask", QUESTION, channel="C8")
    share_value = buttons_of(fake_slack.posts[0].args)[Action.SHARE]
    fake_slack.fail["chat.postMessage"] = "not_in_channel"

    _, response_url = await slack_http.click(Action.SHARE, share_value, channel="C8", ephemeral=True)

    via_url = [c for c in fake_slack.calls_to("response_url") if response_url.endswith(c.path)]
    assert [c.args["response_type"] for c in via_url] == ["in_channel", "ephemeral"]
    assert GOLD in "\n".join(block_texts(via_url[0].args))
    assert via_url[0].args["replace_original"] is False


async def test_share_of_an_unknown_answer_says_so(slack_http, fake_slack):
    await slack_http.click(Action.SHARE, "no-such-answer", ephemeral=True)
    assert fake_slack.calls_to("chat.postMessage") == []
    [reply] = fake_slack.calls_to("response_url")
    assert reply.args["response_type"] == "ephemeral"
    assert "/ask" in reply.args["text"]


async def test_qabot_status_for_configured_admin(slack_http, fake_slack):
    await slack_http.command("/qabot", "status", user=ADMIN)
    [reply] = fake_slack.calls_to("response_url")
    assert reply.args["response_type"] == "ephemeral"
    assert "Index version" in "\n".join(block_texts(reply.args))


async def test_qabot_status_for_workspace_admin_via_users_info(slack_http, fake_slack):
    fake_slack.users["UWSADMIN"] = {"is_admin": True}
    await slack_http.command("/qabot", "status", user="UWSADMIN")
    assert [c.args["user"] for c in fake_slack.calls_to("users.info")] == ["UWSADMIN"]
    [reply] = fake_slack.calls_to("response_url")
    assert "Index version" in "\n".join(block_texts(reply.args))


async def test_qabot_refused_for_others_politely(slack_http, fake_slack):
    for command in ("status", "reindex", "rollback", "report"):
        await slack_http.command("/qabot", command, user="U2")
    replies = fake_slack.calls_to("response_url")
    assert len(replies) == 4
    for reply in replies:
        assert reply.args["response_type"] == "ephemeral"
        assert "only admins" in reply.args["text"]
        assert "Index version" not in json.dumps(reply.args)


async def test_workspace_admins_are_not_admins_when_switched_off(slack_service, slack_settings, fake_slack):
    settings = slack_settings.model_copy(update={"workspace_admins_are_admins": False})
    fake_slack.users["UWSADMIN"] = {"is_admin": True}
    harness = await SlackHttpHarness(slack_service, settings, fake_slack).start()
    try:
        await harness.command("/qabot", "status", user="UWSADMIN")
    finally:
        await harness.stop()
    assert fake_slack.calls_to("users.info") == []
    [reply] = fake_slack.calls_to("response_url")
    assert "only admins" in reply.args["text"]


async def test_qabot_without_a_known_subcommand_shows_usage(slack_http, fake_slack):
    await slack_http.command("/qabot", "dance", user=ADMIN)
    [reply] = fake_slack.calls_to("response_url")
    assert "Usage" in reply.args["text"]


async def test_feedback_click_is_stored_and_thanked_in_the_thread(slack_http, slack_service, fake_slack):
    mention = app_mention(QUESTION)
    await slack_http.event(mention)
    answer = fake_slack.posts[0].args
    answer_id = buttons_of(answer)["qabot_feedback_up"]

    await slack_http.click("qabot_feedback_up", answer_id, user="U9", thread_ts=mention["ts"])

    assert slack_service.feedback.feedback_count() == 1
    [vote] = slack_service.feedback.votes()
    assert vote["answer_id"] == answer_id and vote["vote"] == 1
    [thanks] = fake_slack.calls_to("chat.postEphemeral")
    assert thanks.args["user"] == "U9"
    assert thanks.args["thread_ts"] == mention["ts"]
    assert "Thanks" in thanks.args["text"]

    # changing one's mind updates the vote rather than adding one
    await slack_http.click("qabot_feedback_down", answer_id, user="U9", thread_ts=mention["ts"])
    assert slack_service.feedback.feedback_count() == 1
    assert slack_service.feedback.votes()[0]["vote"] == -1


async def test_feedback_thanks_fall_back_to_the_response_url(slack_http, slack_service, fake_slack):
    mention = app_mention(QUESTION)
    await slack_http.event(mention)
    answer_id = buttons_of(fake_slack.posts[0].args)["qabot_feedback_up"]
    fake_slack.fail["chat.postEphemeral"] = "not_in_channel"
    _, response_url = await slack_http.click("qabot_feedback_up", answer_id, thread_ts=mention["ts"])
    assert slack_service.feedback.feedback_count() == 1
    [thanks] = [c for c in fake_slack.calls_to("response_url") if response_url.endswith(c.path)]
    assert thanks.args["response_type"] == "ephemeral" and "Thanks" in thanks.args["text"]


async def test_feedback_on_a_private_answer_is_thanked_privately(slack_http, slack_service, fake_slack):
    await slack_http.command("/ask", QUESTION)
    answer_id = buttons_of(fake_slack.posts[0].args)["qabot_feedback_down"]
    await slack_http.click("qabot_feedback_down", answer_id, ephemeral=True)
    assert slack_service.feedback.feedback_count() == 1
    thanks = fake_slack.calls_to("response_url")[-1]
    assert thanks.args["response_type"] == "ephemeral" and thanks.args["replace_original"] is False


async def test_mass_mentions_in_a_question_ping_nobody(slack_http, fake_slack):
    await slack_http.event(app_mention("<!everyone> @here <!channel> <@U123> what is genai & ml?"))
    [post] = fake_slack.posts
    raw = json.dumps(post.args)
    for token in ("<!everyone>", "<!here>", "<!channel>", "<@U123>"):
        assert token not in raw


async def test_service_error_reply_reaches_the_user(slack_http, fake_slack, monkeypatch):
    from bot.core.errors import IndexMissingError

    def broken(question, context=()):
        raise IndexMissingError("No index found.")

    monkeypatch.setattr(slack_http.service.engine, "answer", broken)
    await slack_http.event(app_mention(QUESTION))
    [post] = fake_slack.posts
    assert "No index found." in post.args["text"]  # the service words it; the adapter delivers it


def test_missing_tokens_raise_config_error_naming_the_variable(monkeypatch, tmp_path):
    from bot.adapters.registry import adapter_class, adapter_settings

    monkeypatch.chdir(tmp_path)  # no .env
    slack = adapter_class("slack")
    with pytest.raises(ConfigError, match="SLACK_BOT_TOKEN"):
        adapter_settings(slack)
    monkeypatch.setenv("SLACK_BOT_TOKEN", "xoxb-1")
    with pytest.raises(ConfigError, match="SLACK_APP_TOKEN"):
        adapter_settings(slack)
    monkeypatch.setenv("SLACK_APP_TOKEN", "xapp-1")
    with pytest.raises(ConfigError, match="SLACK_SIGNING_SECRET"):
        adapter_settings(slack, http_port=0)
    assert adapter_settings(slack).required() == ("bot_token", "app_token")
