"""render_discord: Discord's size limits, verbatim quotes, markdown escaping, feedback buttons."""

from __future__ import annotations

import re

import discord
import pytest

from bot.adapters.discord.client import feedback_view
from bot.adapters.discord.render import (
    CONTENT_LIMIT,
    QUOTE_LIMIT,
    MessagePayload,
    as_block_quote,
    escape_quote_text,
    plain_payloads,
    render_discord,
)
from bot.conversation.models import Button, Reply, ReplyKind
from bot.core.types import Answer, AnswerKind, Confidence, Quote
from bot.core.urls import safe_web_url
from tests.discord.harness import visible_text, within_limits

ANSWER_ID = "0f3c2a9be1d54c8c9e0d7f6a5b4c3d2e"
BUTTONS = (
    Button("qabot_feedback_up", "👍 Helpful", ANSWER_ID),
    Button("qabot_feedback_down", "👎 Not helpful", ANSWER_ID),
)


def payload_within_limits(payload: MessagePayload) -> bool:
    """Discord's limits (checked on the JSON, tests/discord/harness.py), and only links Discord accepts."""
    body = {"content": payload.content, "embeds": [e.to_dict() for e in payload.embeds]}
    return within_limits(body) and all(safe_web_url(e.url) for e in payload.embeds if e.url is not None)


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


@pytest.mark.parametrize("length", [4096, 4097, 9_000, 30_000, 1_000_000])
def test_a_huge_quote_is_trimmed_to_one_message_with_a_pointer_to_its_section(length: int):
    """Before: a single 1 MB passage was posted as 244 messages."""
    # `length` characters of words, some long lines, some short
    text = "".join(f"w{i}" + ("\n" if i % 97 == 0 else " ") for i in range(length // 3))[:length].strip()
    reply = _reply(_quote(text, 1), _quote("short one", 2))
    payloads = render_discord(reply)
    assert len(payloads) == 1
    assert all(payload_within_limits(p) for p in payloads)
    assert all(within_limits({"content": p.content, "embeds": [e.to_dict() for e in p.embeds]}) for p in payloads)
    shown = _words(_shown(payloads))
    kept = shown[: shown.index("short")]
    assert kept[-1] == "…" and kept[:-1] == _words(text)[: len(kept) - 1], "a verbatim run from the start"
    assert len(" ".join(kept)) <= QUOTE_LIMIT
    assert "Shortened; the full passage is in Document 1 › Heading 1 › Sub 1." in payloads[0].embeds[0].footer.text
    assert payloads[-1].buttons


def test_long_section_paths_keep_every_embed_within_6000_characters():
    """Before: title 256 + description 4096 + section 1024 + footer could pass Discord's 6000 total."""
    q = _quote("word " * 1400, 1, document="T" * 400, section=" > ".join(["Very long heading " * 10] * 8))
    q = Quote(**{**q.__dict__, "doc_path": "p/" * 700 + "doc.md"})  # a 2,000-character footer
    payloads = render_discord(_reply(q))
    for p in payloads:
        assert payload_within_limits(p)
        assert all(len(e) <= 6000 for e in p.embeds)
        assert within_limits({"content": p.content, "embeds": [e.to_dict() for e in p.embeds]})


def test_many_quotes_are_packed_into_several_messages_under_6000_characters_and_10_embeds():
    quotes = [_quote(("lorem ipsum " * 110).strip() + f" end{n}", n) for n in range(14)]
    payloads = render_discord(_reply(*quotes))
    assert len(payloads) > 1
    for p in payloads:
        assert len(p.embeds) <= 10 and sum(len(e) for e in p.embeds) <= 6000
    shown = _shown(payloads)
    assert [f"end{n}" for n in range(14)] == re.findall(r"end\d+", shown)


@pytest.mark.parametrize(
    "url",
    [
        "https://example.com/a doc",
        "https://example.com/" + "a" * 2100,
        "ftp://example.com/doc",
        "https://exa\tmple.com/",
        "https:///nohost",
        "http://example.com:99999/",
    ],
)
def test_a_malformed_source_url_is_not_linked(url: str):
    """Before: copied into the embed after an http(s):// check only; Discord refused every answer (50035)."""
    (p,) = render_discord(_reply(_quote("text", 1, source_url=url)))
    assert p.embeds[0].url is None and payload_within_limits(p)


def test_plain_payloads_carry_every_word_without_embeds_or_links():
    q = _quote("Some **quoted** text.\nSecond line.", 1, source_url="https://example.com/ok")
    (p,) = render_discord(_reply(q))
    plain = plain_payloads(p)
    assert all(not x.embeds and len(x.content or "") <= CONTENT_LIMIT for x in plain)
    assert plain[-1].buttons == BUTTONS and not any(x.buttons for x in plain[:-1])
    text = visible_text("\n".join(x.content or "" for x in plain))
    for words in ("Here is what the knowledge says:", "Some **quoted** text.", "Second line.", "Heading 1 > Sub 1"):
        assert words in text
    assert "example.com" not in text


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


def test_block_quote_and_escape_helpers():
    assert as_block_quote("a\n\nb") == "> a\n>\n> b"
    assert escape_quote_text("*a*") == "\\*a\\*"
