"""Each rule that decides between answer, mentioned-only and abstain, and how sure an answer is, pinned.

These run the real Answerer over a retriever that returns hand-made candidates, so each rule can be
shown to matter on its own: remove or invert one and a test here fails.
"""

from __future__ import annotations

import math
from types import SimpleNamespace

import numpy as np
import pytest

from bot.core.answerer import (
    ABSTAIN_TEXT,
    MENTIONED_TEXT,
    Answerer,
    DecisionSettings,
    covered,
    features,
    looks_elliptical,
    probability,
)
from bot.core.errors import IndexMismatchError
from bot.core.retriever import Candidate, Retrieval
from bot.core.types import AnswerKind, Confidence, Turn

SETTINGS = {
    "abstain_min_z": 3.0,
    "abstain_min_maxsim": 0.3,
    "confidence_features": ["z", "maxsim", "maxsim_low", "margin"],
    "confidence_coef": [1.0, 10.0, 0.0, 0.0],
    "confidence_intercept": -11.0,
    "high_probability": 0.9,
    "medium_probability": 0.6,
    "max_quotes": 3,
    "quote_margin_z": 1.0,
    "followup_weight": 0.5,
}
PASSAGES = [
    {
        "id": f"p{i}",
        "doc_path": "doc.md",
        "doc_title": "Doc",
        "section_path": [f"Section {i}"],
        "text": f"Passage number {i} says something. It says more.",
        "sentences": [[0, 33], [34, 47]],
        "position": i,
    }
    for i in range(5)
]


def cand(row: int, z: float, maxsim: float = 0.6, score: float | None = None) -> Candidate:
    return Candidate(row, z + 2 * maxsim if score is None else score, z, z, 0.0, maxsim, maxsim - 0.1, 0)


# unit vectors for the words of the follow-up tests, with chosen cosines: "finance" is closer to
# "healthcare" (0.5) than to "ML" (0.3), or, in NEAR_ML, closer to "ML" (0.4) than to "healthcare" (0.3)
AXES = {"finance": (1.0, 0.0, 0.0), "healthcare": (0.5, 0.866, 0.0), "ML": (0.3, 0.0, 0.954)}
NEAR_ML = {"finance": (1.0, 0.0, 0.0), "healthcare": (0.3, 0.954, 0.0), "ML": (0.4, 0.0, 0.917)}


class WordEncoder:
    def __init__(self, axes=None):
        self.axes = axes or AXES

    def encode_queries(self, texts):
        return np.array([self.axes.get(t, (0.0, 0.0, 0.0)) for t in texts], dtype=np.float32)


class FakeRetriever:
    """Returns the candidates given for each question text (and records how it was asked)."""

    def __init__(self, by_question: dict[str, list[Candidate]], settings: dict | None = None, encoder=None):
        self.by_question = by_question
        self.encoders = [encoder or WordEncoder()]
        self.calls: list[tuple[str, tuple[str, ...]]] = []
        self.index = SimpleNamespace(passages=PASSAGES, retrieval=settings or SETTINGS, manifest={"documents": []})

    def retrieve(self, question: str, *, context=(), context_weight: float = 0.0) -> Retrieval:
        self.calls.append((question, tuple(context)))
        key = f"{' '.join(context)} | {question}" if context else question
        return Retrieval(self.by_question.get(key, []), [], question, 1.0, True)


def answerer(by_question, settings=None, encoder=None) -> Answerer:
    return Answerer(FakeRetriever(by_question, settings, encoder), index_version="v-test")


def s() -> DecisionSettings:
    return DecisionSettings.from_manifest(SETTINGS)


def test_settings_come_from_the_manifest_not_from_code():
    other = DecisionSettings.from_manifest(SETTINGS | {"abstain_min_z": 7.5, "high_probability": 0.99})
    assert other.abstain_min_z == 7.5 and other.high_probability == 0.99
    with pytest.raises(IndexMismatchError, match="abstain_min_z"):
        DecisionSettings.from_manifest({k: v for k, v in SETTINGS.items() if k != "abstain_min_z"})


def test_a_weak_best_match_is_not_covered():
    assert covered(Retrieval([cand(0, 3.5)], [], "q", 1.0, True), s())
    assert not covered(Retrieval([cand(0, 2.9)], [], "q", 1.0, True), s())


