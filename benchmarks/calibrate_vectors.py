"""How close `bench_scale.clustered_vectors` is to real embeddings: the same statistics for both.

    .venv/bin/python -m benchmarks.calibrate_vectors POOL

POOL: real vectors of one encoder, a .npy or raw float32 rows (e.g. an embedding cache segment's
data.bin, INDEX_DIR/.cache/embeddings/minilm-vector-*/*/data.bin). Prints, for the real vectors and for
as many synthetic ones: median cosine with the 1st and 10th neighbour, cosine between random pairs,
and recall@10 for question-like queries (index_builder.vector_index.question_like) of an IVFFlat
(4 sqrt(n) lists) at nprobe 2/4/8/16 and of a small HNSW graph (M=8, efConstruction 20) at efSearch 10/20.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np


def statistics(x: np.ndarray) -> dict[str, object]:
    import faiss

    from index_builder.vector_index import question_like, recall_at_10

    faiss.omp_set_num_threads(1)
    n, dim = x.shape
    rng = np.random.default_rng(0)
    sample = x[rng.choice(n, 300, replace=False)]
    distances, _ = faiss.knn(sample, x, 11, metric=faiss.METRIC_INNER_PRODUCT)
    pairs = sample @ x[rng.choice(n, 2000, replace=False)].T
    queries = question_like(x, 300, seed=3)
    truth = faiss.knn(queries, x, 10, metric=faiss.METRIC_INNER_PRODUCT)[1]
    nlist = int(4 * np.sqrt(n))
    ivf = faiss.IndexIVFFlat(faiss.IndexFlatIP(dim), dim, nlist, faiss.METRIC_INNER_PRODUCT)
    ivf.train(x)
    ivf.add(x)
    ivf_recall = []
    for nprobe in (2, 4, 8, 16):
        ivf.nprobe = nprobe
        ivf_recall.append(round(recall_at_10(ivf, queries, truth), 3))
    hnsw = faiss.IndexHNSWFlat(dim, 8, faiss.METRIC_INNER_PRODUCT)
    hnsw.hnsw.efConstruction = 20
    hnsw.add(x)
    hnsw_recall = []
    for ef in (10, 20):
        hnsw.hnsw.efSearch = ef
        hnsw_recall.append(round(recall_at_10(hnsw, queries, truth), 3))
    return {
        "vectors": n,
        "nn1": round(float(np.median(distances[:, 1])), 3),
        "nn10": round(float(np.median(distances[:, 10])), 3),
        "random_pairs": f"{pairs.mean():.3f} +- {pairs.std():.3f}",
        f"ivf(nlist={nlist}) nprobe 2/4/8/16": ivf_recall,
        "hnsw(M=8,efC=20) efSearch 10/20": hnsw_recall,
    }


def main() -> None:
    from benchmarks.bench_scale import clustered_vectors

    pool = Path(sys.argv[1])
    raw = np.load(pool) if pool.suffix == ".npy" else np.fromfile(pool, dtype=np.float32)
    dim = int(sys.argv[2]) if len(sys.argv) > 2 else 384
    real = np.asarray(raw, dtype=np.float32).reshape(-1, dim)
    real = np.ascontiguousarray(real[np.linalg.norm(real, axis=1) > 0.5])
    print("real     ", statistics(real))
    print("synthetic", statistics(clustered_vectors(len(real), dim, seed=1)[0]))


if __name__ == "__main__":
    main()
