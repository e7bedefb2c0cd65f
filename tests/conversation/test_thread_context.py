"""Follow-ups are answered with their conversation's earlier turns, kept in the store (survive a restart)."""

from __future__ import annotations

from dataclasses import dataclass, field

from bot.conversation.models import ReplyKind
from bot.conversation.service import CONTEXT_TURNS, ConversationService
from bot.core.types import Answer, AnswerKind, Confidence, Quote, Turn

from .conftest import msg


@dataclass
class RecordingEngine:
    """Answers everything with one quote named after the question; records the context it was given."""

    version: str = "v1"
    contexts: list[tuple[str, tuple[Turn, ...]]] = field(default_factory=list)

    def answer(self, question: str, context: tuple[Turn, ...] = ()) -> Answer:
        self.contexts.append((question, tuple(context)))
        quote = Quote(f"about {question}", "Doc", "doc.md", "S", ("S",), 0.9, f"p-{len(self.contexts)}")
        return Answer(question, question, AnswerKind.ANSWER, Confidence.HIGH, (quote,), index_version=self.version)

    @property
    def manifest(self) -> dict:
        return {"index_version": self.version, "documents": []}


def service(engine, settings, store) -> ConversationService:
    unlimited = settings.replace(user_rate_limit=1000, channel_rate_limit=1000)
    return ConversationService(engine, settings=unlimited, feedback=store)


def test_a_follow_up_in_the_thread_gets_the_earlier_turns(settings, store):
    engine = RecordingEngine()
    svc = service(engine, settings, store)
    first = svc.handle(msg("<@UBOT> how is ML used in healthcare?", message_id="100.1"))
    svc.handle(msg("and in finance?", thread_id="100.1", message_id="100.2", addressed=False))
    question, context = engine.contexts[-1]
    assert question == "and in finance?"
    assert context == (Turn("<@UBOT> how is ML used in healthcare?", tuple(q.passage_id for q in first.answer.quotes)),)


def test_the_context_survives_a_restart(settings, database):
    engine = RecordingEngine()
    with database.open() as store:
        service(engine, settings, store).handle(msg("how is ML used in healthcare?", message_id="7.1"))
    with database.open() as store:  # a new process on the same database
        service(engine, settings, store).handle(msg("and in finance?", thread_id="7.1", addressed=False))
    assert [t.question for t in engine.contexts[-1][1]] == ["how is ML used in healthcare?"]


def test_other_threads_channels_and_private_questions_get_no_context(settings, store):
    engine = RecordingEngine()
    svc = service(engine, settings, store)
    svc.handle(msg("how is ML used in healthcare?", message_id="1.1"))
    svc.handle(msg("what about retail?", message_id="2.1"))  # a new mention: a new thread
    svc.handle(msg("and schools?", channel_id="C2", thread_id="1.1", addressed=True))  # same ts, other channel
    svc.handle(msg("and schools?", thread_id="1.1", private=True))  # /ask: stands alone
    assert [ctx for _, ctx in engine.contexts[1:]] == [(), (), ()]


def test_the_context_is_bounded_to_the_last_turns(settings, store):
    engine = RecordingEngine()
    svc = service(engine, settings, store)
    svc.handle(msg("question 0", message_id="9.0"))
    for n in range(1, CONTEXT_TURNS + 3):
        svc.handle(msg(f"question {n}", thread_id="9.0", addressed=False))
    *_, (question, context) = engine.contexts
    assert question == f"question {CONTEXT_TURNS + 2}"
    assert [t.question for t in context] == [f"question {n}" for n in range(2, CONTEXT_TURNS + 2)]
    assert len(context) == CONTEXT_TURNS


def test_the_terminal_session_is_one_conversation(settings, store):
    import io

    from bot.adapters.terminal import TerminalAdapter, TerminalSettings

    engine = RecordingEngine()

    def session() -> TerminalAdapter:
        own = TerminalSettings(_env_file=None, history_file=settings.feedback_db.parent / "history")
        return TerminalAdapter(service(engine, settings, store), own, stdin=io.StringIO(), stdout=io.StringIO())

    front = session()
    front.handle_line("how is ML used in healthcare?")
    front.handle_line("and in finance?")
    assert [t.question for t in engine.contexts[-1][1]] == ["how is ML used in healthcare?"]
    other = session()  # another session starts fresh
    other.handle_line("and in finance?")
    assert engine.contexts[-1][1] == ()


def test_mentioned_only_is_rendered_as_an_answer_with_its_own_lead(settings, store):
    class Mentioning(RecordingEngine):
        def answer(self, question, context=()):
            a = super().answer(question, context)
            return Answer(
                question, question, AnswerKind.MENTIONED, Confidence.LOW, a.quotes, message="Only touches on it:"
            )

    reply = service(Mentioning(), settings, store).handle(msg("what is mode collapse?"))
    assert reply.kind is ReplyKind.ANSWER and reply.buttons  # it can be rated like an answer
    assert reply.text.startswith("Only touches on it:") and "confidence: low" in reply.text
    assert store.get_answer(reply.answer_id).kind == "mentioned"
