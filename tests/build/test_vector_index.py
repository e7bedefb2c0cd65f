"""The passage vector index at scale: an approximate index's search setting is chosen by a recall check
with question-like queries, recorded in the manifest and applied by the core when it loads the version."""

from __future__ import annotations

import faiss
import numpy as np
import pytest

from bot.core.errors import BuildError, IndexCorruptError
from bot.core.index_store import inverted_file, load_version
from index_builder.vector_index import VectorIndexSettings, make_vector_index, question_like, recall_at_10
from tests import index_faults as faults

EVERYTHING = 2**63


def clustered(n: int, dim: int = 64, centres: int = 100, spread: float = 0.3, seed: int = 0) -> np.ndarray:
    """Unit vectors around `centres` random directions (passages of a few topics)."""
    rng = np.random.default_rng(seed)
    c = rng.standard_normal((centres, dim)).astype(np.float32)
    x = c[rng.integers(0, centres, n)] + spread * rng.standard_normal((n, dim)).astype(np.float32)
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def exact_top10(queries: np.ndarray, vectors: np.ndarray) -> np.ndarray:
    return faiss.knn(queries, vectors, 10, metric=faiss.METRIC_INNER_PRODUCT)[1]


# a small graph (M=8) whose efSearch 16 finds indexed passages (recall ~0.99) but not questions (~0.8)
SMALL_GRAPH = {"exact_max": 100, "hnsw_neighbours": 8, "hnsw_ef_construction": 40}


def test_the_recall_check_uses_question_like_queries_and_raises_ef_search_until_it_passes():
    vectors = clustered(4000)
    settings = VectorIndexSettings(**SMALL_GRAPH, ef_search_by_size=((EVERYTHING, 16),))
    built = make_vector_index(vectors, settings=settings)
    assert built.kind.startswith("IndexHNSWFlat") and built.nprobe is None
    assert built.ef_search > 16 and built.recall_at_10 >= 0.95
    assert built.search_entry() == {
        "faiss_index": built.kind,
        "faiss_recall_at_10": built.recall_at_10,
        "ef_search": built.ef_search,
    }
    index = built.index
    # the trap the check avoids: at the starting efSearch the indexed passages find themselves ...
    index.hnsw.efSearch = 16
    assert recall_at_10(index, vectors[:500], exact_top10(vectors[:500], vectors)) >= 0.95
    # ... while questions (other queries than the check's own) are missed
    fresh = question_like(vectors, seed=7)
    assert recall_at_10(index, fresh, exact_top10(fresh, vectors)) < 0.9
    index.hnsw.efSearch = built.ef_search
    assert recall_at_10(index, fresh, exact_top10(fresh, vectors)) >= 0.93


def test_real_questions_count_too():
    vectors = clustered(3000)
    settings = VectorIndexSettings(**SMALL_GRAPH, ef_search_by_size=((EVERYTHING, 16),))
    # questions pointing nowhere near the passages: the hard case for a graph, checked on their own
    far = np.random.default_rng(3).standard_normal((200, 64)).astype(np.float32)
    far /= np.linalg.norm(far, axis=1, keepdims=True)
    with_questions = make_vector_index(vectors, questions=far, settings=settings)
    index = with_questions.index
    index.hnsw.efSearch = with_questions.ef_search
    assert recall_at_10(index, far, exact_top10(far, vectors)) >= 0.95


def test_an_index_that_cannot_reach_the_recall_is_refused():
    vectors = clustered(4000, spread=0.15)
    settings = VectorIndexSettings(**SMALL_GRAPH, ef_search_by_size=((EVERYTHING, 8),), ef_search_max=16)
    with pytest.raises(BuildError, match=r"recall@10 0\.\d+ < 0\.95 against exact search even with efSearch 16"):
        make_vector_index(vectors, settings=settings)


def test_ef_search_starts_higher_for_bigger_indexes():
    settings = VectorIndexSettings()
    assert settings.ef_search_start(20_000) == 128
    assert settings.ef_search_start(100_000) == 256
    assert settings.ef_search_start(1_000_000) == 512
    assert VectorIndexSettings(ef_search_max=200).ef_search_start(1_000_000) == 200


def test_exact_search_up_to_exact_max():
    vectors = clustered(500)
    built = make_vector_index(vectors, settings=VectorIndexSettings(exact_max=500))
    assert built.kind == "IndexFlatIP" and built.recall_at_10 is None
    assert built.search_entry() == {"faiss_index": "IndexFlatIP", "faiss_recall_at_10": None}


@pytest.mark.parametrize(
    ("storage", "kind"),
    [
        ("sq8", "IndexRefineFlat(IndexIVFScalarQuantizer(nlist={nlist},QT_8bit))"),
        ("flat", "IndexIVFFlat(nlist={nlist})"),
    ],
)
def test_an_inverted_file_above_ivf_min_with_its_nprobe_checked_and_vectors_readable(storage, kind):
    vectors = clustered(6000)
    settings = VectorIndexSettings(exact_max=100, ivf_min=5000, ivf_storage=storage)
    built = make_vector_index(vectors, settings=settings)
    assert built.kind == kind.format(nlist=int(4 * 6000**0.5)) and built.ef_search is None
    assert built.nprobe >= 8 and built.recall_at_10 >= 0.95
    assert built.search_entry()["nprobe"] == built.nprobe
    # the engine reads candidates' vectors back (a direct map, or the refining exact vectors), also after
    # serialising: exactly the vectors indexed, not their 8-bit codes
    copy = faiss.deserialize_index(faiss.serialize_index(built.index))
    np.testing.assert_array_equal(copy.reconstruct(123), vectors[123])
    # and the scores it returns are exact inner products
    inverted_file(copy).nprobe = built.nprobe
    queries = question_like(vectors, 20, seed=5)
    scores, found = copy.search(queries, 10)
    exact = np.einsum("qd,qkd->qk", queries, vectors[found])
    np.testing.assert_allclose(scores, exact, rtol=0, atol=1e-5)


