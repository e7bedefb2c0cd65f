"""Watched channels in the conversation layer: questions answered without a mention, only confidently.

The fake engine (conftest.py) answers "...learning..." confidently, "...quantum..." with "mentioned
only", greetings with small talk and anything else with an abstention.
"""

from __future__ import annotations

import logging

from bot.conversation.models import Action, ReplyKind
from bot.conversation.service import ConversationService

QUESTION = "what is machine learning?"


def unmentioned(message, text: str = QUESTION, **kw):
    """A top-level channel message without a mention, as Slack hands it over (thread = its own ts)."""
    kw.setdefault("message_id", "200.1")
    kw.setdefault("thread_id", kw["message_id"])
    return message(text, addressed=False, **kw)


def watch(service, message, channel: str = "C1", **kw):
    return service.handle_admin(message("/qabot watch", channel_id=channel, is_admin=True, private=True, **kw), "watch")


def test_an_unwatched_channel_ignores_unmentioned_questions(make_service, message, fake_engine):
    reply = make_service().handle(unmentioned(message))
    assert reply.kind is ReplyKind.IGNORED
    assert fake_engine.asked == []


def test_a_watched_channel_answers_a_confident_question_in_its_thread(make_service, message, store):
    service = make_service()
    assert watch(service, message).kind is ReplyKind.ADMIN
    reply = service.handle(unmentioned(message))
    assert reply.kind is ReplyKind.ANSWER and not reply.private
    assert reply.extra["thread_id"] == "200.1" and reply.extra["watched"] == "true"
    assert [b.action_id for b in reply.buttons] == [Action.FEEDBACK_UP, Action.FEEDBACK_DOWN]
    assert store.answer_count(kind="answer") == 1
    # the answer's thread is the bot's: a follow-up there needs no mention
    follow = service.handle(message("and machine learning limits?", thread_id="200.1", addressed=False))
    assert follow.kind is ReplyKind.ANSWER


def test_a_watched_channel_stays_silent_unless_confident(make_service, message, store, fake_engine):
    service = make_service()
    watch(service, message)
    for text, why in [
        ("what is quantum generative AI?", "no confident answer"),  # "mentioned only": a guess
        ("what's the best pizza topping in Naples?", "no confident answer"),  # an abstention
        ("machine learning is just statistics", "not a question"),
        ("hi", "too short to be a question"),
        ("@sam what is machine learning?", "addressed to someone else"),
    ]:
        reply = service.handle(unmentioned(message, text))
        assert reply.kind is ReplyKind.IGNORED and not reply.should_send, text
        assert reply.extra["why"] == why, text
    # nothing stored for what it did not say: chatter stays out of the database
    assert store.answer_count() == 0
    # the rule runs before the engine: chatter costs no retrieval
    assert fake_engine.asked == ["what is quantum generative AI?", "what's the best pizza topping in Naples?"]


def test_a_mention_of_someone_else_is_left_to_them(make_service, message):
    service = make_service()
    watch(service, message)
    assert service.handle(unmentioned(message, mentions_someone=True)).kind is ReplyKind.IGNORED


def test_replies_in_someone_elses_thread_are_left_alone(make_service, message):
    service = make_service()
    watch(service, message)
    # a reply in a thread the bot did not answer in: between people, even in a watched channel
    reply = service.handle(message(QUESTION, message_id="300.2", thread_id="300.1", addressed=False))
    assert reply.kind is ReplyKind.IGNORED


def test_the_adapters_setting_watches_a_channel_too(make_service, message, store):
    service = make_service()
    assert service.handle(unmentioned(message, watched=True)).kind is ReplyKind.ANSWER
    assert store.watched_channels("slack") == frozenset()  # the setting is not copied into the store


def test_an_addressed_question_in_a_watched_channel_is_answered_as_always(make_service, message):
    service = make_service()
    watch(service, message)
    reply = service.handle(message("what is quantum generative AI?", message_id="400.1"))
    assert reply.kind is ReplyKind.ANSWER  # "mentioned only", shown because someone asked
    off_topic = service.handle(message("best pizza in Naples?", message_id="400.2"))
    assert off_topic.kind is ReplyKind.ABSTAIN


def test_dms_and_private_messages_are_never_watched(make_service, message):
    service = make_service()
    watch(service, message, channel="D1")
    assert service.handle(unmentioned(message, channel_id="D1", is_dm=True)).kind is ReplyKind.IGNORED


