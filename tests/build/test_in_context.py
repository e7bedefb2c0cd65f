"""One forward pass per passage gives its vector and its token vectors (tokens_in_context, as the
default and fast profiles do) and, optionally, its sentences' vectors pooled over their tokens in the passage
(sentences_in_context, off: it lost answer quality on both splits). A rebuild passes only changed
passages through the model and gives the vectors of a full build."""

from __future__ import annotations

import dataclasses
import functools
from pathlib import Path

import numpy as np
import pytest

from bot.core.encoder import EncoderSpec, load_encoder
from bot.core.index_store import load_version
from index_builder.build import build_index, embedding_text
from index_builder.parser import collect_knowledge
from index_builder.profiles import load_profile

TOPICS = {
    "harbour.md": (
        "# Harbour\n\n## Ferry\n\nThe harbour ferry leaves from pier four every morning at seven. Tickets are sold at the kiosk "
        "beside the lighthouse. It carries bicycles free on the lower deck.\n"
    ),
    "bakery.md": (
        "# Bakery\n\n## Bread\n\nThe bakery on Mill Street bakes rye sourdough on Tuesdays. Its cinnamon buns sell out before "
        "noon. The oven was built in 1912 from local brick.\n"
    ),
    "observatory.md": (
        "# Observatory\n\n## Visits\n\nThe observatory opens its telescope to visitors on clear Friday nights. Saturn's rings are "
        "visible from June to September. Children under twelve enter with an adult.\n"
    ),
}


def profile(mode: str):
    """The fast profile with its token vectors ("tokens") or also its sentences ("sentences") from the
    passage's pass, or neither ("separate")."""
    fast = load_profile("fast")
    models = tuple(
        dataclasses.replace(m, tokens_in_context=mode != "separate", sentences_in_context=mode == "sentences")
        for m in fast.models
    )
    return dataclasses.replace(fast, models=models)


class Recorder:
    """The real encoder; records what goes through the model, by kind of call."""

    def __init__(self):
        self.calls: dict[str, list[str]] = {"passages": [], "tokens": [], "in_context": []}

    def loader(self, spec: EncoderSpec, folder: Path):
        inner, calls = load_encoder(spec, folder), self.calls

        class Counting:
            def __getattr__(self, name):
                return getattr(inner, name)

            def encode_passages(self, texts, **kwargs):
                calls["passages"].extend(texts)
                return inner.encode_passages(texts, **kwargs)

            def passage_token_vectors(self, texts, **kwargs):
                calls["tokens"].extend(texts)
                return inner.passage_token_vectors(texts, **kwargs)

            def encode_in_context(self, items, **kwargs):
                calls["in_context"].extend(text for text, _, _ in items)
                return inner.encode_in_context(items, **kwargs)

        return Counting()

    def reset(self):
        for v in self.calls.values():
            v.clear()


@pytest.fixture
def knowledge(tmp_path) -> Path:
    folder = tmp_path / "knowledge"
    folder.mkdir()
    for name, text in TOPICS.items():
        (folder / name).write_text(text, encoding="utf-8")
    return folder


def _builder(encoder_cache, mode: str):
    recorder = Recorder()
    run = functools.partial(
        build_index, profile=profile(mode), encoder_cache=encoder_cache, encoder_loader=recorder.loader
    )
    run.recorder = recorder  # type: ignore[attr-defined]
    return run


@pytest.fixture(params=["tokens", "sentences"])
def build(request, encoder_cache):
    run = _builder(encoder_cache, request.param)
    run.mode = request.param  # type: ignore[attr-defined]
    return run


def _vectors(version_dir: Path) -> dict[str, np.ndarray]:
    (data,) = load_version(version_dir).encoders
    return {
        "passages": data.faiss_index.reconstruct_n(0, data.faiss_index.ntotal),
        "sentences": np.asarray(data.sentence_vectors),
        "tokens": np.asarray(data.token_vectors, dtype=np.float32),
        "offsets": np.asarray(data.token_offsets),
    }


def test_one_pass_per_passage_and_a_rebuild_passes_only_the_changed_one(build, knowledge, tmp_path):
    index = tmp_path / "index"
    build(knowledge, index)
    calls = build.recorder.calls
    passages = collect_knowledge(knowledge).passages
    sentences = [p.text[s:e] for p in passages for s, e in p.sentences]
    assert sorted(calls["in_context"]) == sorted(embedding_text(p) for p in passages)
    assert calls["tokens"] == []  # no second pass over a passage for its tokens
    assert sorted(calls["passages"]) == (sorted(sentences) if build.mode == "tokens" else [])

    build.recorder.reset()
    (knowledge / "bakery.md").write_text(
        TOPICS["bakery.md"].replace("rye sourdough on Tuesdays", "spelt loaves on Thursdays"), encoding="utf-8"
    )
    build(knowledge, index)
    (bakery,) = [p for p in collect_knowledge(knowledge).passages if "spelt" in p.text]
    assert calls["in_context"] == [embedding_text(bakery)]
    assert calls["tokens"] == []
    changed = ["The bakery on Mill Street bakes spelt loaves on Thursdays."]
    assert calls["passages"] == (changed if build.mode == "tokens" else [])


