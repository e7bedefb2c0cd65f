"""ConversationService rules, with a fake engine (the real index is exercised in test_service_real_index.py)."""

from __future__ import annotations

import logging

import pytest

from bot.conversation.models import Action, FeedbackVote, ReplyKind
from bot.core.errors import IndexMissingError

from .conftest import FakeBuildResult


def test_answer_has_text_buttons_and_is_stored(make_service, message, store):
    service = make_service()
    reply = service.handle(message(message_id="111.1"))
    assert reply.kind is ReplyKind.ANSWER
    assert "algorithms that enable computers to learn from data" in reply.text
    assert [b.action_id for b in reply.buttons] == [Action.FEEDBACK_UP, Action.FEEDBACK_DOWN]
    assert all(b.value == reply.answer_id for b in reply.buttons)
    assert reply.index_version == "v1"
    assert reply.hints and "thread" in reply.hints[0]
    stored = store.get_answer(reply.answer_id)
    assert stored is not None
    assert stored.passage_ids == ("p1",) and stored.kind == "answer" and stored.index_version == "v1"
    assert stored.user_hash != "U1" and len(stored.user_hash) == 64


def test_abstain_is_stored_without_buttons(make_service, message, store):
    reply = make_service().handle(message("best pizza topping in Naples?"))
    assert reply.kind is ReplyKind.ABSTAIN
    assert reply.buttons == ()
    assert "Healthcare" in reply.text
    assert store.answer_count(kind="abstain") == 1


def test_smalltalk_is_help_and_not_stored(make_service, message, store):
    reply = make_service().handle(message("hi"))
    assert reply.kind is ReplyKind.HELP
    assert store.answer_count() == 0


def test_bots_are_ignored(make_service, message, fake_engine):
    reply = make_service().handle(message(is_bot=True))
    assert reply.kind is ReplyKind.IGNORED and not reply.should_send
    assert fake_engine.asked == []


def test_retried_event_is_answered_once(make_service, message, fake_engine):
    service = make_service()
    assert service.handle(message(event_id="Ev1")).kind is ReplyKind.ANSWER
    assert service.handle(message(event_id="Ev1")).kind is ReplyKind.IGNORED
    assert service.handle(message(event_id="Ev2")).kind is ReplyKind.ANSWER
    # the same id on another platform is another event
    assert service.handle(message(event_id="Ev1", platform="discord")).kind is ReplyKind.ANSWER
    assert len(fake_engine.asked) == 3


def test_dedupe_forgets_after_ttl(make_service, message, clock):
    service = make_service()
    assert service.handle(message(event_id="Ev1")).kind is ReplyKind.ANSWER
    clock.advance(3600)
    assert service.handle(message(event_id="Ev1")).kind is ReplyKind.ANSWER


def test_channel_allow_list(make_service, message, fake_engine):
    # the adapter applies its own allow-list (SLACK_ALLOWED_CHANNEL_IDS, ...); the service words the refusal
    service = make_service()
    assert service.handle(message(channel_id="C1")).kind is ReplyKind.ANSWER
    refused = service.handle(message(channel_id="C2", in_allowed_channel=False))
    assert refused.kind is ReplyKind.REFUSED and refused.private
    assert "channel" in refused.text
    # DMs are governed by dms_enabled, not the channel list
    assert service.handle(message(channel_id="D9", is_dm=True, in_allowed_channel=False)).kind is ReplyKind.ANSWER
    assert len(fake_engine.asked) == 2


def test_no_thread_where_the_platform_has_none(make_service, message):
    reply = make_service().handle(message(message_id="100.1", supports_threads=False))
    assert reply.kind is ReplyKind.ANSWER and "thread_id" not in reply.extra and reply.hints == ()


def test_dms_can_be_turned_off(make_service, message, fake_engine):
    service = make_service(dms_enabled=False)
    reply = service.handle(message(channel_id="D1", is_dm=True))
    assert reply.kind is ReplyKind.REFUSED
    assert "direct messages" in reply.text
    assert fake_engine.asked == []


def test_follow_up_in_bot_thread_is_answered_elsewhere_ignored(make_service, message, fake_engine):
    service = make_service()
    first = service.handle(message(message_id="100.1"))
    assert first.extra["thread_id"] == "100.1"
    follow = service.handle(message("and machine learning limits?", thread_id="100.1", addressed=False))
    assert follow.kind is ReplyKind.ANSWER
    # un-addressed: outside any thread, in a thread the bot never answered in, or in another channel
    assert service.handle(message("machine learning?", addressed=False)).kind is ReplyKind.IGNORED
    assert service.handle(message("machine learning?", thread_id="999.9", addressed=False)).kind is ReplyKind.IGNORED
    other = message("machine learning?", channel_id="C2", thread_id="100.1", addressed=False)
    assert service.handle(other).kind is ReplyKind.IGNORED
    assert len(fake_engine.asked) == 2


