"""The index's integrity: the manifest's checksum and schema, every file checked on load, load failures as
IndexProblem, the probe before publishing, rollback to a damaged version, write errors named in one line."""

from __future__ import annotations

import functools
import json
import os
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
from bot.core.manifest import Manifest, SchemaError, parse_encoder_config, parse_manifest
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
    assert set(Manifest.required_files()) <= set(manifest.files)
    assert {"encoder/model.onnx", "encoder/tokenizer.json", "encoder/encoder.json"} <= set(manifest.files)
    on_disk = {p.relative_to(version).as_posix() for p in version.rglob("*") if p.is_file()}
    assert on_disk == set(manifest.files) | {"manifest.json", "manifest.sha256"}
    # the sidecar is in `sha256sum` format
    import hashlib

    digest, name = (version / "manifest.sha256").read_text(encoding="ascii").split()
    assert (digest, name) == (hashlib.sha256(raw).hexdigest(), "manifest.json")
    assert parse_encoder_config((version / "encoder" / "encoder.json").read_bytes()).embedding_dim == 384


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
    "dimension-as-text": (lambda m: {**m, "embedding_dim": "384"}, "embedding_dim"),
    "dimension-as-bool": (lambda m: {**m, "embedding_dim": True}, "embedding_dim"),
    "negative-count": (lambda m: {**m, "passage_count": -1}, "passage_count"),
    "unknown-key": (lambda m: {**m, "extra": 1}, "extra"),
    "bad-checksum": (lambda m: {**m, "model_sha256": "abc"}, "model_sha256"),
    "encoder-not-listed": (
        lambda m: {**m, "files": {k: v for k, v in m["files"].items() if k != "encoder/tokenizer.json"}},
        "encoder/tokenizer.json",
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
    faults.edit_manifest(index_copy, schema_version=1)
    with pytest.raises(IndexMismatchError, match="schema 1; this qabot reads schema 2") as err:
        EngineHolder(index_copy).get()
    assert "qabot index build --force" in str(err.value)


# ---------------------------------------------------------------- every file checked on every load


def _listed_files(built_index_dir) -> list[str]:
    return sorted(_valid(built_index_dir)["files"])


@pytest.mark.parametrize(
    "name",
    [
        "encoder/encoder.json",
        "encoder/model.onnx",
        "encoder/tokenizer.json",
        "lexical.json",
        "passages.json",
        "sentence_vectors.npy",
        "vectors.faiss",
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
        "encoder/encoder.json",
        "encoder/model.onnx",
        "encoder/tokenizer.json",
        "lexical.json",
        "passages.json",
        "sentence_vectors.npy",
        "vectors.faiss",
    ]


@pytest.mark.parametrize(
    "fault",
    [
        faults.scramble_onnx_weights,
        faults.flip_tokenizer_byte,
        faults.other_versions_tokenizer,
        faults.other_versions_encoder_config,
    ],
    ids=lambda f: f.__name__,
)
def test_a_damaged_or_foreign_encoder_is_never_served(index_copy, fault):
    fault(index_copy)
    with pytest.raises(IndexCorruptError, match="changed after the build") as err:
        EngineHolder(index_copy).get()
    assert "encoder/" in str(err.value)
    assert index_store.check_files(faults.version_dir(index_copy), _manifest(index_copy))  # verify sees it too


def _npy(array) -> bytes:
    import io

    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=False)
    return buffer.getvalue()


# What a builder that wrote bad bytes would leave: the checksums match, only parsing can tell.
UNLOADABLE = {
    "onnx-garbage": ("encoder/model.onnx", b"\x08\x07" + b"not a model" * 100, "encoder"),
    "tokenizer-not-json": ("encoder/tokenizer.json", b"{not json", "encoder"),
    "tokenizer-not-a-tokenizer": ("encoder/tokenizer.json", b'{"version": "1.0"}', "encoder"),
    "encoder-config-bad-type": (
        "encoder/encoder.json",
        json.dumps(
            {
                "model_name": "x",
                "max_seq_length": "256",
                "embedding_dim": 384,
                "pooling": "mean",
                "normalize": True,
                "pad_token_id": 0,
            }
        ).encode(),
        "max_seq_length",
    ),
    "encoder-config-other-dimension": (
        "encoder/encoder.json",
        json.dumps(
            {
                "model_name": "x",
                "max_seq_length": 256,
                "embedding_dim": 768,
                "pooling": "mean",
                "normalize": True,
                "pad_token_id": 0,
            }
        ).encode(),
        "768",
    ),
    "numpy-garbage": ("sentence_vectors.npy", b"\x93NUMPY garbage", "cannot be read"),
    "numpy-object-array": ("sentence_vectors.npy", None, "cannot be read"),
    "numpy-wrong-shape": ("sentence_vectors.npy", _npy(np.zeros((3, 384), dtype=np.float32)), "sentence vectors"),
    "faiss-garbage": ("vectors.faiss", b"IxFI" + b"\x00" * 64, "damaged"),
    "faiss-unknown-type": ("vectors.faiss", b"ZZZZ" + b"\x01" * 64, "cannot be read"),
    "faiss-empty": ("vectors.faiss", b"", "cannot be read"),
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


def test_a_new_version_that_cannot_answer_its_probe_is_never_switched_to(index_copy, tmp_path, cached_embedder):
    # words only in the heading: searchable, but no sentence of the knowledge can be asked back
    knowledge = tmp_path / "k"
    knowledge.mkdir()
    (knowledge / "dog.md").write_text("# Office FAQ\n\n## Office dog\n\n🐶🐶🐶 🦴\n", encoding="utf-8")
    before = _current(index_copy)
    versions = sorted(p.name for p in (index_copy / "versions").iterdir())
    with pytest.raises(BuildError, match="failed its check before going live") as err:
        build_index(knowledge, index_copy, embedder=cached_embedder)
    assert "does not answer" in str(err.value) and "previous index keeps serving" in str(err.value)
    assert _current(index_copy) == before
    assert sorted(p.name for p in (index_copy / "versions").iterdir()) == versions
    assert _staging(index_copy) == []


def test_the_probe_asks_sentences_of_the_knowledge(engine_holder):
    questions = probe_questions(engine_holder.get().index.passages)
    assert 1 <= len(questions) <= 3
    texts = [p["text"] for p in engine_holder.get().index.passages]
    assert all(any(q in t for t in texts) for q in questions)


class _FailingEmbedder:
    """The real (caching) embedder, failing on its second call: the sentence vectors."""

    def __init__(self, inner):
        self.inner = inner
        self.calls = 0

    def __getattr__(self, name):
        return getattr(self.inner, name)

    def encode(self, texts, **kw):
        self.calls += 1
        if self.calls == 2:
            raise RuntimeError("embedding ran out of memory")
        return self.inner.encode(texts, **kw)


def test_a_build_failing_half_way_changes_nothing(index_copy, cached_embedder):
    before = _current(index_copy)
    with pytest.raises(BuildError, match="unchanged"):
        build_index(KNOWLEDGE_DIR, index_copy, force=True, embedder=_FailingEmbedder(cached_embedder))
    assert _current(index_copy) == before
    assert _staging(index_copy) == []
    assert EngineHolder(index_copy).answer("what is machine learning?").kind is AnswerKind.ANSWER


# ---------------------------------------------------------------- writes that fail


def test_a_full_disk_is_one_line_naming_the_file():
    # /dev/full answers every write with ENOSPC: the real error a full disk gives
    with pytest.raises(BuildError) as err:
        write_file(Path("/dev/full"), b"x" * 4096)
    assert str(err.value) == "no space left on device while writing /dev/full"


# A build in a child process whose files may not grow past 4 KiB (RLIMIT_FSIZE, a real OS limit: the
# write fails with EFBIG as it would with ENOSPC on a full disk). The embedder is the query-time ONNX
# encoder of the copied index (the same vectors as sentence-transformers, without loading torch).
OUT_OF_SPACE_BUILD = """
import resource, sys
from pathlib import Path
from bot.core.encoder import OnnxEncoder
from bot.core.errors import BuildError
from index_builder.build import build_index

class OnnxEmbedder:
    def __init__(self, encoder_dir):
        self.encoder = OnnxEncoder(encoder_dir)
        self.max_seq_length = self.encoder.max_seq_length

    def encode(self, texts, *, show_progress=False, batch_size=32):
        return self.encoder.encode(texts)

    def export_onnx(self, out_dir):
        raise AssertionError("the previous version's encoder is reused")

knowledge, index, limit = Path(sys.argv[1]), Path(sys.argv[2]), int(sys.argv[3])
embedder = OnnxEmbedder((index / "current" / "encoder").resolve())
resource.setrlimit(resource.RLIMIT_FSIZE, (limit, resource.getrlimit(resource.RLIMIT_FSIZE)[1]))
try:
    build_index(knowledge, index, embedder=embedder)
except BuildError as err:
    print(err)
    sys.exit(1)
"""


def test_a_build_that_runs_out_of_space_says_so_in_one_line_and_changes_nothing(index_copy, tmp_path):
    knowledge = tmp_path / "k"
    knowledge.mkdir()
    (knowledge / "faq.md").write_text(
        "# Office FAQ\n\n## Office dog\n\nThe office dog is called Biscuit and visits on Fridays.\n\n"
        "## Parking\n\nVisitors park on level two of the garage behind the building.\n\n"
        "## Lunch\n\nLunch is served in the canteen on the ground floor from noon until two.\n",
        encoding="utf-8",
    )
    before = _current(index_copy)
    # vectors.faiss (3 x 384 floats) is the first file the build writes past 4 KiB
    done = subprocess.run(
        [sys.executable, "-c", OUT_OF_SPACE_BUILD, str(knowledge), str(index_copy), "4096"],
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
    assert message.endswith("/vectors.faiss") and str(index_copy) in message, message
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
    "edited-title": faults.edit_title,
    "documents-a-string": lambda d: faults.edit_manifest(d, documents="x", update_checksum=True),
    "onnx-unloadable": lambda d: faults.replace_consistently(d, "encoder/model.onnx", b"\x08\x07garbage"),
}


def _damage_version(index_dir: Path, version: str, damage) -> None:
    """Apply a fault to a version that is not current (by pointing a scratch index at it)."""
    scratch = index_dir.parent / "scratch-view"
    scratch.mkdir()
    os.symlink(index_dir / "versions" / version, scratch / "current")
    damage(scratch)


@pytest.mark.parametrize("damage", list(ROLLBACK_DAMAGE))
def test_rollback_to_a_damaged_version_is_refused_and_current_keeps_serving(index_copy, cached_embedder, damage):
    old, new = _two_versions(index_copy)
    _damage_version(index_copy, old, ROLLBACK_DAMAGE[damage])
    with pytest.raises(BuildError, match=f"Not rolling back: The .*index {old}") as err:
        store.rollback(index_copy)
    assert f"{new} keeps serving" in str(err.value)
    assert "Traceback" not in str(err.value)
    assert faults.version_dir(index_copy).name == new
    assert EngineHolder(index_copy).answer("what is machine learning?").index_version == new


def test_chat_rollback_to_a_damaged_version_reports_why_and_keeps_serving(index_copy, cached_embedder, tmp_path):
    old, new = _two_versions(index_copy)
    _damage_version(index_copy, old, faults.scramble_onnx_weights)
    service, engine = _service(index_copy, KNOWLEDGE_DIR, tmp_path, cached_embedder)
    assert engine.version == new
    reply = _admin(service, "/rollback")
    assert reply.kind.value == "error"
    assert "Rollback failed" in reply.text and "model.onnx was changed after the build" in reply.text
    assert f"keeps serving (version {new})" in reply.text
    assert engine.version == new and faults.version_dir(index_copy).name == new


def test_chat_reindex_of_wordless_knowledge_reports_the_refusal(index_copy, cached_embedder, tmp_path):
    knowledge = tmp_path / "k"
    knowledge.mkdir()
    (knowledge / "notes.md").write_text(WORDLESS["emoji"], encoding="utf-8")
    service, engine = _service(index_copy, knowledge, tmp_path, cached_embedder)
    before = engine.version
    reply = _admin(service, "reindex")
    assert reply.kind.value == "error"
    assert "no words a question could match" in reply.text and f"keeps serving (version {before})" in reply.text
    assert engine.version == before and faults.version_dir(index_copy).name == before
    assert EngineHolder(index_copy).answer("what is machine learning?").index_version == before


def _service(index_dir: Path, knowledge: Path, tmp_path: Path, embedder):
    from bot.config import Settings
    from bot.conversation.feedback import FeedbackStore
    from bot.conversation.rebuild import RebuildCoordinator
    from bot.conversation.service import ConversationService

    settings = Settings(index_dir=index_dir, knowledge_dir=knowledge, feedback_db=tmp_path / "fb.sqlite3")
    engine = EngineHolder(index_dir)
    engine.get()
    rebuilder = RebuildCoordinator(
        engine, knowledge, index_dir, builder=functools.partial(build_index, embedder=embedder)
    )
    feedback = FeedbackStore(settings.feedback_db)
    return ConversationService(engine, settings=settings, feedback=feedback, rebuilder=rebuilder), engine


def _admin(service, command: str):
    from bot.conversation.models import IncomingMessage

    return service.handle_admin(
        IncomingMessage(platform="slack", user_id="U1", channel_id="C1", text=command, is_admin=True), command
    )


def test_rollback_to_an_intact_version_still_works(index_copy, cached_embedder):
    old, _ = _two_versions(index_copy)
    assert store.rollback(index_copy) == old
    assert EngineHolder(index_copy).version == old


def test_the_probe_refuses_an_engine_that_cannot_find_its_own_words(engine_holder):
    from bot.core.probe import probe

    class Deaf:
        index = engine_holder.get().index

        def answer(self, question):
            return engine_holder.answer("what's the best pizza topping in Naples?")

    assert probe(engine_holder.get()) is None
    assert "abstain" in (probe(Deaf()) or "")


def test_load_failures_are_index_problems_not_other_errors():
    assert issubclass(IndexCorruptError, IndexProblem)
    with pytest.raises(IndexProblem):
        QAEngine(Path("/nonexistent/version"))
