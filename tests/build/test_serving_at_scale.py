"""The question path at scale: nothing per question grows with the whole knowledge (besides the
vector search), the big arrays are memory-mapped (and still checked), hostile sizes are refused early."""

from __future__ import annotations

import os
import random
import shutil
import time
from pathlib import Path

import numpy as np
import pytest
from rank_bm25 import BM25Okapi

from bot.core.engine import QAEngine
from bot.core.errors import IndexCorruptError
from bot.core.index_store import load_version
from bot.core.lexical import LexicalIndex
from bot.core.query import TYPO_VOCABULARY, QueryRewriter
from bot.core.retriever import top_k
from bot.core.types import AnswerKind


def test_bm25_gives_rank_bm25s_scores_exactly():
    rng = random.Random(7)
    for _ in range(40):
        words = [f"w{i}" for i in range(rng.randint(1, 50))]
        corpus = [
            [rng.choice(words[: rng.randint(1, len(words))]) for _ in range(rng.randint(0, 25))] for _ in range(60)
        ]
        if not any(corpus):
            continue
        reference, ours = BM25Okapi(corpus), LexicalIndex(corpus)
        for _ in range(10):
            query = [rng.choice([*words, "unknown"]) for _ in range(rng.randint(1, 5))]
            np.testing.assert_array_equal(ours.scores(query), reference.get_scores(query))


def _median_ms(fn, runs: int = 5) -> float:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        fn()
        times.append((time.perf_counter() - started) * 1000)
    return float(np.median(times))


def test_bm25_costs_the_question_terms_posting_lists_not_the_corpus():
    rng = random.Random(3)
    common = [f"filler{i}" for i in range(2000)]
    corpus = [[rng.choice(common) for _ in range(6)] for _ in range(200_000)]
    for row in (17, 90_001, 199_998):
        corpus[row].append("zeppelin")
    index = LexicalIndex(corpus)
    # rank-bm25 walks every passage per question term: ~50-100 ms per term here on 2 cores
    assert _median_ms(lambda: index.scores(["zeppelin", "hovercraft"])) < 10
    rows, scores = index.sparse_scores(["zeppelin", "hovercraft"])
    assert list(rows) == [17, 90_001, 199_998] and (scores > 0).all()


def test_top_k_is_a_stable_sort_prefix():
    rng = np.random.default_rng(0)
    for _ in range(500):
        scores = rng.integers(0, 4, int(rng.integers(0, 40))).astype(float)
        k = int(rng.integers(0, 15))
        assert list(top_k(scores, k)) == list(np.lexsort((np.arange(len(scores)), -scores))[:k])


def test_typo_correction_compares_with_a_bounded_vocabulary():
    rng = random.Random(1)
    letters = "abcdefghijklmnopqrstuvwxyz"
    rare = {"".join(rng.choice(letters) for _ in range(9)) for _ in range(TYPO_VOCABULARY + 20_000)}
    rewriter = QueryRewriter([*rare, *["machine"] * 5, *["learning"] * 5])
    assert len(rewriter.vocabulary) <= TYPO_VOCABULARY
    assert rewriter.rewrite("what is machne lerning") == "what is machine learning"
    # a word of the knowledge left out of the typo candidates is still known: never "corrected"
    assert all(rewriter.rewrite(w) == w for w in list(rare)[:50])


@pytest.fixture(scope="module")
def many_documents_index(tmp_path_factory, encoder_cache) -> Path:
    from index_builder.build import build_index

    knowledge = tmp_path_factory.mktemp("many-docs")
    towns = ["Arlon", "Brecht", "Celles", "Dinant", "Eupen", "Fleurus", "Genk", "Hamme", "Ieper", "Jette"]
    towns += ["Kapellen", "Lier", "Mol", "Namur", "Ostend"]
    for n, town in enumerate(towns):
        (knowledge / f"{town.lower()}.md").write_text(
            f"# {town}\n\n{town} holds a market on square {n + 1} every week. Its bell tower has {n + 20} bells.\n",
            encoding="utf-8",
        )
    index = tmp_path_factory.mktemp("many-docs-index")
    build_index(knowledge, index, profile="fast", encoder_cache=encoder_cache)
    return index


