"""Faults in the index and its builds, through the real `qabot` command: a damaged or foreign encoder, a bad
manifest, rollback to a damaged version, knowledge without words
(a build that runs out of space: tests/core/test_index_integrity.py).

Every case: the documented exit code, a message with the fix, no traceback, and the serving index untouched.
"""

from __future__ import annotations

import json
import os
import shutil

import pytest

from tests import index_faults as faults

EXIT_FAILED, EXIT_INDEX = 1, 3


def _clean(done) -> None:
    assert "Traceback" not in done.stderr, done.stderr


def _refused(done) -> None:
    _clean(done)
    assert done.returncode == EXIT_INDEX, (done.stdout, done.stderr)
    assert "qabot index build --force" in done.stderr


# ---------------------------------------------------------------- a damaged or foreign encoder


ENCODER_FAULTS = {
    "scrambled-onnx-weights": (faults.scramble_onnx_weights, "encoder/model.onnx"),
    "flipped-tokenizer-byte": (faults.flip_tokenizer_byte, "encoder/tokenizer.json"),
    "tokenizer-of-another-version": (faults.other_versions_tokenizer, "encoder/tokenizer.json"),
    "encoder-json-of-another-version": (faults.other_versions_encoder_config, "encoder/encoder.json"),
}


@pytest.mark.parametrize("fault", list(ENCODER_FAULTS))
def test_a_damaged_or_foreign_encoder_is_refused_by_ask_and_verify(qabot, index_copy, fault):
    damage, name = ENCODER_FAULTS[fault]
    damage(index_copy)
    done = qabot("ask", "--json", "--index", index_copy, "what is machine learning?")
    _refused(done)
    assert done.stdout == ""
    assert f"{name} was changed after the build" in done.stderr
    checked = qabot("index", "verify", "--index", index_copy)
    _refused(checked)
    assert "FAILED verification" in checked.stderr and name in checked.stderr


def test_an_encoder_that_passes_its_checksums_but_does_not_load_is_refused(qabot, index_copy):
    faults.replace_consistently(index_copy, "encoder/model.onnx", b"\x08\x07 this is not an ONNX model")
    done = qabot("ask", "--index", index_copy, "what is machine learning?")
    _refused(done)
    assert "encoder" in done.stderr and "cannot be loaded" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1


# ---------------------------------------------------------------- a bad manifest


BAD_MANIFESTS = {
    "list": lambda m: [],
    "null": lambda m: None,
    "string": lambda m: "manifest",
    "documents-a-string": lambda m: {**m, "documents": "x"},
    "missing-keys": lambda m: {"schema_version": m["schema_version"]},
    "wrong-types": lambda m: {**m, "embedding_dim": "384", "passage_count": 52.5},
}


@pytest.mark.parametrize("case", list(BAD_MANIFESTS))
def test_a_bad_manifest_is_refused_by_ask_and_verify_even_with_its_checksum_rewritten(qabot, index_copy, case):
    # the checksum is rewritten to match, so only the schema can refuse it (without, the checksum does)
    faults.write_manifest(index_copy, BAD_MANIFESTS[case](faults.read_manifest(index_copy)), update_checksum=True)
    for args in (
        ["ask", "--index", index_copy, "what is machine learning?"],
        ["index", "verify", "--index", index_copy],
    ):
        done = qabot(*args)
        _refused(done)
        assert "manifest.json" in done.stderr, args
        assert done.stdout == ""


def test_an_edited_title_is_refused_by_ask_verify_and_info(qabot, index_copy):
    faults.edit_title(index_copy, "Edited By Hand")
    for args in (
        ["ask", "--index", index_copy, "what is this article about?"],
        ["index", "verify", "--index", index_copy],
        ["index", "info", "--index", index_copy],
    ):
        done = qabot(*args)
        _refused(done)
        assert "manifest.json was changed after the build" in done.stderr, args
        assert "Edited By Hand" not in done.stdout


# ---------------------------------------------------------------- rollback


def test_rollback_to_a_damaged_version_is_refused_and_current_keeps_serving(qabot, index_copy):
    old_dir = faults.version_dir(index_copy)
    new = f"v29991231T235959000000Z-{old_dir.name.rsplit('-', 1)[1]}"
    shutil.copytree(old_dir, index_copy / "versions" / new, copy_function=os.link)
    tmp_link = index_copy / "current.tmp"
    os.symlink(f"versions/{new}", tmp_link)
    os.replace(tmp_link, index_copy / "current")
    faults.edit_manifest(index_copy, index_version=new, update_checksum=True)
    view = index_copy.parent / "old-view"
    view.mkdir()
    os.symlink(old_dir, view / "current")
    faults.scramble_onnx_weights(view)  # the version rollback would go back to

    done = qabot("index", "rollback", "--index", index_copy)
    _clean(done)
    assert done.returncode == EXIT_FAILED
    assert f"Not rolling back: The index {old_dir.name} is damaged: encoder/model.onnx was changed" in done.stderr
    assert f"{new} keeps serving" in done.stderr
    assert faults.version_dir(index_copy).name == new
    answer = json.loads(qabot("ask", "--json", "--index", index_copy, "what is machine learning?").stdout)
    assert answer["index_version"] == new and answer["abstained"] is False


# ---------------------------------------------------------------- builds that must not go live


WORDLESS = {
    "emoji": "# 😀🎉\n\n😀🎉🔥 🚀✨\n\n🙂🙃\n",
    "stop-words": "the and of to a is it\n\nwhat would you do\n",
    "nul-bytes": "\x00" * 300,
}


@pytest.mark.parametrize("kind", list(WORDLESS))
def test_knowledge_without_words_is_refused_and_the_old_index_keeps_serving(qabot, index_copy, tmp_path, kind):
    knowledge = tmp_path / "k"
    knowledge.mkdir()
    (knowledge / "notes.md").write_text(WORDLESS[kind], encoding="utf-8")
    before = os.readlink(index_copy / "current")
    done = qabot("index", "build", "--quiet", "--knowledge", knowledge, "--index", index_copy)
    _clean(done)
    assert done.returncode == EXIT_FAILED
    assert "ZeroDivisionError" not in done.stderr
    # (a parser that refuses NUL bytes earlier as "not text", with its own clear message, is fine too)
    assert "no words a question could match" in done.stderr or kind == "nul-bytes", done.stderr
    assert len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert os.readlink(index_copy / "current") == before
    assert qabot("ask", "--index", index_copy, "what is machine learning?").returncode == 0
