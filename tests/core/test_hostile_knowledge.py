"""Building a real index from a knowledge folder holding hostile or broken files.

The build goes on with what it may read, refuses the rest, and says so: in BuildResult.warnings and in
the manifest's "warnings". Nothing refused is read, embedded or quoted.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest

from bot.core.engine import EngineHolder
from bot.core.errors import BuildError
from index_builder.build import build_index
from index_builder.sources import SourceLimits

SENTENCE = "Generative models create new content from the patterns they learned. "
ONE_MEGABYTE_LINE = (SENTENCE * (1_000_000 // len(SENTENCE) + 1))[:1_000_000]
ALIAS_BOMB = "\n".join(
    ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    + [
        f"{name}: &{name} [" + ",".join([f"*{prev}"] * 9) + "]"
        for prev, name in zip("abcdefgh", "bcdefghi", strict=True)
    ]
    + ["title: *i"]
)


def _manifest(index_dir: Path) -> dict:
    return json.loads(((index_dir / "current").resolve() / "manifest.json").read_text(encoding="utf-8"))


def test_hostile_files_are_refused_reported_and_the_rest_is_built(
    fast_index_copy, knowledge_copy, fast_build, tmp_path
):
    index_copy = fast_index_copy
    outside = tmp_path / "etc-passwd"
    outside.write_text("root:x:0:0:root:/root:/bin/bash\nSECRET-LINE-FROM-OUTSIDE\n", encoding="utf-8")
    (knowledge_copy / "passwd.md").symlink_to(outside)
    os.mkfifo(knowledge_copy / "pipe.md")
    (knowledge_copy / "zero.md").symlink_to("/dev/zero")
    (knowledge_copy / "gone.md").symlink_to(knowledge_copy / "deleted.md")
    (knowledge_copy / "huge.md").write_text(
        f"# Huge\n\nThe huge file also has a short paragraph about the office dog Biscuit.\n\n{ONE_MEGABYTE_LINE}\n",
        encoding="utf-8",
    )
    (knowledge_copy / "faq.md").write_text(
        "---\ntitle: Office FAQ\nsource_url: https://example.com/office faq\n---\n\n# Office FAQ\n\n"
        "The office opens at nine and closes at six on weekdays.\n",
        encoding="utf-8",
    )

    started = time.perf_counter()
    result = fast_build(knowledge_copy, index_copy)
    took = time.perf_counter() - started
    # before: the 1 MB paragraph's 13,000 sentences went through the model (202 s measured in the issue)
    assert took < 90, took
    assert result.skipped is False
    assert result.documents == 3  # faq.md, huge.md, ml-vs-genai.md

    by_file = {w.split(":", 1)[0].split(",", 1)[0]: w for w in result.warnings}
    assert set(by_file) == {"passwd.md", "pipe.md", "zero.md", "gone.md", "huge.md", "faq.md"}, result.warnings
    assert "outside the knowledge folder" in by_file["passwd.md"]
    assert "FIFO" in by_file["pipe.md"]
    assert "character device" in by_file["zero.md"]
    assert "broken link" in by_file["gone.md"]
    assert "QABOT_MAX_PASSAGE_CHARS" in by_file["huge.md"]
    assert "source_url dropped" in by_file["faq.md"]

    manifest = _manifest(index_copy)
    assert manifest["warnings"] == list(result.warnings)
    assert {d["path"]: d["source_url"] for d in manifest["documents"]}["faq.md"] is None
    passages = json.loads(((index_copy / "current").resolve() / "passages.json").read_text(encoding="utf-8"))
    texts = [p["text"] for p in passages["passages"]]
    assert not any("SECRET-LINE" in t or "root:x" in t for t in texts)
    assert max(len(t) for t in texts) < 2_000

    holder = EngineHolder(index_copy)
    assert "Biscuit" in holder.answer("what is the office dog called?").quotes[0].text

    again = fast_build(knowledge_copy, index_copy)
    assert again.skipped is True
    assert again.warnings == result.warnings  # a no-op build still tells what it refused


def test_a_front_matter_alias_bomb_fails_the_build_at_once_and_keeps_the_index(index_copy, knowledge_copy):
    (knowledge_copy / "bomb.md").write_text(f"---\n{ALIAS_BOMB}\n---\n\n# Bomb\n\nSome text.\n", encoding="utf-8")
    before = os.readlink(index_copy / "current")
    started = time.perf_counter()
    with pytest.raises(BuildError, match=r"bomb\.md: the front matter uses a YAML anchor or alias"):
        build_index(knowledge_copy, index_copy)
    assert time.perf_counter() - started < 10  # before: 78 s and 3 GB of memory, then the build went on
    assert os.readlink(index_copy / "current") == before


def test_a_folder_where_everything_is_refused_says_why(index_copy, tmp_path):
    knowledge = tmp_path / "k"
    knowledge.mkdir()
    (knowledge / "zero.md").symlink_to("/dev/zero")
    (knowledge / "big.md").write_text("# Big\n\n" + "Some words in a paragraph. " * 100, encoding="utf-8")
    before = os.readlink(index_copy / "current")
    with pytest.raises(BuildError, match=r"no \.md or \.txt documents") as err:
        build_index(knowledge, index_copy, limits=SourceLimits(max_document_bytes=500))
    assert "zero.md: skipped" in str(err.value) and "QABOT_MAX_DOCUMENT_BYTES" in str(err.value)
    assert os.readlink(index_copy / "current") == before


def test_a_bad_limit_setting_is_a_build_error_naming_it(index_copy, knowledge_copy, monkeypatch):
    monkeypatch.setenv("QABOT_MAX_DOCUMENT_BYTES", "two megabytes")
    with pytest.raises(BuildError, match="QABOT_MAX_DOCUMENT_BYTES must be a whole number"):
        build_index(knowledge_copy, index_copy)
