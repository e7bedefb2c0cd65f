"""The passage vector index a build writes, and the search setting it is served with.

Exact inner-product search (`IndexFlatIP`) while it is cheap; beyond `exact_max` passages an HNSW
graph, and beyond `ivf_min` an inverted file whose graph-free build stays in minutes at a million
passages on two cores. The inverted file scans 8-bit codes of the vectors (`IndexIVFScalarQuantizer`,
a quarter of the bytes of float32: the scan is bound by memory bandwidth) and re-ranks what it found
with the exact vectors (`IndexRefineFlat`, which also gives the engine exact vectors back from
`reconstruct`). At 1M passages on this 2-core machine it reaches the same recall as scanning float32
lists (`IndexIVFFlat`) in about 60 % of the time (docs/scaling-builds.md, section 3c). An approximate index is checked against exact search before it
is written: recall@10 for *question-like* queries must reach `min_recall`, and the search setting
(HNSW efSearch, IVF nprobe) starts at a value that grows with the size and is doubled until it does.
If the largest allowed setting still misses, the build fails (nothing is published). The setting that
passed is recorded in the manifest (`search.<encoder>.ef_search` / `nprobe`) and applied by the core
when it loads the version (bot/core/index_store.py).

Question-like queries: the passages themselves would find themselves (recall ~1 at any setting), so
the check uses (a) the background questions encoded by the build's own encoder (real questions, most
of them about nothing in the knowledge: the hard case for a graph) and (b) sampled passage vectors
pushed away from their passage to the cosine a question usually has with its answer
(`QUESTION_COSINE`). Recall is measured separately on each and the lower one counts.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from typing import Any

import numpy as np

from bot.core.errors import BuildError

K = 10
MIN_RECALL = 0.95
RECALL_QUERIES = 500  # perturbed passage vectors per check
QUESTION_COSINE = 0.6  # a question's cosine with its answer passage, roughly (MiniLM, mpnet)


def _nprobe_for_size(nlist: int) -> int:
    return max(8, nlist // 32)


@dataclass(frozen=True)
class VectorIndexSettings:
    """Which index a build makes at which size, and how hard its recall check is."""

    exact_max: int = 20_000  # up to this many passages: exact search (50k: p50 ~40 ms at load 8, measured)
    ivf_min: int = 500_000  # above this many: an inverted file instead of HNSW
    # what the inverted file's lists hold: "sq8" 8-bit codes, results re-ranked with the exact vectors;
    # "flat" the float32 vectors themselves (IndexIVFFlat: the same recall at ~1.7 x the search time, measured)
    ivf_storage: str = "sq8"
    hnsw_neighbours: int = 32
    hnsw_ef_construction: int = 128
    # efSearch to start the check at, by size (up to n passages: value); measured in docs/scaling-builds.md
    ef_search_by_size: tuple[tuple[int, int], ...] = ((30_000, 128), (300_000, 256), (2**63, 512))
    ef_search_max: int = 4096
    nprobe_max_fraction: float = 0.5  # nprobe never above this share of the lists
    min_recall: float = MIN_RECALL
    # the setting is raised until the check's queries reach this (a margin over min_recall: another set of
    # questions scatters by about +-0.01 around it, measured); failing only below min_recall at the largest
    target_recall: float = MIN_RECALL + 0.01

    def ef_search_start(self, n: int) -> int:
        start = next((ef for size, ef in self.ef_search_by_size if n <= size), self.ef_search_by_size[-1][1])
        return min(start, self.ef_search_max)

    @staticmethod
    def ivf_lists(n: int) -> int:
        return max(1, int(4 * math.sqrt(n)))


@dataclass(frozen=True)
class VectorIndex:
    index: Any
    kind: str
    recall_at_10: float | None  # the lower of the two query sets' recall@10 against exact search; None: exact
    ef_search: int | None = None
    nprobe: int | None = None

    def search_entry(self) -> dict[str, Any]:
        """What the manifest records under search.<encoder> (bot/core/manifest.py: SearchEntry)."""
        entry: dict[str, Any] = {"faiss_index": self.kind, "faiss_recall_at_10": self.recall_at_10}
        if self.ef_search is not None:
            entry["ef_search"] = self.ef_search
        if self.nprobe is not None:
            entry["nprobe"] = self.nprobe
        return entry


def question_like(vectors: np.ndarray, count: int = RECALL_QUERIES, *, seed: int = 0) -> np.ndarray:
    """`count` sampled passage vectors moved to cosine QUESTION_COSINE with their passage (unit length)."""
    rng = np.random.default_rng(seed)
    n = len(vectors)
    rows = rng.choice(n, size=min(n, count), replace=False)
    base = np.asarray(vectors[rows], dtype=np.float32)
    noise = rng.standard_normal(base.shape).astype(np.float32)
    noise -= (noise * base).sum(axis=1, keepdims=True) * base  # orthogonal to its passage
    noise /= np.maximum(np.linalg.norm(noise, axis=1, keepdims=True), 1e-12)
    s = math.sqrt(1 / QUESTION_COSINE**2 - 1)
    out = base + s * noise
    return (out / np.linalg.norm(out, axis=1, keepdims=True)).astype(np.float32)


def recall_at_10(index: Any, queries: np.ndarray, truth: np.ndarray) -> float:
    k = truth.shape[1]
    _, found = index.search(queries, k)
    return float(np.mean([len(set(t) & set(f)) / k for t, f in zip(truth, found, strict=True)]))


def _with_every_core(fn) -> None:
    """Run fn with FAISS's OpenMP threads on every core (the engine serves with one; restored after)."""
    import faiss

    serving_threads = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(os.cpu_count() or 1)
    try:
        fn()
    finally:
        faiss.omp_set_num_threads(serving_threads)


