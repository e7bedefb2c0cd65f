"""Slot substitution of elliptical follow-ups (bot/core/followup.py), pinned rule by rule."""

from __future__ import annotations

import pytest

from bot.core.followup import Fragment, fragment, knowledge_pairs, slots, substitute

PAIRS = knowledge_pairs(["Generative AI and machine learning in healthcare.", "Customer support teams."])


@pytest.mark.parametrize(
    "text, expected",
    [
        ("and in finance?", Fragment("finance", True)),
        ("what about finance?", Fragment("finance", False)),
        ("same question but for retail", Fragment("retail", True)),
        ("ok and in customer support?", Fragment("customer support", True)),
        ("and its limitations?", Fragment("limitations", False)),
        ("and ML ones?", Fragment("ML", False)),
        ("how about for gen AI then?", Fragment("gen AI", True)),
        # a clause of its own, or too long: not a bare fragment
        ("how does that relate to ML?", None),
        ("what do they offer?", None),
        ("any other obstacles?", None),
        ("and for ML, beyond courses?", None),
        ("and the many long words of a whole sentence here?", None),
        ("and?", None),
    ],
)
def test_the_fragment_of_a_follow_up(text, expected):
    assert fragment(text) == expected


def test_slots_are_content_words_and_never_cut_a_phrase_of_the_knowledge():
    words, found = slots("what are the benefits of generative AI in healthcare?", PAIRS)
    texts = {s.text for s in found}
    assert {"benefits", "generative AI", "healthcare"} <= texts
    assert "AI" not in texts and "generative" not in texts  # "generative AI" is one phrase of the knowledge
    assert not texts & {"what", "are", "the", "of", "in"}
    by_text = {s.text: s for s in found}
    assert by_text["healthcare"].after_preposition and by_text["generative AI"].after_preposition
    assert not by_text["benefits"].after_preposition
    assert substitute(words, by_text["healthcare"], "finance") == "what are the benefits of generative AI in finance"


def test_without_the_knowledges_pairs_a_slot_may_be_one_word_of_a_phrase():
    _, found = slots("what are the benefits of generative AI", frozenset())
    assert "AI" in {s.text for s in found}
