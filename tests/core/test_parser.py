"""The parser on the real article: sections, front matter, passages verbatim, captions and page furniture out.

Also checks that knowledge/ml-vs-genai.md says exactly what the source article says (the bot quotes the
Markdown, so a word changed in the conversion would be a misquote).
"""

from __future__ import annotations

import datetime
import re
from pathlib import Path

import pytest

from index_builder.parser import (
    DocumentError,
    find_documents,
    load_document,
    parse_plain_text,
    passages_from_document,
    split_sentences,
)

ROOT = Path(__file__).resolve().parents[2]
KNOWLEDGE_DIR = ROOT / "knowledge"
ARTICLE_MD = KNOWLEDGE_DIR / "ml-vs-genai.md"
# the plain-text article the Markdown was converted from (a copy of shared/source/, so CI needs nothing beside the repo)
SOURCE_TXT = Path(__file__).parent / "data" / "ml-vs-genai-article.txt"

TITLE = "Machine Learning vs Generative AI: What’s the Difference?"
APPLICATIONS = "Applications and Use Cases of Gen AI and Machine Learning"
BENEFITS = "Unique Benefits and Limitations"
SKILLS = "Skill Sets and Educational Paths for Gen AI and ML"

EXPECTED_SECTIONS = [
    ("What is Machine Learning?",),
    ("What is Generative AI?",),
    ("Technical Foundations of Gen AI and ML",),
    (APPLICATIONS,),
    (APPLICATIONS, "Healthcare"),
    (APPLICATIONS, "Retail"),
    (APPLICATIONS, "Education"),
    (APPLICATIONS, "Customer Support"),
    (APPLICATIONS, "Finance"),
    (BENEFITS,),
    (BENEFITS, "Machine Learning Benefits"),
    (BENEFITS, "Machine Learning Limitations"),
    (BENEFITS, "Generative AI Benefits"),
    (BENEFITS, "Generative AI Limitations"),
    ("Future Developments and Ethical Considerations",),
    ("Integration Challenges",),
    (SKILLS,),
    (SKILLS, "Gen AI Skills Requirements"),
    (SKILLS, "Gen AI Educational Path"),
    (SKILLS, "ML Skills Requirement"),
    (SKILLS, "ML Educational Path"),
    ("Machine Learning vs Generative AI: Comparative Analysis",),
    ("How To Engage with Gen AI and ML Technologies",),
    ("In Closing: What’s The Difference Between Generative AI and Machine Learning?",),
]

# Sentences that only lead into what follows: never an answer on their own.
TRANSITIONS = [
    "But let’s start with the basics.",
    "So, now that you understand the two terms, how do they fit into the broader AI landscape?",
    "Here are Machine Learning vs Generative AI business use cases in different industries:",
    "Let’s explore the benefits and limitations of generative AI and machine learning.",
    "Now, let’s discuss the skill sets and educational paths you need to specialize in Machine Learning vs Generative AI.",
    "How do these two fair against each other in terms of efficiency, accuracy, and adaptability?",
    "Here’s an example of one.",
    "Machine Learning algorithms techniques include:",
    "You will face several challenges when introducing AI in business operations:",
]

PAGE_FURNITURE = [
    "Miquido Author",
    "Show more",
    "Your data is processed by Miquido",
    "marketing@miquido.com",
    "withdraw your consent",
    "Privacy Policy",
    "19 min read",
]

_CAPTION = re.compile(r'^!\[([^\]]*)\]\(#figure "Image Source: ([^"]+)"\)$')
_HEADING = re.compile(r"^#{1,6} (.+)$")


@pytest.fixture(scope="module")
def doc():
    return load_document(ARTICLE_MD, KNOWLEDGE_DIR)


@pytest.fixture(scope="module")
def passages(doc):
    return passages_from_document(doc)


def _md_body_lines() -> list[str]:
    """The Markdown file's lines after the front matter."""
    text = ARTICLE_MD.read_text(encoding="utf-8")
    assert text.startswith("---\n")
    _, _front, body = text.split("---\n", 2)
    return body.splitlines()


