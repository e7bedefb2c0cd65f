"""The embedding cache: a rebuild embeds only texts it has not seen, gives the same vectors as a full
build, never serves a damaged entry, keeps what a failed build embedded, and is cleaned with old versions."""

from __future__ import annotations

import dataclasses
import functools
import json
import logging
import shutil
from pathlib import Path

import numpy as np
import pytest

from bot.core.encoder import EncoderSpec, load_encoder
from bot.core.errors import BuildError
from bot.core.index_store import load_version
from index_builder import embed_cache, store
from index_builder.build import build_index, embedding_text
from index_builder.parser import collect_knowledge
from index_builder.profiles import load_profile

TOPICS = {
    "harbour.md": (
        "# Harbour\n\nThe harbour ferry leaves from pier four every morning at seven. Tickets are sold at the kiosk "
        "beside the lighthouse. Bicycles travel free on the lower deck.\n"
    ),
    "bakery.md": (
        "# Bakery\n\nThe bakery on Mill Street bakes rye sourdough on Tuesdays. Its cinnamon buns sell out before "
        "noon. The oven was built in 1912 from local brick.\n"
    ),
    "observatory.md": (
        "# Observatory\n\nThe observatory opens its telescope to visitors on clear Friday nights. Saturn's rings are "
        "visible from June to September. Children under twelve enter with an adult.\n"
    ),
    "orchard.md": (
        "# Orchard\n\nThe orchard grows eleven varieties of apple and two of quince. Picking season starts in late "
        "August. Cider pressing happens in the old barn.\n"
    ),
    "library.md": (
        "# Library\n\nThe library lends telescopes, sewing machines and board games. Late returns cost nothing "
        "during exam weeks. The reading room is silent after six.\n"
    ),
    "swimming.md": (
        "# Swimming pool\n\nThe outdoor pool is heated to twenty-six degrees from May. Lanes are reserved for "
        "training on weekday mornings. Lifeguards wear yellow caps.\n"
    ),
}


class CountingEncoder:
    """The real encoder, recording every text it is asked to embed (passages, sentences, token vectors)."""

    def __init__(self, inner, embedded: list[str], tokens: list[str], *, fail_tokens: bool = False):
        self._inner = inner
        self._embedded = embedded
        self._tokens = tokens
        self._fail_tokens = fail_tokens

    def __getattr__(self, name):
        return getattr(self._inner, name)

    def encode_passages(self, texts, **kwargs):
        self._embedded.extend(texts)
        return self._inner.encode_passages(texts, **kwargs)

    def encode_in_context(self, items, **kwargs):  # one pass: the passage text, and its own part's tokens
        self._embedded.extend(text for text, _, _ in items)
        self._tokens.extend(text[start:] for text, start, _ in items)
        return self._inner.encode_in_context(items, **kwargs)

    def passage_token_vectors(self, texts, **kwargs):
        if self._fail_tokens:
            raise RuntimeError("token vectors failed half-way")
        self._tokens.extend(texts)
        return self._inner.passage_token_vectors(texts, **kwargs)


class Recorder:
    def __init__(self):
        self.embedded: list[str] = []
        self.tokens: list[str] = []
        self.fail_tokens = False

    def loader(self, spec: EncoderSpec, folder: Path):
        return CountingEncoder(load_encoder(spec, folder), self.embedded, self.tokens, fail_tokens=self.fail_tokens)

    def reset(self):
        self.embedded.clear()
        self.tokens.clear()


def _texts(knowledge: Path) -> tuple[set[str], set[str]]:
    """(what the dense side embeds: passages with headings and sentences, the passages' own text)."""
    passages = collect_knowledge(knowledge).passages
    vector_texts = {embedding_text(p) for p in passages} | {p.text[s:e] for p in passages for s, e in p.sentences}
    return vector_texts, {p.text for p in passages}


@pytest.fixture
def knowledge(tmp_path) -> Path:
    folder = tmp_path / "knowledge"
    folder.mkdir()
    for name, text in TOPICS.items():
        (folder / name).write_text(text, encoding="utf-8")
    return folder


