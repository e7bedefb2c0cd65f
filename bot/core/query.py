"""Rewrites a chat question into the words the knowledge uses, before both retrieval sides see it.

- chat abbreviations spelled out: "ml" -> "machine learning", "genai"/"gen ai" -> "generative AI", "u" -> "you";
- a few everyday synonyms of words headings use ("downsides" -> "downsides limitations", "pros" -> "pros benefits");
- typos: a word of 5+ letters that the knowledge never uses is replaced by the knowledge's closest word when
  they are at least 85% alike ("machne" -> "machine", "finanse" -> "finance"); in a very large knowledge,
  only its TYPO_VOCABULARY most frequent words are candidates, so a question's cost stays bounded.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable

from rapidfuzz import fuzz, process

CHAT_WORDS = {
    "ml": "machine learning",
    "genai": "generative AI",
    "gai": "generative AI",
    "gans": "generative adversarial networks (GANs)",
    "gan": "generative adversarial network (GAN)",
    "llm": "large language model",
    "llms": "large language models",
    "vae": "variational autoencoder",
    "vaes": "variational autoencoders",
    "svm": "support vector machine",
    "svms": "support vector machines",
    "nlp": "natural language processing",
    "algo": "algorithm",
    "algos": "algorithms",
    "u": "you",
    "ur": "your",
    "r": "are",
    "pls": "please",
    "plz": "please",
    "uni": "university",
    "tldr": "in short",
    "tl;dr": "in short",
    "diff": "difference",
    "w/": "with",
    "b/w": "between",
}
# Added next to the user's word (the word itself is kept), so both phrasings count.
SYNONYMS = {
    "downside": "limitations",
    "downsides": "limitations",
    "drawback": "limitations",
    "drawbacks": "limitations",
    "cons": "limitations",
    "disadvantages": "limitations",
    "weaknesses": "limitations",
    "shortcomings": "limitations",
    "upside": "benefits",
    "upsides": "benefits",
    "pros": "benefits",
    "advantages": "benefits",
    "perks": "benefits",
    "strengths": "benefits",
    "compute": "computational",
    "hardware": "computational",
    "price": "costs",
    "pricey": "costs",
    "expensive": "costs",
}
_GEN_AI = re.compile(r"\bgen[\s-]+ai\b", re.IGNORECASE)
_WORD = re.compile(r"[A-Za-z][A-Za-z;/]*[A-Za-z/]|[A-Za-z]")
TYPO_MIN_LETTERS = 5
TYPO_MIN_SIMILARITY = 85


# A question word is only compared with this many of the knowledge's words (the most frequent ones):
# one comparison pass costs ~8 ms per word at 100,000 words and ~0.5 s at 1,000,000.
TYPO_VOCABULARY = 50_000


class QueryRewriter:
    def __init__(self, knowledge_words: Iterable[str]):
        counts = Counter(w.lower() for w in knowledge_words if w.isalpha())
        self._known = frozenset(counts)
        # a word shorter than TYPO_MIN_LETTERS - 1 can never be 85 % alike a longer one: left out
        candidates = [w for w in counts if len(w) >= TYPO_MIN_LETTERS - 1]
        if len(candidates) > TYPO_VOCABULARY:
            candidates = sorted(candidates, key=lambda w: (-counts[w], w))[:TYPO_VOCABULARY]
        self.vocabulary = sorted(candidates)

    @classmethod
    def from_texts(cls, texts: Iterable[str]) -> QueryRewriter:
        return cls(w for text in texts for w in re.findall(r"[A-Za-z]+", text))

    def _word(self, match: re.Match[str]) -> str:
        word = match.group(0)
        lower = word.lower()
        if lower in CHAT_WORDS:
            return CHAT_WORDS[lower]
        if lower in SYNONYMS:
            return f"{word} {SYNONYMS[lower]}"
        if len(lower) >= TYPO_MIN_LETTERS and lower not in self._known and self.vocabulary:
            best = process.extractOne(lower, self.vocabulary, scorer=fuzz.ratio, score_cutoff=TYPO_MIN_SIMILARITY)
            if best is not None:
                return best[0]
        return word

    def rewrite(self, question: str) -> str:
        return _WORD.sub(self._word, _GEN_AI.sub("generative AI", question))