def _md_parts() -> tuple[list[str], list[str], list[tuple[str, str]]]:
    """(prose lines with list markers removed, headings, (caption, image source) pairs)."""
    prose, headings, captions = [], [], []
    for line in _md_body_lines():
        if not line.strip():
            continue
        if m := _HEADING.match(line):
            headings.append(m.group(1).strip())
        elif m := _CAPTION.match(line):
            captions.append((m.group(1), m.group(2)))
        else:
            prose.append(re.sub(r"^- ", "", line).strip())
    return prose, headings, captions


def _source_parts() -> tuple[list[str], list[tuple[str, str]]]:
    """(article lines, (caption, image source) pairs) of the plain-text source, page furniture cut off."""
    text = SOURCE_TXT.read_text(encoding="utf-8")
    body, sep, _footer = text.partition("\nMiquido Author\n")
    assert sep, "the source's footer marker moved; update this test"
    lines, captions = [], []
    for para in re.split(r"\n\s*\n", body):
        rows = [r.strip() for r in para.splitlines() if r.strip()]  # str.strip() also drops the U+00A0s
        if not rows:
            continue
        if len(rows) == 2 and rows[1].startswith("Image Source: "):
            captions.append((rows[0], rows[1].removeprefix("Image Source: ")))
            continue
        lines.extend(re.sub(r"^•\s*", "", r) for r in rows)
    return lines, captions


# ---------------------------------------------------------------- the document


def test_front_matter_is_parsed(doc):
    assert doc.title == TITLE
    assert doc.meta["publisher"] == "Miquido"
    assert doc.meta["date"] == datetime.date(2024, 3, 6)
    assert doc.path == "ml-vs-genai.md"
    assert len(doc.sha256) == 64


def test_sections_and_heading_paths(doc):
    paths = [s.path for s in doc.sections if s.path]
    assert paths == EXPECTED_SECTIONS


def test_passages_carry_their_heading_path(passages):
    def section_of(phrase: str) -> tuple[str, ...]:
        (hit,) = [p for p in passages if phrase in p.text]
        return hit.section_path

    assert section_of("analyze patient data or medical images") == (APPLICATIONS, "Healthcare")
    assert section_of("anomaly detection") == (BENEFITS, "Machine Learning Benefits")
    assert section_of("noisy or incomplete data") == (BENEFITS, "Machine Learning Limitations")
    assert section_of("algorithms that enable computers to learn from data") == ("What is Machine Learning?",)
    assert section_of("740 billion by 2030") == ()  # the introduction, before the first H2
    assert {p.doc_title for p in passages} == {TITLE}
    assert {p.doc_path for p in passages} == {"ml-vs-genai.md"}


def test_passage_ids_and_positions_are_unique_and_ordered(passages):
    assert len({p.passage_id for p in passages}) == len(passages)
    assert [p.position for p in passages] == list(range(len(passages)))
    assert [p.line for p in passages] == sorted(p.line for p in passages)


def test_captions_are_never_in_a_passage(passages):
    _, _, captions = _md_parts()
    assert len(captions) == 6  # the article's six figures are in the Markdown, as captions
    for p in passages:
        assert "Image Source" not in p.text
        assert "#figure" not in p.text
        for caption, source in captions:
            assert caption not in p.text, (caption, p.text)
            assert source not in p.text or source in ("Miquido", "Coursera", "LinkedIn"), (source, p.text)
    assert not any("a scheme of machine learning workflow" in p.text for p in passages)


def test_page_furniture_is_absent(passages):
    md = ARTICLE_MD.read_text(encoding="utf-8")
    for junk in PAGE_FURNITURE:
        assert junk not in md, junk
        assert not any(junk in p.text for p in passages), junk


