"""Retrieval over one loaded index version: every encoder of the index, put on one scale and fused,
then the best candidates re-scored by late interaction.

For each encoder the question's cosine with a passage (headings included) and with the passage's
best sentence are turned into z-scores against that encoder's background (how similar generic,
unrelated questions are to this knowledge; measured at build time), so encoders with different
similarity scales can be averaged. BM25 over the same passages adds exact-term evidence (with the
weight the profile gives it) and brings passages the dense side missed into the candidates. Late
interaction compares each question token with the candidate's tokens (MaxSim): it tells whether the
question's own terms, not just its topic, are in the passage.

Every weight comes from the index's manifest (`retrieval`, written from the build profile).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from bot.core.encoder import Encoder, OnnxEncoder
from bot.core.errors import IndexMismatchError
from bot.core.index_store import BUILD_FIX, LoadedEncoderData, LoadedIndex
from bot.core.lexical import LexicalIndex, tokenize
from bot.core.query import QueryRewriter


@dataclass(frozen=True)
class RetrievalSettings:
    """The numbers that shape retrieval; read from the manifest, never from code."""

    candidates: int
    passage_weight: float
    sentence_weight: float
    lexical_weight: float
    lexical_candidates: int
    rewrite_queries: bool
    late_interaction_weight: float
    late_interaction_top: int

    @classmethod
    def from_manifest(cls, retrieval: dict) -> RetrievalSettings:
        return cls(**settings_from(cls, retrieval))


def settings_from(cls: type, retrieval: dict) -> dict:
    """The values of a settings dataclass from the manifest's `retrieval`; one missing is an index
    built by another qabot."""
    values = {}
    for name, f in cls.__dataclass_fields__.items():
        if name in retrieval:
            values[name] = retrieval[name]
        elif f.default is dataclasses.MISSING:
            raise IndexMismatchError(f"The index has no retrieval setting {name!r}: another qabot built it.", BUILD_FIX)
    return values


@dataclass(frozen=True)
class Candidate:
    row: int
    score: float  # what candidates are ranked by: z + late-interaction evidence
    z: float  # fused dense z-score (passage and sentence, every encoder) + lexical
    dense_z: float  # passage-level part only
    lexical: float  # BM25 relative to the best passage for this question (0..1)
    maxsim: float  # mean over question tokens of their best match in the passage (nan: not computed)
    maxsim_low: float  # the same over the question's worst-matched quarter of tokens
    best_sentence: int  # index into the passage's sentences


@dataclass(frozen=True)
class Retrieval:
    candidates: list[Candidate]  # best first
    query_tokens: list[str]
    rewritten: str  # the question in the knowledge's words (abbreviations, synonyms, typos)
    known_fraction: float  # share of the question's content words found in the knowledge
    late_interaction: bool  # whether maxsim was computed for the top candidates


@dataclass
class _Query:
    encoder: Encoder
    data: LoadedEncoderData
    vector: np.ndarray
    tokens: np.ndarray | None = None


class HybridRetriever:
    def __init__(self, index: LoadedIndex, encoders: Sequence[Encoder]):
        self.index = index
        self.encoders = list(encoders)
        self.settings = RetrievalSettings.from_manifest(index.retrieval)
        self.lexical = LexicalIndex(index.lexical_tokens)
        self.rewriter = QueryRewriter.from_texts(p["text"] + " " + " ".join(p["section_path"]) for p in index.passages)
        # sentence vectors are stored in passage order: one pass gives each passage its rows
        bounds = np.searchsorted(index.sentence_owner, np.arange(len(index.passages) + 1))
        self._sentence_rows: list[np.ndarray] = [
            np.arange(bounds[r], bounds[r + 1]) for r in range(len(index.passages))
        ]
        # late interaction: the first encoder that stored passage token vectors (and can give a question's)
        self._li = next(
            (
                i
                for i, (enc, data) in enumerate(zip(self.encoders, index.encoders, strict=True))
                if data.token_vectors is not None and isinstance(enc, OnnxEncoder)
            ),
            None,
        )

    def _encode(self, text: str) -> list[_Query]:
        queries = []
        for i, (enc, data) in enumerate(zip(self.encoders, self.index.encoders, strict=True)):
            if i == self._li:
                vector, tokens = enc.encode_query_with_tokens(text)  # type: ignore[attr-defined]
                queries.append(_Query(enc, data, vector, tokens))
            else:
                queries.append(_Query(enc, data, enc.encode_queries([text])[0]))
        return queries

    def retrieve(self, question: str, *, context: Sequence[str] = (), context_weight: float = 0.0) -> Retrieval:
        """Candidates for `question`; with `context` (earlier questions of the conversation), each
        encoder's question vector is mixed with the context's (`context_weight`) and the lexical side
        reads the context's words too."""
        s = self.settings
        n = len(self.index.passages)
        text = self.rewriter.rewrite(question) if s.rewrite_queries else question
        queries = self._encode(text)
        lexical_text = text
        if context and context_weight > 0:
            ctx_text = " ".join(self.rewriter.rewrite(c) if s.rewrite_queries else c for c in context)
            for q, c in zip(queries, self._encode(ctx_text), strict=True):
                mixed = q.vector + context_weight * c.vector
                q.vector = (mixed / max(float(np.linalg.norm(mixed)), 1e-12)).astype(np.float32)
                if q.tokens is not None and c.tokens is not None:
                    # the follow-up's few words and the context's: both say what the passage must contain
                    q.tokens = np.concatenate([q.tokens, c.tokens])
            lexical_text = f"{text} {ctx_text}"

        rows: set[int] = set()
        k = min(s.candidates, n)
        for q in queries:
            _, found = q.data.faiss_index.search(q.vector[None, :], k)
            rows.update(int(r) for r in found[0] if r >= 0)
        tokens = tokenize(lexical_text)
        bm25 = self.lexical.scores(tokens) if tokens else np.zeros(n)
        bm25_top = float(np.max(bm25)) if n else 0.0
        lexical_rel = bm25 / bm25_top if bm25_top > 0 else np.zeros(n)
        rows.update(int(r) for r in np.argsort(-bm25)[: s.lexical_candidates] if bm25[r] > 0)
        ordered = sorted(rows)

        dense_z = np.zeros(len(ordered))
        sentence_z = [np.zeros(len(self._sentence_rows[r])) for r in ordered]
        for q in queries:
            bg = q.data.spec.background
            assert bg is not None
            vectors = np.stack([q.data.faiss_index.reconstruct(r) for r in ordered])
            dense_z += bg.passage_z(vectors @ q.vector)
            for j, r in enumerate(ordered):
                if len(self._sentence_rows[r]):
                    sentence_z[j] += bg.sentence_z(q.data.sentence_vectors[self._sentence_rows[r]] @ q.vector)
        m = len(queries)
        candidates = []
        for j, r in enumerate(ordered):
            d = float(dense_z[j]) / m
            if len(sentence_z[j]):
                best = int(np.argmax(sentence_z[j]))
                sent = float(sentence_z[j][best]) / m
            else:
                best, sent = 0, d
            z = s.passage_weight * d + s.sentence_weight * sent + s.lexical_weight * float(lexical_rel[r])
            candidates.append(Candidate(r, z, z, d, float(lexical_rel[r]), math.nan, math.nan, best))
        candidates.sort(key=lambda c: c.score, reverse=True)

        late = self._li is not None and queries[self._li].tokens is not None
        if late:
            q = queries[self._li]  # type: ignore[index]
            top = candidates[: s.late_interaction_top]
            rescored = []
            for c in top:
                mean, low = maxsim(q.tokens, q.data.passage_tokens(c.row))  # type: ignore[arg-type]
                rescored.append(
                    Candidate(
                        c.row,
                        c.z + s.late_interaction_weight * mean,
                        c.z,
                        c.dense_z,
                        c.lexical,
                        mean,
                        low,
                        c.best_sentence,
                    )
                )
            rescored.sort(key=lambda c: c.score, reverse=True)
            # the rest had a lower z than every re-scored one, and maxsim only adds: they stay below
            candidates = rescored + candidates[s.late_interaction_top :]
        return Retrieval(candidates, tokens, text, self.lexical.known_fraction(tokenize(text)), late)


def maxsim(question_tokens: np.ndarray, passage_tokens: np.ndarray) -> tuple[float, float]:
    """Late interaction: each question token's best cosine with a passage token; their mean, and the
    mean of the worst-matched quarter (the question's terms the passage lacks)."""
    if len(question_tokens) == 0 or len(passage_tokens) == 0:
        return 0.0, 0.0
    best = (question_tokens @ passage_tokens.astype(np.float32).T).max(axis=1)
    low = np.sort(best)[: max(1, len(best) // 4)]
    return float(best.mean()), float(low.mean())
