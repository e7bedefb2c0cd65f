"""The answering core on the real index: right passage first, mentions ignored, abstention, small talk, quotes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bot.core.types import Answer, AnswerKind, Confidence

CANONICAL = [
    # (question, phrase a quote must contain, that quote's section path's last heading or None)
    ("what is machine learning", "algorithms that enable computers to learn from data", "What is Machine Learning?"),
    ("What is generative AI?", "create various types of content", "What is Generative AI?"),
    ("how is gen ai used in healthcare", None, "Healthcare"),
    ("what are GANs", "Generative Adversarial Networks", None),
    ("@qabot ml limitations?", None, "Machine Learning Limitations"),
    ("what challenges come with integrating AI into a business?", "Skills gap", "Integration Challenges"),
]
# Known miss, kept out on purpose (README, Answer quality): "how can ML help in finance?" quotes generative AI's
# finance passage and two other ML passages, not ML's finance one. Expanding "ML" fixes it but lowers dev hit@1
# (0.823 -> 0.786), so the profile does not rewrite queries.

OFF_TOPIC = [
    "what is the capital of Australia",
    "give me a pizza recipe",
    "how do I reverse a list in python",
]

SMALLTALK = ["hi", "Hello there!", "help", "what can you do?", "thanks!", "thank you so much", "@qabot hi"]

MENTION_FORMS = [
    "@qabot what is machine learning?",
    "@QaBot: what is machine learning?",
    "@qabot, what is machine learning?",
]


@pytest.fixture(scope="module")
def passages(built_index_dir) -> dict[str, dict]:
    data = json.loads((built_index_dir / "current" / "passages.json").read_text(encoding="utf-8"))
    return {p["id"]: p for p in data["passages"]}


def _check_quotes(answer: Answer, passages: dict[str, dict]) -> None:
    """Quotes are verbatim passages, at most three, no duplicates, highlight inside the text."""
    assert len(answer.quotes) <= 3
    assert len({q.passage_id for q in answer.quotes}) == len(answer.quotes)
    assert len({q.text for q in answer.quotes}) == len(answer.quotes)
    for q in answer.quotes:
        stored = passages[q.passage_id]
        assert q.text == stored["text"]
        assert q.section_path == tuple(stored["section_path"])
        assert q.doc_path == stored["doc_path"] == "ml-vs-genai.md"
        assert q.document == stored["doc_title"]
        assert q.score > 0  # fused score, in standard deviations above an unrelated question
        if q.highlight is not None:
            start, end = q.highlight
            assert 0 <= start < end <= len(q.text)
            assert [start, end] in stored["sentences"]
            assert q.best_sentence == q.text[start:end]
    scores = [q.score for q in answer.quotes]
    assert scores == sorted(scores, reverse=True)


@pytest.mark.parametrize(("question", "phrase", "section"), CANONICAL)
def test_canonical_questions_get_the_right_passage(engine_holder, passages, question, phrase, section):
    """Quoted, and among the quotes (rank 1 overall is the quality gate's job: tests/quality)."""
    answer = engine_holder.answer(question)
    assert answer.kind in (AnswerKind.ANSWER, AnswerKind.MENTIONED), answer.to_dict()
    assert not answer.abstained
    assert answer.confidence in (Confidence.HIGH, Confidence.MEDIUM, Confidence.LOW)
    right = [
        q for q in answer.quotes if (not phrase or phrase in q.text) and (not section or q.section_path[-1] == section)
    ]
    assert right, [q.text[:80] for q in answer.quotes]
    if section:
        assert right[0].section.endswith(section)
    _check_quotes(answer, passages)


def test_a_definition_question_is_answered_with_confidence(engine_holder):
    answer = engine_holder.answer("What is machine learning?")
    assert answer.confidence is Confidence.HIGH
    assert answer.quotes[0].best_sentence == (
        "Machine Learning (ML) focuses on developing algorithms that enable computers to learn from data."
    )


@pytest.mark.parametrize("question", MENTION_FORMS)
def test_mentions_are_stripped_before_answering(engine_holder, question):
    answer = engine_holder.answer(question)
    assert answer.question == question  # as asked
    assert answer.normalized_question == "what is machine learning?"
    plain = engine_holder.answer("what is machine learning?")
    assert [q.passage_id for q in answer.quotes] == [q.passage_id for q in plain.quotes]


@pytest.mark.parametrize("question", OFF_TOPIC)
def test_off_topic_questions_abstain_and_point_to_what_is_covered(engine_holder, passages, question):
    answer = engine_holder.answer(question)
    assert answer.kind is AnswerKind.ABSTAIN, [q.text[:80] for q in answer.quotes]
    assert answer.abstained
    assert answer.quotes == ()
    assert answer.confidence is None
    assert answer.message
    assert 1 <= len(answer.closest_sections) <= 3
    known = {" > ".join(p["section_path"]) or p["doc_title"] for p in passages.values()}
    assert set(answer.closest_sections) <= known


@pytest.mark.parametrize("question", SMALLTALK)
def test_small_talk_gets_a_short_reply_without_quotes(engine_holder, question):
    answer = engine_holder.answer(question)
    assert answer.kind is AnswerKind.SMALLTALK
    assert answer.abstained
    assert answer.quotes == ()
    assert answer.message


@pytest.mark.parametrize("question", ["", "   ", "🤖🎉🔥", "@qabot", "?!?", "\x00\x1b[31m"])
def test_nothing_asked_gets_an_empty_answer(engine_holder, question):
    answer = engine_holder.answer(question)
    assert answer.kind is AnswerKind.EMPTY
    assert answer.quotes == ()
    assert answer.message


def test_quotes_are_verbatim_unique_and_at_most_three(engine_holder, passages):
    questions = [q for q, _, _ in CANONICAL] + [
        "what is generative ai?",
        "difference between ml and genai",
        "what skills do I need for machine learning?",
        "what are the benefits of generative AI",
        "what regulations exist for AI?",
        "deepfakes",
        "machine learning",
    ]
    answered = 0
    for question in questions:
        answer = engine_holder.answer(question)
        _check_quotes(answer, passages)
        answered += answer.kind is AnswerKind.ANSWER
    assert answered == len(questions)
    assert any(len(engine_holder.answer(q).quotes) > 1 for q in questions)  # several quotes do happen


def test_every_answer_carries_the_index_version(engine_holder, built_index_dir):
    version = (built_index_dir / "current").resolve().name
    assert engine_holder.version == version
    assert engine_holder.manifest["index_version"] == version
    for question in ["what is ML?", "capital of Australia", "hi", ""]:
        answer = engine_holder.answer(question)
        assert answer.index_version == version
        assert answer.took_ms >= 0


def test_answer_to_dict_is_json_with_the_documented_schema(engine_holder):
    answer = engine_holder.answer("What are GANs?")
    data = json.loads(json.dumps(answer.to_dict()))
    assert {"question", "abstained", "confidence", "quotes", "index_version", "took_ms"} <= set(data)
    assert data["question"] == "What are GANs?"
    assert data["abstained"] is False
    assert data["kind"] == "answer"
    assert data["confidence"] in ("high", "medium", "low")
    assert isinstance(data["took_ms"], float | int)
    assert data["index_version"] == answer.index_version
    assert data["quotes"]
    for quote in data["quotes"]:
        assert {"text", "section", "document", "score"} <= set(quote)
        assert isinstance(quote["text"], str) and quote["text"]
        assert isinstance(quote["score"], float)
    abstained = engine_holder.answer("what is the capital of Australia").to_dict()
    assert abstained["abstained"] is True
    assert abstained["quotes"] == []
    assert abstained["confidence"] is None
    assert abstained["closest_sections"]


def test_long_and_noisy_questions_are_answered_quickly(engine_holder):
    long_question = "what is machine learning? " + "blah " * 20_000
    answer = engine_holder.answer(long_question)
    assert answer.kind in (AnswerKind.ANSWER, AnswerKind.MENTIONED, AnswerKind.ABSTAIN)
    assert len(answer.normalized_question) <= 2000
    assert answer.took_ms < 5000
    noisy = engine_holder.answer("**what** is `machine learning`?\x07\x1b[0m")
    assert noisy.kind in (AnswerKind.ANSWER, AnswerKind.MENTIONED)
    assert "algorithms that enable computers to learn from data" in noisy.quotes[0].text


def test_a_typo_does_not_stop_an_answer(engine_holder):
    # the encoders read through typos (the profile's query rewriting, typo correction included, lowered
    # dev hit@1 and is off): the right passage is quoted, perhaps only as "mentioned"
    answer = engine_holder.answer("waht is machien lerning?")
    assert answer.kind in (AnswerKind.ANSWER, AnswerKind.MENTIONED)
    assert answer.quotes[0].section_path[-1] in ("What is Machine Learning?",), answer.quotes[0].section


def test_render_plain_shows_quotes_and_sections(engine_holder):
    from bot.core.render import quote_lines, render_plain

    answer = engine_holder.answer("what is machine learning")
    text = render_plain(answer)
    assert "confidence" in text
    assert "> " in text
    assert "What is Machine Learning?" in text
    start, end = answer.quotes[0].highlight
    assert f"**{answer.quotes[0].text[start:end]}**" in text
    assert quote_lines("a\n\nb", None) == ["> a", ">", "> b"]
    abstain = render_plain(engine_holder.answer("give me a pizza recipe"))
    assert "closest" in abstain


def test_reload_keeps_serving_the_same_version(built_index_dir):
    from bot.core.engine import EngineHolder

    holder = EngineHolder(Path(built_index_dir))
    assert not holder.loaded
    version = holder.reload()
    assert holder.loaded
    assert version == holder.version == (built_index_dir / "current").resolve().name