def make_vector_index(
    vectors: np.ndarray,
    *,
    questions: np.ndarray | None = None,
    settings: VectorIndexSettings | None = None,
) -> VectorIndex:
    """The index for `vectors` (unit rows, inner product). `questions`: real question vectors from the
    same encoder, used with perturbed passage vectors for the recall check of an approximate index.

    Raises BuildError if an approximate index cannot reach settings.min_recall.
    """
    import faiss

    s = settings or VectorIndexSettings()
    vectors = np.ascontiguousarray(vectors, dtype=np.float32)
    n, dim = vectors.shape
    if n <= s.exact_max:
        exact = faiss.IndexFlatIP(dim)
        exact.add(vectors)
        return VectorIndex(exact, "IndexFlatIP", None)

    k = min(K, n)
    sets = [question_like(vectors)]
    if questions is not None and len(questions):
        sets.append(np.ascontiguousarray(questions, dtype=np.float32))
    truths = [faiss.knn(q, vectors, k, metric=faiss.METRIC_INNER_PRODUCT)[1] for q in sets]

    def recall(index: Any) -> float:
        return min(recall_at_10(index, q, t) for q, t in zip(sets, truths, strict=True))

    if n <= s.ivf_min:
        index = faiss.IndexHNSWFlat(dim, s.hnsw_neighbours, faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efConstruction = s.hnsw_ef_construction
        _with_every_core(lambda: index.add(vectors))
        kind = f"IndexHNSWFlat(M={s.hnsw_neighbours},efConstruction={s.hnsw_ef_construction})"
        value, limit, name = s.ef_search_start(n), s.ef_search_max, "efSearch"

        def set_value(v: int) -> None:
            index.hnsw.efSearch = v
    else:
        nlist = s.ivf_lists(n)
        quantizer = faiss.IndexFlatIP(dim)
        if s.ivf_storage == "sq8":
            ivf = faiss.IndexIVFScalarQuantizer(
                quantizer, dim, nlist, faiss.ScalarQuantizer.QT_8bit, faiss.METRIC_INNER_PRODUCT
            )
            index = faiss.IndexRefineFlat(ivf)  # exact scores for what the codes found; exact reconstruct
            kind = f"IndexRefineFlat(IndexIVFScalarQuantizer(nlist={nlist},QT_8bit))"
        elif s.ivf_storage == "flat":
            index = ivf = faiss.IndexIVFFlat(quantizer, dim, nlist, faiss.METRIC_INNER_PRODUCT)
            kind = f"IndexIVFFlat(nlist={nlist})"
        else:
            raise ValueError(f"ivf_storage {s.ivf_storage!r}: 'sq8' or 'flat'")
        rng = np.random.default_rng(0)
        train = vectors[np.sort(rng.choice(n, size=min(n, 64 * nlist), replace=False))]

        def build() -> None:
            index.train(train)
            index.add(vectors)

        _with_every_core(build)
        if ivf is index:
            ivf.make_direct_map()  # the engine reads candidates' vectors back (reconstruct)
        value, limit, name = min(_nprobe_for_size(nlist), nlist), max(1, int(nlist * s.nprobe_max_fraction)), "nprobe"

        def set_value(v: int) -> None:
            ivf.nprobe = v

    while True:
        set_value(value)
        reached = recall(index)
        if reached >= s.target_recall or (value >= limit and reached >= s.min_recall):
            break
        if value >= limit:
            raise BuildError(
                f"The approximate index of {n:,} passages reached recall@10 {reached:.3f} < {s.min_recall} "
                f"against exact search even with {name} {value}; not serving it."
            )
        value = min(2 * value, limit)
    tuned = {"ef_search": value} if name == "efSearch" else {"nprobe": value}
    return VectorIndex(index, kind, round(reached, 4), **tuned)
