"""The service over the real engine and index (session fixtures from tests/conftest.py)."""

from __future__ import annotations

from bot.conversation.feedback import FeedbackStore
from bot.conversation.models import FeedbackVote, ReplyKind
from bot.conversation.rebuild import RebuildCoordinator
from bot.conversation.service import ConversationService

from .conftest import msg


def _service(engine, settings, store):
    rebuilder = RebuildCoordinator(engine, settings.knowledge_dir, settings.index_dir)
    return ConversationService(engine, settings=settings, feedback=store, rebuilder=rebuilder)


def test_real_answer_is_quoted_stored_and_rated(engine_holder, settings, store):
    service = _service(engine_holder, settings, store)
    reply = service.handle(msg("what is machine learning?", message_id="1.1"))
    assert reply.kind is ReplyKind.ANSWER
    assert "algorithms that enable computers to learn from data" in reply.text
    assert reply.index_version == engine_holder.version
    stored = store.get_answer(reply.answer_id)
    assert stored.passage_ids == tuple(q.passage_id for q in reply.answer.quotes)
    ack = service.record_feedback(reply.answer_id, FeedbackVote.DOWN, platform="slack", user_id="U1", channel_id="C1")
    assert "Thanks" in ack.text
    (vote,) = store.votes()
    assert vote["passage_ids"] == list(stored.passage_ids) and vote["index_version"] == engine_holder.version


def test_real_off_topic_abstains(engine_holder, settings, store):
    reply = _service(engine_holder, settings, store).handle(msg("what's the best pizza topping in Naples?"))
    assert reply.kind is ReplyKind.ABSTAIN and reply.buttons == ()


def test_real_status(engine_holder, settings, store):
    reply = _service(engine_holder, settings, store).handle_admin(msg(is_admin=True), "status")
    assert f"Index version: {engine_holder.version}" in reply.text
    assert f"Passages: {engine_holder.manifest['passage_count']}" in reply.text


def test_missing_index_is_an_error_with_the_fix(tmp_path, settings):
    from bot.core.engine import EngineHolder

    engine = EngineHolder(tmp_path / "no-index-here")
    with FeedbackStore(tmp_path / "fb.sqlite3") as store:
        service = _service(engine, settings, store)
        reply = service.handle(msg())
        assert reply.kind is ReplyKind.ERROR
        assert "qabot index build" in reply.text and "Traceback" not in reply.text
        status = service.handle_admin(msg(is_admin=True), "status")
        assert status.kind is ReplyKind.ERROR and "qabot index build" in status.text
