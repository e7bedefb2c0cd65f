"""Question normalisation (mentions, markup, control characters), small-talk detection and the lexical tokenizer."""

from __future__ import annotations

import pytest

from bot.core.lexical import LexicalIndex, tokenize, words
from bot.core.normalize import MAX_QUESTION_CHARS, SmallTalk, has_words, normalize_question, small_talk


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        # typed names (platform markup such as Slack's <@U1> is removed by each adapter, not here)
        ("@qabot what is ml?", "what is ml?"),
        ("@QaBot: what is ml?", "what is ml?"),
        ("hey @qabot, what is ml?", "hey what is ml?"),
        ("@everyone what is ml?", "what is ml?"),
        ("@somebody what is ml?", "what is ml?"),
        # markup, whitespace, control characters, width variants
        ("# what is ml?", "what is ml?"),
        ("> what is ml?", "what is ml?"),
        ("[what is ml](https://x.y/z)?", "what is ml?"),
        ("  what \n\n is\t ml?  ", "what is ml?"),
        ("what\x07 is\x00 ml?", "what is ml?"),
        ("\x1b[31mwhat is ml?\x1b[0m", "what is ml?"),
        ("ｗｈａｔ\u3000ｉｓ\u3000ＭＬ?", "what is ML?"),
        ("", ""),
        ("   \n\t ", ""),
    ],
)
def test_normalize_question(raw, expected):
    assert normalize_question(raw) == expected


def test_the_core_leaves_platform_markup_to_the_adapters():
    # Slack's and Discord's mention syntax is not the core's business: the adapters strip it
    assert "<@U012AB>" in normalize_question("<@U012AB> what is ml?")


def test_markdown_emphasis_and_code_are_unwrapped():
    assert normalize_question("**what** is _machine learning_?").split() == ["what", "is", "machine", "learning", "?"]
    assert normalize_question("what is `ml`").split() == ["what", "is", "ml"]
    assert normalize_question("```python\nprint(1)\n```") == "print(1)"


def test_words_that_look_like_markup_are_kept():
    assert normalize_question("what is snake_case?") == "what is snake_case?"
    assert normalize_question("mail me@qabot.com") == "mail me@qabot.com"
    assert normalize_question("Ünïcödé naïve café?") == "Ünïcödé naïve café?"


def test_long_questions_are_cut():
    assert len(normalize_question("word " * 10_000)) <= MAX_QUESTION_CHARS
    assert normalize_question("x" * 100_000) == "x" * MAX_QUESTION_CHARS


@pytest.mark.parametrize(
    ("text", "kind"),
    [
        ("hi", SmallTalk.GREETING),
        ("Hello there!", SmallTalk.GREETING),
        ("good morning", SmallTalk.GREETING),
        ("help", SmallTalk.HELP),
        ("what can you do?", SmallTalk.HELP),
        ("how do I use this bot?", SmallTalk.HELP),
        ("thanks", SmallTalk.THANKS),
        ("Thank you so much!", SmallTalk.THANKS),
        ("what is ml", None),
        ("hi, what is machine learning?", None),
        ("help me understand GANs", None),
        ("thanks, but what about deepfakes?", None),
    ],
)
def test_small_talk(text, kind):
    assert small_talk(text) is kind


@pytest.mark.parametrize(
    ("text", "expected"), [("🤖🎉", False), ("?!…", False), ("", False), ("a", True), ("機械", True)]
)
def test_has_words(text, expected):
    assert has_words(text) is expected


def test_abbreviations_are_spelled_out_on_both_sides():
    assert words("GenAI vs ML: GANs") == [
        "generative",
        "ai",
        "vs",
        "machine",
        "learning",
        "generative",
        "adversarial",
        "networks",
    ]
    assert tokenize("What are LLMs?") == tokenize("large language models")
    assert sorted(tokenize("the benefits of GenAI")) == sorted(tokenize("generative AI benefit"))
    assert "the" not in tokenize("the the the model")


def test_lexical_index_scores_and_knows_its_vocabulary():
    index = LexicalIndex(
        [
            tokenize("machine learning algorithms"),
            tokenize("generative models create content"),
            tokenize("deepfakes in elections"),
        ]
    )
    assert index.known_fraction(tokenize("generative pizza")) == 0.5
    assert index.known_fraction([]) == 0.0
    scores = index.scores(tokenize("machine learning"))
    assert scores[0] > 0 == scores[1] == scores[2]
