"""render_discord: Discord's size limits, verbatim quotes, markdown escaping, feedback buttons."""

from __future__ import annotations

import re

import discord
import pytest

from bot.adapters.discord.client import feedback_view
from bot.adapters.discord.render import (
    CONTENT_LIMIT,
    MessagePayload,
    as_block_quote,
    escape_quote_text,
    payload_within_limits,
    render_discord,
    split_text,
)
from bot.conversation.models import Button, Reply, ReplyKind
from bot.core.types import Answer, AnswerKind, Confidence, Quote
from tests.discord.harness import visible_text, within_limits

ANSWER_ID = "0f3c2a9be1d54c8c9e0d7f6a5b4c3d2e"
BUTTONS = (
    Button("qabot_feedback_up", "👍 Helpful", ANSWER_ID),
    Button("qabot_feedback_down", "👎 Not helpful", ANSWER_ID),
)


def _quote(text: str, n: int = 1, **kw) -> Quote:
    return Quote(
        text=text,
        document=kw.get("document", f"Document {n}"),
        doc_path=f"doc{n}.md",
        section=kw.get("section", f"Heading {n} > Sub {n}"),
        section_path=(f"Heading {n}", f"Sub {n}"),
        score=0.8,
        passage_id=f"p{n}",
        source_url=kw.get("source_url"),
    )


def _reply(*quotes: Quote, buttons=BUTTONS, hints: tuple[str, ...] = ()) -> Reply:
    answer = Answer(
        question="q",
        normalized_question="q",
        kind=AnswerKind.ANSWER,
        confidence=Confidence.MEDIUM,
        quotes=quotes,
        message="Here is what the knowledge says:",
        index_version="v1",
    )
    return Reply(ReplyKind.ANSWER, "plain text", answer=answer, buttons=buttons, hints=hints, answer_id=ANSWER_ID)


def _shown(payloads: list[MessagePayload]) -> str:
    """Every description as a person sees it, joined in order."""
    return "\n".join(visible_text(e.description or "") for p in payloads for e in p.embeds)


def _words(text: str) -> list[str]:
    return text.split()


def test_an_answer_has_a_lead_line_a_quote_embed_per_passage_and_buttons_on_the_last_message():
    reply = _reply(_quote("Machine learning learns from data.", 1), _quote("GenAI creates content.", 2))
    payloads = render_discord(reply)
    assert len(payloads) == 1
    (p,) = payloads
    assert "Here is what the knowledge says:" in p.content and "Confidence: **medium**" in p.content
    assert [e.description for e in p.embeds] == [
        "> Machine learning learns from data.",
        "> GenAI creates content.",
    ]
    assert p.embeds[0].title == "Document 1" and p.embeds[0].fields[0].value == "Heading 1 > Sub 1"
    assert "doc1.md" in p.embeds[0].footer.text and "medium" in p.embeds[0].footer.text
    assert p.buttons == BUTTONS


@pytest.mark.parametrize("length", [4096, 4097, 9_000, 30_000])
def test_a_huge_quote_is_split_across_embeds_and_messages_without_losing_a_word(length: int):
    words = [f"w{i}" for i in range(length)]
    text = ""
    for w in words:  # exactly `length` characters of words, some long lines, some short
        if len(text) + len(w) + 1 > length:
            break
        text += w + ("\n" if len(text) % 700 < 5 else " ")
    reply = _reply(_quote(text.strip(), 1), _quote("short one", 2))
    payloads = render_discord(reply)
    assert all(payload_within_limits(p) for p in payloads)
    assert all(within_limits({"content": p.content, "embeds": [e.to_dict() for e in p.embeds]}) for p in payloads)
    assert _words(_shown(payloads)) == _words(text) + ["short", "one"]
    assert [bool(p.buttons) for p in payloads] == [False] * (len(payloads) - 1) + [True]


def test_many_quotes_are_packed_into_several_messages_under_6000_characters_and_10_embeds():
    quotes = [_quote(("lorem ipsum " * 300).strip() + f" end{n}", n) for n in range(14)]
    payloads = render_discord(_reply(*quotes))
    assert len(payloads) > 1
    for p in payloads:
        assert len(p.embeds) <= 10 and sum(len(e) for e in p.embeds) <= 6000
    shown = _shown(payloads)
    assert [f"end{n}" for n in range(14)] == re.findall(r"end\d+", shown)


