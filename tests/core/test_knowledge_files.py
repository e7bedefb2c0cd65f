"""Which files of the knowledge folder are read, and how: links, FIFOs, devices, sizes, front matter, URLs.

Everything here runs the real discovery, reader and parser on real files (links, FIFOs) in a scratch
folder; nothing is mocked. Building whole indexes from such folders is in test_hostile_knowledge.py.
"""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import pytest

from bot.config import ConfigError, Settings
from index_builder.parser import DocumentError, collect_knowledge, find_documents, load_front_matter
from index_builder.sources import RefusedDocument, SourceFile, SourceLimits, read_bytes

SECRET = "root:x:0:0:root:/root:/bin/bash\nSECRET-LINE-FROM-OUTSIDE the knowledge folder is here.\n"
PLAIN = "# Notes\n\nThe build server restarts every night at two and takes ten minutes to come back.\n"


@pytest.fixture
def folders(tmp_path) -> tuple[Path, Path]:
    """(knowledge folder with one real document, a file outside it standing in for /etc/passwd)."""
    knowledge = tmp_path / "knowledge"
    knowledge.mkdir()
    (knowledge / "notes.md").write_text(PLAIN, encoding="utf-8")
    outside = tmp_path / "etc-passwd"
    outside.write_text(SECRET, encoding="utf-8")
    return knowledge, outside


def _collect_in_time(knowledge: Path, seconds: float = 20, limits: SourceLimits | None = None):
    """collect_knowledge in a thread: a FIFO that is opened blocks forever, and the test must say so, not hang."""
    result: dict = {}

    def work() -> None:
        try:
            result["knowledge"] = collect_knowledge(knowledge, limits)
        except BaseException as err:  # handed to the test thread
            result["error"] = err

    thread = threading.Thread(target=work, daemon=True)
    thread.start()
    thread.join(seconds)
    assert not thread.is_alive(), "reading the knowledge folder hung (a FIFO or device was opened)"
    if "error" in result:
        raise result["error"]
    return result["knowledge"]


def _all_text(knowledge) -> str:
    return "\n".join(p.text for p in knowledge.passages)


# ---------------------------------------------------------------- item 12: only regular files inside the folder


def test_a_link_to_a_file_outside_the_folder_is_refused_and_reported(folders):
    knowledge, outside = folders
    (knowledge / "passwd.md").symlink_to(outside)
    (knowledge / "relative.txt").symlink_to(Path("..") / outside.name)  # a relative link out is no different
    got = _collect_in_time(knowledge)
    assert [d.path for d in got.documents] == ["notes.md"]
    assert "SECRET-LINE" not in _all_text(got) and "root:x" not in _all_text(got)
    assert any(w.startswith("passwd.md: skipped") and "outside the knowledge folder" in w for w in got.warnings)
    assert any(w.startswith("relative.txt: skipped") and "outside" in w for w in got.warnings)
    assert [p.name for p in find_documents(knowledge)] == ["notes.md"]


def test_a_fifo_is_refused_without_hanging(folders, tmp_path):
    knowledge, _ = folders
    os.mkfifo(knowledge / "pipe.md")  # opening it for reading would wait for a writer forever
    os.mkfifo(tmp_path / "outside-pipe")
    (knowledge / "linked-pipe.md").symlink_to(tmp_path / "outside-pipe")
    got = _collect_in_time(knowledge)
    assert [d.path for d in got.documents] == ["notes.md"]
    assert any(w.startswith("pipe.md: skipped") and "FIFO" in w for w in got.warnings), got.warnings
    assert any(w.startswith("linked-pipe.md: skipped") and "FIFO" in w for w in got.warnings), got.warnings


def test_a_file_swapped_for_a_fifo_after_listing_is_refused_without_hanging(folders):
    """The reader opens without blocking and checks the type again: listing and reading are not atomic."""
    knowledge, _ = folders
    os.mkfifo(knowledge / "late.md")
    started = time.perf_counter()
    with pytest.raises(RefusedDocument, match=r"late\.md.*FIFO"):
        read_bytes(SourceFile("late.md", knowledge / "late.md"))
    assert time.perf_counter() - started < 5


def test_a_link_to_a_device_is_refused(folders):
    knowledge, _ = folders
    (knowledge / "zero.md").symlink_to("/dev/zero")  # endless bytes if it were read
    (knowledge / "null.txt").symlink_to("/dev/null")
    got = _collect_in_time(knowledge)
    assert [d.path for d in got.documents] == ["notes.md"]
    assert any(w.startswith("zero.md: skipped") and "character device" in w for w in got.warnings), got.warnings
    assert any(w.startswith("null.txt: skipped") and "character device" in w for w in got.warnings)