def test_a_watched_channel_outside_the_allow_list_stays_silent(make_service, message):
    service = make_service()
    reply = watch(service, message, in_allowed_channel=False)
    assert "not on my list of allowed channels" in reply.text
    silent = service.handle(unmentioned(message, in_allowed_channel=False))
    assert silent.kind is ReplyKind.IGNORED  # not the refusal a mention gets: nobody asked


def test_watched_channels_survive_a_restart(make_service, message, settings, fake_engine, clock, database):
    watch(make_service(), message, channel="C7")
    with database.open() as reopened:  # a new process on the same database (SQLite file or PostgreSQL)
        fresh = ConversationService(fake_engine, settings=settings, feedback=reopened, clock=clock)
        assert fresh.handle(unmentioned(message, channel_id="C7")).kind is ReplyKind.ANSWER
        assert fresh.handle(unmentioned(message, channel_id="C8", message_id="200.2")).kind is ReplyKind.IGNORED
        off = fresh.handle_admin(message(channel_id="C7", is_admin=True, private=True), "unwatch")
        assert off.kind is ReplyKind.ADMIN and "stopped watching" in off.text
        assert fresh.handle(unmentioned(message, channel_id="C7", message_id="200.3")).kind is ReplyKind.IGNORED
    with database.open() as again:
        assert again.watched_channels("slack") == frozenset()


def test_watch_and_unwatch_say_what_changed(make_service, message):
    service = make_service()
    first = watch(service, message)
    assert "watching this channel now" in first.text and first.private
    assert "already watching" in watch(service, message).text
    unwatch = service.handle_admin(message(is_admin=True, private=True), "unwatch")
    assert "stopped watching" in unwatch.text
    again = service.handle_admin(message(is_admin=True, private=True), "unwatch")
    assert "wasn't watching" in again.text
    configured = service.handle_admin(message(is_admin=True, private=True, watched=True), "unwatch")
    assert "configuration lists it" in configured.text
    in_dm = service.handle_admin(message(channel_id="D1", is_dm=True, is_admin=True), "watch")
    assert "not in a direct message" in in_dm.text


def test_watch_is_an_admin_command(make_service, message, store):
    reply = make_service().handle_admin(message(is_admin=False), "watch")
    assert reply.kind is ReplyKind.REFUSED and "only admins" in reply.text
    assert store.watched_channels("slack") == frozenset()


def test_watched_channels_are_per_platform(make_service, message, store):
    service = make_service()
    watch(service, message, channel="C1")
    assert store.watched_channels("slack") == frozenset({"C1"})
    assert service.handle(unmentioned(message, platform="discord")).kind is ReplyKind.IGNORED


def test_watching_is_rate_limited_silently_and_silence_costs_nothing(make_service, message, settings):
    service = make_service()
    watch(service, message)
    # chatter and unanswerable questions do not use up anyone's questions (the limit is 3 a minute)
    for n in range(10):
        service.handle(unmentioned(message, "best pizza in Naples?", message_id=f"1.{n}"))
    answered = [service.handle(unmentioned(message, message_id=f"2.{n}")).kind for n in range(settings.user_rate_limit)]
    assert answered == [ReplyKind.ANSWER] * settings.user_rate_limit
    over = service.handle(unmentioned(message, message_id="3.1"))
    assert over.kind is ReplyKind.IGNORED and over.extra["why"] == "rate limited"  # no "slow down" notice
    # a mention over the limit is still told once when to retry
    told = service.handle(message(QUESTION, message_id="3.2"))
    assert told.kind is ReplyKind.RATE_LIMITED


def test_a_failure_in_a_watched_channel_is_logged_not_posted(make_service, message, fake_engine, caplog):
    service = make_service()
    watch(service, message)
    fake_engine.broken = RuntimeError("secret internal detail")
    with caplog.at_level(logging.ERROR):
        reply = service.handle(unmentioned(message))
    assert reply.kind is ReplyKind.IGNORED
    assert any("watched channel" in r.getMessage() for r in caplog.records)
    assert not any("secret internal detail" in r.getMessage() for r in caplog.records)


def test_a_broken_store_does_not_break_answers_to_mentions(make_service, message, database, caplog):
    service = make_service()
    outside = database.connect()  # someone damages the database behind qabot's back
    outside.execute("DROP TABLE watched_channels")
    outside.close()
    with caplog.at_level(logging.ERROR):
        assert service.handle(unmentioned(message)).kind is ReplyKind.IGNORED
        assert service.handle(message(QUESTION, message_id="500.1")).kind is ReplyKind.ANSWER
    assert any("watched channels" in r.getMessage() for r in caplog.records)
    failed = watch(service, message)
    assert failed.kind is ReplyKind.ERROR