def separate_passes_profile():
    """The fast profile with a pass of its own for each passage's token vectors (the default and fast
    profiles take them from the passage's pass: tests/build/test_in_context.py)."""
    fast = load_profile("fast")
    return dataclasses.replace(fast, models=tuple(dataclasses.replace(m, tokens_in_context=False) for m in fast.models))


@pytest.fixture
def build(encoder_cache):
    recorder = Recorder()
    run = functools.partial(
        build_index, profile=separate_passes_profile(), encoder_cache=encoder_cache, encoder_loader=recorder.loader
    )
    run.recorder = recorder  # type: ignore[attr-defined]
    return run


def _vectors(version_dir: Path) -> dict[str, np.ndarray]:
    index = load_version(version_dir)
    (data,) = index.encoders
    faiss_index = data.faiss_index
    return {
        "passages": faiss_index.reconstruct_n(0, faiss_index.ntotal),
        "sentences": np.asarray(data.sentence_vectors),
        "tokens": np.asarray(data.token_vectors, dtype=np.float32),
        "offsets": np.asarray(data.token_offsets),
    }


def _current(index_dir: Path) -> Path:
    return (index_dir / "current").resolve()


def test_rebuild_embeds_only_the_texts_of_the_changed_document(build, knowledge, tmp_path):
    index = tmp_path / "index"
    build(knowledge, index)
    recorder = build.recorder
    first_vectors, first_tokens = _texts(knowledge)
    assert set(recorder.embedded) == first_vectors  # the first build embeds everything, each text once
    assert len(recorder.embedded) == len(first_vectors)

    recorder.reset()
    (knowledge / "bakery.md").write_text(
        TOPICS["bakery.md"].replace("rye sourdough on Tuesdays", "spelt loaves on Thursdays"), encoding="utf-8"
    )
    result = build(knowledge, index)
    new_vectors, new_tokens = _texts(knowledge)
    changed = new_vectors - first_vectors
    # the changed sentence and the bakery passage (heading included); the other sentences were seen
    assert len(changed) == 2
    assert sorted(recorder.embedded) == sorted(changed)
    assert sorted(recorder.tokens) == sorted(new_tokens - first_tokens)
    assert not result.skipped and result.passage_count == len(TOPICS)


def test_incremental_build_gives_the_vectors_of_a_full_build(build, knowledge, tmp_path):
    index = tmp_path / "index"
    build(knowledge, index)
    (knowledge / "orchard.md").write_text(TOPICS["orchard.md"].replace("eleven", "fourteen"), encoding="utf-8")
    (knowledge / "swimming.md").unlink()
    (knowledge / "museum.md").write_text(
        "# Museum\n\nThe museum shows fossils of ammonites found on the beach. Entry is free on Sundays.\n",
        encoding="utf-8",
    )
    build(knowledge, index)
    assert build.recorder.embedded  # the new texts went through the model

    fresh = tmp_path / "fresh"
    build(knowledge, fresh)  # its own, empty cache: everything embedded
    incremental, full = _vectors(_current(index)), _vectors(_current(fresh))
    for name in ("passages", "sentences"):
        assert incremental[name].shape == full[name].shape
        np.testing.assert_allclose(incremental[name], full[name], atol=1e-5)
    np.testing.assert_array_equal(incremental["offsets"], full["offsets"])
    np.testing.assert_allclose(incremental["tokens"], full["tokens"], atol=2e-3)
    assert load_version(_current(index)).passages == load_version(_current(fresh)).passages


def _segment_of(cache: Path, kind: str, text: str) -> tuple[Path, int]:
    key = embed_cache.text_key(text)
    for segment in embed_cache.iter_segments(cache):
        if f"-{kind}-" not in segment.parent.name:
            continue
        keys = np.load(segment / "keys.npy")
        for row, k in enumerate(keys):
            if k.tobytes() == key:
                return segment, row
    raise AssertionError(f"{text!r} is not in the cache")


