"""'What is this about?' is answered with the knowledge's documents, sections and self-description."""

from __future__ import annotations

import pytest

from bot.core.normalize import about_question, normalize_question
from bot.core.types import AnswerKind


@pytest.mark.parametrize(
    "question",
    [
        "what is this article even about",
        "@qabot whats the article about?",
        "what topics do you cover?",
        "what do you know",
        "summary",
        "tl;dr",
        "give me an overview",
    ],
)
def test_questions_about_the_knowledge_itself_are_recognised(question):
    assert about_question(normalize_question(question))


@pytest.mark.parametrize(
    "question",
    [
        "what is machine learning about",
        "tldr whats the difference between gen ai and ml",
        "summarize the ML limitations",
    ],
)
def test_questions_about_a_topic_are_not(question):
    assert not about_question(normalize_question(question))


def test_the_overview_names_the_document_its_sections_and_quotes_its_aim(engine_holder):
    answer = engine_holder.answer("@qabot what is this article even about?")
    assert answer.kind is AnswerKind.ANSWER
    assert "Machine Learning vs Generative AI" in answer.message
    for section in ("What is Machine Learning?", "Integration Challenges", "Skill Sets and Educational Paths"):
        assert section in answer.message
    assert len(answer.quotes) == 1
    assert "This article will discuss two key AI concepts" in answer.quotes[0].text
