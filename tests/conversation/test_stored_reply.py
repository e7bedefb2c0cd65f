"""An answer can be shown again from the store by its id (Slack's "Share in channel", on any replica and after
a restart): the same reply as first shown, without the question in what is kept for it."""

from __future__ import annotations

import json

from bot.conversation.models import Action, ReplyKind
from bot.conversation.service import ConversationService

from .conftest import ManualClock, msg

SECRET_QUESTION = "what is machine learning for my zebra-lasagne startup?"


def test_a_stored_answer_is_shown_again_as_it_was(make_service, database):
    service = make_service()
    first = service.handle(msg("what is machine learning?", private=True))
    assert first.kind is ReplyKind.ANSWER and first.answer_id
    with database.open() as other_process:  # another replica, or the same one after a restart
        again = ConversationService(service.engine, settings=service.settings, feedback=other_process).stored_reply(
            first.answer_id
        )
    assert again is not None
    assert (again.kind, again.text, again.index_version, again.answer_id) == (
        first.kind,
        first.text,
        first.index_version,
        first.answer_id,
    )
    assert again.buttons == first.buttons and {b.action_id for b in again.buttons} == {
        Action.FEEDBACK_UP,
        Action.FEEDBACK_DOWN,
    }
    assert again.answer.quotes == first.answer.quotes and again.answer.confidence == first.answer.confidence
    assert not again.private and not again.hints


def test_mentioned_and_abstained_answers_keep_their_presentation(make_service):
    service = make_service()
    mentioned = service.handle(msg("quantum?", private=True))
    abstained = service.handle(msg("best pizza in town?", private=True))
    assert service.stored_reply(mentioned.answer_id).text == mentioned.text
    assert service.stored_reply(mentioned.answer_id).buttons == mentioned.buttons
    shown = service.stored_reply(abstained.answer_id)
    assert shown.kind is ReplyKind.ABSTAIN and shown.text == abstained.text and not shown.buttons


def test_no_such_answer_or_a_broken_store_is_none(make_service, caplog):
    service = make_service()
    assert service.stored_reply("no-such-answer") is None

    class Broken:
        def get_answer(self, answer_id):
            raise RuntimeError("database on fire")

    broken = ConversationService(service.engine, settings=service.settings, feedback=Broken())
    assert broken.stored_reply("x") is None
    assert "could not read stored answer" in caplog.text


def test_what_is_kept_to_show_an_answer_again_holds_no_question(database, fake_engine, settings):
    clock = ManualClock(1_700_000_000.0)
    with database.open(retention_days=30, clock=clock) as retaining:
        service = ConversationService(fake_engine, settings=settings, feedback=retaining)
        reply = service.handle(msg(SECRET_QUESTION))
        kept = json.loads(retaining.get_answer(reply.answer_id).answer_json)
        assert "zebra" not in json.dumps(kept) and "question" not in kept
        clock.advance(31 * 86400)
        assert retaining.erase_old_questions() == 1
        assert "zebra" not in database.dump()  # the question is gone everywhere
        shown = service.stored_reply(reply.answer_id)
        assert shown is not None and shown.text == reply.text  # the answer itself can still be shown
