"""Hybrid retrieval over one loaded index version: dense (ONNX MiniLM + FAISS) and lexical (BM25), fused."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from bot.core.encoder import OnnxEncoder
from bot.core.index_store import LoadedIndex
from bot.core.lexical import LexicalIndex, tokenize
from bot.core.query import QueryRewriter

# Fusion weights: the dense side carries meaning and paraphrase, BM25 pins exact terms
# (names, abbreviations, numbers). Sentence-level similarity lets one sentence of a longer
# passage carry it.
W_PASSAGE = 0.65
W_SENTENCE = 0.22
W_LEXICAL = 0.13
CANDIDATES = 50  # FAISS search depth; the exact index returns the true top-k


@dataclass(frozen=True)
class Candidate:
    row: int
    score: float  # fused, about 0..1
    dense: float  # cosine of question and passage (with its headings)
    sentence: float  # best cosine of question and one of the passage's sentences
    lexical: float  # BM25 relative to the best passage for this question (0..1)
    best_sentence: int  # index into the passage's sentences


@dataclass(frozen=True)
class Retrieval:
    candidates: list[Candidate]  # best first
    query_tokens: list[str]
    rewritten: str  # the question in the knowledge's words (abbreviations, synonyms, typos)
    known_fraction: float  # share of the question's content words found in the knowledge
    bm25_top: float  # raw BM25 of the best lexical match


class HybridRetriever:
    def __init__(self, index: LoadedIndex, encoder: OnnxEncoder):
        self.index = index
        self.encoder = encoder
        self.lexical = LexicalIndex(index.lexical_tokens)
        self.rewriter = QueryRewriter.from_texts(p["text"] + " " + " ".join(p["section_path"]) for p in index.passages)
        # sentence vectors are stored in passage order: one pass gives each passage its rows
        # (a comparison per passage would be quadratic in the size of the knowledge)
        bounds = np.searchsorted(index.sentence_owner, np.arange(len(index.passages) + 1))
        self._sentence_rows: list[np.ndarray] = [
            np.arange(bounds[r], bounds[r + 1]) for r in range(len(index.passages))
        ]

    def retrieve(self, question: str) -> Retrieval:
        n = len(self.index.passages)
        question = self.rewriter.rewrite(question)
        query = self.encoder.encode_one(question).astype(np.float32)
        k = min(CANDIDATES, n)
        scores, rows = self.index.faiss_index.search(query[None, :], k)
        dense = {int(r): float(s) for r, s in zip(rows[0], scores[0], strict=True) if r >= 0}

        tokens = tokenize(question)
        bm25 = self.lexical.scores(tokens) if tokens else np.zeros(n)
        bm25_top = float(np.max(bm25)) if n else 0.0
        lexical_rel = bm25 / bm25_top if bm25_top > 0 else np.zeros(n)
        # Passages that only BM25 found still compete (their dense score is computed exactly).
        for row in np.argsort(-bm25)[:10]:
            if bm25[row] > 0 and int(row) not in dense:
                dense[int(row)] = float(self.index.faiss_index.reconstruct(int(row)) @ query)

        sentence_sims = self.index.sentence_vectors @ query
        candidates = []
        for row, dense_score in dense.items():
            sentence_rows = self._sentence_rows[row]
            if len(sentence_rows):
                local = sentence_sims[sentence_rows]
                best = int(np.argmax(local))
                sentence_score = float(local[best])
            else:
                best, sentence_score = 0, dense_score
            lex = float(lexical_rel[row])
            fused = W_PASSAGE * dense_score + W_SENTENCE * sentence_score + W_LEXICAL * lex
            candidates.append(Candidate(row, fused, dense_score, sentence_score, lex, best))
        candidates.sort(key=lambda c: c.score, reverse=True)
        return Retrieval(candidates, tokens, question, self.lexical.known_fraction(tokens), bm25_top)
