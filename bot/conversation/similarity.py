"""Questions compared by meaning: the encoder's unit vectors, stored compactly, and the rules built on them.

- A question's vector is stored with the answer as "<encoder id>:<base64 of little-endian float16>"
  (768 dims: ~2 KB of text); float16 changes a cosine by less than 0.001. Vectors of different encoders
  are never compared.
- `REPEAT_SIMILARITY`: the cosine at or above which a question repeats an earlier one. Chosen on
  tests/eval/intents.jsonl (41 intents, 4 paraphrases each, 40 controls): see
  docs/features-handoff-repeats-gaps.md and scripts/measure_repeats.py.
- `cluster`: greedy grouping for the knowledge-gap report (each question joins the group whose centroid
  it is closest to, if close enough, else starts one).
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Sequence
from typing import Protocol

import numpy as np

# cosine of the first encoder (mpnet in the default profile) at or above which two questions are "the same"
REPEAT_SIMILARITY = 0.85  # the default of QABOT_REPEAT_SIMILARITY (bot/config.py)
# looser: questions about one missing topic, phrased differently, belong to one group of the report
GAP_SIMILARITY = 0.65


class QuestionEmbedder(Protocol):
    def __call__(self, texts: Sequence[str]) -> tuple[str, np.ndarray]:
        """(encoder id, unit vectors one row per text)."""
        ...


def pack_vector(encoder: str, vector: np.ndarray) -> str:
    data = np.asarray(vector, dtype="<f2").tobytes()
    return f"{encoder}:{base64.b64encode(data).decode('ascii')}"


def unpack_vector(text: str) -> tuple[str, np.ndarray] | None:
    """(encoder id, float32 unit vector), or None for '' or anything that does not decode."""
    encoder, sep, data = (text or "").rpartition(":")
    if not sep or not encoder:
        return None
    try:
        vector = np.frombuffer(base64.b64decode(data, validate=True), dtype="<f2").astype(np.float32)
    except (ValueError, TypeError):
        return None
    norm = float(np.linalg.norm(vector))
    if vector.size == 0 or not np.isfinite(norm) or norm == 0.0:
        return None
    return encoder, vector / norm


def best_match(vector: np.ndarray, encoder: str, candidates: Sequence[tuple[str, object]]) -> tuple[int, float] | None:
    """The index and cosine of the candidate (packed vector, anything) closest to `vector`, among those of
    the same encoder; None when there is none."""
    best: tuple[int, float] | None = None
    for i, (packed, _) in enumerate(candidates):
        unpacked = unpack_vector(packed)
        if unpacked is None or unpacked[0] != encoder or unpacked[1].shape != vector.shape:
            continue
        score = float(np.dot(vector, unpacked[1]))
        if best is None or score > best[1]:
            best = (i, score)
    return best


def cluster(vectors: Sequence[np.ndarray], threshold: float = GAP_SIMILARITY) -> list[list[int]]:
    """Groups of indices: each vector, in order, joins the group whose (normalised) centroid is the most
    similar if that cosine is at least `threshold`, else starts a new group."""
    groups: list[list[int]] = []
    sums: list[np.ndarray] = []
    for i, v in enumerate(vectors):
        best, best_score = -1, threshold
        for g, total in enumerate(sums):
            centroid = total / max(float(np.linalg.norm(total)), 1e-12)
            score = float(np.dot(v, centroid))
            if score >= best_score:
                best, best_score = g, score
        if best < 0:
            groups.append([i])
            sums.append(np.array(v, dtype=np.float32))
        else:
            groups[best].append(i)
            sums[best] = sums[best] + v
    return groups


def engine_embedder(engine: object) -> Callable[[Sequence[str]], tuple[str, np.ndarray]] | None:
    """The engine's `embed_questions`, or None for an engine without one (a test double)."""
    embed = getattr(engine, "embed_questions", None)
    return embed if callable(embed) else None
