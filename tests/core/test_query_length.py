"""A pasted wall of text costs the encoders no more than a long question: they read its head."""

from __future__ import annotations

from bot.core.retriever import QUERY_ENCODER_CHARS, encoder_text


def test_a_question_people_ask_is_read_whole():
    question = "how do generative models differ from discriminative ones when used for fraud detection in banks?"
    assert encoder_text(question) == question
    assert encoder_text("x" * QUERY_ENCODER_CHARS) == "x" * QUERY_ENCODER_CHARS


def test_a_wall_of_text_is_cut_at_a_word_boundary():
    question = "what is machine learning? " + "blah " * 20_000
    head = encoder_text(question)
    assert len(head) <= QUERY_ENCODER_CHARS
    assert head.startswith("what is machine learning?")
    assert question.startswith(head) and question[len(head)] == " "


def test_one_endless_word_is_still_cut():
    assert encoder_text("a" * 5000) == "a" * QUERY_ENCODER_CHARS
