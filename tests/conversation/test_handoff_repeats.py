"""Hand-off to people (issue 9, item 2) and repeats (item 4) in the conversation layer, on both databases.

The engine is the fake of conftest.py plus a question encoder: a bag of words (the same words, the same
vector), enough to tell "the same question" from "another question" without the model.
"""

from __future__ import annotations

import time
import zlib
from collections.abc import Sequence

import numpy as np
import pytest

from bot.conversation.models import Action, ReplyKind
from bot.conversation.rebuild import RebuildCoordinator
from bot.conversation.service import TEXT_HANDOFF_ALREADY, TEXT_HANDOFF_ASKED, TEXT_HANDOFF_OFF, ConversationService
from bot.conversation.similarity import unpack_vector
from tests.conversation.conftest import FakeEngine, msg

GROUP = "S0HELPERS"


class WordsEngine(FakeEngine):
    """FakeEngine with `embed_questions`: one dimension per word (hashed), unit length."""

    encoder = "words@test"

    def embed_questions(self, texts: Sequence[str]) -> tuple[str, np.ndarray]:
        out = np.zeros((len(texts), 64), dtype=np.float32)
        for i, text in enumerate(texts):
            for word in "".join(c if c.isalnum() else " " for c in text.lower()).split():
                out[i, zlib.crc32(word.encode()) % 64] += 1.0
        return self.encoder, out / np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-12)


@pytest.fixture
def words_engine() -> WordsEngine:
    return WordsEngine()


@pytest.fixture
def service_of(words_engine, store, settings, clock):
    def make(*, wall_clock=time.time, feedback=None, **changes) -> ConversationService:
        st = settings.replace(**changes) if changes else settings
        return ConversationService(
            words_engine,
            settings=st,
            feedback=feedback or store,
            rebuilder=RebuildCoordinator(words_engine, st.knowledge_dir, st.index_dir),
            clock=clock,
            wall_clock=wall_clock,
        )

    return make


def _ask(service, text, *, thread="T1", channel="C1", **kw):
    return service.handle(msg(text, channel_id=channel, message_id=thread, handoff_to=kw.pop("to", GROUP), **kw))


# ---- hand-off ---------------------------------------------------------------------------------


def test_an_abstention_hands_off_once_per_thread_even_after_a_restart(service_of, database):
    service = service_of()
    first = _ask(service, "how do I reset my password?")
    assert first.kind is ReplyKind.ABSTAIN
    assert first.handoff is not None
    assert (first.handoff.to, first.handoff.reason) == (GROUP, "abstain")
    assert (first.handoff.channel_id, first.handoff.thread_id) == ("C1", "T1")
    assert first.handoff.question == "how do I reset my password?"
    assert "couldn't answer" in first.handoff.text
    # a second miss in the same thread: the people were tagged already
    again = service.handle(msg("and my username?", channel_id="C1", thread_id="T1", handoff_to=GROUP))
    assert again.kind is ReplyKind.ABSTAIN and again.handoff is None
    # a restart (a new store on the same database, a new service): still once per thread
    with database.open() as reopened:
        restarted = service_of(feedback=reopened)
        later = restarted.handle(msg("what about SSO?", channel_id="C1", thread_id="T1", handoff_to=GROUP))
        assert later.kind is ReplyKind.ABSTAIN and later.handoff is None
        other_thread = _ask(restarted, "how do I reset my password?", thread="T2")
        assert other_thread.handoff is not None and other_thread.handoff.thread_id == "T2"


def test_hand_off_is_off_unless_configured_and_only_in_channel_threads(service_of):
    service = service_of()
    assert _ask(service, "how do I reset my password?", to="").handoff is None  # not configured here
    assert _ask(service, "how do I reset my password?", thread="T3", is_dm=True).handoff is None
    assert _ask(service, "how do I reset my password?", thread="T4", private=True).handoff is None
    terminal = msg("how do I reset my password?", supports_threads=False, handoff_to=GROUP, platform="terminal")
    assert service.handle(terminal).handoff is None


def test_every_answer_offers_ask_a_person_where_configured(service_of):
    service = service_of()
    answer = _ask(service, "what is machine learning?")
    assert answer.kind is ReplyKind.ANSWER and answer.handoff is None  # an answer tags nobody by itself
    assert [b.action_id for b in answer.buttons] == [Action.FEEDBACK_UP, Action.FEEDBACK_DOWN, Action.HANDOFF]
    assert answer.buttons[-1].value == answer.answer_id
    mentioned = _ask(service, "quantum computers?", thread="T2")
    assert Action.HANDOFF in [b.action_id for b in mentioned.buttons]
    plain = _ask(service, "what is machine learning?", thread="T3", to="")
    assert Action.HANDOFF not in [b.action_id for b in plain.buttons]
    dm = _ask(service, "what is machine learning?", thread="T4", is_dm=True)
    assert Action.HANDOFF not in [b.action_id for b in dm.buttons]


def test_a_thumbs_down_hands_off_once_and_a_thumbs_up_never(service_of):
    service = service_of()
    answer = _ask(service, "what is machine learning?")
    handoffs = {"C1": GROUP}.get
    up = service.record_feedback(
        answer.answer_id, 1, platform="slack", user_id="U2", channel_id="C1", handoff_for=handoffs
    )
    assert up.handoff is None
    down = service.record_feedback(
        answer.answer_id, -1, platform="slack", user_id="U2", channel_id="C1", handoff_for=handoffs
    )
    assert down.extra["feedback"] == "updated" and down.private
    assert down.handoff is not None and down.handoff.reason == "thumbs_down"
    assert (down.handoff.to, down.handoff.thread_id, down.handoff.question) == (
        GROUP,
        "T1",
        "what is machine learning?",
    )
    again = service.record_feedback(
        answer.answer_id, -1, platform="slack", user_id="U3", channel_id="C1", handoff_for=handoffs
    )
    assert again.extra["feedback"] == "new" and again.handoff is None
    # a channel without people to hand off to: the vote is stored, nobody is tagged
    other = _ask(service, "what is machine learning?", channel="C2", thread="T9", to="")
    quiet = service.record_feedback(
        other.answer_id, -1, platform="slack", user_id="U2", channel_id="C2", handoff_for=handoffs
    )
    assert quiet.extra["feedback"] == "new" and quiet.handoff is None


