"""Elliptical follow-ups resolved by slot substitution into the question before them.

"how is ML used in healthcare?" then "and in finance?": the follow-up is a bare fragment ("finance")
that takes the place of one phrase of the earlier question ("healthcare"), giving "how is ML used in
finance?", a question that can be retrieved on its own (mixing the earlier question's vector in
instead keeps "healthcare" in it, and the healthcare passage often wins).

- `fragment` finds the fragment: what is left of a short follow-up once its opening ("and", "what
  about", "same question but for"), leading prepositions and determiners ("in", "for", "its", "the")
  and trailing fillers ("then", "there", "ones") are taken off; a follow-up with a clause of its own
  ("how does that relate to ML?") has none.
- `slots` lists the earlier question's phrases that the fragment may replace: runs of one to three
  content words that do not cut a word pair the knowledge itself uses ("generative AI", "machine
  learning": replacing "AI" alone would give "generative ML").
- The caller picks the slot most similar to the fragment (an encoder's cosine), with a bonus for a
  slot that, like the fragment, follows a preposition ("in healthcare" / "in finance").
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterable
from dataclasses import dataclass

_WORD = re.compile(r"[\w’'-]+")
_OPENING = re.compile(
    r"^(?:(?:ok(?:ay)?|so|and|or|but|also|plus|then)\s+)*"
    r"(?:(?:what|how)\s+about|same(?:\s+question)?(?:\s+but)?|and)?\s*",
    re.IGNORECASE,
)
PREPOSITIONS = frozenset(
    ["in", "for", "with", "on", "about", "of", "to", "at", "by", "from", "into", "within", "across"]
)
_LEADING = re.compile(
    r"^(?:(?:in|for|with|on|about|of|to|at|by|from|into|within|across|the|its|their|a|an|those|these|that|this)\s+)+",
    re.IGNORECASE,
)
_TRAILING = re.compile(r"(?:\s+(?:then|there|too|as well|instead|ones?|side|case))+$", re.IGNORECASE)
# words that make the rest a clause of its own, not a phrase to put in the earlier question's place
_CLAUSE = re.compile(
    r"\b(what|how|why|who|whom|whose|where|when|which|is|are|was|were|does|do|did|can|could|will|would|"
    r"should|it|they|them|that|this|i|you|we|he|she|any|anything|other|else|more)\b",
    re.IGNORECASE,
)
STOPWORDS = frozenset(
    [
        "a",
        "an",
        "the",
        "of",
        "in",
        "on",
        "for",
        "to",
        "with",
        "and",
        "or",
        "but",
        "is",
        "are",
        "was",
        "were",
        "be",
        "been",
        "being",
        "have",
        "has",
        "had",
        "does",
        "do",
        "did",
        "can",
        "could",
        "will",
        "would",
        "should",
        "how",
        "what",
        "why",
        "who",
        "where",
        "when",
        "which",
        "whose",
        "it",
        "its",
        "they",
        "them",
        "their",
        "this",
        "that",
        "these",
        "those",
        "i",
        "you",
        "we",
        "my",
        "your",
        "our",
        "me",
        "us",
        "about",
        "from",
        "by",
        "as",
        "at",
        "into",
        "than",
        "then",
        "there",
        "so",
        "if",
        "any",
        "some",
        "much",
        "many",
        "more",
        "most",
        "very",
    ]
)
MAX_FRAGMENT_WORDS = 4
MAX_SLOT_WORDS = 3


@dataclass(frozen=True)
class Fragment:
    text: str
    after_preposition: bool  # "in finance", "for healthcare"


@dataclass(frozen=True)
class Slot:
    start: int  # word indexes into the earlier question
    end: int
    text: str
    after_preposition: bool


def fragment(question: str) -> Fragment | None:
    """The bare phrase a short follow-up stands for ("and in finance?" -> "finance"), or None."""
    text = question.strip().rstrip("?!. ").strip()
    rest = _OPENING.sub("", text, count=1)
    lead = _LEADING.match(rest)
    after_preposition = bool(lead and any(w.lower() in PREPOSITIONS for w in lead.group(0).split()))
    rest = _TRAILING.sub("", _LEADING.sub("", rest)).strip(" ,")
    if not rest or len(rest.split()) > MAX_FRAGMENT_WORDS or _CLAUSE.search(rest) or "," in rest:
        return None
    return Fragment(rest, after_preposition)


def knowledge_pairs(texts: Iterable[str]) -> frozenset[tuple[str, str]]:
    """Every pair of adjacent content words (lowercased) in the knowledge: the phrases a slot must not cut."""
    pairs: set[tuple[str, str]] = set()
    for text in texts:
        words = [w.lower() for w in _WORD.findall(text)]
        pairs.update((a, b) for a, b in itertools.pairwise(words) if a not in STOPWORDS and b not in STOPWORDS)
    return frozenset(pairs)


def slots(earlier: str, pairs: frozenset[tuple[str, str]]) -> tuple[list[str], list[Slot]]:
    """The earlier question's words and the phrases of it that a fragment may replace."""
    words = _WORD.findall(earlier)
    low = [w.lower() for w in words]
    glued = [(low[i], low[i + 1]) in pairs for i in range(len(words) - 1)]
    found = []
    for i in range(len(words)):
        if i > 0 and glued[i - 1]:
            continue  # would start inside a phrase of the knowledge
        for end in range(i + 1, min(i + MAX_SLOT_WORDS, len(words)) + 1):
            if low[end - 1] in STOPWORDS:
                break
            if end < len(words) and glued[end - 1]:
                continue  # would end inside one
            found.append(Slot(i, end, " ".join(words[i:end]), i > 0 and low[i - 1] in PREPOSITIONS))
    return words, found


def substitute(words: list[str], slot: Slot, text: str) -> str:
    return " ".join([*words[: slot.start], text, *words[slot.end :]])
