"""Bad input through the real `qabot` command: odd questions, odd bytes, empty knowledge, a damaged index.

Every case ends with a clear message and the documented exit code, never a traceback.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest

from tests import index_faults as faults

EXIT_FAILED, EXIT_USAGE, EXIT_INDEX = 1, 2, 3


def _clean(done) -> None:
    stderr = done.stderr.decode("utf-8", "replace") if isinstance(done.stderr, bytes) else done.stderr
    assert "Traceback" not in stderr, stderr


def _json_lines(stdout: str | bytes) -> list[dict]:
    if isinstance(stdout, bytes):
        stdout = stdout.decode("utf-8")
    return [json.loads(line) for line in stdout.splitlines()]


# ---------------------------------------------------------------- odd questions


@pytest.mark.parametrize("question", ["", "   ", "\t\n "])
def test_an_empty_question_is_a_usage_error(qabot, built_index_dir, question):
    done = qabot("ask", "--index", built_index_dir, question)
    _clean(done)
    assert done.returncode == EXIT_USAGE
    assert "needs a question" in done.stderr
    assert done.stdout == ""


def test_no_question_at_all_is_a_usage_error(qabot, built_index_dir):
    done = qabot("ask", "--index", built_index_dir)
    _clean(done)
    assert done.returncode == EXIT_USAGE
    assert "Missing argument" in done.stderr


def test_a_100_kb_question_is_handled_quickly(qabot, built_index_dir):
    question = "what is machine learning and why " * 3100
    assert len(question.encode()) > 100_000
    done = qabot("ask", "--json", "--index", built_index_dir, question)
    _clean(done)
    assert done.returncode == 0, done.stderr
    (answer,) = _json_lines(done.stdout)
    assert answer["question"] == question
    assert len(answer["normalized_question"]) <= 2000
    assert answer["took_ms"] < 3000
    assert answer["kind"] in ("answer", "mentioned", "abstain")


def test_a_100_kb_line_on_stdin_is_handled(qabot, built_index_dir):
    lines = "x" * 100_000 + "\nwhat is machine learning?\n"
    done = qabot("ask", "--json", "--index", built_index_dir, "-", input=lines)
    _clean(done)
    assert done.returncode == 0, done.stderr
    first, second = _json_lines(done.stdout)
    assert first["kind"] in ("answer", "mentioned", "abstain", "empty")
    assert first["took_ms"] < 3000
    assert second["abstained"] is False


def test_control_characters_and_invalid_utf8_on_stdin(qabot, built_index_dir):
    stdin = b"\xff\xfe\x00bad\x1b[31m\n\x07what is \x1b[1mmachine\x1b[0m learning?\r\n\n\xc3\x28\n"
    done = qabot("ask", "--json", "--index", built_index_dir, "-", input=stdin)
    _clean(done)
    assert done.returncode == 0, done.stderr
    answers = _json_lines(done.stdout)
    assert len(answers) == 4
    for answer in answers:
        assert "\x1b" not in answer["normalized_question"]
        assert "\x00" not in answer["normalized_question"]
    assert "\ufffd" in answers[0]["question"]  # undecodable bytes became U+FFFD, not an error
    assert answers[1]["abstained"] is False
    assert "algorithms that enable computers to learn from data" in answers[1]["quotes"][0]["text"]
    assert answers[2]["kind"] == "empty"


def test_control_characters_in_an_argument(qabot, built_index_dir):
    done = qabot("ask", "--json", "--index", built_index_dir, "what\x07 is \x1b[31mgenerative AI\x1b[0m?")
    _clean(done)
    assert done.returncode == 0
    (answer,) = _json_lines(done.stdout)
    assert re.findall(r"\w+", answer["normalized_question"]) == ["what", "is", "generative", "AI"]
    assert "[31m" not in answer["normalized_question"]
    assert answer["abstained"] is False


def test_only_emoji_is_an_empty_question(qabot, built_index_dir):
    done = qabot("ask", "--json", "--index", built_index_dir, "🤖🎉🔥")
    _clean(done)
    assert done.returncode == 0
    (answer,) = _json_lines(done.stdout)
    assert answer["kind"] == "empty"
    assert answer["quotes"] == []
    assert answer["message"]


WORDLESS = ["@qabot", "???", "👍"]
OTHER_LANGUAGES = [
    "Was ist der Unterschied zwischen maschinellem Lernen und generativer KI?",
    "機械学習とは何ですか？",
    "¿Qué es la inteligencia artificial generativa?",
    "Что такое машинное обучение?",
]


def test_wordless_and_foreign_questions_do_not_break(qabot, built_index_dir):
    lines = WORDLESS + OTHER_LANGUAGES
    done = qabot("ask", "--json", "--index", built_index_dir, "-", input="\n".join(lines) + "\n")
    _clean(done)
    assert done.returncode == 0, done.stderr
    answers = _json_lines(done.stdout)
    assert [a["question"] for a in answers] == lines
    for answer in answers[: len(WORDLESS)]:
        assert answer["kind"] == "empty"
        assert answer["quotes"] == []
    for answer in answers[len(WORDLESS) :]:
        assert answer["kind"] in ("answer", "mentioned", "abstain")  # any is fine; a crash is not
        assert len(answer["quotes"]) <= 3


def test_the_readable_output_survives_odd_text(qabot, built_index_dir):
    done = qabot("ask", "--index", built_index_dir, "<script>alert(1)</script> ```what``` is *ml*? 🤖")
    _clean(done)
    assert done.returncode == 0
    assert done.stdout.strip()


# ---------------------------------------------------------------- bad knowledge


def test_building_an_empty_knowledge_folder_fails_with_a_message(qabot, index_copy, tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    before = (index_copy / "current").resolve()
    done = qabot("index", "build", "--knowledge", empty, "--index", index_copy)
    _clean(done)
    assert done.returncode == EXIT_FAILED
    assert "no .md or .txt documents" in done.stderr
    assert str(empty) in done.stderr
    assert (index_copy / "current").resolve() == before
    assert qabot("index", "verify", "--index", index_copy).returncode == 0


def test_building_a_missing_knowledge_folder_fails_with_a_message(qabot, tmp_path):
    done = qabot("index", "build", "--knowledge", tmp_path / "nowhere", "--index", tmp_path / "index")
    _clean(done)
    assert done.returncode == EXIT_FAILED
    assert "does not exist" in done.stderr


def test_building_a_document_that_is_not_utf8_names_it(qabot, index_copy, tmp_path):
    knowledge = tmp_path / "k"
    knowledge.mkdir()
    (knowledge / "good.md").write_text("# Good\n\nA perfectly fine paragraph. It has two sentences.\n")
    (knowledge / "mojibake.md").write_bytes(b"# Bad\n\n\xff\xfe\xfa\n")
    done = qabot("index", "build", "--knowledge", knowledge, "--index", index_copy)
    _clean(done)
    assert done.returncode == EXIT_FAILED
    assert "mojibake.md" in done.stderr


def test_a_build_while_another_runs_is_refused(qabot, index_copy):
    from index_builder.store import build_lock

    with build_lock(index_copy):
        done = qabot(
            "index", "build", "--force", "--index", index_copy, "--knowledge", Path(__file__).parents[2] / "knowledge"
        )
    _clean(done)
    assert done.returncode == EXIT_FAILED
    assert "already running" in done.stderr


# ---------------------------------------------------------------- a damaged index


def _version_dir(index_dir: Path) -> Path:
    return (index_dir / "current").resolve()


def _truncate_faiss(index_dir: Path) -> None:
    path = _version_dir(index_dir) / "encoders" / "mpnet" / "vectors.faiss"
    data = path.read_bytes()
    faults.replace_file(path, data[: len(data) // 2])


def _edit_passages(index_dir: Path, *, same_length: bool) -> None:
    path = _version_dir(index_dir) / "passages.json"
    text = path.read_text(encoding="utf-8")
    old = "algorithms that enable computers to learn from data"
    new = "algorithms that enable computers to learn from DATA" if same_length else "magic"
    assert old in text
    faults.replace_file(path, text.replace(old, new, 1).encode("utf-8"))


def _edit_encoder(index_dir: Path, encoder: str = "mpnet", **changes) -> None:
    faults.edit_encoder(index_dir, encoder, **changes)  # the checksum sidecar is left as it was


def _delete_sentence_vectors(index_dir: Path) -> None:
    (_version_dir(index_dir) / "encoders" / "mpnet" / "sentence_vectors.npy").unlink()


def _delete_e5_weights(index_dir: Path) -> None:
    (_version_dir(index_dir) / "encoders" / "e5" / "e5-small-q4.bin").unlink()  # this copy's link only


def _remove_current_version(index_dir: Path) -> None:
    shutil.rmtree(_version_dir(index_dir))  # the ONNX file is a hard link: only this copy's link goes


def _garble_manifest(index_dir: Path) -> None:
    faults.replace_file(_version_dir(index_dir) / "manifest.json", b"{not json")


DAMAGE = {
    "truncated-faiss": _truncate_faiss,
    "passages-edited-same-length": lambda d: _edit_passages(d, same_length=True),
    "passages-edited-other-length": lambda d: _edit_passages(d, same_length=False),
    "other-model": lambda d: _edit_encoder(d, model_name="sentence-transformers/all-MiniLM-L6-v2"),
    "other-dimension": lambda d: _edit_encoder(d, dim=384),
    "other-e5-weights": lambda d: _edit_encoder(d, "e5", weights_sha256="0" * 64),
    # verify is checked on the cases above; these are checked by ask only (verify shares the same checks)
    "missing-sentence-vectors": _delete_sentence_vectors,
    "missing-e5-weights": _delete_e5_weights,
    "missing-version": _remove_current_version,
    "garbled-manifest": _garble_manifest,
}

REQUIRED_DAMAGE = list(DAMAGE)[:6]


@pytest.mark.parametrize("damage", list(DAMAGE))
def test_a_damaged_index_is_refused_by_ask(qabot, index_copy, damage):
    DAMAGE[damage](index_copy)
    done = qabot("ask", "--json", "--index", index_copy, "what is machine learning?")
    _clean(done)
    assert done.returncode == EXIT_INDEX, (done.stdout, done.stderr)
    assert done.stdout == ""
    assert "qabot index build" in done.stderr  # the message says how to fix it
    assert "rebuild" in done.stderr


@pytest.mark.parametrize("damage", REQUIRED_DAMAGE)
def test_a_damaged_index_fails_verify(qabot, index_copy, damage):
    DAMAGE[damage](index_copy)
    done = qabot("index", "verify", "--index", index_copy)
    _clean(done)
    assert done.returncode == EXIT_INDEX, (done.stdout, done.stderr)
    assert "qabot index build" in done.stderr


def test_verify_names_what_is_wrong(qabot, index_copy):
    _truncate_faiss(index_copy)
    _edit_encoder(index_copy, model_name="some/other-model")
    done = qabot("index", "verify", "--index", index_copy)
    _clean(done)
    assert done.returncode == EXIT_INDEX
    assert "FAILED verification" in done.stderr
    assert "manifest.json was changed after the build" in done.stderr  # the manifest's own checksum
    assert "encoders/mpnet/vectors.faiss" in done.stderr