def test_a_damaged_entry_is_not_served_and_is_embedded_again(build, knowledge, tmp_path, caplog):
    index = tmp_path / "index"
    build(knowledge, index)
    before = _vectors(_current(index))
    cache = index / ".cache" / "embeddings"
    victim = "Saturn's rings are visible from June to September."
    segment, row = _segment_of(cache, "vector", victim)
    offsets = np.load(segment / "offsets.npy")
    dim = 384
    with open(segment / "data.bin", "r+b") as fh:  # flip bits in the middle of that one vector
        fh.seek(int(offsets[row]) * dim * 4 + 100)
        byte = fh.read(1)
        fh.seek(-1, 1)
        fh.write(bytes([byte[0] ^ 0x5A]))

    build.recorder.reset()
    with caplog.at_level(logging.WARNING, logger="index_builder"):
        build(knowledge, index, force=True)
    assert build.recorder.embedded == [victim]  # only the damaged entry went through the model again
    assert "1 damaged entries" in caplog.text
    after = _vectors(_current(index))
    np.testing.assert_allclose(after["sentences"], before["sentences"], atol=1e-5)


def test_an_unreadable_segment_is_ignored_and_its_texts_embedded_again(build, knowledge, tmp_path, caplog):
    index = tmp_path / "index"
    build(knowledge, index)
    all_texts, _ = _texts(knowledge)
    segment, _ = _segment_of(index / ".cache" / "embeddings", "vector", "Lifeguards wear yellow caps.")
    (segment / "keys.npy").write_bytes(b"\x93NUMPY garbage")
    build.recorder.reset()
    with caplog.at_level(logging.WARNING, logger="index_builder"):
        result = build(knowledge, index, force=True)
    assert sorted(build.recorder.embedded) == sorted(all_texts)
    assert "cannot be read" in caplog.text
    assert load_version(result.version_dir).manifest["passage_count"] == len(TOPICS)


def test_a_failed_build_leaves_what_it_embedded_for_the_next_one(build, knowledge, tmp_path):
    index = tmp_path / "index"
    build.recorder.fail_tokens = True  # the passage and sentence vectors are done when this fails
    with pytest.raises(BuildError):
        build(knowledge, index)
    assert not (index / "current").exists()

    build.recorder.fail_tokens = False
    build.recorder.reset()
    build(knowledge, index)
    assert build.recorder.embedded == []  # every vector came from the failed build's cache entries
    assert sorted(build.recorder.tokens) == sorted(_texts(knowledge)[1])


def _cache_entries(cache: Path) -> int:
    return sum(len(np.load(s / "keys.npy")) for s in embed_cache.iter_segments(cache))


def test_the_cache_is_cleaned_with_the_old_versions(build, knowledge, tmp_path):
    index = tmp_path / "index"
    cache = index / ".cache" / "embeddings"
    build(knowledge, index)
    full = _cache_entries(cache)
    first_segments = set(embed_cache.iter_segments(cache))
    # the same document edited again and again: each edit's entries die with the versions that used them
    for n in range(store.KEEP_VERSIONS + 1):
        (knowledge / "library.md").write_text(TOPICS["library.md"].replace("six", f"{n + 7}"), encoding="utf-8")
        build(knowledge, index)
    kept = {p.name for p in store.list_versions(index)}
    assert len(kept) == store.KEEP_VERSIONS
    for segment in embed_cache.iter_segments(cache):
        users = set(json.loads((segment / "users.json").read_text()))
        assert users & kept, f"{segment.name} is used by no kept version"
    assert first_segments <= set(embed_cache.iter_segments(cache))  # still used by every version
    assert _cache_entries(cache) <= full + store.KEEP_VERSIONS * 2 * 2  # two new texts per kept edit, two kinds

    # most of the knowledge removed: what is left is copied out, and the big segments go with the old versions
    for name in list(TOPICS)[1:]:
        (knowledge / name).unlink()
    (cache / "minilm-vector-leftover").mkdir()
    (cache / next(iter(first_segments)).parent.name / f"{embed_cache.TMP_PREFIX}seg-crashed").mkdir()
    for _ in range(store.KEEP_VERSIONS):
        build(knowledge, index, force=True)
    assert not first_segments & set(embed_cache.iter_segments(cache))
    vector_texts, token_texts = _texts(knowledge)
    assert _cache_entries(cache) == len(vector_texts) + len(token_texts)
    assert not (cache / "minilm-vector-leftover").exists()
    assert not list(cache.glob(f"*/{embed_cache.TMP_PREFIX}*"))