def test_thread_chatter_is_not_answered(make_service, message):
    service = make_service()
    service.handle(message(message_id="100.1"))
    assert service.handle(message("thanks", thread_id="100.1", addressed=False)).kind is ReplyKind.IGNORED
    # but addressed small talk gets help
    assert service.handle(message("thanks", thread_id="100.1")).kind is ReplyKind.HELP


def test_bot_threads_survive_a_restart(make_service, message, settings, fake_engine, clock, database):
    from bot.conversation.service import ConversationService

    make_service().handle(message(message_id="100.1"))
    with database.open() as reopened:
        fresh = ConversationService(fake_engine, settings=settings, feedback=reopened, clock=clock)
        reply = fresh.handle(message("machine learning?", thread_id="100.1", addressed=False))
        assert reply.kind is ReplyKind.ANSWER


def test_private_questions_do_not_open_threads(make_service, message):
    service = make_service()
    reply = service.handle(message(message_id="100.1", private=True))
    assert reply.private and "thread_id" not in reply.extra
    assert service.handle(message("machine learning?", thread_id="100.1", addressed=False)).kind is ReplyKind.IGNORED


def test_rate_limit_told_once_then_ignored_then_recovers(make_service, message, clock, fake_engine):
    service = make_service()  # 3 per user per 60 s
    for _ in range(3):
        assert service.handle(message()).kind is ReplyKind.ANSWER
    told = service.handle(message())
    assert told.kind is ReplyKind.RATE_LIMITED and told.private
    assert "try again in 60 seconds" in told.text
    assert service.handle(message()).kind is ReplyKind.IGNORED
    clock.advance(30)
    assert service.handle(message()).kind is ReplyKind.IGNORED
    # another user is not affected
    assert service.handle(message(user_id="U2")).kind is ReplyKind.ANSWER
    clock.advance(31)
    assert service.handle(message()).kind is ReplyKind.ANSWER
    assert len(fake_engine.asked) == 5


def test_channel_rate_limit(make_service, message):
    service = make_service()  # 5 per channel
    kinds = [service.handle(message(user_id=f"U{i}")).kind for i in range(7)]
    assert kinds[:5] == [ReplyKind.ANSWER] * 5
    assert kinds[5] is ReplyKind.RATE_LIMITED and kinds[6] is ReplyKind.RATE_LIMITED  # each asker told once
    assert service.handle(message(user_id="U5")).kind is ReplyKind.IGNORED


def test_the_terminal_is_exempt_from_rate_limits(make_service, message):
    service = make_service()
    assert all(service.handle(message(platform="terminal")).kind is ReplyKind.ANSWER for _ in range(10))


def test_index_missing_gives_fix_text_not_traceback(make_service, message, fake_engine):
    fake_engine.broken = IndexMissingError("No index found in ./index.", "Run `qabot index build`.")
    reply = make_service().handle(message())
    assert reply.kind is ReplyKind.ERROR
    assert "qabot index build" in reply.text and "Traceback" not in reply.text


def test_unexpected_error_is_logged_not_shown(make_service, message, caplog):
    with caplog.at_level(logging.ERROR):
        reply = make_service().handle(message("boom"))
    assert reply.kind is ReplyKind.ERROR
    assert "something went wrong" in reply.text and "secret internal detail" not in reply.text
    assert any(r.exc_info for r in caplog.records)


def test_admin_refused_and_logged_without_raw_id(make_service, message, caplog, fake_engine):
    with caplog.at_level(logging.WARNING):
        reply = make_service().handle_admin(message("/qabot reindex", user_id="U_SNEAKY"), "reindex")
    assert reply.kind is ReplyKind.REFUSED and reply.private
    assert "only admins" in reply.text
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any("refused admin command" in w for w in warnings)
    assert not any("U_SNEAKY" in w for w in warnings)
    assert fake_engine.reloads == 0


def test_admin_status(make_service, message):
    reply = make_service().handle_admin(message(is_admin=True), "status")
    assert reply.kind is ReplyKind.ADMIN
    for part in ("Index version: v1", "Passages: 3", "all-MiniLM-L6-v2", "Documents: 1", "2024-03-06"):
        assert part in reply.text


def test_admin_unknown_command(make_service, message):
    reply = make_service().handle_admin(message(is_admin=True), "explode")
    assert reply.kind is ReplyKind.HELP and "status" in reply.text


def test_admin_status_without_index(make_service, message, fake_engine):
    fake_engine.broken = IndexMissingError("No index found.", "Run `qabot index build`.")
    reply = make_service().handle_admin(message(is_admin=True), "status")
    assert reply.kind is ReplyKind.ERROR and "qabot index build" in reply.text