def test_the_ask_a_person_button(service_of):
    service = service_of()
    answer = _ask(service, "what is machine learning?")
    handoffs = {"C1": GROUP}.get
    first = service.request_handoff(
        answer.answer_id, platform="slack", user_id="U2", channel_id="C1", handoff_for=handoffs
    )
    assert first.private and first.text == TEXT_HANDOFF_ASKED
    assert first.handoff is not None and first.handoff.reason == "asked" and first.handoff.thread_id == "T1"
    second = service.request_handoff(
        answer.answer_id, platform="slack", user_id="U3", channel_id="C1", handoff_for=handoffs
    )
    assert second.text == TEXT_HANDOFF_ALREADY and second.handoff is None
    off = service.request_handoff(answer.answer_id, platform="slack", user_id="U2", channel_id="C1", handoff_for={}.get)
    assert off.text == TEXT_HANDOFF_OFF and off.handoff is None
    gone = service.request_handoff("nope", platform="slack", user_id="U2", channel_id="C1", handoff_for=handoffs)
    assert gone.text == TEXT_HANDOFF_OFF and gone.handoff is None


def test_a_store_that_cannot_record_the_hand_off_still_tags_the_people(service_of, store, caplog):
    class Refusing:
        def __getattr__(self, name):
            return getattr(store, name)

        def claim_handoff(self, *a, **kw):
            raise OSError("database is locked")

    service = service_of(feedback=Refusing())
    reply = _ask(service, "how do I reset my password?")
    assert reply.handoff is not None
    assert "tagging the people anyway" in caplog.text


# ---- repeats ---------------------------------------------------------------------------------


def test_a_repeat_in_the_same_channel_links_the_earlier_thread(service_of, store):
    service = service_of()
    first = _ask(service, "what is machine learning?", thread="T1")
    assert first.repeat_of is None
    stored = store.get_answer(first.answer_id)
    assert unpack_vector(stored.question_vector)[0] == WordsEngine.encoder
    again = _ask(service, "What is machine learning", thread="T2")
    assert again.repeat_of is not None
    assert (again.repeat_of.channel_id, again.repeat_of.thread_id) == ("C1", "T1")
    assert again.repeat_of.similarity >= 0.85
    assert "answered here just now" in again.repeat_of.label(time.time())
    # the newest earlier thread wins among equals; never the thread it is asked in
    third = _ask(service, "what is machine learning?", thread="T3")
    assert third.repeat_of is not None and third.repeat_of.thread_id in ("T1", "T2")
    follow = service.handle(msg("what is machine learning?", channel_id="C1", thread_id="T3", handoff_to=GROUP))
    assert follow.repeat_of is None or follow.repeat_of.thread_id != "T3"


def test_no_link_for_another_question_channel_or_an_old_thread(service_of):
    service = service_of()
    _ask(service, "what is machine learning?", thread="T1")
    assert _ask(service, "how does machine learning improve with fresh data?", thread="T2").repeat_of is None
    assert _ask(service, "what is machine learning?", channel="C2", thread="T3").repeat_of is None
    assert _ask(service, "and machine learning?", thread="T4").repeat_of is None  # elliptical: means its thread
    later = service_of(wall_clock=lambda: time.time() + 15 * 86400)  # QABOT_REPEAT_DAYS=14 by default
    assert _ask(later, "what is machine learning?", thread="T5").repeat_of is None
    off = service_of(repeat_days=0)
    assert _ask(off, "what is machine learning?", thread="T6").repeat_of is None


def test_abstentions_and_private_answers_are_never_linked(service_of):
    service = service_of()
    _ask(service, "how do I reset my password?", thread="T1")
    assert _ask(service, "how do I reset my password?", thread="T2").repeat_of is None
    _ask(service, "what is machine learning?", thread="T3")
    assert _ask(service, "what is machine learning?", thread="T4", private=True).repeat_of is None


def test_without_a_question_encoder_answers_go_out_without_links(make_service, store):
    service = make_service()  # the plain FakeEngine has no embed_questions
    first = service.handle(msg("what is machine learning?", message_id="T1"))
    second = service.handle(msg("what is machine learning?", message_id="T2"))
    assert second.kind is ReplyKind.ANSWER and second.repeat_of is None
    assert store.get_answer(first.answer_id).question_vector == ""


def test_retention_erases_the_question_vector_with_the_text(database, words_engine, settings):
    from tests.conversation.conftest import ManualClock

    clock = ManualClock(time.time())
    with database.open(retention_days=1, clock=clock) as store:
        service = ConversationService(
            words_engine,
            settings=settings,
            feedback=store,
            rebuilder=RebuildCoordinator(words_engine, settings.knowledge_dir, settings.index_dir),
        )
        reply = service.handle(msg("what is machine learning?", message_id="T1"))
        assert store.get_answer(reply.answer_id).question_vector
        clock.advance(2 * 86400)
        assert store.erase_old_questions() == 1
        erased = store.get_answer(reply.answer_id)
        assert erased.question == "" and erased.question_vector == ""
