"""trim_quote: one answer's quotes are capped the same way on every front end."""

from __future__ import annotations

import pytest

from bot.core.render import render_plain
from bot.core.trim import ELLIPSIS, section_pointer, sentence_spans, trim_quote, trim_text
from bot.core.types import Answer, AnswerKind, Confidence, Quote


def quote(text: str, highlight: tuple[int, int] | None = None) -> Quote:
    return Quote(
        text=text,
        document="Big Doc",
        doc_path="big.md",
        section="Part > Chapter",
        section_path=("Part", "Chapter"),
        score=0.9,
        passage_id="p1",
        highlight=highlight,
    )


def sentences(n: int, size: int = 60) -> str:
    return " ".join(f"Sentence {i} " + "x" * (size - len(f"Sentence {i} ") - 1) + "." for i in range(n))


def verbatim_pieces(out: str) -> list[str]:
    return [p for p in out.replace(ELLIPSIS, "\0").split("\0") if p.strip()]


def test_short_quotes_are_left_alone():
    q = quote("Short. Passage.", (0, 6))
    result = trim_quote(q, 100)
    assert result.quote is q and result.pointer is None and not result.trimmed


def test_a_long_quote_keeps_the_best_sentence_cuts_at_sentence_ends_and_points_to_the_section():
    text = sentences(200)  # 12,000 characters
    best = text.index("Sentence 120 ")
    best_end = text.index(".", best) + 1
    result = trim_quote(quote(text, (best, best_end)), 1000)
    out = result.quote.text
    assert len(out) <= 1000
    assert out.startswith(ELLIPSIS + " Sentence ") and out.endswith("." + " " + ELLIPSIS)
    for piece in verbatim_pieces(out):
        assert piece.strip() in text  # what is kept is verbatim
    hs, he = result.quote.highlight
    assert out[hs:he] == text[best:best_end]  # the highlight moved with the text
    assert result.pointer == "Shortened; the full passage is in Big Doc › Part › Chapter."


def test_without_a_highlight_the_start_is_kept():
    text = sentences(50)
    out, highlight, trimmed = trim_text(text, None, 300)
    assert trimmed and highlight is None
    assert out.startswith("Sentence 0 ") and out.endswith(ELLIPSIS) and len(out) <= 300


def test_one_huge_sentence_is_cut_at_a_word_boundary():
    text = "word " * 200_000 + "end."  # a 1 MB single sentence
    out, highlight, trimmed = trim_text(text, (0, len(text)), 2000)
    assert trimmed and len(out) <= 2000
    assert out.endswith("word " + ELLIPSIS)
    assert highlight is not None and out[highlight[0] : highlight[1]].strip().startswith("word")


def test_lines_count_as_sentence_boundaries_and_blank_lines_stay():
    text = "Intro line\n\n" + "\n".join(f"- item {i} with some words" for i in range(100))
    out, _, trimmed = trim_text(text, None, 200)
    assert trimmed and out.startswith("Intro line\n\n- item 0")
    assert len(out) <= 200


def test_sentence_spans_keep_closing_quotes():
    t = 'He said "Stop." Then left. 3 more?  (yes) fine.\nNext line'
    assert [t[a:b] for a, b in sentence_spans(t)] == [
        'He said "Stop."',
        "Then left.",
        "3 more?",
        "(yes) fine.",
        "Next line",
    ]


@pytest.mark.parametrize("limit", [1, 3, 5, 10, 17, 64])
def test_every_limit_is_respected(limit):
    text = sentences(20)
    out, _, _ = trim_text(text, (130, 170), limit)
    assert 0 < len(out) <= limit


def test_pointer_without_section_path_uses_the_document():
    q = Quote(text="x", document="Doc", doc_path="d.md", section="Doc", section_path=(), score=1, passage_id="p")
    assert section_pointer(q) == "Shortened; the full passage is in Doc."


def test_the_terminal_rendering_is_capped_too():
    text = sentences(20_000)  # 1.2 MB in one passage
    answer = Answer(
        question="q",
        normalized_question="q",
        kind=AnswerKind.ANSWER,
        confidence=Confidence.HIGH,
        quotes=(quote(text, (0, 59)),),
        message="Here is what the knowledge says:",
    )
    out = render_plain(answer)
    assert len(out) < 5000
    assert "Shortened; the full passage is in Big Doc › Part › Chapter." in out
