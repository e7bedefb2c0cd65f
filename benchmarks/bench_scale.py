"""Large knowledge bases, measured: build, disk, serving memory and latency at 10k, 100k and 1M passages,
and the vector index types (exact, HNSW, IVF) side by side.

    .venv/bin/python -m benchmarks.bench_scale --base-documents 10000 --sizes 10000,100000,1000000

What is real and what is synthetic (this 2-core machine cannot embed 1M passages: at ~50-100 texts/s
that is days):

- base: a real `build_index` (fast profile, MiniLM) of `--base-documents` synthetic small files
  (`benchmarks/corpus.py`: one passage of 4-8 sentences each). Its build time, size and serving
  figures are measured as they are; its real vectors feed the larger sizes.
- 100k and 1M: index versions in the real format, loaded and served by the real engine (QAEngine,
  the real MiniLM encoder for the questions), assembled from the base: passage i is base passage
  i mod B under a title of its own (100 passages per document), its vectors are *mixtures* of three real
  base vectors plus a little noise (normalised), so they spread over the region real embeddings
  occupy instead of piling up on copies; the passage vector index is made by the build's own
  `make_vector_index` (exact up to VectorIndexSettings.exact_max, HNSW above, recall checked). No token
  vectors above LATE_INTERACTION_MAX_PASSAGES, as in a real build. Build time at these sizes is
  extrapolated from the measured embedding throughput (and the FAISS build time, which is measured).
- vector indexes alone (`--faiss`): exact, HNSW and IVF over the same mixture vectors at each size:
  build time, single-question search p50/p99 and recall@10 against exact search, for real questions
  (benchmarks/questions.txt and the background questions, embedded with MiniLM).

Serving is measured in a child process per size: load time, resident memory after loading and after
the questions, peak, and warm p50/p99 of `QAEngine.answer` over benchmarks/questions.txt (cycled).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
QUESTIONS = Path(__file__).resolve().parent / "questions.txt"
PASSAGES_PER_DOCUMENT = 100  # for the assembled sizes: 1M passages = 10,000 documents
MIX_NOISE = 0.05

SERVE = r"""
import json, sys, time, gc
from pathlib import Path
def status(field):
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
started = time.perf_counter()
from bot.core.engine import QAEngine
engine = QAEngine(Path(sys.argv[1]))
load_s = time.perf_counter() - started
gc.collect()
rss_loaded = status("VmRSS")
questions = [q for q in Path(sys.argv[2]).read_text().splitlines() if q.strip()]
for q in questions[:10]:
    engine.answer(q)
times = []
for n in range(int(sys.argv[3])):
    t = time.perf_counter()
    engine.answer(questions[n % len(questions)])
    times.append((time.perf_counter() - t) * 1000)
