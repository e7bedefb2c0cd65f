"""Taught pairs steering retrieval (bot/core/steering.py), with the real engine over the real index: a taught
pair moves a missed question's answer (and a close rewording's), a clearly better match is not overridden,
"not covered" makes the question abstain, unrelated questions do not move, the taught questions are embedded
once, and a rebuild that drops a taught passage is reported and answers go on."""

from __future__ import annotations

import logging

import pytest

from bot.core.answerer import TAUGHT_NOT_COVERED_TEXT
from bot.core.engine import EngineHolder
from bot.core.evaluate import fold
from bot.core.normalize import normalize_question
from bot.core.steering import TaughtSteering
from bot.core.taught import TaughtExample
from bot.core.types import AnswerKind, Confidence

# a real miss of tests/eval/intents.jsonl (intent key-technical-difference): the gold passage is ranked
# below another one, within the top 5 an admin sees
MISSED = "Looking at how the models are built and taught, what is the decisive distinction between them?"
MISSED_GOLD = "the training techniques make all the difference"
MARKET = "How big is the AI market expected to get by 2030?"
UNRELATED = (
    "What is machine learning?",
    "What sorts of problems is ML particularly strong at?",
    "How do GANs work?",
    "what's the best pizza in Naples?",
)


class Taught:
    """The steering's source: a list the test fills (the store in production)."""

    def __init__(self) -> None:
        self.examples: list[TaughtExample] = []

    def __call__(self) -> list[TaughtExample]:
        return list(self.examples)

    def add(self, question: str, passage: str) -> None:
        self.examples.append(TaughtExample(len(self.examples) + 1, question, passage))


@pytest.fixture(scope="module")
def steered(built_index_dir):
    taught = Taught()
    steering = TaughtSteering(taught, refresh_s=0.0)
    holder = EngineHolder(built_index_dir, steering=steering)
    holder.get()
    return holder, steering, taught


@pytest.fixture
def fresh(steered):
    holder, steering, taught = steered
    taught.examples.clear()
    steering.invalidate()
    yield holder, steering, taught
    taught.examples.clear()
    steering.invalidate()


def _has(answer, phrase: str) -> bool:
    return bool(answer.quotes) and fold(phrase) in fold(answer.quotes[0].text)


def test_a_taught_pair_moves_a_missed_question_and_its_close_rewording(fresh):
    holder, _, taught = fresh
    before = holder.answer(MISSED)
    assert not _has(before, MISSED_GOLD)  # the miss
    gold = next(c for c in holder.candidates(MISSED, 5) if fold(MISSED_GOLD) in fold(c.text))  # what the admin picks
    unrelated_before = {q: holder.answer(q) for q in UNRELATED}

    taught.add(MISSED, gold.text)
    after = holder.answer(MISSED)
    assert _has(after, MISSED_GOLD) and after.quotes[0].passage_id == gold.passage_id
    assert after.kind is AnswerKind.ANSWER and after.confidence in (Confidence.MEDIUM, Confidence.HIGH)
    assert after.extra["taught_pair"] == 1 and after.extra["taught_similarity"] > 0.99

    reworded = holder.answer(
        "looking at how the models are built and trained, what's the decisive distinction between them"
    )
    assert _has(reworded, MISSED_GOLD) and reworded.extra["taught_pair"] == 1

    for q, answer in unrelated_before.items():  # other questions do not move
        again = holder.answer(q)
        assert (again.kind, again.passage_ids[:1]) == (answer.kind, answer.passage_ids[:1]), q


def test_a_clearly_better_match_is_not_overridden(fresh):
    holder, steering, taught = fresh
    engine = holder.get()
    found = engine.retriever.retrieve(normalize_question(MARKET))
    top, worst = found.candidates[0], found.candidates[-1]
    assert top.score - worst.score >= steering.margin  # the precondition: clearly better by the margin
    assert _has(holder.answer(MARKET), "740 billion by 2030")

    taught.add(MARKET, engine.index.passages[worst.row]["text"])  # a wrong pick, far below the right passage
    kept = holder.answer(MARKET)
    assert _has(kept, "740 billion by 2030") and "taught_pair" not in kept.extra

    # the margin is what keeps it: with no limit the taught passage would go first
    loose = TaughtSteering(taught, margin=1e9, refresh_s=0.0)
    assert loose.steer(engine.retriever, found) is not None