def test_what_do_you_cover_lists_a_bounded_number_of_documents(many_documents_index):
    engine = QAEngine.from_index_dir(many_documents_index)
    answer = engine.answer("what do you cover?")
    assert answer.kind is AnswerKind.ANSWER
    assert "I answer from 15 document(s)" in answer.message
    assert answer.message.count("“") == 12 and "and 3 more" in answer.message


def test_sentence_and_token_vectors_are_memory_mapped_and_still_checked(many_documents_index, tmp_path):
    version = (many_documents_index / "current").resolve()
    (data,) = load_version(version).encoders
    assert isinstance(data.sentence_vectors, np.memmap) and isinstance(data.token_vectors, np.memmap)

    for name in ("sentence_vectors.npy", "token_vectors.npy"):
        copy = tmp_path / name / version.name
        shutil.copytree(version, copy)
        target = copy / "encoders" / "minilm" / name
        raw = bytearray(target.read_bytes())
        raw[-5] ^= 0x10
        target.write_bytes(bytes(raw))
        with pytest.raises(IndexCorruptError, match=f"{name} was changed after the build"):
            load_version(copy)


def test_a_50_mb_document_is_refused_before_it_is_read(fast_build, tmp_path):
    knowledge = tmp_path / "knowledge"
    knowledge.mkdir()
    (knowledge / "small.md").write_text("# Ferry\n\nThe ferry leaves from pier four at seven.\n", encoding="utf-8")
    paragraph = "The harbour ferry leaves from pier four every morning at seven o'clock sharp.\n\n"
    with open(knowledge / "huge.md", "w", encoding="utf-8") as fh:
        fh.write("# Huge\n\n")
        fh.write(paragraph * (50_000_000 // len(paragraph) + 1))
    started = time.perf_counter()
    result = fast_build(knowledge, tmp_path / "index")
    took = time.perf_counter() - started
    (warning,) = [w for w in result.warnings if w.startswith("huge.md")]
    assert "over the limit of 2,000,000 bytes per document (QABOT_MAX_DOCUMENT_BYTES raises it)" in warning
    assert result.documents == 1 and result.passage_count == 1
    assert took < 60  # the small document's build; the big one is never parsed or embedded


def test_the_engine_searches_with_one_faiss_thread_and_a_build_with_every_core(many_documents_index):
    """A question's vector search is one query: FAISS's OpenMP threads only add waiting when the cores are
    busy (p50 ~200 ms instead of ~6 ms at 10,000 passages, load 16). Building an HNSW graph uses them all."""
    import faiss

    from index_builder.vector_index import VectorIndexSettings, make_vector_index

    faiss.omp_set_num_threads(2)
    engine = QAEngine.from_index_dir(many_documents_index)
    assert faiss.omp_get_max_threads() == 1
    engine.answer("Which town has 25 bells?")
    assert faiss.omp_get_max_threads() == 1

    seen: list[int] = []

    class Spy(faiss.IndexHNSWFlat):
        def add(self, x):
            seen.append(faiss.omp_get_max_threads())
            return super().add(x)

    vectors = np.random.default_rng(0).standard_normal((300, 8)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    original = faiss.IndexHNSWFlat
    faiss.IndexHNSWFlat = Spy
    try:
        built = make_vector_index(vectors, settings=VectorIndexSettings(exact_max=100))
    finally:
        faiss.IndexHNSWFlat = original
    assert built.kind.startswith("IndexHNSWFlat") and built.recall_at_10 >= 0.95
    assert seen == [os.cpu_count()] and faiss.omp_get_max_threads() == 1  # the engine's setting is restored
