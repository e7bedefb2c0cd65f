"""The `qabot` command in a subprocess: ask, ask --json, ask --json -, chat, index build/info/verify/rollback, eval."""

from __future__ import annotations

import json
from pathlib import Path

ANSWER_KEYS = {"question", "abstained", "confidence", "quotes", "index_version", "took_ms"}
QUOTE_KEYS = {"text", "section", "document", "score"}


def _version(index_dir: Path) -> str:
    return (index_dir / "current").resolve().name


def _clean(done) -> None:
    assert "Traceback" not in done.stderr, done.stderr


def test_ask_prints_a_readable_answer(qabot, built_index_dir):
    done = qabot("ask", "--index", built_index_dir, "What is machine learning?")
    _clean(done)
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert "confidence" in out
    quote_lines = [line for line in out.splitlines() if line.startswith("> ")]
    assert quote_lines
    assert any("algorithms that enable computers to learn from data" in line for line in quote_lines)
    assert "What is Machine Learning?" in out
    assert "ms" in out.splitlines()[-1]
    assert _version(built_index_dir) in out


def test_ask_abstains_readably(qabot, built_index_dir):
    done = qabot("ask", "--index", built_index_dir, "what is the capital of Australia?")
    _clean(done)
    assert done.returncode == 0
    assert not [line for line in done.stdout.splitlines() if line.startswith("> ")]
    assert "closest" in done.stdout


def test_ask_json_prints_one_object_with_the_schema(qabot, built_index_dir):
    done = qabot("ask", "--json", "--index", built_index_dir, "what are GANs?")
    _clean(done)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert len(lines) == 1
    answer = json.loads(lines[0])
    assert set(answer) >= ANSWER_KEYS
    assert answer["question"] == "what are GANs?"
    assert answer["abstained"] is False
    assert answer["index_version"] == _version(built_index_dir)
    assert 1 <= len(answer["quotes"]) <= 3
    for quote in answer["quotes"]:
        assert set(quote) >= QUOTE_KEYS
    assert "Generative Adversarial Networks" in answer["quotes"][0]["text"]


def test_ask_json_reads_one_question_per_line_from_stdin(qabot, built_index_dir):
    questions = ["what is machine learning?", "what is the capital of Australia?", "how is gen ai used in healthcare"]
    done = qabot("ask", "--json", "--index", built_index_dir, "-", input="\n".join(questions) + "\n")
    _clean(done)
    assert done.returncode == 0, done.stderr
    answers = [json.loads(line) for line in done.stdout.splitlines()]
    assert [a["question"] for a in answers] == questions
    assert [a["abstained"] for a in answers] == [False, True, False]
    assert answers[2]["quotes"][0]["section"].endswith("Healthcare")


def test_chat_through_a_pipe(qabot, built_index_dir, tmp_path):
    done = qabot(
        "chat",
        "--index",
        built_index_dir,
        "--knowledge",
        tmp_path / "unused-knowledge",
        input="what is generative ai?\nquit\nwhat is machine learning?\n",
        timeout=60,
    )
    _clean(done)
    assert done.returncode == 0, done.stderr
    assert "Generative AI uses AI algorithms and large language models" in done.stdout
    # "quit" ends the session: the question after it is not answered
    assert "algorithms that enable computers to learn from data" not in done.stdout