def test_every_passage_is_verbatim_from_the_knowledge_file(passages):
    """Each line of a passage is one whole paragraph / list item / line of the Markdown, word for word."""
    prose, _, _ = _md_parts()
    prose_lines = set(prose)
    md = ARTICLE_MD.read_text(encoding="utf-8")
    for p in passages:
        assert p.text == p.text.strip()
        for line in p.text.split("\n"):
            if line:
                assert line in prose_lines, (line, p.passage_id)
                assert line in md
        for paragraph in p.text.split("\n\n"):
            assert paragraph.strip() == paragraph


def test_every_article_paragraph_is_quotable(passages):
    """Nothing the article says is lost, except transitions whose section has nothing else to quote."""
    prose, _, _ = _md_parts()
    quoted = "\n".join(p.text for p in passages)
    lost = [line for line in prose if line not in quoted]
    assert set(lost) <= {
        "Let’s explore the benefits and limitations of generative AI and machine learning.",
        "Now, let’s discuss the skill sets and educational paths you need to specialize in Machine Learning vs Generative AI.",
    }, lost


@pytest.mark.parametrize(
    ("lead_in", "items"),
    [
        ("Machine Learning algorithms techniques include:", ["Supervised:", "Unsupervised:", "Reinforcement:"]),
        (
            "You will face several challenges when introducing AI in business operations:",
            ["Skills gap:", "Resistance to change:", "Implementation costs:"],
        ),
    ],
)
def test_list_items_carry_their_lead_in(passages, lead_in, items):
    for item in items:
        holders = [p for p in passages if any(line.startswith(item) for line in p.text.split("\n"))]
        assert holders, item
        for p in holders:
            assert lead_in in p.text, (item, p.text)
            assert p.text.index(lead_in) < p.text.index(item)
            assert p.kind in ("item", "list")
            assert p.list_id is not None
    assert not any(p.text == lead_in for p in passages)


def test_transitions_never_stand_alone(passages):
    texts = {p.text.strip() for p in passages}
    for sentence in TRANSITIONS:
        assert sentence not in texts, sentence
    for p in passages:
        # a lone lead-in (":") or a lone rhetorical question ("?") is no answer
        assert not (p.text.endswith((":", "?")) and "\n" not in p.text), p.text


def test_here_is_an_example_is_attached_to_the_linkedin_paragraph(passages):
    holders = [p for p in passages if "Here’s an example of one." in p.text]
    assert len(holders) == 1
    (p,) = holders
    assert p.text != "Here’s an example of one."
    assert "LinkedIn groups focused on AI and Machine Learning" in p.text  # the figure it introduces is LinkedIn's
    assert p.section_path == ("How To Engage with Gen AI and ML Technologies",)


def test_sentence_spans_cover_real_sentences(passages):
    for p in passages:
        assert p.sentences, p.text
        for start, end in p.sentences:
            assert 0 <= start < end <= len(p.text)
            sentence = p.text[start:end]
            assert sentence == sentence.strip()
            assert "\n" not in sentence
    assert split_sentences("One thing. Two things! Three?\nFour") == [(0, 10), (11, 22), (23, 29), (30, 34)]


# ---------------------------------------------------------------- the Markdown against the source article


def test_markdown_headings_are_the_source_headings():
    _, headings, _ = _md_parts()
    source_lines, _ = _source_parts()
    assert headings[0] == TITLE
    assert headings[1:] == [path[-1] for path in EXPECTED_SECTIONS]
    for heading in headings:
        assert heading in source_lines, heading


def test_markdown_wording_matches_the_source_article():
    prose, headings, _ = _md_parts()
    source_lines, _ = _source_parts()
    source_prose = [line for line in source_lines if line not in headings and line != "6 Mar 2024 | 19 min read"]
    assert source_prose == prose  # same paragraphs and list items, same words, same order


def test_markdown_captions_are_the_source_captions():
    _, _, md_captions = _md_parts()
    _, source_captions = _source_parts()
    assert md_captions == source_captions


# ---------------------------------------------------------------- other inputs