def test_not_covered_makes_the_question_abstain(fresh):
    holder, _, taught = fresh
    question = "What is generative AI?"
    assert holder.answer(question).kind is AnswerKind.ANSWER
    other = holder.answer("What is machine learning?")
    taught.add(question, "")  # "Not covered"
    marked = holder.answer(question)
    assert marked.kind is AnswerKind.ABSTAIN and marked.message == TAUGHT_NOT_COVERED_TEXT
    assert marked.quotes == () and marked.closest_sections
    assert holder.answer("what is generative ai").kind is AnswerKind.ABSTAIN  # a close rewording
    still = holder.answer("What is machine learning?")
    assert (still.kind, still.passage_ids[:1]) == (other.kind, other.passage_ids[:1])


def test_taught_questions_are_embedded_once(fresh, monkeypatch):
    holder, steering, taught = fresh
    encoder = holder.get().encoders[0]
    calls = []
    real = encoder.encode_queries
    monkeypatch.setattr(encoder, "encode_queries", lambda texts: calls.append(list(texts)) or real(texts))
    taught.add("which encoder embeds taught questions?", "some passage")  # texts no other test taught
    taught.add("how often are taught questions embedded?", "")
    for q in ("What is machine learning?", MISSED, "How do GANs work?"):
        holder.answer(q)
    assert calls == [[*calls[0]]] and len(calls[0]) == 2  # one batch: the two taught questions
    steering.invalidate()
    taught.add("and a third taught question?", "")
    holder.answer("What is machine learning?")
    assert len(calls) == 2 and len(calls[1]) == 1  # only the new one


def test_a_rebuild_without_the_taught_passage_is_reported_and_answers_go_on(
    fast_build, knowledge_copy, tmp_path, caplog
):
    from bot.conversation.stores import TaughtPair
    from bot.conversation.teach import STATUS_GONE, STATUS_IN_INDEX, pairs_data

    index = tmp_path / "index"
    fast_build(knowledge_copy, index)
    taught = Taught()
    holder = EngineHolder(index, steering=TaughtSteering(taught, refresh_s=0.0))
    passage = next(p["text"] for p in holder.passages if "740 billion" in p["text"])
    taught.add(MARKET, passage)
    first = holder.answer(MARKET)
    assert first.quotes[0].text == passage

    doc = knowledge_copy / "ml-vs-genai.md"
    lines = doc.read_text(encoding="utf-8").splitlines(keepends=True)
    doc.write_text("".join(line for line in lines if "740 billion" not in line), encoding="utf-8")
    fast_build(knowledge_copy, index)
    with caplog.at_level(logging.WARNING):
        holder.reload()
        after = holder.answer(MARKET)
    assert after.kind in (AnswerKind.ANSWER, AnswerKind.MENTIONED, AnswerKind.ABSTAIN)
    assert "taught_pair" not in after.extra and all("740 billion" not in q.text for q in after.quotes)
    assert any("taught pair #1: its passage is no longer in index" in r.getMessage() for r in caplog.records)
    pair = TaughtPair(1, MARKET, MARKET, passage, "ml-vs-genai.md", "S", "p", "v1", "slack", "h", 0.0)
    assert pairs_data([pair], holder.passages)[0]["status"] == STATUS_GONE
    assert pairs_data([pair], [{"text": passage}])[0]["status"] == STATUS_IN_INDEX


def test_a_steering_that_fails_never_costs_the_answer(steered, caplog):
    from bot.core.answerer import Answerer

    class Broken:
        def steer(self, retriever, found):
            raise RuntimeError("the taught pairs could not be read")

    engine = steered[0].get()
    answerer = Answerer(engine.retriever, index_version=engine.version, steering=Broken())
    with caplog.at_level(logging.ERROR):
        answer = answerer.answer(MARKET)
    assert _has(answer, "740 billion by 2030")
    assert any("answering without them" in r.getMessage() for r in caplog.records)