def test_a_best_match_lacking_the_questions_own_terms_is_not_covered():
    # topic close (z high) but the question's tokens are not in the passage (late interaction low)
    assert not covered(Retrieval([cand(0, 8.0, maxsim=0.2)], [], "q", 1.0, True), s())
    # without token vectors (nan) only z decides
    assert covered(Retrieval([cand(0, 8.0, maxsim=math.nan)], [], "q", 1.0, False), s())


def test_probability_is_the_profiles_logistic_model():
    feats = {"z": 5.0, "maxsim": 0.6, "maxsim_low": 0.5, "margin": 1.0}
    expected = 1 / (1 + math.exp(-(-11.0 + 5.0 + 6.0)))
    assert probability(feats, s()) == pytest.approx(expected)
    assert probability(feats | {"z": 6.0}, s()) > probability(feats, s())


def test_missing_late_interaction_uses_the_profiles_stand_in():
    found = Retrieval([cand(0, 5.0, maxsim=math.nan)], [], "q", 1.0, False)
    assert features(found, s())["maxsim"] == s().maxsim_default


def test_off_topic_abstains_with_closest_sections():
    answer = answerer({"how do I bake bread": [cand(2, 1.0), cand(3, 0.5)]}).answer("how do I bake bread")
    assert answer.kind is AnswerKind.ABSTAIN and answer.abstained
    assert answer.message == ABSTAIN_TEXT and not answer.quotes
    assert answer.closest_sections == ("Section 2", "Section 3")


def test_covered_but_unsure_is_mentioned_only_with_low_confidence():
    # z 4, maxsim 0.5 -> p = sigmoid(-11 + 4 + 5) = 0.12 < medium
    answer = answerer({"what is x": [cand(1, 4.0, 0.5), cand(2, 3.9, 0.5), cand(3, 1.0, 0.5)]}).answer("what is x")
    assert answer.kind is AnswerKind.MENTIONED and not answer.abstained
    assert answer.confidence is Confidence.LOW and answer.message == MENTIONED_TEXT
    # the closest passages, by the same rule as an answer's (p3 is far below and not covered)
    assert [q.passage_id for q in answer.quotes] == ["p1", "p2"]


def test_confident_answers_are_high_or_medium_by_probability():
    high = answerer({"q": [cand(0, 7.0, 0.7)]}).answer("q")  # p = sigmoid(3) = 0.95
    medium = answerer({"q": [cand(0, 5.0, 0.65)]}).answer("q")  # p = sigmoid(0.5) = 0.62
    assert (high.kind, high.confidence) == (AnswerKind.ANSWER, Confidence.HIGH)
    assert (medium.kind, medium.confidence) == (AnswerKind.ANSWER, Confidence.MEDIUM)


def test_further_quotes_must_be_close_to_the_first_and_covered():
    cands = [cand(0, 7.0, 0.7), cand(1, 6.8, 0.7), cand(2, 2.0, 0.9, score=8.0), cand(3, 3.0, 0.1, score=1.0)]
    answer = answerer({"q": cands}).answer("q")
    # p1 is close; p2 scores close but its z is below the abstention floor; p3 is far below the first
    assert [q.passage_id for q in answer.quotes] == ["p0", "p1"]


def test_at_most_max_quotes():
    cands = [cand(i, 7.0 - i * 0.01, 0.7) for i in range(5)]
    assert len(answerer({"q": cands}).answer("q").quotes) == 3
    assert len(answerer({"q": cands}, SETTINGS | {"max_quotes": 1}).answer("q").quotes) == 1


@pytest.mark.parametrize(
    "text, elliptical",
    [
        ("and in finance?", True),
        ("what about its downsides?", True),
        ("same but for schools", True),
        ("why is that?", True),
        ("examples?", True),
        ("How is machine learning used in healthcare to diagnose diseases early?", False),
        ("What is a GAN?", False),
    ],
)
def test_elliptical_follow_ups_are_recognised(text, elliptical):
    assert looks_elliptical(text) is elliptical


def test_an_elliptical_follow_up_is_answered_with_the_previous_question():
    context = (Turn("how is ML used in healthcare?", ("p0",)),)
    retr = {
        "and in finance?": [cand(4, 3.5, 0.35)],
        "how is ML used in healthcare? | and in finance?": [cand(3, 7.0, 0.7)],
    }
    a = answerer(retr)
    answer = a.answer("and in finance?", context=context)
    assert answer.quotes[0].passage_id == "p3" and answer.extra["context_used"] is True
    assert ("and in finance?", ("how is ML used in healthcare?",)) in a.retriever.calls