def test_plain_text_file_is_parsed_into_paragraphs(tmp_path):
    (tmp_path / "team-notes.txt").write_text(
        "The build server restarts every night at two. It takes ten minutes.\nNobody needs to watch it.\n"
        "\n\n  Deploys happen on Tuesdays after the stand-up. Friday deploys need a second reviewer.  \n",
        encoding="utf-8",
    )
    doc = load_document(tmp_path / "team-notes.txt", tmp_path)
    assert doc.title == "team notes"
    passages = passages_from_document(doc)
    assert [p.text for p in passages] == [
        "The build server restarts every night at two. It takes ten minutes.\nNobody needs to watch it.",
        "Deploys happen on Tuesdays after the stand-up. Friday deploys need a second reviewer.",
    ]
    assert all(p.section_path == () for p in passages)
    assert parse_plain_text("", "empty.txt").sections[0].blocks == []


def test_markdown_heading_paths_nest_and_reset():
    from index_builder.parser import parse_markdown

    text = "# Doc\n\nIntro text here.\n\n## A\n\nAbout A.\n\n### A1\n\nAbout A1.\n\n## B\n\nAbout B.\n\n#### B deep\n\nDeep.\n"
    doc = parse_markdown(text, "d.md")
    assert doc.title == "Doc"
    assert [s.path for s in doc.sections] == [(), ("A",), ("A", "A1"), ("B",), ("B", "B deep")]


def test_crlf_and_bom_are_normalised(tmp_path):
    (tmp_path / "win.md").write_bytes("\ufeff# Win\r\n\r\nLine one of a paragraph.\r\nLine two.\r\n".encode())
    doc = load_document(tmp_path / "win.md", tmp_path)
    (p,) = passages_from_document(doc)
    assert doc.title == "Win"
    assert p.text == "Line one of a paragraph.\nLine two."


def test_file_that_is_not_utf8_is_named_in_the_error(tmp_path):
    (tmp_path / "latin1.md").write_bytes("# Caf\xe9\n\nna\xefve text\n".encode("latin-1"))
    with pytest.raises(DocumentError, match=r"latin1\.md.*UTF-8"):
        load_document(tmp_path / "latin1.md", tmp_path)


def test_bad_front_matter_is_named_in_the_error(tmp_path):
    (tmp_path / "bad.md").write_text("---\ntitle: [unclosed\n---\n\nText.\n", encoding="utf-8")
    with pytest.raises(DocumentError, match=r"bad\.md"):
        load_document(tmp_path / "bad.md", tmp_path)


def test_find_documents_skips_hidden_files_and_folders(tmp_path):
    (tmp_path / "a.md").write_text("# A\n\nText.\n", encoding="utf-8")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "b.txt").write_text("Text.\n", encoding="utf-8")
    (tmp_path / ".hidden.md").write_text("# H\n\nText.\n", encoding="utf-8")
    (tmp_path / ".git").mkdir()
    (tmp_path / ".git" / "c.md").write_text("# C\n\nText.\n", encoding="utf-8")
    (tmp_path / "folder.md").mkdir()  # a directory with a document's name is not a document
    (tmp_path / "image.png").write_bytes(b"\x89PNG")
    found = [p.relative_to(tmp_path).as_posix() for p in find_documents(tmp_path)]
    assert found == ["a.md", "sub/b.txt"]


def test_a_section_of_one_short_fact_is_kept():
    """A short plain statement is content, not a transition: a small FAQ entry must be quotable."""
    from index_builder.parser import parse_markdown

    text = (
        "# Office FAQ\n\n## Office dog\n\nThe office dog is called Biscuit and visits on Fridays.\n\n"
        "## Parking\n\nParking is free for staff.\n"
    )
    passages = passages_from_document(parse_markdown(text, "faq.md"))
    by_section = {p.section_path: p.text for p in passages}
    assert "Biscuit" in by_section.get(("Office dog",), ""), passages
    assert "Parking is free" in by_section.get(("Parking",), ""), passages