def test_a_device_read_directly_is_refused():
    with pytest.raises(RefusedDocument, match="character device"):
        read_bytes(SourceFile("zero.md", Path("/dev/zero")))


def test_broken_links_and_link_loops_are_reported(folders):
    knowledge, _ = folders
    (knowledge / "gone.md").symlink_to(knowledge / "deleted-long-ago.md")
    (knowledge / "loop-a.md").symlink_to(knowledge / "loop-b.md")
    (knowledge / "loop-b.md").symlink_to(knowledge / "loop-a.md")
    got = _collect_in_time(knowledge)
    assert [d.path for d in got.documents] == ["notes.md"]
    assert any(w.startswith("gone.md: skipped: a broken link") for w in got.warnings), got.warnings
    assert any(w.startswith("loop-a.md: skipped") and "loop" in w for w in got.warnings), got.warnings


def test_a_link_to_a_file_inside_the_folder_is_indexed(folders):
    knowledge, _ = folders
    drafts = knowledge / ".drafts"  # hidden: not a document by itself
    drafts.mkdir()
    (drafts / "faq.md").write_text("# FAQ\n\nThe office dog is called Biscuit and visits on Fridays.\n", "utf-8")
    (knowledge / "faq.md").symlink_to(Path(".drafts") / "faq.md")
    got = _collect_in_time(knowledge)
    assert [d.path for d in got.documents] == ["faq.md", "notes.md"]
    assert "Biscuit" in _all_text(got)
    assert got.warnings == []


def test_a_link_to_a_document_is_not_indexed_twice(folders):
    knowledge, _ = folders
    (knowledge / "copy-of-notes.md").symlink_to("notes.md")
    got = _collect_in_time(knowledge)
    assert [d.path for d in got.documents] == ["notes.md"]
    assert any(w.startswith("copy-of-notes.md: skipped") and "indexed as notes.md" in w for w in got.warnings)


def test_linked_folders_are_not_followed(folders, tmp_path):
    knowledge, outside = folders
    (knowledge / "etc").symlink_to(outside.parent)  # a link to a folder holding the stand-in for /etc/passwd
    (outside.parent / "passwd.md").write_text(SECRET, encoding="utf-8")
    got = _collect_in_time(knowledge)
    assert [d.path for d in got.documents] == ["notes.md"]
    assert "SECRET-LINE" not in _all_text(got)
    assert any(w.startswith("etc: skipped: a link to a folder") for w in got.warnings), got.warnings


# ---------------------------------------------------------------- item 13: sizes


def test_a_file_over_the_size_limit_is_skipped_with_the_setting_named(folders):
    knowledge, _ = folders
    (knowledge / "dump.md").write_text("# Dump\n\n" + "A sentence of a large dump. " * 100, encoding="utf-8")
    size = (knowledge / "dump.md").stat().st_size
    got = _collect_in_time(knowledge, limits=SourceLimits(max_document_bytes=1_000))
    assert [d.path for d in got.documents] == ["notes.md"]
    (warning,) = [w for w in got.warnings if w.startswith("dump.md")]
    assert f"{size:,} bytes" in warning and "1,000 bytes" in warning and "QABOT_MAX_DOCUMENT_BYTES" in warning
    raised = _collect_in_time(knowledge, limits=SourceLimits(max_document_bytes=size))
    assert [d.path for d in raised.documents] == ["dump.md", "notes.md"]


def test_the_reader_never_reads_past_the_limit(folders):
    """A file that grew after it was listed is refused, not read whole."""
    knowledge, _ = folders
    with pytest.raises(RefusedDocument, match="QABOT_MAX_DOCUMENT_BYTES"):
        read_bytes(SourceFile("notes.md", knowledge / "notes.md"), SourceLimits(max_document_bytes=10))


