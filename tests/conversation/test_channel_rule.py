"""The watched-channel rule (bot/conversation/channel.py): which unmentioned messages are questions for the bot.

The examples are written here, not taken from tests/eval/channel_*.jsonl (the dev set tunes the rule,
the test set only reports on it).
"""

from __future__ import annotations

import pytest

from bot.conversation.channel import Silence, confident, question_for_bot
from bot.core.types import Answer, AnswerKind, Confidence


@pytest.mark.parametrize(
    "text",
    [
        "what is a transformer model?",
        "How do recommendation engines learn from clicks?",
        "hey, quick question: is deep learning part of ML?",
        "ok so why does generative AI need so much data",  # no question mark, asks all the same
        "noob question - how does supervised learning work",
        "anyone know which algorithms work without labels?",
        "can generative models write music?",
        "Does ML need a GPU? asking for a friend",
        "explain the difference between ML and AI please",
        "@everyone what do companies use ML for?",  # addressed to everyone, the bot included
        "@qabot what is clustering?",  # typed at the bot
        "is reinforcement learning used in robotics?!",
        "what's the outlook for AI regulation in the EU? 🤔",
    ],
)
def test_questions_for_the_bot(text):
    assert question_for_bot(text) is None


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("good morning everyone ☀️", Silence.NOT_A_QUESTION),
        ("lol", Silence.TOO_SHORT),
        ("why?", Silence.TOO_SHORT),
        ("wait, what??", Silence.TOO_SHORT),
        ("👍👍", Silence.TOO_SHORT),
        ("machine learning is mostly linear algebra, change my mind", Silence.NOT_A_QUESTION),
        ("generative AI will replace half of all copywriters", Silence.NOT_A_QUESTION),
        ("thanks, that helped a lot!", Silence.NOT_A_QUESTION),
        ("what a great talk that was", Silence.NOT_A_QUESTION),  # an exclamation, not a question
        ("how cool is that", Silence.NOT_A_QUESTION),
        ("how did they even pull that off!", Silence.NOT_A_QUESTION),
        ("my model keeps overfitting, send help", Silence.NOT_A_QUESTION),
        ("slides from today: https://example.com/talk?id=7&ref=chat", Silence.NOT_A_QUESTION),  # ? in a URL
        ("https://example.com/what-is-ml?", Silence.TOO_SHORT),
        ("```python\nwhat = model.predict(x)  # why?\n```", Silence.TOO_SHORT),  # code, not words
        ("`is_fitted?` returns False after training the scaler", Silence.NOT_A_QUESTION),
        ("> what is machine learning?\nthat's what the newcomer asked yesterday", Silence.NOT_A_QUESTION),
        ("@dana what's the difference between ML and AI?", Silence.ADDRESSED_TO_SOMEONE),
        ("can you review my PR on clustering? @jordan", Silence.ADDRESSED_TO_SOMEONE),
        ("thanks @priya.k, what did you use for the embeddings?", Silence.ADDRESSED_TO_SOMEONE),
    ],
)
def test_not_questions_for_the_bot(text, why):
    assert question_for_bot(text) == why


def test_a_mention_of_someone_the_adapter_reports_addresses_them():
    # Slack's <@U2> and Discord's <@2> are gone from the cleaned text: the adapter says so instead
    assert question_for_bot("what is generative AI?", mentions_someone=True) is Silence.ADDRESSED_TO_SOMEONE
    assert question_for_bot("what is generative AI?", mentions_someone=False) is None


def test_an_email_address_is_not_a_mention():
    assert question_for_bot("who do I write to at ml-team@example.com about GANs?") is None


def _answer(kind: AnswerKind, confidence: Confidence | None) -> Answer:
    return Answer("q", "q", kind, confidence)


@pytest.mark.parametrize(
    ("kind", "confidence", "expected"),
    [
        (AnswerKind.ANSWER, Confidence.HIGH, True),
        (AnswerKind.ANSWER, Confidence.MEDIUM, True),
        (AnswerKind.MENTIONED, Confidence.LOW, False),  # "mentioned only": a guess, not for a watched channel
        (AnswerKind.ABSTAIN, None, False),
        (AnswerKind.SMALLTALK, None, False),
        (AnswerKind.EMPTY, None, False),
    ],
)
def test_only_a_confident_answer_is_given_unasked(kind, confidence, expected):
    assert confident(_answer(kind, confidence)) is expected
