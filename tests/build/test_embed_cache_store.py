"""The embedding cache's store on its own (no model): namespaces, checksums, segment limits."""

from __future__ import annotations

import dataclasses
import json

import numpy as np

from bot.core.encoder import EncoderSpec
from index_builder import embed_cache

SPEC = EncoderSpec(
    id="minilm",
    model_name="sentence-transformers/all-MiniLM-L6-v2",
    weights_sha256="a" * 64,
    runtime="onnx",
    dim=8,
    max_seq_length=256,
)


def _vector(text: str) -> np.ndarray:
    rng = np.random.default_rng(int.from_bytes(embed_cache.text_key(text)[:4], "little"))
    return rng.standard_normal((1, SPEC.dim)).astype(np.float32)


def _add(root, build_id: str, texts: list[str], spec: EncoderSpec = SPEC) -> None:
    with embed_cache.Namespace(root, spec, "vector", build_id) as ns:
        for text in texts:
            ns.add(embed_cache.text_key(text), _vector(text))


def _lookup(root, build_id: str, texts: list[str], spec: EncoderSpec = SPEC):
    with embed_cache.Namespace(root, spec, "vector", build_id) as ns:
        keys = [embed_cache.text_key(t) for t in texts]
        found = ns.find(keys)
        keep = ns.plan(found)
        got = [ns.get(k, h, keep=keep, rows=1) if h else None for k, h in zip(keys, found, strict=True)]
    return got, ns.stats


def test_a_vector_is_found_only_in_its_own_encoders_namespace(tmp_path):
    _add(tmp_path, "v1", ["alpha", "beta"])
    got, _ = _lookup(tmp_path, "v2", ["alpha", "beta", "gamma"])
    np.testing.assert_array_equal(got[0], _vector("alpha"))
    np.testing.assert_array_equal(got[1], _vector("beta"))
    assert got[2] is None
    for change in ({"weights_sha256": "b" * 64}, {"passage_prefix": "passage: "}, {"max_seq_length": 128}):
        other = dataclasses.replace(SPEC, **change)
        assert embed_cache.namespace(other, "vector")[0] != embed_cache.namespace(SPEC, "vector")[0]
        assert _lookup(tmp_path, "v3", ["alpha"], other)[0] == [None]
    assert embed_cache.namespace(SPEC, "tokens")[0] != embed_cache.namespace(SPEC, "vector")[0]


def test_a_damaged_checksum_or_key_is_not_served(tmp_path):
    _add(tmp_path, "v1", ["alpha", "beta", "gamma"])
    (segment,) = embed_cache.iter_segments(tmp_path)
    sums = np.load(segment / "sums.npy")
    sums[1, 0] ^= 1
    np.save(segment / "sums.npy", sums)
    got, stats = _lookup(tmp_path, "v2", ["alpha", "beta", "gamma"])
    assert got[1] is None and got[0] is not None and got[2] is not None
    assert stats.damaged == 1 and stats.reused == 2


def test_a_truncated_data_file_makes_the_segment_unreadable(tmp_path):
    _add(tmp_path, "v1", ["alpha", "beta"])
    (segment,) = embed_cache.iter_segments(tmp_path)
    data = (segment / "data.bin").read_bytes()
    (segment / "data.bin").write_bytes(data[:-3])
    got, _ = _lookup(tmp_path, "v2", ["alpha", "beta"])
    assert got == [None, None]


def test_a_build_reads_from_at_most_max_segments_and_copies_the_rest(tmp_path):
    texts = [f"text {n}" for n in range(embed_cache.MAX_SEGMENTS + 3)]
    for n, text in enumerate(texts):  # one small segment per build
        _add(tmp_path, f"v{n:02d}", [text])
    got, stats = _lookup(tmp_path, "vnew", texts)
    assert all(g is not None for g in got)
    kept = embed_cache.MAX_SEGMENTS // 2
    assert stats.copied == len(texts) - kept
    users = [json.loads((s / "users.json").read_text()) for s in embed_cache.iter_segments(tmp_path)]
    assert sum("vnew" in u for u in users) == kept + 1  # the segments it still reads, and its own
    embed_cache.clean(tmp_path, ["vnew"])
    assert len(list(embed_cache.iter_segments(tmp_path))) == kept + 1
    got, stats = _lookup(tmp_path, "vnext", texts)
    assert all(g is not None for g in got) and stats.copied == 0


def test_a_segment_mostly_unused_is_copied_from_not_kept(tmp_path):
    _add(tmp_path, "v1", [f"text {n}" for n in range(10)])
    _, stats = _lookup(tmp_path, "v2", ["text 1", "text 2"])
    assert stats.copied == 2
    embed_cache.clean(tmp_path, ["v2"])
    (segment,) = embed_cache.iter_segments(tmp_path)
    assert len(np.load(segment / "keys.npy")) == 2


def test_a_text_cached_twice_is_read_from_the_newest_segment(tmp_path):
    _add(tmp_path, "v1", [f"text {n}" for n in range(10)])
    _, stats = _lookup(tmp_path, "v2", ["text 1", "text 2"])  # copied into v2's segment
    assert stats.copied == 2
    _, stats = _lookup(tmp_path, "v3", ["text 1", "text 2"])  # while v1's segment is still there
    assert stats.copied == 0 and stats.reused == 2


def test_segments_are_written_as_they_fill(tmp_path):
    with embed_cache.Namespace(tmp_path, SPEC, "vector", "v1", segment_bytes=3 * SPEC.dim * 4) as ns:
        for n in range(7):
            ns.add(embed_cache.text_key(f"t{n}"), _vector(f"t{n}"))
        assert len(list(embed_cache.iter_segments(tmp_path))) == 2  # published before the build ends
    assert len(list(embed_cache.iter_segments(tmp_path))) == 3