@pytest.mark.parametrize(
    "unit",
    ["Generative models create new content from the patterns they learned. ", "![", "["],
    ids=["sentences", "unclosed-images", "unclosed-links"],  # before: 202 s (embedding), 291 s and 117 s (parsing)
)
def test_a_one_megabyte_single_line_paragraph_is_refused_quickly(folders, unit):
    knowledge, _ = folders
    line = (unit * (1_000_000 // len(unit) + 1))[:1_000_000]
    (knowledge / "huge.md").write_text(
        f"# Huge\n\n## Part\n\nA normal paragraph before the long one stays quotable.\n\n{line}\n", encoding="utf-8"
    )
    started = time.perf_counter()
    got = _collect_in_time(knowledge)
    took = time.perf_counter() - started
    assert took < 10, took
    (warning,) = [w for w in got.warnings if w.startswith("huge.md")]
    assert "section “Part”, line 7" in warning
    assert "1,000,000 characters" in warning and "20,000" in warning and "QABOT_MAX_PASSAGE_CHARS" in warning
    texts = [p.text for p in got.passages if p.doc_path == "huge.md"]
    assert texts == ["A normal paragraph before the long one stays quotable."]


def test_a_long_paragraph_under_a_raised_limit_is_parsed_quickly(folders):
    """Raising the limit is allowed: parsing and sentence splitting stay linear (the cost is embedding)."""
    knowledge, _ = folders
    sentence = "Generative models create new content from the patterns they learned. "
    (knowledge / "huge.md").write_text("# Huge\n\n" + sentence * 14_000 + "\n", encoding="utf-8")
    started = time.perf_counter()
    got = _collect_in_time(knowledge, limits=SourceLimits(max_passage_chars=2_000_000))
    assert time.perf_counter() - started < 5
    (huge,) = [p for p in got.passages if p.doc_path == "huge.md"]
    assert len(huge.sentences) == 14_000
    assert any("far over the usual size" in w for w in got.warnings)


def test_limits_come_from_settings():
    settings = Settings.from_env({"QABOT_MAX_DOCUMENT_BYTES": "5000", "QABOT_MAX_PASSAGE_CHARS": "300"}, None)
    assert SourceLimits.from_settings(settings) == SourceLimits(5000, 300)
    assert SourceLimits.from_settings(Settings.from_env({}, None)) == SourceLimits()
    for bad in ("0", "-1", "lots"):
        with pytest.raises(ConfigError, match="QABOT_MAX_PASSAGE_CHARS"):
            Settings.from_env({"QABOT_MAX_PASSAGE_CHARS": bad}, None)


# ---------------------------------------------------------------- item 13: front matter

ALIAS_BOMB = "\n".join(
    ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    + [
        f"{name}: &{name} [" + ",".join([f"*{prev}"] * 9) + "]"
        for prev, name in zip("abcdefgh", "bcdefghi", strict=True)
    ]
    + ["title: *i"]
)


def test_a_yaml_alias_bomb_in_front_matter_is_refused_at_once(tmp_path):
    (tmp_path / "bomb.md").write_text(f"---\n{ALIAS_BOMB}\n---\n\n# Bomb\n\nSome text.\n", encoding="utf-8")
    started = time.perf_counter()
    with pytest.raises(DocumentError, match=r"bomb\.md: the front matter uses a YAML anchor or alias \(line 2\)"):
        collect_knowledge(tmp_path)
    assert time.perf_counter() - started < 2


@pytest.mark.parametrize(
    "front_matter",
    ["title: &t Handbook\nsubtitle: *t", "tags: [a, b]\nother: &x {k: v}", "title: !!str &t x"],
    ids=["alias", "anchor-only", "tagged-anchor"],
)
def test_any_anchor_or_alias_is_refused(front_matter):
    with pytest.raises(DocumentError, match="anchor or alias"):
        load_front_matter(front_matter, "doc.md")


def test_front_matter_that_is_too_big_or_too_deep_is_refused():
    with pytest.raises(DocumentError, match=r"65,536"):
        load_front_matter("note: " + "x" * 70_000, "doc.md")
    with pytest.raises(DocumentError, match="nested more than 20 levels"):
        load_front_matter("deep: " + "[" * 5_000 + "]" * 5_000, "doc.md")  # PyYAML recursion otherwise
    with pytest.raises(DocumentError, match="cannot read"):
        load_front_matter("count: " + "9" * 5_000, "doc.md")  # over Python's 4,300-digit int limit
    assert load_front_matter("title: Handbook\ndate: 2024-03-06\ntags: [a, b]", "doc.md")["tags"] == ["a", "b"]


def test_a_title_that_is_not_text_is_ignored_with_a_warning(tmp_path):
    (tmp_path / "doc.md").write_text("---\ntitle: {a: 1}\n---\n\n# Real Title\n\nSome text here.\n", "utf-8")
    got = collect_knowledge(tmp_path)
    assert got.documents[0].title == "Real Title"
    assert got.warnings == ["doc.md: title ignored: it is not text but dict"]


# ---------------------------------------------------------------- item 5 (build time): source_url


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("https://example.com/a page", "spaces"),
        ("https://example.com/\u202eevil", "control"),
        ("https://example.com/\x07", "control"),
        ("https://example.com/" + "a" * 2_100, "2,048"),
        ("javascript:alert(1)", "http"),
        ("ftp://example.com/file", "http"),
        ("example.com/page", "http"),
        ("https://", "host"),
        ("http://[::1/broken", "parsed"),
        ("https://example.com:99999/", "parsed"),
        (12345, "not text"),
        # Slack's <url|text> link syntax breaks on these, Discord's URL check refuses them (issue 9 item 6)
        ("https://example.com/a|b", "'|' (%7C)"),
        ("https://example.com/<b>", "'<' (%3C)"),
        ("https://example.com/50%off", "%25"),
    ],
)
def test_a_bad_source_url_is_dropped_with_a_warning_and_the_document_kept(tmp_path, url, reason):
    value = f'"{url}"' if isinstance(url, str) else str(url)
    value = value.replace("\x07", "\\a")
    (tmp_path / "doc.md").write_text(
        f"---\ntitle: Handbook\nsource_url: {value}\n---\n\n# Handbook\n\nThe office opens at nine every day.\n",
        encoding="utf-8",
    )
    got = collect_knowledge(tmp_path)
    (doc,) = got.documents
    assert doc.source_url is None
    assert [p.text for p in got.passages] == ["The office opens at nine every day."]
    (warning,) = got.warnings
    assert warning.startswith("doc.md: source_url dropped (") and reason in warning, warning


