"""Slack flows through the real Bolt app: what reaches the logs, a locked feedback database, lone surrogates."""

from __future__ import annotations

import sqlite3

from tests.log_capture import service_logs
from tests.slack.fake_slack import app_mention, message, next_ts
from tests.slack.harness import buttons_of

USER = "U0PRIVACY1"
OTHER = "U0PRIVACY2"
CHANNEL = "C0PRIVACY3"
DM = "D0PRIVACY4"
QUESTION = "what is machine learning, asks the zanzibar-owl"
FOLLOW_UP = "and how does generative ai differ, wonders the zanzibar-owl"
DM_QUESTION = "what is a GAN used for by the zanzibar-owl"
ASK = "how big is the ai market for the zanzibar-owl"


async def test_no_raw_ids_or_question_texts_reach_the_logs(slack_http, slack_service, fake_slack):
    with service_logs("DEBUG") as logs:
        mention = app_mention(QUESTION, user=USER, channel=CHANNEL)
        await slack_http.event(mention)
        answer_id = buttons_of(fake_slack.posts[-1].args)["qabot_feedback_up"]
        # a follow-up in the bot's thread, a DM, /ask, a vote, a vote on an unknown answer
        await slack_http.event(message(FOLLOW_UP, user=USER, channel=CHANNEL, thread_ts=mention["ts"]))
        await slack_http.event(message(DM_QUESTION, user=USER, channel=DM, channel_type="im"))
        await slack_http.command("/ask", ASK, user=USER, channel=CHANNEL)
        await slack_http.click("qabot_feedback_up", answer_id, user=OTHER, channel=CHANNEL, thread_ts=mention["ts"])
        await slack_http.click("qabot_feedback_down", "no-such-answer", user=OTHER, channel=CHANNEL)
        # a non-admin's admin command (logged as a refusal) and a post Slack refuses (logged as a failure)
        await slack_http.command("/qabot", "reindex", user=OTHER, channel=CHANNEL)
        fake_slack.fail["chat.postMessage"] = "channel_not_found"
        await slack_http.event(app_mention(QUESTION, user=USER, channel=CHANNEL))
    assert len(fake_slack.posts) >= 4  # the flows really ran
    assert slack_service.feedback.feedback_count() == 1
    assert any("refused admin command" in line for line in logs.lines)
    assert any("to channel c-" in line and "NOT delivered" in line for line in logs.lines)
    leaks = logs.leaks([USER, OTHER, CHANNEL, DM, "zanzibar", mention["ts"]])
    assert not leaks, "\n".join(f"{s!r} in: {line}" for s, line in leaks)


async def test_locked_database_answer_still_has_buttons_and_the_vote_counts(slack_http, slack_service, fake_slack):
    holder = sqlite3.connect(slack_service.feedback.path, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    holder.execute("INSERT INTO meta(key, value) VALUES ('held-by', 'another process')")
    try:
        mention = app_mention(QUESTION, user=USER, channel=CHANNEL)
        await slack_http.event(mention)
        (post,) = fake_slack.posts
        buttons = buttons_of(post.args)
        assert set(buttons) == {"qabot_feedback_up", "qabot_feedback_down"}
        assert slack_service.feedback.pending_count == 2  # the answer and its thread, written later
    finally:
        holder.execute("COMMIT")
        holder.close()
    await slack_http.click("qabot_feedback_up", buttons["qabot_feedback_up"], user=OTHER, thread_ts=mention["ts"])
    assert slack_service.feedback.feedback_count() == 1
    stored = slack_service.feedback.get_answer(buttons["qabot_feedback_up"])
    assert stored is not None and "zanzibar-owl" in stored.question


async def test_a_lone_surrogate_in_a_question_is_stored_cleaned(slack_http, slack_service, fake_slack):
    ts = next_ts()
    await slack_http.event(app_mention("what is machine learning \ud800", user=USER, ts=ts))
    (post,) = fake_slack.posts
    answer_id = buttons_of(post.args)["qabot_feedback_up"]  # the row was stored: the buttons are there
    stored = slack_service.feedback.get_answer(answer_id)
    assert stored.question.endswith("machine learning \ufffd") and slack_service.feedback.pending_count == 0