times.sort()
print(json.dumps({"load_s": round(load_s, 2), "rss_loaded_mib": round(rss_loaded), "rss_after_mib": round(status("VmRSS")),
                  "peak_rss_mib": round(status("VmHWM")), "p50_ms": round(times[len(times) // 2], 2),
                  "p99_ms": round(times[int(len(times) * 0.99) - 1], 2), "mean_ms": round(sum(times) / len(times), 2),
                  "questions": len(times)}))
"""


def _load() -> str:
    return Path("/proc/loadavg").read_text().split()[0]


def _du(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def build_base(knowledge: Path, index: Path, documents: int, encoders: Path) -> dict[str, Any]:
    from benchmarks.bench_build import NEW_BUILD, measured
    from benchmarks.corpus import write_small_files

    shutil.rmtree(knowledge, ignore_errors=True)
    shutil.rmtree(index, ignore_errors=True)
    write_small_files(knowledge, documents, seed=1)
    env = dict(os.environ, HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", PYTHONPATH=str(ROOT))
    # the ONNX export first, on a tiny knowledge (a first build per model pays it once)
    tiny = knowledge.parent / "tiny"
    shutil.rmtree(tiny, ignore_errors=True)
    write_small_files(tiny, 3, seed=99)
    measured(
        [sys.executable, "-c", NEW_BUILD, str(tiny), str(knowledge.parent / "tiny-index"), "fast", str(encoders)],
        env,
        ROOT,
    )
    return measured([sys.executable, "-c", NEW_BUILD, str(knowledge), str(index), "fast", str(encoders)], env, ROOT)


def question_vectors(version: Path) -> np.ndarray:
    from bot.core.encoder import EncoderSpec, load_encoder
    from index_builder.build import background_questions

    manifest = json.loads((version / "manifest.json").read_text())
    spec = EncoderSpec.from_json(manifest["encoders"][0])
    encoder = load_encoder(spec, version / "encoders" / spec.id)
    questions = [q for q in QUESTIONS.read_text(encoding="utf-8").splitlines() if q.strip()] + background_questions()
    return encoder.encode_queries(questions)


def mixtures(pool: np.ndarray, n: int, seed: int, chunk: int = 100_000):
    """n unit vectors, each a random mixture of three pool vectors plus a little noise (chunks of `chunk`)."""
    rng = np.random.default_rng(seed)
    dim = pool.shape[1]
    for start in range(0, n, chunk):
        m = min(chunk, n - start)
        idx = rng.integers(0, len(pool), size=(m, 3))
        w = rng.dirichlet([1.0, 1.0, 1.0], size=m).astype(np.float32)
        v = np.einsum("mk,mkd->md", w, pool[idx]) + MIX_NOISE * rng.standard_normal((m, dim)).astype(
            np.float32
        ) / np.sqrt(dim)
        v /= np.linalg.norm(v, axis=1, keepdims=True)
        yield v.astype(np.float32)


def assemble(
    base_version: Path, n: int, index_dir: Path, *, vector_index: str = "build"
) -> tuple[Path, dict[str, Any]]:
    """An index version of n passages in the real format, from the base (see the module docstring).

    vector_index "build": the build's own make_vector_index (index_builder/vector_index.py: exact, HNSW or
    IVF by size, search setting chosen by its recall check); "ivf": the build's inverted file at any size.
    Below LATE_INTERACTION_MAX_PASSAGES passage i gets base passage i mod B's token vectors, as a real
    build would store them."""
    import faiss

    from benchmarks.corpus import Corpus
    from bot.core import index_store as fmt
    from bot.core.lexical import tokenize
    from index_builder import store
    from index_builder.build import LATE_INTERACTION_MAX_PASSAGES, write_file
    from index_builder.embedding import NpyWriter
    from index_builder.models import EXPORT_FILES

    timings: dict[str, Any] = {}
    base_manifest = json.loads((base_version / "manifest.json").read_text())
    base_passages = json.loads((base_version / "passages.json").read_text())["passages"]
    base_tokens = json.loads((base_version / "lexical.json").read_text())["tokens"]
    spec = dict(base_manifest["encoders"][0])
    enc_id = spec["id"]
    base_enc = base_version / "encoders" / enc_id
    base_index = faiss.read_index(str(base_enc / "vectors.faiss"))
    pool = np.concatenate([base_index.reconstruct_n(0, base_index.ntotal), np.load(base_enc / "sentence_vectors.npy")])
    b = len(base_passages)

    version_id = f"v{datetime.now(UTC):%Y%m%dT%H%M%S%fZ}-{n % 0xFFFFFFFF:08x}"
    staging = store.new_staging_dir(index_dir, version_id)
    folder = staging / "encoders" / enc_id
    folder.mkdir(parents=True)
    model_files = [name for name in EXPORT_FILES if (base_enc / name).exists()]  # older exports: weights inline
    for name in model_files:
        os.link(base_enc / name, folder / name)

    started = time.perf_counter()
    corpus = Corpus(seed=n)
    passages, tokens, documents = [], [], []
    for i in range(n):
        d = i // PASSAGES_PER_DOCUMENT
        if i % PASSAGES_PER_DOCUMENT == 0:
            title = corpus.title()
            title_tokens = tokenize(title)
            documents.append(
                {
                    "path": f"part-{d // 500:04d}/doc-{d:06d}.md",
                    "title": title,
                    "sha256": f"{d:064x}",
                    "source_url": None,
                    "passages": 0,
                }
            )
        src = base_passages[i % b]
        passages.append(
            {
                **src,
                "id": f"p{i:07d}",
                "doc_path": documents[-1]["path"],
                "doc_title": title,
                "section_path": [title],
                "position": i % PASSAGES_PER_DOCUMENT,
            }
        )
        tokens.append(title_tokens + base_tokens[i % b][len(tokenize(" ".join(src["section_path"]))) :])
        documents[-1]["passages"] += 1
    sentence_count = sum(len(p["sentences"]) for p in passages)
    timings["texts_s"] = round(time.perf_counter() - started, 1)

    files: dict[str, Any] = {}
    started = time.perf_counter()
    with NpyWriter(folder / "sentence_vectors.npy", (sentence_count, pool.shape[1]), np.float32) as out:
        row = 0
        for v in mixtures(pool, sentence_count, seed=n + 1):
            out.write(row, v)
            row += len(v)
        files[f"encoders/{enc_id}/sentence_vectors.npy"] = out.close()
    vectors = np.concatenate(list(mixtures(pool, n, seed=n)))
    timings["vectors_s"] = round(time.perf_counter() - started, 1)
    started = time.perf_counter()
    from index_builder.vector_index import VectorIndexSettings, make_vector_index

    # "ivf": the build's inverted file whatever the size (cheap to build), so the rest of the engine can be
    # served at a size whose HNSW graph takes too long to build here; "build": the build's own choice
    settings = VectorIndexSettings(exact_max=0, ivf_min=0) if vector_index == "ivf" else VectorIndexSettings()
    built = make_vector_index(vectors, settings=settings)
    index, search_entry = built.index, built.search_entry()
    del built
    timings["faiss_build_s"] = round(time.perf_counter() - started, 1)
    del vectors
    files[f"encoders/{enc_id}/vectors.faiss"] = write_file(
        folder / "vectors.faiss", faiss.serialize_index(index).tobytes()
    )
    del index
    files["passages.json"] = write_file(
        staging / "passages.json", json.dumps({"passages": passages}, ensure_ascii=False).encode()
    )
    lexical = {"tokenizer": "qabot-lexical-v1", "bm25": "rank_bm25.BM25Okapi", "tokens": tokens}
    files["lexical.json"] = write_file(staging / "lexical.json", json.dumps(lexical, ensure_ascii=False).encode())
    del passages, tokens, lexical
    token_vectors = bool(spec["token_vectors"]) and n <= LATE_INTERACTION_MAX_PASSAGES
    if token_vectors:
        base_offsets = np.load(base_enc / "token_offsets.npy")
        base_tokens16 = np.load(base_enc / "token_vectors.npy", mmap_mode="r")
        lengths = np.diff(base_offsets)[np.arange(n) % b]
        offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
        with NpyWriter(folder / "token_vectors.npy", (int(offsets[-1]), pool.shape[1]), np.float16) as out:
            for i in range(n):
                j = i % b
                out.write(int(offsets[i]), base_tokens16[base_offsets[j] : base_offsets[j + 1]])
            files[f"encoders/{enc_id}/token_vectors.npy"] = out.close()
        files[f"encoders/{enc_id}/token_offsets.npy"] = write_file(folder / "token_offsets.npy", _npy(offsets))
    spec["token_vectors"] = token_vectors
    for name in model_files:
        files[f"encoders/{enc_id}/{name}"] = {
            "sha256": fmt.sha256_file(folder / name),
            "bytes": (folder / name).stat().st_size,
        }
    manifest = {
        **base_manifest,
        "index_version": version_id,
        "encoders": [spec],
        "search": {enc_id: search_entry},
        "documents": documents,
        "passage_count": n,
        "sentence_count": sentence_count,
        "built_at": datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z"),
        "warnings": [],
        "files": dict(sorted(files.items())),
    }
    raw, checksum = fmt.manifest_files(manifest)
    write_file(staging / "manifest.json", raw)
    write_file(staging / "manifest.sha256", checksum)
    final = store.publish(index_dir, staging, version_id)
    timings.update(search_entry, sentences=sentence_count)
    return final, timings


def _npy(array: np.ndarray) -> bytes:
    import io

    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=False)
    return buffer.getvalue()


def serve(version: Path, questions: int) -> dict[str, Any]:
    load = _load()
    out = subprocess.run(
        [sys.executable, "-c", SERVE, str(version), str(QUESTIONS), str(questions)],
        env=dict(os.environ, PYTHONPATH=str(ROOT)),
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    if out.returncode:
        raise RuntimeError(out.stderr[-3000:])
    return json.loads(out.stdout.strip().splitlines()[-1]) | {"load_before": load}


def make_index(kind: str, vectors: np.ndarray, **params: int):
    """A FAISS inner-product index of `kind` ("exact", "hnsw", "ivf") over `vectors`."""
    import faiss

    n, dim = vectors.shape
    if kind == "exact":
        index = faiss.IndexFlatIP(dim)
        index.add(vectors)
    elif kind == "hnsw":
        index = faiss.IndexHNSWFlat(dim, params["m"], faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efConstruction = params["ef_construction"]
        index.add(vectors)
        index.hnsw.efSearch = params["ef_search"]
    else:
        index = faiss.IndexIVFFlat(faiss.IndexFlatIP(dim), dim, params["nlist"], faiss.METRIC_INNER_PRODUCT)
        rng = np.random.default_rng(0)
        index.train(vectors[rng.choice(n, size=min(n, 50 * params["nlist"]), replace=False)])
        index.add(vectors)
        index.nprobe = params["nprobe"]
    return index


def faiss_matrix(pool: np.ndarray, queries: np.ndarray, sizes: list[int], *, hnsw_max: int) -> list[dict[str, Any]]:
    """Exact, HNSW (the build's settings and a lighter one) and IVF over mixture vectors at each size."""
    import faiss

    from index_builder.vector_index import VectorIndexSettings

    settings = VectorIndexSettings()
    m, ef_c = settings.hnsw_neighbours, settings.hnsw_ef_construction

    rows = []
    for n in sizes:
        vectors = np.concatenate(list(mixtures(pool, n, seed=7 * n)))
        exact = make_index("exact", vectors)
        _, truth = exact.search(queries, 10)
        nlist = int(4 * np.sqrt(n))
        variants: list[tuple[str, str, dict[str, int]]] = [("IndexFlatIP (exact)", "exact", {})]
        if n <= hnsw_max:
            ef_s = settings.ef_search_start(n)
            build_py = {"m": m, "ef_construction": ef_c, "ef_search": ef_s}
            variants.append((f"HNSW M={m} efC={ef_c} efS={ef_s} (build's start)", "hnsw", build_py))
            variants.append(("HNSW M=16 efC=100 efS=128", "hnsw", {"m": 16, "ef_construction": 100, "ef_search": 128}))
        for nprobe in (max(8, nlist // 32), max(16, nlist // 16), max(32, nlist // 8)):
            variants.append((f"IVFFlat nlist={nlist} nprobe={nprobe}", "ivf", {"nlist": nlist, "nprobe": nprobe}))
        for name, kind, params in variants:
            faiss.omp_set_num_threads(os.cpu_count() or 1)  # building uses every core
            started = time.perf_counter()
            index = exact if kind == "exact" else make_index(kind, vectors, **params)
            build_s = time.perf_counter() - started
            faiss.omp_set_num_threads(1)  # one question at a time, as the engine searches (bot/core/retriever.py)
            times = []
            for _ in range(3):
                for q in queries:
                    t = time.perf_counter()
                    index.search(q[None, :], 50)  # the retriever asks each encoder for 50 candidates
                    times.append((time.perf_counter() - t) * 1000)
            _, found = index.search(queries, 10)
            recall = float(np.mean([len(set(a) & set(b)) / 10 for a, b in zip(truth, found, strict=True)]))
            times.sort()
            rows.append(
                {
                    "passages": n,
                    "index": name,
                    "build_s": round(build_s, 1),
                    "p50_ms": round(times[len(times) // 2], 3),
                    "p99_ms": round(times[int(len(times) * 0.99) - 1], 3),
                    "recall_at_10": round(recall, 4),
                    "bytes": len(faiss.serialize_index(index)),
                    "load_before": _load(),
                }
            )
            print(json.dumps(rows[-1]), flush=True)
            del index
        del vectors, exact
    return rows


# ---------------------------------------------------------------- clustered synthetic vectors (--clustered)


def clustered_vectors(n: int, dim: int, *, seed: int, held_out: int = 0, chunk: int = 100_000):
    """n unit vectors of a synthetic knowledge, as real sentence embeddings are: low intrinsic dimension
    (64 latent dimensions mapped into `dim`), clustered (n/8 centres in the latent space: a few passages
    per topic, spread 0.4), sharing one direction (0.2 of the energy: unrelated texts are not
    orthogonal), plus isotropic noise (0.45).

    Calibrated against the real MiniLM vectors of a 5,000-document build (16,382 passage and sentence
    vectors of benchmarks/corpus.py's knowledge), at that size: cosine with the nearest neighbour
    (median) 0.77 (real 0.80), with the 10th 0.50 (0.67), between random pairs 0.17 +- 0.10 (0.21 +-
    0.12); recall@10 for question-like queries of IVFFlat(511 lists) at nprobe 2/4/8/16: 0.83/0.87/0.90/
    0.94 (real 0.71/0.80/0.86/0.91), of a small HNSW (M=8, efConstruction 20) at efSearch 10/20: 0.70/0.84
    (real 0.65/0.77). Slightly easier than the real vectors for both index types; uniform noise or
    well-separated clusters are far off (IVF recall 1.0 at nprobe 2, or HNSW 0.4). Returns (vectors,
    held_out more drawn the same way, not indexed)."""
    rng = np.random.default_rng(seed)
    latent = 64

    def unit(x: np.ndarray) -> np.ndarray:
        return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)

    shared = unit(rng.standard_normal((1, dim)).astype(np.float32))[0]
    mapping = rng.standard_normal((latent, dim)).astype(np.float32) / np.sqrt(dim)
    centres = rng.standard_normal((max(1, n // 8), latent)).astype(np.float32)

    def draw(m: int) -> np.ndarray:
        out = np.empty((m, dim), dtype=np.float32)
        for start in range(0, m, chunk):
            k = min(chunk, m - start)
            z = centres[rng.integers(0, len(centres), k)] + 0.4 * rng.standard_normal((k, latent)).astype(np.float32)
            x = np.sqrt(0.2) * shared + np.sqrt(0.8) * unit(z @ mapping)
            x += 0.45 * unit(rng.standard_normal((k, dim)).astype(np.float32))
            out[start : start + k] = unit(x)
        return out

    return draw(n), draw(held_out)


def _timed_search(index: Any, queries: np.ndarray, k: int = 50) -> tuple[float, float]:
    """p50, p99 in ms of one question at a time on one thread (as bot/core/retriever.py searches)."""
    import faiss

    faiss.omp_set_num_threads(1)
    times = []
    for q in queries:
        t = time.perf_counter()
        index.search(q[None, :], k)
        times.append((time.perf_counter() - t) * 1000)
    times.sort()
    return round(times[len(times) // 2], 3), round(times[max(0, int(len(times) * 0.99) - 1)], 3)


def _rss_mib() -> dict[str, int]:
    fields = dict(line.split(":", 1) for line in Path("/proc/self/status").read_text().splitlines() if ":" in line)
    return {k: int(fields[v].split()[0]) // 1024 for k, v in (("rss_mib", "VmRSS"), ("peak_rss_mib", "VmHWM"))}


def clustered_matrix(
    n: int, dim: int, *, kinds: list[str], timed: int = 1000, sweep: bool = True, exact_timed: int = 300
) -> list[dict[str, Any]]:
    """At one size: exact search, and the build's HNSW and/or IVF (make_vector_index with its recall check:
    build time, the setting it chose), then a sweep of that setting. Recall@10 against exact search for
    held-out passages and for question-like queries (held-out passages moved to cosine 0.6)."""
    import faiss

    from bot.core.index_store import inverted_file
    from index_builder.vector_index import VectorIndexSettings, make_vector_index, question_like, recall_at_10

    started = time.perf_counter()
    vectors, held = clustered_vectors(n, dim, seed=n, held_out=timed)
    questions = question_like(held, count=timed, seed=1)
    gen_s = round(time.perf_counter() - started, 1)
    sets = {"held_out": held, "questions": questions}
    faiss.omp_set_num_threads(os.cpu_count() or 1)
    started = time.perf_counter()
    truth = {name: faiss.knn(q, vectors, 10, metric=faiss.METRIC_INNER_PRODUCT)[1] for name, q in sets.items()}
    truth_s = round(time.perf_counter() - started, 1)
    mixed = np.concatenate([held[: timed // 2], questions[: timed - timed // 2]])
    rows: list[dict[str, Any]] = []

    def row(index: Any, name: str, setting: str, build_s: float | None, chosen: bool, queries: np.ndarray) -> None:
        p50, p99 = _timed_search(index, queries)
        rows.append(
            {
                "passages": n,
                "dim": dim,
                "index": name,
                "setting": setting,
                "chosen_by_build": chosen,
                "build_s": build_s,
                "p50_ms": p50,
                "p99_ms": p99,
                "timed_queries": len(queries),
                **{f"recall_{k}": round(recall_at_10(index, q, truth[k]), 4) for k, q in sets.items()},
                "bytes": int(faiss.serialize_index(index).size),
                **_rss_mib(),
                "load": _load(),
            }
        )
        print(json.dumps(rows[-1]), flush=True)

    if "exact" in kinds:
        exact = faiss.IndexFlatIP(dim)
        exact.add(vectors)
        row(exact, "IndexFlatIP", "", 0.0, n <= VectorIndexSettings().exact_max, mixed[:exact_timed])
        del exact
    for kind in [k for k in kinds if k in ("hnsw", "ivf", "ivfflat")]:
        settings = (
            VectorIndexSettings(exact_max=0, ivf_min=2**62)
            if kind == "hnsw"
            else VectorIndexSettings(exact_max=0, ivf_min=0, ivf_storage="flat" if kind == "ivfflat" else "sq8")
        )
        faiss.omp_set_num_threads(os.cpu_count() or 1)
        started = time.perf_counter()
        built = make_vector_index(vectors, settings=settings)  # the recall check with question-like queries
        build_s = round(time.perf_counter() - started, 1)
        chosen = built.ef_search if kind == "hnsw" else built.nprobe
        name = "efSearch" if kind == "hnsw" else "nprobe"
        default = VectorIndexSettings()
        is_default = (kind == "hnsw") == (default.exact_max < n <= default.ivf_min) and kind != "ivfflat"
        row(built.index, built.kind, f"{name}={chosen}", build_s, is_default, mixed)
        ivf = inverted_file(built.index)
        if sweep:
            nlist = ivf.nlist if ivf is not None else 0
            values = (64, 128, 256, 512, 1024) if kind == "hnsw" else [nlist // d for d in (128, 64, 32, 16, 8)]
            for v in values:
                if v == chosen or v < 1:
                    continue
                if kind == "hnsw":
                    built.index.hnsw.efSearch = v
                else:
                    ivf.nprobe = v
                row(built.index, built.kind, f"{name}={v}", None, False, mixed)
        del built
    for r in rows:
        r.update(generate_s=gen_s, exact_truth_s=truth_s)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--base-documents", type=int, default=10_000)
    parser.add_argument("--base-index", type=Path, help="an index built with the fast profile (skips the base build)")
    parser.add_argument("--sizes", default="100000,1000000", help="assembled sizes to serve")
    parser.add_argument(
        "--faiss", default="10000,100000,1000000", help="sizes for the vector index comparison ('' skips)"
    )
    parser.add_argument("--hnsw-max", type=int, default=1_000_000, help="largest size to build HNSW graphs at")
    parser.add_argument("--questions", type=int, default=500, help="timed questions per serving run")
    parser.add_argument(
        "--assembled-index",
        default="build",
        help="vector index of the assembled sizes: 'build' (the build's choice) or 'ivf:SIZE,...' "
        "(IVFFlat at those sizes, nprobe chosen by the build's recall check; the build's choice elsewhere)",
    )
    parser.add_argument(
        "--pool",
        type=Path,
        help="real vectors for the FAISS comparison instead of the base index's (a .npy, or raw float32 rows "
        "such as an embedding cache segment's data.bin); rows of zeros are left out",
    )
    parser.add_argument("--no-serve", action="store_true", help="skip serving the base index")
    parser.add_argument(
        "--clustered",
        default="",
        help="only the vector indexes over clustered synthetic vectors at these sizes, e.g. 10000,100000,1000000 "
        "(no base build, no serving)",
    )
    parser.add_argument("--dim", type=int, default=384, help="--clustered: dimension (384 MiniLM, 768 mpnet)")
    parser.add_argument(
        "--kinds",
        default="exact,hnsw,ivf",
        help="--clustered: index kinds (exact, hnsw, ivf: the build's inverted file, ivfflat: IndexIVFFlat for comparison)",
    )
    parser.add_argument("--hnsw-max-clustered", type=int, default=1_000_000, help="--clustered: largest HNSW size")
    parser.add_argument("--scratch", type=Path)
    parser.add_argument("--keep", action="store_true", help="keep the scratch folder")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "scale.json")
    args = parser.parse_args()
    scratch = args.scratch or Path(tempfile.mkdtemp(prefix="qabot-bench-scale-"))
    scratch.mkdir(parents=True, exist_ok=True)
    report: dict[str, Any] = {"loadavg_before": Path("/proc/loadavg").read_text().strip(), "argv": sys.argv[1:]}

    def save() -> None:  # after every figure: a run stopped half-way keeps what it measured
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(report, indent=1), encoding="utf-8")

    ivf_sizes = (
        {int(x) for x in args.assembled_index[4:].split(",") if x} if args.assembled_index.startswith("ivf:") else set()
    )
    from benchmarks.bench_build import _machine

    report["machine"] = _machine()
    if args.clustered:
        report["clustered"] = []
        for n in [int(x) for x in args.clustered.split(",") if x]:
            kinds = [k for k in args.kinds.split(",") if k != "hnsw" or n <= args.hnsw_max_clustered]
            report["clustered"] += clustered_matrix(n, args.dim, kinds=kinds)
            save()
        report["loadavg_after"] = Path("/proc/loadavg").read_text().strip()
        save()
        return

    if args.base_index:
        base_dir = args.base_index
    else:
        base_dir = scratch / "base-index"
        report["base_build"] = build_base(
            scratch / "base-knowledge", base_dir, args.base_documents, scratch / "encoders"
        )
        print("base build:", report["base_build"], flush=True)
    base_version = (base_dir / "current").resolve()
    base_manifest = json.loads((base_version / "manifest.json").read_text())
    serving = (
        []
        if args.no_serve
        else [
            {
                "passages": base_manifest["passage_count"],
                "sentences": base_manifest["sentence_count"],
                "kind": "real build",
                "index_bytes": _du(base_version),
                "model_bytes": _du(base_version / "encoders" / base_manifest["encoders"][0]["id"])
                - sum(f["bytes"] for k, f in base_manifest["files"].items() if k.endswith((".faiss", ".npy"))),
                **serve(base_version, args.questions),
            }
        ]
    )
    print("serve:", serving[-1:], flush=True)
    report["serving"] = serving
    save()
    for n in [int(s) for s in args.sizes.split(",") if s]:
        index_dir = scratch / f"index-{n}"
        shutil.rmtree(index_dir, ignore_errors=True)
        version, timings = assemble(base_version, n, index_dir, vector_index="ivf" if n in ivf_sizes else "build")
        serving.append(
            {
                "passages": n,
                "kind": "assembled",
                "index_bytes": _du(version),
                **timings,
                **serve(version, args.questions),
            }
        )
        print("serve:", serving[-1], flush=True)
        save()
        if not args.keep:
            shutil.rmtree(index_dir, ignore_errors=True)
    report["serving"] = serving

    if args.faiss:
        import faiss

        base_index = faiss.read_index(
            str(base_version / "encoders" / base_manifest["encoders"][0]["id"] / "vectors.faiss")
        )
        if args.pool:
            dim = base_index.d
            raw = np.load(args.pool) if args.pool.suffix == ".npy" else np.fromfile(args.pool, dtype=np.float32)
            pool = np.asarray(raw, dtype=np.float32).reshape(-1, dim)
            pool = pool[np.linalg.norm(pool, axis=1) > 0.5]
        else:
            pool = np.concatenate(
                [
                    base_index.reconstruct_n(0, base_index.ntotal),
                    np.load(base_version / "encoders" / base_manifest["encoders"][0]["id"] / "sentence_vectors.npy"),
                ]
            )
        report["pool_vectors"] = len(pool)
        queries = question_vectors(base_version)
        report["faiss"] = []
        for size in [int(s) for s in args.faiss.split(",") if s]:
            report["faiss"] += faiss_matrix(pool, queries, [size], hnsw_max=args.hnsw_max)
            save()
    report["loadavg_after"] = Path("/proc/loadavg").read_text().strip()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=1), encoding="utf-8")
    print(json.dumps({k: v for k, v in report.items() if k != "faiss"}, indent=1))
    if not args.scratch and not args.keep:
        shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    main()