@pytest.mark.parametrize(
    "url", ["https://www.miquido.com/blog/machine-learning-vs-generative-ai/", "http://example.com:8080/a?b=c#d"]
)
def test_a_good_source_url_is_kept(tmp_path, url):
    (tmp_path / "doc.md").write_text(f"---\nsource_url: {url}\n---\n\n# H\n\nThe office opens at nine.\n", "utf-8")
    got = collect_knowledge(tmp_path)
    assert got.documents[0].source_url == url
    assert got.warnings == []


def test_source_kind_is_web_or_repository_and_anything_else_is_reported(tmp_path):
    body = "\n\n# H\n\nThe office opens at nine.\n"
    (tmp_path / "page.md").write_text("---\nsource_url: https://example.com/faq\n---" + body, "utf-8")
    (tmp_path / "repo.md").write_text("---\nsource_url: https://github.com/a/b/blob/main/faq.md\n---" + body, "utf-8")
    (tmp_path / "said.md").write_text(
        "---\nsource_url: https://example.com/faq\nsource_kind: repository\n---" + body, "utf-8"
    )
    (tmp_path / "odd.md").write_text("---\nsource_url: https://example.com/x\nsource_kind: wiki\n---" + body, "utf-8")
    got = collect_knowledge(tmp_path)
    kinds = {d.path: d.source_kind for d in got.documents}
    assert kinds == {"odd.md": "web", "page.md": "web", "repo.md": "repository", "said.md": "repository"}
    assert got.warnings == ["odd.md: source_kind ignored: 'wiki' is not one of web, repository"]


# ---------------------------------------------------------------- issue 11 item 2: deep nesting loses nothing


def _nested_list(depth: int) -> str:
    items = "".join("  " * level + f"- Item at level {level} says word{level}x.\n" for level in range(depth))
    return (
        f"# Nested\n\nAn introduction to the nested list.\n\n{items}\n## Later section\n\nThe later section survives.\n"
    )


def _nested_quotes(depth: int) -> str:
    quotes = "".join(
        ">" * level + f" Quote at depth {level} says word{level}x.\n" + ">" * level + "\n"
        for level in range(1, depth + 1)
    )
    return f"# Quotes\n\n{quotes}\n## After\n\nText after the quotes survives.\n"


@pytest.mark.parametrize("depth", [10, 12, 30])
def test_deeply_nested_lists_lose_no_text(tmp_path, depth):
    (tmp_path / "doc.md").write_text(_nested_list(depth), encoding="utf-8")
    got = collect_knowledge(tmp_path)
    text = _all_text(got)
    for level in range(depth):
        assert f"word{level}x" in text, level
    later = [p for p in got.passages if p.section_path == ("Later section",)]
    assert [p.text for p in later] == ["The later section survives."]
    assert got.warnings == []


@pytest.mark.parametrize("depth", [20, 25, 60])
def test_deeply_nested_quotes_lose_no_text(tmp_path, depth):
    (tmp_path / "doc.md").write_text(_nested_quotes(depth), encoding="utf-8")
    got = collect_knowledge(tmp_path)
    text = _all_text(got)
    for level in range(1, depth + 1):
        assert f"word{level}x" in text, level
    assert "Text after the quotes survives." in text
    assert got.warnings == []