def test_eight_bit_codes_alone_give_inexact_scores():
    """Why the codes are re-ranked: without the exact vectors the scores are off (so the assertion above
    can fail)."""
    vectors = clustered(6000)
    ivf = faiss.IndexIVFScalarQuantizer(
        faiss.IndexFlatIP(64), 64, 64, faiss.ScalarQuantizer.QT_8bit, faiss.METRIC_INNER_PRODUCT
    )
    ivf.train(vectors)
    ivf.add(vectors)
    ivf.nprobe = 64
    queries = question_like(vectors, 20, seed=5)
    scores, found = ivf.search(queries, 10)
    exact = np.einsum("qd,qkd->qk", queries, vectors[found])
    assert np.abs(scores - exact).max() > 1e-4


def test_a_build_with_an_inverted_file_is_served_with_its_nprobe(tmp_path, encoder_cache):
    """Through a real build: the inverted file (inside its re-ranking wrapper) is written, and the core
    finds it inside the wrapper and sets the manifest's nprobe on it."""
    import shutil

    from index_builder.build import build_index

    knowledge = tmp_path / "docs"
    knowledge.mkdir()
    for n in range(40):
        (knowledge / f"town{n}.md").write_text(
            f"# Town {n}\n\nTown {n} holds a market on square {n + 1} every week. Its tower has {n + 20} bells.\n",
            encoding="utf-8",
        )
    index = tmp_path / "index"
    build_index(
        knowledge,
        index,
        profile="fast",
        encoder_cache=encoder_cache,
        vector_index=VectorIndexSettings(exact_max=5, ivf_min=10),
    )
    search = faults.read_manifest(index)["search"]["minilm"]
    assert search["faiss_index"].startswith("IndexRefineFlat(IndexIVFScalarQuantizer(")
    assert search["nprobe"] >= 1 and search["faiss_recall_at_10"] >= 0.95
    (data,) = load_version(faults.version_dir(index)).encoders
    assert inverted_file(data.faiss_index).nprobe == search["nprobe"]

    copy = tmp_path / "copy"
    shutil.copytree(index, copy, symlinks=True)
    faults.edit_manifest(copy, search={"minilm": {**search, "nprobe": 3}}, update_checksum=True)
    (data,) = load_version(faults.version_dir(copy)).encoders
    assert inverted_file(data.faiss_index).nprobe == 3
    faults.edit_manifest(copy, search={"minilm": {**search, "ef_search": 64}}, update_checksum=True)
    with pytest.raises(IndexCorruptError, match="sets ef_search but the index is IndexRefineFlat"):
        load_version(faults.version_dir(copy))


@pytest.fixture(scope="module")
def approximate_index(tmp_path_factory, encoder_cache):
    """A real fast-profile build of 15 documents, with an HNSW index (exact_max below its size)."""
    from index_builder.build import build_index

    knowledge = tmp_path_factory.mktemp("hnsw-docs")
    for n in range(15):
        (knowledge / f"town{n}.md").write_text(
            f"# Town {n}\n\nTown {n} holds a market on square {n + 1} every week. Its tower has {n + 20} bells.\n",
            encoding="utf-8",
        )
    index = tmp_path_factory.mktemp("hnsw-index")
    build_index(
        knowledge, index, profile="fast", encoder_cache=encoder_cache, vector_index=VectorIndexSettings(exact_max=5)
    )
    return index


def test_the_build_records_the_setting_and_the_core_applies_it(approximate_index, tmp_path):
    import shutil

    manifest = faults.read_manifest(approximate_index)
    search = manifest["search"]["minilm"]
    assert search["faiss_index"].startswith("IndexHNSWFlat") and search["ef_search"] == 128
    assert search["faiss_recall_at_10"] >= 0.95
    (data,) = load_version(faults.version_dir(approximate_index)).encoders
    assert data.faiss_index.hnsw.efSearch == 128

    # the manifest's value is the one served, not whatever the serialised index carries
    copy = tmp_path / "index"
    shutil.copytree(approximate_index, copy, symlinks=True)
    faults.edit_manifest(copy, search={"minilm": {**search, "ef_search": 300}}, update_checksum=True)
    (data,) = load_version(faults.version_dir(copy)).encoders
    assert data.faiss_index.hnsw.efSearch == 300

    # a setting for another kind of index is a damaged version, not ignored
    faults.edit_manifest(copy, search={"minilm": {**search, "nprobe": 4}}, update_checksum=True)
    with pytest.raises(IndexCorruptError, match="sets nprobe but the index is IndexHNSWFlat"):
        load_version(faults.version_dir(copy))


def test_the_setting_aims_above_the_floor_and_settles_for_the_floor_at_the_largest():
    vectors = clustered(4000)
    # aims for 0.999 (unreachable at efSearch <= 32 here) but 0.5 at the largest setting is enough
    settings = VectorIndexSettings(
        **SMALL_GRAPH, ef_search_by_size=((EVERYTHING, 16),), ef_search_max=32, min_recall=0.5, target_recall=0.999
    )
    built = make_vector_index(vectors, settings=settings)
    assert built.ef_search == 32 and 0.5 <= built.recall_at_10 < 0.999