def test_markdown_in_quotes_is_escaped_and_shows_the_same_words():
    text = "Use **bold** and _x_ or a|b and `code`\n# Not a heading\n- not a list\n  - nested\n> not a quote\n[x](http://e.com)"
    (p,) = render_discord(_reply(_quote(text)))
    description = p.embeds[0].description
    assert "\\*\\*bold\\*\\*" in description and "\\# Not a heading" in description
    assert "  \\- nested" in description  # the backslash sits on the dash, not on the indentation
    assert all(line.startswith(">") for line in description.splitlines())
    assert visible_text(description) == text


def test_urls_in_quotes_stay_clickable():
    text = "See https://example.com/a_b_c for details"
    (p,) = render_discord(_reply(_quote(text)))
    assert "https://example.com/a_b_c" in p.embeds[0].description


def test_long_titles_sections_and_source_urls_are_trimmed_or_dropped_not_rejected():
    q = _quote("text", 1, document="T" * 400, section="S" * 3000, source_url="javascript:alert(1)")
    (p,) = render_discord(_reply(q))
    assert payload_within_limits(p)
    assert p.embeds[0].url is None
    q = _quote("text", 1, source_url="https://example.com/doc")
    (p,) = render_discord(_reply(q))
    assert p.embeds[0].url == "https://example.com/doc"


def test_plain_text_replies_are_split_at_2000_characters_keeping_every_line():
    lines = [f"line {i} " + "x" * 90 for i in range(80)]
    reply = Reply(ReplyKind.ADMIN, "\n".join(lines))
    payloads = render_discord(reply)
    assert len(payloads) > 1
    assert all(len(p.content) <= CONTENT_LIMIT and not p.embeds and not p.buttons for p in payloads)
    assert "\n".join(p.content for p in payloads).splitlines() == lines


def test_an_abstention_is_text_with_its_hints_and_no_buttons():
    reply = Reply(ReplyKind.ABSTAIN, "Not covered.\nClosest: A; B", hints=("Try rephrasing.",))
    (p,) = render_discord(reply)
    assert p.content == "Not covered.\nClosest: A; B\n-# Try rephrasing." and not p.buttons


def test_ignored_replies_render_nothing():
    assert render_discord(Reply(ReplyKind.IGNORED, "")) == []


@pytest.mark.parametrize("answer_id", ["has space", "x" * 200, "semi;colon", ""])
def test_buttons_whose_answer_id_cannot_be_a_custom_id_are_left_out(answer_id: str):
    buttons = (Button("qabot_feedback_up", "👍", answer_id),)
    (p,) = render_discord(_reply(_quote("text"), buttons=buttons))
    assert p.buttons == ()


def test_unknown_buttons_are_left_out():
    (p,) = render_discord(_reply(_quote("text"), buttons=(*BUTTONS, Button("qabot_share", "Share", "x"))))
    assert p.buttons == BUTTONS


def test_feedback_view_has_persistent_custom_ids_and_one_emoji():
    view = feedback_view(BUTTONS)
    assert view is not None and view.timeout is None
    rows = view.to_components()
    buttons = [c for row in rows for c in row["components"]]
    assert [b["custom_id"] for b in buttons] == [f"qabot:fb:up:{ANSWER_ID}", f"qabot:fb:down:{ANSWER_ID}"]
    assert [b["label"] for b in buttons] == ["Helpful", "Not helpful"]
    assert [b["emoji"]["name"] for b in buttons] == ["👍", "👎"]
    assert all(b["style"] == discord.ButtonStyle.secondary.value for b in buttons)


def test_split_text_never_exceeds_the_limit_even_without_spaces():
    chunks = split_text("a" * 5000 + "\n" + "b c " * 1000, 2000)
    assert all(0 < len(c) <= 2000 for c in chunks)
    assert "".join(chunks).replace("\n", "").replace(" ", "") == ("a" * 5000 + "bc" * 1000)


def test_block_quote_and_escape_helpers():
    assert as_block_quote("a\n\nb") == "> a\n>\n> b"
    assert escape_quote_text("*a*") == "\\*a\\*"