def test_vectors_of_the_one_pass(build, knowledge, tmp_path, encoder_cache):
    index = tmp_path / "index"
    build(knowledge, index)
    plain = tmp_path / "plain"
    _builder(encoder_cache, "separate")(knowledge, plain)
    one, separate = _vectors((index / "current").resolve()), _vectors((plain / "current").resolve())
    # the passage vector is the same pooled vector
    np.testing.assert_allclose(one["passages"], separate["passages"], atol=1e-5)
    assert one["sentences"].shape == separate["sentences"].shape
    if build.mode == "tokens":  # sentences embedded on their own, as without the option
        np.testing.assert_allclose(one["sentences"], separate["sentences"], atol=1e-5)
    else:  # a unit vector that has read its passage: near the sentence alone, not equal to it
        np.testing.assert_allclose(np.linalg.norm(one["sentences"], axis=1), 1.0, atol=1e-5)
        cosines = np.sum(one["sentences"] * separate["sentences"], axis=1)
        assert cosines.min() > 0.5 and cosines.max() < 0.9999
    # token vectors: the passage's own tokens (not the heading's), one per token, unit length, and they
    # have read the heading (not the vectors of the passage text alone)
    np.testing.assert_array_equal(one["offsets"], separate["offsets"])
    np.testing.assert_allclose(np.linalg.norm(one["tokens"], axis=1), 1.0, atol=2e-3)
    cosines = np.sum(one["tokens"] * separate["tokens"], axis=1)
    assert cosines.min() > 0.5 and np.median(cosines) < 0.999


def test_incremental_build_gives_the_vectors_of_a_full_build(build, knowledge, tmp_path):
    index = tmp_path / "index"
    build(knowledge, index)
    (knowledge / "harbour.md").write_text(TOPICS["harbour.md"].replace("seven", "eight"), encoding="utf-8")
    (knowledge / "museum.md").write_text(
        "# Museum\n\nThe museum shows fossils of ammonites found on the beach. Entry is free on Sundays.\n",
        encoding="utf-8",
    )
    build(knowledge, index)
    fresh = tmp_path / "fresh"
    build(knowledge, fresh)
    incremental, full = _vectors((index / "current").resolve()), _vectors((fresh / "current").resolve())
    for name in ("passages", "sentences"):
        np.testing.assert_allclose(incremental[name], full[name], atol=1e-5)
    np.testing.assert_array_equal(incremental["offsets"], full["offsets"])
    np.testing.assert_allclose(incremental["tokens"], full["tokens"], atol=2e-3)


def test_a_sentence_cut_out_of_its_passage_pass_is_embedded_on_its_own(encoder_cache, tmp_path):
    """MiniLM reads 256 tokens: the sentences of a longer passage past that get their own vector."""
    build = _builder(encoder_cache, "sentences")
    knowledge = tmp_path / "long"
    knowledge.mkdir()
    sentences = [f"Sentence number {n} of the long passage talks about lighthouse keeper {n}." for n in range(40)]
    (knowledge / "long.md").write_text("# Long\n\n## Keepers\n\n" + " ".join(sentences) + "\n", encoding="utf-8")
    index = tmp_path / "index"
    build(knowledge, index)
    calls = build.recorder.calls
    (passage,) = collect_knowledge(knowledge).passages
    texts = [passage.text[s:e] for s, e in passage.sentences]
    assert calls["in_context"] == [embedding_text(passage)]
    alone = calls["passages"]
    assert alone and alone == [t for t in texts if t in alone]  # only sentences, in order: a tail of them
    assert texts[-1] in alone and texts[0] not in alone
    vectors = _vectors((index / "current").resolve())
    (data,) = load_version((index / "current").resolve()).encoders
    # the token vectors stop where the pass stopped: the heading's tokens and the special ones are not counted
    assert len(vectors["tokens"]) < data.spec.max_seq_length - 2
    standalone = load_encoder(data.spec, data.folder)
    last = standalone.encode_passages([texts[-1]])[0]
    np.testing.assert_allclose(vectors["sentences"][-1], last, atol=1e-5)