def test_admin_reindex_and_rollback(make_service, message, fake_engine):
    def builder(knowledge_dir, index_dir, *, force=False):
        return FakeBuildResult("v2", 7, 1, 0.5, skipped=False)

    service = make_service(builder=builder, rollback=lambda index_dir: "v1")
    reply = service.handle_admin(message(is_admin=True), "reindex")
    assert reply.kind is ReplyKind.ADMIN
    assert "Index version: v2" in reply.text and "7 passages" in reply.text and "(was v1)" in reply.text
    fake_engine.next_version = "v1"
    back = service.handle_admin(message(is_admin=True), "/rollback")
    assert back.kind is ReplyKind.ADMIN and "Rolled back from v2" in back.text and "Index version: v1" in back.text


def test_admin_reindex_shows_the_builds_warnings(make_service, message, fake_engine):
    warnings = tuple(f"doc{n}.md: skipped: a link to a file outside the knowledge folder (/etc/x{n})" for n in range(7))

    def builder(knowledge_dir, index_dir, *, force=False):
        return FakeBuildResult("v2", 7, 1, 0.5, skipped=False, warnings=warnings)

    reply = make_service(builder=builder).handle_admin(message(is_admin=True), "reindex")
    assert reply.kind is ReplyKind.ADMIN and "Index version: v2" in reply.text
    assert "Warnings (7):" in reply.text
    for n in range(5):
        assert f"doc{n}.md: skipped" in reply.text
    assert "doc5.md" not in reply.text and "and 2 more" in reply.text

    def unchanged(knowledge_dir, index_dir, *, force=False):
        return FakeBuildResult("v2", 7, 1, 0.5, skipped=True, warnings=warnings[:1])

    fake_engine.version = "v2"
    again = make_service(builder=unchanged).handle_admin(message(is_admin=True), "reindex")
    assert "up to date" in again.text and "doc0.md: skipped" in again.text


def test_admin_reindex_failure_keeps_old_index(make_service, message, fake_engine):
    from bot.core.errors import BuildError

    def builder(knowledge_dir, index_dir, *, force=False):
        raise BuildError("knowledge/ has no Markdown files")

    reply = make_service(builder=builder).handle_admin(message(is_admin=True), "reindex")
    assert reply.kind is ReplyKind.ERROR
    assert "no Markdown files" in reply.text and "old index keeps serving (version v1)" in reply.text
    assert fake_engine.version == "v1" and fake_engine.reloads == 0


def test_admin_report(make_service, message):
    service = make_service()
    service.handle(message("pizza?"))
    service.handle(message("Pizza"))
    reply = service.handle_admin(message(is_admin=True), "report")
    assert reply.kind is ReplyKind.ADMIN
    assert "asked 2x" in reply.text


def test_feedback_stored_and_updated(make_service, message, store):
    service = make_service()
    answer = service.handle(message())
    ack = service.record_feedback(answer.answer_id, FeedbackVote.UP, platform="slack", user_id="U2", channel_id="C1")
    assert ack.private and "Thanks for the feedback" in ack.text
    assert store.feedback_count() == 1
    again = service.record_feedback(
        answer.answer_id, FeedbackVote.DOWN, platform="slack", user_id="U2", channel_id="C1"
    )
    assert "updated" in again.text
    assert store.feedback_count() == 1
    (row,) = store.votes()
    assert row["vote"] == -1 and row["passage_ids"] == ["p1"] and row["index_version"] == "v1"
    assert row["question"] == "what is machine learning?" and row["user_hash"] != "U2"
    service.record_feedback(answer.answer_id, FeedbackVote.UP, platform="slack", user_id="U3", channel_id="C1")
    assert store.feedback_count() == 2


@pytest.mark.parametrize("answer_id", ["nope", "", "x" * 3000])
def test_feedback_for_unknown_answer_is_polite(make_service, answer_id, store):
    reply = make_service().record_feedback(answer_id, FeedbackVote.UP, platform="slack", user_id="U1", channel_id="C1")
    assert reply.private and reply.kind is ReplyKind.ERROR
    assert "can't find that answer" in reply.text
    assert store.feedback_count() == 0


def test_warm_up_loads_the_index_once_before_any_question(tmp_path, settings, store, built_index_dir):
    from bot.conversation.service import ConversationService
    from bot.core.engine import EngineHolder

    engine = EngineHolder(built_index_dir)
    service = ConversationService(engine, settings=settings, feedback=store)
    assert not engine.loaded
    assert service.warm_up() == engine.version and engine.loaded


def test_warm_up_without_an_index_raises_the_fix(tmp_path, settings, store):
    from bot.conversation.service import ConversationService
    from bot.core.engine import EngineHolder

    service = ConversationService(EngineHolder(tmp_path / "none"), settings=settings, feedback=store)
    with pytest.raises(IndexMissingError, match="qabot index build"):
        service.warm_up()


def test_every_answer_kind_has_a_presentation():
    from bot.conversation.service import PRESENTATIONS
    from bot.core.types import AnswerKind

    assert set(PRESENTATIONS) == set(AnswerKind)