def test_identical_texts_are_embedded_once(build, knowledge, tmp_path):
    shutil.copy(knowledge / "harbour.md", knowledge / "harbour-copy.md")
    build(knowledge, tmp_path / "index")
    assert len(build.recorder.embedded) == len(set(build.recorder.embedded))


def test_a_cache_that_cannot_be_written_does_not_fail_the_build(build, knowledge, tmp_path, caplog):
    index = tmp_path / "index"
    (index / ".cache").mkdir(parents=True)
    (index / ".cache" / "embeddings").write_text("not a folder")  # every write into the cache fails
    with caplog.at_level(logging.WARNING, logger="index_builder"):
        result = build(knowledge, index)
    assert "cannot be written" in caplog.text and "goes on without it" in caplog.text
    assert load_version(result.version_dir).manifest["passage_count"] == len(TOPICS)


class PerEncoderRecorder:
    """Which texts each encoder of a profile was asked to embed, by encoder id."""

    def __init__(self):
        self.embedded: dict[str, list[str]] = {}
        self.tokens: dict[str, list[str]] = {}

    def loader(self, spec: EncoderSpec, folder: Path):
        return CountingEncoder(
            load_encoder(spec, folder), self.embedded.setdefault(spec.id, []), self.tokens.setdefault(spec.id, [])
        )

    def reset(self):
        for texts in (*self.embedded.values(), *self.tokens.values()):
            texts.clear()


def test_every_encoder_of_the_default_profile_has_its_own_cache(built_index_dir, encoder_cache, knowledge, tmp_path):
    """mpnet (with token vectors) and e5: each caches under its own id and weights, and a rebuild after one
    edit embeds only the changed texts through each of them."""
    recorder = PerEncoderRecorder()
    index = tmp_path / "index"
    build = functools.partial(
        build_index, profile="default", encoder_cache=encoder_cache, encoder_loader=recorder.loader
    )
    build(knowledge, index)
    first_vectors, first_tokens = _texts(knowledge)
    assert set(recorder.embedded) == {"mpnet", "e5"}
    for encoder_id, texts in recorder.embedded.items():  # nothing shared between encoders: both embed everything
        assert sorted(texts) == sorted(first_vectors), encoder_id
    assert sorted(recorder.tokens["mpnet"]) == sorted(first_tokens) and recorder.tokens["e5"] == []

    manifest = load_version(_current(index)).manifest
    namespaces = {}
    for folder in (index / ".cache" / "embeddings").iterdir():
        described = json.loads((folder / "namespace.json").read_text())
        namespaces[(described["encoder"], described["kind"])] = described["weights_sha256"]
    # mpnet's token vectors come from its passages' pass (tokens_in_context): passage vectors and token
    # vectors under the in-context kinds, sentences under "vector"
    assert namespaces == {
        ("mpnet", "in-context"): manifest["encoders"][0]["weights_sha256"],
        ("mpnet", "tokens-in-context"): manifest["encoders"][0]["weights_sha256"],
        ("mpnet", "vector"): manifest["encoders"][0]["weights_sha256"],
        ("e5", "vector"): manifest["encoders"][1]["weights_sha256"],
    }

    recorder.reset()
    (knowledge / "orchard.md").write_text(TOPICS["orchard.md"].replace("eleven", "fourteen"), encoding="utf-8")
    build(knowledge, index)
    new_vectors, new_tokens = _texts(knowledge)
    for encoder_id, texts in recorder.embedded.items():
        assert sorted(texts) == sorted(new_vectors - first_vectors), encoder_id
    assert sorted(recorder.tokens["mpnet"]) == sorted(new_tokens - first_tokens)
