"""The lexical side: one tokenizer for passages and questions, and BM25 (rank-bm25's Okapi, as an inverted index) over it.

Abbreviations that chat users type and articles spell out (ML, GenAI, GANs, LLM ...) are expanded on
both sides, so "genai" matches "Generative AI"; words are Snowball-stemmed; stop words dropped.
"""

from __future__ import annotations

import math
import re

import numpy as np
import Stemmer

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
    """Okapi BM25 over stored passage tokens, as an inverted index; also knows the vocabulary, to tell
    unknown question words.

    The scores are rank-bm25's BM25Okapi (k1 1.5, b 0.75, idf floored at 0.25 x the mean idf), computed
    the same way term by term, but only over the passages that contain a question term: a question
    costs the length of its terms' posting lists, not one Python step per passage of the knowledge
    (rank-bm25's get_scores took ~0.1 s per question term at 100,000 passages).
    """

    K1 = 1.5
    B = 0.75
    EPSILON = 0.25

    def __init__(self, corpus_tokens: list[list[str]]):
        self.size = len(corpus_tokens)
        term_ids: dict[str, int] = {}
        doc_len = np.fromiter((len(doc) for doc in corpus_tokens), dtype=np.int64, count=self.size)
        flat_terms = np.fromiter(
            (term_ids.setdefault(t, len(term_ids)) for doc in corpus_tokens for t in doc),
            dtype=np.int64,
            count=int(doc_len.sum()),
        )
        self.vocabulary = term_ids
        # BM25 divides by the corpus size and by the number of distinct words: with no words at all
        # (knowledge of only emoji, stop words or control characters) there is nothing to score.
        self._empty = not term_ids
        if self._empty:
            return
        flat_docs = np.repeat(np.arange(self.size, dtype=np.int64), doc_len)
        pairs, tf = np.unique(flat_terms * self.size + flat_docs, return_counts=True)  # sorted by term, then passage
        terms = pairs // self.size
        self._docs = (pairs % self.size).astype(np.int32)
        self._tf = tf.astype(np.int32)
        self._start = np.searchsorted(terms, np.arange(len(term_ids) + 1))
        doc_freq = np.diff(self._start)
        # rank-bm25's idf, summed in the same (first-seen) order so the floor is the same number
        idf = [math.log(self.size - int(n) + 0.5) - math.log(int(n) + 0.5) for n in doc_freq]
        idf_sum = 0.0
        for value in idf:
            idf_sum += value
        eps = self.EPSILON * (idf_sum / len(idf))
        self._idf = [value if value >= 0 else eps for value in idf]
        avgdl = int(doc_len.sum()) / self.size
        self._norm = self.K1 * (1 - self.B + self.B * doc_len / avgdl)

    def sparse_scores(self, query_tokens: list[str]) -> tuple[np.ndarray, np.ndarray]:
        """(passages containing a question term, ascending; their BM25 scores). Every other passage scores 0."""
        if self._empty:
            return np.zeros(0, np.int64), np.zeros(0)
        postings = [self.vocabulary[q] for q in query_tokens if q in self.vocabulary]
        if not postings:
            return np.zeros(0, np.int64), np.zeros(0)
        rows = np.unique(np.concatenate([self._docs[self._start[t] : self._start[t + 1]] for t in postings]))
        score = np.zeros(len(rows))
        for t in postings:
            docs = self._docs[self._start[t] : self._start[t + 1]]
            at = np.searchsorted(rows, docs)
            q_freq = self._tf[self._start[t] : self._start[t + 1]]
            score[at] += self._idf[t] * (q_freq * (self.K1 + 1) / (q_freq + self._norm[docs]))
        return rows, score

    def scores(self, query_tokens: list[str]) -> np.ndarray:
        """Every passage's BM25 score (dense; the retriever uses sparse_scores)."""
        out = np.zeros(self.size)
        rows, score = self.sparse_scores(query_tokens)
        out[rows] = score
        return out

    def known_fraction(self, query_tokens: list[str]) -> float:
        """Share of the question's content tokens that occur anywhere in the knowledge."""
        if not query_tokens:
            return 0.0
        return sum(1 for t in query_tokens if t in self.vocabulary) / len(query_tokens)
