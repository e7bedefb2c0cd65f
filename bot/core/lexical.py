"""The lexical side: one tokenizer for passages and questions, and BM25 (rank-bm25) over it.

Abbreviations that chat users type and articles spell out (ML, GenAI, GANs, LLM ...) are expanded on
both sides, so "genai" matches "Generative AI"; words are Snowball-stemmed; stop words dropped.
"""

from __future__ import annotations

import re

import numpy as np
import Stemmer
from rank_bm25 import BM25Okapi

_WORD = re.compile(r"[^\W_]+(?:[’'][^\W_]+)?", re.UNICODE)

# Spelled-out forms, applied to lower-cased tokens. Both passages and questions go through this.
ABBREVIATIONS: dict[str, tuple[str, ...]] = {
    "ml": ("machine", "learning"),
    "genai": ("generative", "ai"),
    "gai": ("generative", "ai"),
    "gen": ("generative",),
    "gan": ("generative", "adversarial", "network"),
    "gans": ("generative", "adversarial", "networks"),
    "vae": ("variational", "autoencoder"),
    "vaes": ("variational", "autoencoders"),
    "llm": ("large", "language", "model"),
    "llms": ("large", "language", "models"),
    "svm": ("support", "vector", "machine"),
    "svms": ("support", "vector", "machines"),
    "nlp": ("natural", "language", "processing"),
    "rl": ("reinforcement", "learning"),
    "dl": ("deep", "learning"),
}

STOPWORDS = frozenset(
    """
    a about above after again against all am an and any are as at be because been before being below
    between both but by can could did do does doing down during each few for from further had has have
    having he her here hers herself him himself his how i if in into is it its itself just me more most
    my myself no nor not now of off on once only or other our ours ourselves out over own same she
    should so some such than that the their theirs them themselves then there these they this those
    through to too under until up very was we were what when where which while who whom why will with
    would you your yours yourself yourselves s t don shouldn ll re ve d m o y isn aren wasn weren hasn
    haven hadn doesn didn won wouldn couldn mustn needn shan ain hey hi hello pls plz please thanks thx
    u ur ya yeah ok okay tell explain know want wanna gonna kinda whats what’s does do did anyone
    someone bot qabot article say says said mean means
    """.split()  # noqa: SIM905 - a word list reads better as text
)

_stemmer = Stemmer.Stemmer("english")


def words(text: str) -> list[str]:
    """Lower-cased word tokens with abbreviations spelled out (stop words kept)."""
    out: list[str] = []
    for match in _WORD.finditer(text.lower()):
        token = match.group().replace("’", "'")
        if token.endswith("'s"):
            token = token[:-2]
        out.extend(ABBREVIATIONS.get(token, (token,)))
    return out


def tokenize(text: str) -> list[str]:
    """Stemmed content tokens for BM25."""
    return _stemmer.stemWords([w for w in words(text) if (w not in STOPWORDS and len(w) > 1) or w.isdigit()])


class LexicalIndex:
    """BM25 over stored passage tokens; also knows the vocabulary, to tell unknown question words."""

    def __init__(self, corpus_tokens: list[list[str]]):
        self.corpus_tokens = corpus_tokens
        self.vocabulary = frozenset(t for doc in corpus_tokens for t in doc)
        # BM25Okapi divides by the corpus size and by the number of distinct words: with no words at
        # all (knowledge of only emoji, stop words or control characters) there is nothing to score.
        self.bm25 = BM25Okapi(corpus_tokens) if self.vocabulary else None

    def scores(self, query_tokens: list[str]):
        if self.bm25 is None:
            return np.zeros(len(self.corpus_tokens))
        return self.bm25.get_scores(query_tokens)

    def known_fraction(self, query_tokens: list[str]) -> float:
        """Share of the question's content tokens that occur anywhere in the knowledge."""
        if not query_tokens:
            return 0.0
        return sum(1 for t in query_tokens if t in self.vocabulary) / len(query_tokens)