def test_index_info(qabot, built_index_dir):
    done = qabot("index", "info", "--index", built_index_dir)
    _clean(done)
    assert done.returncode == 0, done.stderr
    manifest = json.loads((built_index_dir / "current" / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["index_version"] in done.stdout
    assert "384" in done.stdout
    assert "ml-vs-genai.md" in done.stdout
    assert str(manifest["passage_count"]) in done.stdout

    as_json = qabot("index", "info", "--json", "--index", built_index_dir)
    assert as_json.returncode == 0
    assert json.loads(as_json.stdout) == manifest


def test_index_verify_ok(qabot, built_index_dir):
    done = qabot("index", "verify", "--index", built_index_dir)
    _clean(done)
    assert done.returncode == 0, done.stderr
    assert "OK" in done.stdout
    assert _version(built_index_dir) in done.stdout


def test_eval_prints_the_metrics(qabot, built_index_dir, tmp_path):
    questions = tmp_path / "questions.jsonl"
    questions.write_text(
        "\n".join(
            json.dumps(item)
            for item in [
                {"q": "what is machine learning?", "gold": ["algorithms that enable computers to learn from data"]},
                {"q": "what are GANs?", "gold": ["Generative Adversarial Networks"]},
                {"q": "what is the capital of Australia?", "gold": []},
            ]
        )
        + "\n",
        encoding="utf-8",
    )
    done = qabot("eval", questions, "--index", built_index_dir)
    _clean(done)
    assert done.returncode == 0, done.stderr
    for metric in ("hit@1", "hit@3", "MRR", "off-topic abstention", "false abstention"):
        assert metric in done.stdout
    report = json.loads(qabot("eval", questions, "--json", "--index", built_index_dir).stdout)
    assert report["answerable"] == 2
    assert report["off_topic"] == 1
    assert report["hit_at_1"] == 1.0
    assert report["off_topic_abstention"] == 1.0


def test_eval_with_a_bad_file_is_a_usage_error(qabot, built_index_dir, tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"q": "fine", "gold": []}\nnot json at all\n', encoding="utf-8")
    done = qabot("eval", bad, "--index", built_index_dir)
    _clean(done)
    assert done.returncode == 2
    assert "bad.jsonl:2" in done.stderr
    missing = qabot("eval", tmp_path / "nope.jsonl", "--index", built_index_dir)
    _clean(missing)
    assert missing.returncode == 2


def test_index_build_then_ask_then_rollback(qabot, index_copy, tmp_path):
    knowledge = tmp_path / "notes"
    knowledge.mkdir()
    (knowledge / "onboarding.md").write_text(
        "# Onboarding\n\n## Laptops\n\nNew staff collect their laptop from the third-floor help desk on day one. "
        "Bring a photo ID.\n",
        encoding="utf-8",
    )
    outside = tmp_path / "etc-passwd"  # stands in for /etc/passwd: a link to it must not be indexed
    outside.write_text("root:x:0:0:root:/root:/bin/bash\n", encoding="utf-8")
    (knowledge / "passwd.md").symlink_to(outside)
    old = _version(index_copy)

    built = qabot("index", "build", "--quiet", "--knowledge", knowledge, "--index", index_copy, timeout=300)
    _clean(built)
    assert built.returncode == 0, built.stderr
    assert "Built index" in built.stdout
    assert "warning: passwd.md: skipped: a link to a file outside the knowledge folder" in built.stderr
    new = _version(index_copy)
    assert new != old
    assert new in built.stdout

    again = qabot("index", "build", "--quiet", "--knowledge", knowledge, "--index", index_copy)
    assert again.returncode == 0, again.stderr
    assert "up to date" in again.stdout
    assert _version(index_copy) == new

    answer = json.loads(qabot("ask", "--json", "--index", index_copy, "where do I get my laptop?").stdout)
    assert answer["abstained"] is False
    assert "third-floor help desk" in answer["quotes"][0]["text"]
    assert answer["index_version"] == new

    rolled = qabot("index", "rollback", "--index", index_copy)
    _clean(rolled)
    assert rolled.returncode == 0, rolled.stderr
    assert old in rolled.stdout
    assert _version(index_copy) == old


def test_index_build_reads_the_size_limit_from_the_environment(qabot, index_copy, tmp_path):
    knowledge = tmp_path / "notes"
    knowledge.mkdir()
    (knowledge / "big.md").write_text("# Big\n\n" + "A sentence of the big file. " * 20, encoding="utf-8")
    done = qabot(
        "index", "build", "--knowledge", knowledge, "--index", index_copy, extra_env={"QABOT_MAX_DOCUMENT_BYTES": "100"}
    )
    _clean(done)
    assert done.returncode == 1
    assert "big.md: skipped" in done.stderr and "limit of 100 bytes" in done.stderr
    assert "QABOT_MAX_DOCUMENT_BYTES raises it" in done.stderr
    bad = qabot(
        "index", "build", "--knowledge", knowledge, "--index", index_copy, extra_env={"QABOT_MAX_PASSAGE_CHARS": "0"}
    )
    assert bad.returncode == 2 and "QABOT_MAX_PASSAGE_CHARS" in bad.stderr


def test_no_index_exits_3_and_says_how_to_build_one(qabot, tmp_path):
    for args in (
        ["ask", "--index", tmp_path / "none", "what is ml?"],
        ["ask", "--json", "--index", tmp_path / "none", "-"],
        ["index", "info", "--index", tmp_path / "none"],
        ["index", "verify", "--index", tmp_path / "none"],
    ):
        done = qabot(*args, input="what is ml?\n")
        _clean(done)
        assert done.returncode == 3, (args, done.stderr)
        assert "qabot index build" in done.stderr, args
        assert done.stdout == ""


def test_the_index_folder_comes_from_the_environment_without_index(qabot, built_index_dir):
    missing = qabot("index", "info")
    _clean(missing)
    assert missing.returncode == 3  # ./index does not exist in the scratch folder
    done = qabot("index", "info", extra_env={"QABOT_INDEX_DIR": str(built_index_dir)})
    _clean(done)
    assert done.returncode == 0, done.stderr
    assert _version(built_index_dir) in done.stdout


def test_ask_with_context_answers_the_follow_up(qabot, built_index_dir):
    alone = json.loads(qabot("ask", "--json", "--index", built_index_dir, "and in finance?").stdout)
    followed = qabot(
        "ask",
        "--json",
        "--index",
        built_index_dir,
        "--context",
        "how is machine learning used in healthcare?",
        "and in finance?",
    )
    assert followed.returncode == 0, followed.stderr
    answer = json.loads(followed.stdout)
    assert answer["context_used"] is True and alone.get("context_used") is False
    assert "Finance" in answer["quotes"][0]["section"]


def test_ask_json_lines_take_a_context_field(qabot, built_index_dir):
    lines = "\n".join(
        [
            json.dumps({"q": "and in finance?", "context": ["how is machine learning used in healthcare?"]}),
            "what are GANs used for?",
            "{not json: a question that starts with a brace",
        ]
    )
    done = qabot("ask", "--json", "-", "--index", built_index_dir, input=lines + "\n")
    assert done.returncode == 0, done.stderr
    first, second, third = (json.loads(line) for line in done.stdout.splitlines())
    assert first["question"] == "and in finance?" and first["context_used"] is True
    assert second["context_used"] is False
    assert third["question"].startswith("{not json")


def test_eval_compares_two_indexes(qabot, built_index_dir, fast_index_dir, tmp_path):
    questions = tmp_path / "q.jsonl"
    questions.write_text(
        json.dumps({"q": "what is machine learning?", "gold": ["algorithms that enable computers to learn"]})
        + "\n"
        + json.dumps({"q": "who won the world cup?", "gold": []})
        + "\n",
        encoding="utf-8",
    )
    done = qabot("eval", questions, "--compare", built_index_dir, fast_index_dir)
    assert done.returncode == 0, done.stderr
    assert "paired hit@1" in done.stdout and str(fast_index_dir) in done.stdout
    data = json.loads(qabot("eval", questions, "--json", "--compare", built_index_dir, fast_index_dir).stdout)
    assert data["a"]["answerable"] == data["b"]["answerable"] == 1
    assert data["won"] + data["lost"] + data["both"] + data["neither"] == 1
