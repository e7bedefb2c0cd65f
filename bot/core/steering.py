"""Steering retrieval with what admins taught ("Teach qabot", issue 9 item 3), for one loaded index.

A taught example says: for this question (and questions like it), this passage answers; or: the knowledge
does not cover it. The answerer is given a `Steering` (injected, see QAEngine); this module holds the
platform- and storage-free part:

- **Re-attaching** a taught passage to an index by its text: exact first, then with whitespace
  normalised (a rebuild moves passages around and renumbers them; a passage whose text is gone is
  reported, never used).
- **Similarity**: the question's vector by the index's first encoder (the one the retriever computed
  for this question anyway) against the taught questions' vectors by the same encoder (embedded once
  per index version and cached); the most similar taught question decides (the newest on a tie).
- **Not overriding a clearly better match**: the taught passage goes first only when it is among the
  retriever's candidates and trails the best one by less than `allowance(similarity)`: `margin` for the
  taught question itself, shrinking linearly to 0 at cosine `similarity` (scores are in the retriever's
  units: standard deviations above an unrelated question, plus late interaction). A candidate further
  ahead is "clearly better" and stays first. So a close rewording is steered across a wide gap, a loose
  paraphrase only across a narrow one, and an unrelated question not at all.
- **Close rewordings** (cosine >= `close_similarity`): a question marked not covered makes them abstain;
  a taught passage answers them with at least medium confidence (looser paraphrases only get the order).

Nothing here encodes at query time besides what the retriever already did; embedding the taught
questions happens when the examples or the index change (ONNX, never torch).
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from bot.core.normalize import normalize_question
from bot.core.retriever import Candidate, HybridRetriever, Retrieval, encoder_text
from bot.core.taught import TaughtExample, passage_lookup, reattach

log = logging.getLogger(__name__)

# docs/teach.md: chosen on the dev half of tests/eval/intents.jsonl (benchmarks/teach_steering.py --sweep)
DEFAULT_SIMILARITY = 0.60  # below this cosine to a taught question, teaching has no say
DEFAULT_MARGIN = 4.0  # the most a taught passage may trail the best candidate and still go first (cosine 1)
# a close rewording of a taught question (the cosine QABOT_REPEAT_SIMILARITY found with no false repeat on
# tests/eval): "not covered" makes it abstain; a taught passage answers it with at least medium confidence
DEFAULT_CLOSE_SIMILARITY = 0.85
DEFAULT_REFRESH_S = 30.0  # how long the taught examples read from the store are trusted (other replicas)


@dataclass(frozen=True)
class SteerDecision:
    """What a taught example does to one question: `abstain` (not covered) or put `row` first."""

    pair_id: int
    similarity: float
    abstain: bool = False
    row: int | None = None
    already_first: bool = False
    close: bool = False  # a close rewording of the taught question: the admin's pick vouches for the answer


class Steering(Protocol):
    """What the answerer is given: a decision for a retrieval of a question, or None (retrieve as usual)."""

    def steer(self, retriever: HybridRetriever, found: Retrieval) -> SteerDecision | None: ...


def apply_decision(found: Retrieval, decision: SteerDecision) -> Retrieval:
    """The retrieval with the taught passage first (its score raised just above the best one's)."""
    assert decision.row is not None
    cands = found.candidates
    top = cands[0]
    taught = next((c for c in cands if c.row == decision.row), None)
    if taught is None:  # the retriever did not bring it up at all: it joins with the best one's evidence
        taught = Candidate(decision.row, top.score, top.z, top.dense_z, 0.0, float("nan"), float("nan"), 0)
    if taught is top:
        return found
    first = dataclasses.replace(taught, score=top.score + 1e-6)
    rest = [c for c in cands if c.row != decision.row]
    return dataclasses.replace(found, candidates=[first, *rest])


@dataclass
class _Attached:
    """The taught examples on one index version: their passages' rows and their questions' vectors."""

    examples: tuple[TaughtExample, ...]
    rows: list[int | None]
    vectors: np.ndarray  # (n, dim), unit rows
    missing: tuple[int, ...]  # pair ids whose passage is not in this index


class TaughtSteering:
    """The Steering of a running bot: taught examples from `source` (the store, read at most every
    `refresh_s`, and at once after `invalidate()`), re-attached to each index version the engine serves.

    Cheap on the query path: one matrix-vector product over the taught questions, with the question
    vector the retriever computed; the taught questions are embedded when they or the index change."""

    def __init__(
        self,
        source: Callable[[], Sequence[TaughtExample]],
        *,
        similarity: float = DEFAULT_SIMILARITY,
        margin: float = DEFAULT_MARGIN,
        close_similarity: float = DEFAULT_CLOSE_SIMILARITY,
        refresh_s: float = DEFAULT_REFRESH_S,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.source = source
        self.similarity = float(similarity)
        self.margin = float(margin)
        self.close_similarity = float(close_similarity)
        self.refresh_s = float(refresh_s)
        self._clock = clock
        self._lock = threading.Lock()
        self._examples: tuple[TaughtExample, ...] | None = None
        self._read_at = 0.0
        self._attached: dict[int, tuple[tuple[TaughtExample, ...], _Attached]] = {}  # id(retriever) -> ...
        self._vectors: dict[tuple[int, str], np.ndarray] = {}  # (id(retriever), question) -> vector
        self._reported: set[tuple[str, int]] = set()

    def invalidate(self) -> None:
        """Read the taught examples again on the next question (after a teach or an undo here)."""
        with self._lock:
            self._examples = None

    def examples(self) -> tuple[TaughtExample, ...]:
        now = self._clock()
        with self._lock:
            if self._examples is not None and now - self._read_at < self.refresh_s:
                return self._examples
        try:
            examples = tuple(self.source())
        except Exception:  # the store is away: keep what was known (or nothing)
            log.exception("could not read the taught pairs")
            examples = self._examples or ()
        with self._lock:
            self._examples, self._read_at = examples, now
        return examples

    def attached(self, retriever: HybridRetriever) -> _Attached:
        """The examples on this retriever's index (embedding only questions not seen before)."""
        examples = self.examples()
        key = id(retriever)
        with self._lock:
            cached = self._attached.get(key)
            if cached is not None and cached[0] == examples:
                return cached[1]
        lookup = passage_lookup(retriever.index.passages)
        rows = [reattach(e.passage_text, (), by_text=lookup) if e.passage_text else None for e in examples]
        missing = tuple(e.pair_id for e, r in zip(examples, rows, strict=True) if e.passage_text and r is None)
        version = retriever.index.version
        for pair_id in missing:
            if (version, pair_id) not in self._reported:
                self._reported.add((version, pair_id))
                log.warning(
                    "taught pair #%d: its passage is no longer in index %s; it is not used "
                    "(`qabot taught list` shows it, `qabot taught undo %d` removes it)",
                    pair_id,
                    version,
                    pair_id,
                )
        vectors = self._embed(retriever, [e.question for e in examples])
        attached = _Attached(examples, rows, vectors, missing)
        with self._lock:
            # one entry per live retriever: an older index version's entry goes
            self._attached = {k: v for k, v in self._attached.items() if k == key} | {key: (examples, attached)}
        return attached

    def _embed(self, retriever: HybridRetriever, questions: list[str]) -> np.ndarray:
        encoder = retriever.encoders[0]
        key = id(retriever)
        todo = [q for q in dict.fromkeys(questions) if (key, q) not in self._vectors]
        if todo:
            texts = [encoder_text(_query_text(retriever, q)) for q in todo]
            new = np.asarray(encoder.encode_queries(texts), dtype=np.float32).reshape(len(todo), -1)
            new /= np.maximum(np.linalg.norm(new, axis=1, keepdims=True), 1e-12)
            with self._lock:
                self._vectors = {k: v for k, v in self._vectors.items() if k[0] == key}
                for q, v in zip(todo, new, strict=True):
                    self._vectors[(key, q)] = v
        if not questions:
            return np.zeros((0, encoder.dim), dtype=np.float32)
        return np.stack([self._vectors[(key, q)] for q in questions])

    def steer(self, retriever: HybridRetriever, found: Retrieval) -> SteerDecision | None:
        if not found.candidates:
            return None
        attached = self.attached(retriever)
        if not attached.examples:
            return None
        vector = found.vector
        if vector is None:
            return None
        sims = attached.vectors @ (vector / max(float(np.linalg.norm(vector)), 1e-12))
        # the newest of the most similar (a question taught again replaces the older answer)
        order = np.lexsort((-np.arange(len(sims)), -sims))
        j = int(order[0])
        similarity = float(sims[j])
        example = attached.examples[j]
        if example.not_covered:
            if similarity < self.close_similarity:
                return None
            return SteerDecision(example.pair_id, similarity, abstain=True)
        if similarity <= self.similarity:
            return None
        row = attached.rows[j]
        if row is None:
            return None  # its passage is gone from this index (reported when attached)
        top = found.candidates[0]
        close = similarity >= self.close_similarity
        if top.row == row:
            return SteerDecision(example.pair_id, similarity, row=row, already_first=True, close=close)
        taught = next((c for c in found.candidates if c.row == row), None)
        if taught is None:
            return None  # retrieval did not bring the taught passage up at all: everything listed is better
        if top.score - taught.score >= self.allowance(similarity):
            return None  # a clearly better match: not overridden
        return SteerDecision(example.pair_id, similarity, row=row, close=close)

    def allowance(self, similarity: float) -> float:
        """How far below the best candidate the taught passage may score and still be put first: the full
        `margin` for the taught question itself (cosine 1), shrinking linearly to nothing at `similarity`."""
        span = max(1e-6, 1.0 - self.similarity)
        return self.margin * min(1.0, max(0.0, (similarity - self.similarity) / span))


def _query_text(retriever: HybridRetriever, question: str) -> str:
    """What the retriever encodes for this question (normalised, then rewritten if the profile says so)."""
    text = normalize_question(question)
    return retriever.rewriter.rewrite(text) if retriever.settings.rewrite_queries else text