def test_text_nested_past_what_the_parser_keeps_is_reported(tmp_path):
    """Beyond 50 nested lists the Markdown parser drops text: the word count says so, with the line."""
    (tmp_path / "lists.md").write_text(_nested_list(70), encoding="utf-8")
    (tmp_path / "quotes.md").write_text(_nested_quotes(150), encoding="utf-8")
    got = collect_knowledge(tmp_path)
    lists = next(w for w in got.warnings if w.startswith("lists.md:"))
    assert "are in no passage, from line 54 on" in lists and "word50x" in lists
    quotes = next(w for w in got.warnings if w.startswith("quotes.md:"))
    assert "are in no passage" in quotes


def test_the_article_loses_no_words():
    got = collect_knowledge(Path(__file__).resolve().parents[2] / "knowledge")
    assert got.warnings == []


def test_what_is_left_out_on_purpose_is_not_reported(tmp_path):
    """Headings, captions, link targets, code and HTML blocks, reference definitions: not prose, not lost."""
    (tmp_path / "doc.md").write_text(
        '# Guide\n\n## Set-up\n\nRead [the manual][man] and the [wiki](https://wiki.example.com/set_up "Wiki").\n\n'
        '![A diagram of the deployment pipeline](#figure "Image Source: Example Corp")\n\n'
        "```bash\nmake deploy --environment production\n```\n\n"
        '<div class="note">internal banner markup</div>\n\n'
        "Costs are shown in &euro; and &#36;, with &nbsp;spacing.\n\n"
        '[man]: https://docs.example.com/manual "The Manual"\n',
        encoding="utf-8",
    )
    got = collect_knowledge(tmp_path)
    assert got.warnings == []
    assert "make deploy" not in _all_text(got)


def test_long_passages_are_reported_with_document_section_and_size(tmp_path):
    paragraph = "This policy sentence explains one more rule of the expense process in detail. " * 60
    (tmp_path / "policy.md").write_text(f"# Policy\n\n## Expenses\n\n{paragraph.strip()}\n", encoding="utf-8")
    got = collect_knowledge(tmp_path)
    (warning,) = got.warnings
    size = len(paragraph.strip())
    assert warning.startswith("policy.md, section “Expenses”, line 5: a passage of ")
    assert f"{size:,} characters, far over the usual size" in warning


def test_a_long_run_of_short_paragraphs_is_not_merged_into_one_passage(tmp_path):
    """Short paragraphs are attached to their neighbours, but only up to the merge limit (before: one
    6,378-character passage for this glossary, growing with the document)."""
    glossary = "\n\n".join(f"Term{i} means thing number {i}." for i in range(200))
    (tmp_path / "glossary.md").write_text(f"# FAQ\n\n## Glossary\n\n{glossary}\n", encoding="utf-8")
    got = collect_knowledge(tmp_path)
    assert len(got.passages) > 5
    assert max(len(p.text) for p in got.passages) < 1_000
    text = _all_text(got)
    assert all(f"Term{i} means" in text for i in range(200))
    assert got.warnings == []


def test_huge_headings_and_titles_are_cut_with_a_warning(tmp_path):
    """A heading is repeated with every passage of its section: a 100 KB one would be copied into each."""
    heading = "Word " * 20_000
    paragraphs = "\n\n".join(f"Paragraph number {n} says something useful about the topic." for n in range(5))
    (tmp_path / "doc.md").write_text(f"---\ntitle: {'T' * 1_000}\n---\n\n## {heading}\n\n{paragraphs}\n", "utf-8")
    got = collect_knowledge(tmp_path)
    assert len(got.documents[0].title) == 300
    assert all(len(p.section_path[0]) == 300 and len(p.doc_title) == 300 for p in got.passages)
    assert any("a heading of 99,999 characters, cut to its first 300" in w for w in got.warnings), got.warnings
    assert any("a title of 1,000 characters" in w for w in got.warnings), got.warnings


def test_many_paragraphs_of_unclosed_brackets_parse_in_bounded_time(tmp_path):
    """Under the limits, the Markdown parser's cost stays linear: 156 KB of "![" in 39,000-character
    paragraphs. Guards the inline nesting limit: with it at 100 (what block nesting needs), a paragraph
    took 10.5 s; at 10, under 1 s."""
    paragraph = "![" * 19_500
    (tmp_path / "brackets.md").write_text("# B\n\n" + "\n\n".join([paragraph] * 4) + "\n", "utf-8")
    started = time.perf_counter()
    got = _collect_in_time(tmp_path, seconds=60)
    assert time.perf_counter() - started < 20
    assert len(got.warnings) == 4 and all("39,000 characters" in w for w in got.warnings)