def test_a_self_contained_question_in_a_thread_is_answered_on_its_own():
    context = (Turn("how is ML used in healthcare?", ("p0",)),)
    retr = {
        "What are the benefits of generative AI for retailers?": [cand(2, 7.5, 0.75)],
        "how is ML used in healthcare? | What are the benefits of generative AI for retailers?": [cand(0, 9.0, 0.9)],
    }
    a = answerer(retr)
    answer = a.answer("What are the benefits of generative AI for retailers?", context=context)
    assert answer.quotes[0].passage_id == "p2" and answer.extra["context_used"] is False
    assert all(not ctx for _, ctx in a.retriever.calls)  # the context was never even consulted


def test_no_follow_up_reading_when_the_profile_turns_it_off():
    context = (Turn("how is ML used in healthcare?", ()),)
    a = answerer({"and in finance?": [cand(4, 7.0, 0.7)]}, SETTINGS | {"followup_weight": 0.0})
    assert a.answer("and in finance?", context=context).extra["context_used"] is False


REWRITE = SETTINGS | {"followup_rewrite": True, "followup_preposition_bonus": 0.15}
HEALTHCARE = (Turn("how is ML used in healthcare?", ("p0",)),)


def test_a_bare_fragment_takes_the_place_of_the_closest_phrase_of_the_previous_question():
    retr = {
        "how is ML used in finance": [cand(3, 7.0, 0.7)],  # the substituted question, retrieved alone
        "how is ML used in healthcare? | and in finance?": [cand(0, 8.0, 0.8)],  # mixing keeps "healthcare"
    }
    a = answerer(retr, REWRITE)
    answer = a.answer("and in finance?", context=HEALTHCARE)
    assert answer.quotes[0].passage_id == "p3" and answer.extra["context_used"] is True
    assert ("how is ML used in finance", ()) in a.retriever.calls
    # without the rule the follow-up is read with the previous question mixed in
    old = answerer(retr, SETTINGS)
    assert old.answer("and in finance?", context=HEALTHCARE).quotes[0].passage_id == "p0"


def test_the_previous_question_is_normalised_before_substitution():
    a = answerer({}, REWRITE)  # a thread's turn is kept as it was asked, typed name and Markdown included
    assert a.resolve("and in finance?", "@qabot how is **ML** used in healthcare?") == "how is ML used in finance"


def test_a_follow_up_with_a_clause_of_its_own_is_not_substituted():
    retr = {"how is ML used in healthcare? | what are its downsides?": [cand(2, 7.0, 0.7)]}
    a = answerer(retr, REWRITE)
    assert a.resolve("what are its downsides?", "how is ML used in healthcare?") is None
    assert a.answer("what are its downsides?", context=HEALTHCARE).quotes[0].passage_id == "p2"


def test_a_slot_after_a_preposition_like_the_fragment_gets_the_profiles_bonus():
    near_ml = WordEncoder(NEAR_ML)  # "finance" is closer to "ML" (0.4) than to "healthcare" (0.3)
    a = answerer({}, REWRITE, near_ml)
    assert a.resolve("and in finance?", "how is ML used in healthcare?") == "how is ML used in finance"
    assert a.resolve("what about finance?", "how is ML used in healthcare?") == "how is finance used in healthcare"
    no_bonus = answerer({}, REWRITE | {"followup_preposition_bonus": 0.0}, near_ml)
    assert no_bonus.resolve("and in finance?", "how is ML used in healthcare?") == "how is finance used in healthcare"


def test_the_passages_next_to_the_one_quoted_before_get_the_neighbour_bonus():
    context = (Turn("what challenges will we face?", ("p2",)),)
    joint = [cand(4, 7.0, 0.7), cand(3, 6.9, 0.65), cand(2, 6.0, 0.6)]
    retr = {"what challenges will we face? | how do we deal with them?": joint}
    with_bonus = answerer(retr, SETTINGS | {"followup_neighbour_bonus": 1.0})
    answer = with_bonus.answer("how do we deal with them?", context=context)
    assert answer.quotes[0].passage_id == "p3"  # p3 follows p2, the passage quoted before; p4 does not
    plain = answerer(retr, SETTINGS)
    assert plain.answer("how do we deal with them?", context=context).quotes[0].passage_id == "p4"
