"""The one splitter for long replies (bot.core.split): every front end's chunks come from here."""

from __future__ import annotations

import pytest

from bot.core.split import ELLIPSIS, clip, line_spans, pack_lines, split_text


def escaped(text: str) -> int:  # Slack-like: & < > grow when escaped
    return len(text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;"))


def test_short_text_is_one_chunk_and_empty_text_none():
    assert split_text("hello\nworld", 100) == ["hello\nworld"]
    assert split_text("", 10) == [] and split_text("  \n \n", 10) == []


def test_split_never_exceeds_the_limit_even_without_spaces():
    chunks = split_text("a" * 5000 + "\n" + "b c " * 1000, 2000)
    assert all(0 < len(c) <= 2000 for c in chunks)
    assert "".join(chunks).replace("\n", "").replace(" ", "") == ("a" * 5000 + "bc" * 1000)


def test_lines_are_kept_whole_where_they_fit_and_cut_at_spaces_otherwise():
    text = "first line\n" + " ".join(f"word{i}" for i in range(40)) + "\nlast"
    chunks = split_text(text, 60)
    assert chunks[0].startswith("first line")
    assert all(len(c) <= 60 for c in chunks)
    words = [w for c in chunks for w in c.split()]
    assert words == text.split()  # no word was cut: every cut fell on a space


def test_size_measures_the_escaped_text_and_no_cut_splits_an_escape():
    text = "&" * 30 + " " + "<b> " * 20
    chunks = split_text(text, 50, size=escaped)
    assert all(escaped(c) <= 50 for c in chunks)
    assert "".join(chunks).replace(" ", "") == text.replace(" ", "")


def test_line_spans_keep_blank_lines_and_point_into_the_text():
    text = "ab cd ef\n\ngh"
    assert line_spans(text, 5, start=0, end=8) == [(0, 5), (6, 8)]
    assert line_spans(text, 5, start=9, end=9) == [(9, 9)]  # the blank line survives as an empty span
    assert [text[s:e] for s, e in line_spans(text, 5, start=0, end=8)] == ["ab cd", "ef"]


def test_pack_lines_joins_what_fits():
    assert pack_lines(["aa", "bb", "cc"], 5) == ["aa\nbb", "cc"]
    assert pack_lines([], 5) == []


@pytest.mark.parametrize(
    ("text", "limit", "expected"), [("short", 10, "short"), ("abcdef ghij", 8, "abcdef…"), ("abc", 1, "…")]
)
def test_clip(text, limit, expected):
    assert clip(text, limit) == expected
    assert len(clip(text, limit)) <= limit


def test_clip_with_a_size_function():
    out = clip("&&&&&&&&&&", 12, size=escaped)
    assert out.endswith(ELLIPSIS) and escaped(out) <= 12


def test_limits_below_one_are_refused():
    with pytest.raises(ValueError):
        split_text("x", 0)
    with pytest.raises(ValueError):
        clip("x", 0)
