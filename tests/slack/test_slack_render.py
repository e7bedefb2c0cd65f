"""render_slack_blocks: escaping, verbatim quotes, Slack's size limits, buttons, fallback text."""

from __future__ import annotations

import html
import json
import re

from bot.adapters.slack.render import (
    BLOCK_TEXT_BUDGET,
    MAX_BLOCKS,
    SECTION_TEXT_LIMIT,
    block_text_length,
    escape_mrkdwn,
    render_quote_sections,
    render_slack_blocks,
)
from bot.conversation.models import Button, Reply, ReplyKind
from bot.core.types import Answer, AnswerKind, Confidence, Quote


def quote(text: str, *, highlight: tuple[int, int] | None = None, url: str | None = None, n: int = 0) -> Quote:
    return Quote(
        text=text,
        document="ML vs GenAI",
        doc_path="ml-vs-genai.md",
        section="What is ML? > Uses",
        section_path=("What is ML?", "Uses"),
        score=0.8,
        passage_id=f"p{n}",
        source_url=url,
        highlight=highlight,
    )


def answer_reply(*quotes: Quote, message: str = "Here is what the article says:") -> Reply:
    answer = Answer(
        question="q",
        normalized_question="q",
        kind=AnswerKind.ANSWER,
        confidence=Confidence.HIGH,
        quotes=quotes,
        message=message,
        index_version="v1",
    )
    return Reply(
        ReplyKind.ANSWER,
        "plain text rendering",
        answer=answer,
        buttons=(
            Button("qabot_feedback_up", "👍 Helpful", "a1"),
            Button("qabot_feedback_down", "👎 Not helpful", "a1"),
        ),
        answer_id="a1",
        index_version="v1",
    )


def unquote(sections: list[str]) -> str:
    """Undo the rendering of a quote: "> " prefixes, our bold markers, the three escapes."""
    lines = "\n".join(sections).split("\n")
    assert all(line.startswith("> ") or line == ">" for line in lines), lines
    return html.unescape("\n".join(line[2:] for line in lines).replace("*", ""))


def all_texts(blocks: list[dict]) -> list[str]:
    out = []
    for b in blocks:
        if isinstance(b.get("text"), dict):
            out.append(b["text"]["text"])
        for el in b.get("elements", []):
            if isinstance(el.get("text"), dict):
                out.append(el["text"]["text"])
            elif isinstance(el.get("text"), str):
                out.append(el["text"])
    return out


def assert_within_limits(blocks: list[dict], text: str) -> None:
    assert text, "fallback text is always set"
    assert len(blocks) <= MAX_BLOCKS
    assert block_text_length(blocks) <= BLOCK_TEXT_BUDGET
    assert all(t.strip() for t in all_texts(blocks)), "Slack refuses an empty text object"
    for b in blocks:
        if b["type"] == "section":
            assert len(b["text"]["text"]) <= SECTION_TEXT_LIMIT
            assert b["text"]["verbatim"] is True
        if b["type"] == "context":
            assert len(b["elements"]) <= 10
        if b["type"] == "actions":
            ids = [e["action_id"] for e in b["elements"]]
            assert len(ids) == len(set(ids))
            for e in b["elements"]:
                assert len(e["text"]["text"]) <= 75 and len(e["value"]) <= 2000


def test_escapes_only_the_three_control_characters():
    assert escape_mrkdwn("a & b < c > d * _ ~ ` @everyone") == "a &amp; b &lt; c &gt; d * _ ~ ` @everyone"


def test_a_quote_is_a_block_quote_followed_by_its_source():
    reply = answer_reply(
        quote("Machine learning learns from data.\nIt needs examples.", url="https://ex.am/ple?a=1&b=2")
    )
    blocks, text = render_slack_blocks(reply)
    assert_within_limits(blocks, text)
    sections = [b["text"]["text"] for b in blocks if b["type"] == "section"]
    assert sections[0] == "Here is what the article says:"
    assert sections[1] == "> Machine learning learns from data.\n> It needs examples."
    context = next(b for b in blocks if b["type"] == "context")
    assert context["elements"][0]["text"] == "*ML vs GenAI* › What is ML? › Uses"
    assert context["elements"][1]["text"] == "<https://ex.am/ple?a=1&amp;b=2|Source>"
    assert "Confidence: high" in json.dumps(blocks)
    actions = blocks[-1]
    assert actions["type"] == "actions"
    assert [e["action_id"] for e in actions["elements"]] == ["qabot_feedback_up", "qabot_feedback_down"]
    assert [e["value"] for e in actions["elements"]] == ["a1", "a1"]


def test_mass_mentions_and_links_cannot_be_formed_from_knowledge_or_questions():
    nasty = "Ping <!everyone> and <!here|here> and <@U12345> & <#C1|general> <https://evil.test|click>"
    reply = answer_reply(quote(nasty), message=f"You asked: {nasty}")
    blocks, text = render_slack_blocks(reply)
    payload = json.dumps(blocks) + text
    for token in ("<!everyone>", "<!here", "<@U12345>", "<#C1", "<https://evil"):
        assert token not in payload
    # every "<" left is one of our own source links
    for t in [*all_texts(blocks), text]:
        for m in re.finditer("<", t):
            assert t.startswith("<http", m.start()), t


def test_best_sentence_is_bold_and_the_text_stays_verbatim():
    text = "Generative AI creates new content. It learns patterns & structure (a < b)."
    start = text.index("It learns")
    q = quote(text, highlight=(start, len(text)))
    sections = render_quote_sections(q)
    assert sections == ["> Generative AI creates new content. *It learns patterns &amp; structure (a &lt; b).*"]
    assert unquote(sections) == text


def test_no_bold_when_the_passage_has_its_own_asterisks():
    text = "Use *emphasis* sparingly. The best sentence is here."
    q = quote(text, highlight=(text.index("The best"), len(text)))
    sections = render_quote_sections(q)
    assert sections == [f"> {text}"]


def test_no_bold_inside_a_word():
    text = "prefixword suffix"
    q = quote(text, highlight=(3, 10))  # "fixword" starts inside "prefixword"
    assert render_quote_sections(q) == [f"> {text}"]


def test_a_sentence_over_several_lines_is_bold_line_by_line():
    text = "Intro.\nThe best sentence\ngoes over two lines. Outro."
    start = text.index("The best")
    end = text.index(" Outro")
    sections = render_quote_sections(quote(text, highlight=(start, end)))
    assert sections == ["> Intro.\n> *The best sentence*\n> *goes over two lines.* Outro."]
    assert unquote(sections) == text


def test_long_quote_is_split_into_sections_within_the_limit_without_losing_text():
    paragraph = "Models learn from data & improve <slowly> over time. " * 40  # ~2100 chars, escapes grow it
    text = "\n".join([paragraph.strip()] * 6)
    sections = render_quote_sections(quote(text, highlight=(0, 52)))
    assert all(len(s) <= SECTION_TEXT_LIMIT for s in sections)
    assert len(sections) >= 4
    assert unquote(sections) == text  # split at line boundaries: exactly verbatim


def test_a_single_huge_line_is_split_at_words_and_never_inside_an_escape():
    text = ("a&b " * 2000).strip() + " " + "x" * 5000  # one line, and one 5000-char "word"
    sections = render_quote_sections(quote(text))
    assert all(len(s) <= SECTION_TEXT_LIMIT for s in sections)
    assert all(not re.search(r"&(?!amp;|lt;|gt;)", s) for s in sections), "an entity was cut"
    rebuilt = unquote(sections)
    assert "".join(rebuilt.split()) == "".join(text.split())


def test_many_quotes_stay_within_fifty_blocks_and_say_what_was_left_out():
    quotes = [quote(f"Passage number {i}. " + "word " * 50, n=i) for i in range(60)]
    blocks, text = render_slack_blocks(answer_reply(*quotes))
    assert_within_limits(blocks, text)
    assert blocks[-1]["type"] == "actions", "the feedback buttons survive the cut"
    assert any("more passages not shown" in t for t in all_texts(blocks))


def test_abstention_lists_the_closest_sections():
    answer = Answer(
        "q",
        "q",
        AnswerKind.ABSTAIN,
        None,
        closest_sections=("What is ML?", "GenAI > Risks & <limits>"),
        message="The article doesn't cover that.",
    )
    reply = Reply(ReplyKind.ABSTAIN, "The article doesn't cover that.", answer=answer, hints=("Try rephrasing",))
    blocks, text = render_slack_blocks(reply)
    assert_within_limits(blocks, text)
    joined = "\n".join(all_texts(blocks))
    assert "The article doesn't cover that." in joined
    assert "• GenAI › Risks &amp; &lt;limits&gt;" in joined
    assert "Try rephrasing" in joined


def test_plain_replies_are_escaped_split_and_always_have_fallback_text():
    long = ("status line with <angle> & amp\n" * 400).strip()
    blocks, text = render_slack_blocks(Reply(ReplyKind.ADMIN, long))
    assert_within_limits(blocks, text)
    assert len(blocks) > 1
    assert "&lt;angle&gt; &amp; amp" in blocks[0]["text"]["text"]
    assert len(text) <= 3000
    blocks, text = render_slack_blocks(Reply(ReplyKind.HELP, ""))
    assert text and blocks


def test_blank_lines_in_a_quote_stay_in_the_quote():
    text = "First paragraph.\n\nSecond paragraph."
    sections = render_quote_sections(quote(text))
    assert sections == ["> First paragraph.\n>\n> Second paragraph."]
    assert unquote(sections) == text


def test_fallback_text_of_an_answer_is_the_lead_and_the_quotes_without_bold():
    text = "A & B <x>. The best one."
    reply = answer_reply(quote(text, highlight=(text.index("The"), len(text))))
    _, fallback = render_slack_blocks(reply)
    assert fallback.startswith("Here is what the article says:\n> A &amp; B &lt;x&gt;. The best one.")
    assert "*" not in fallback
    assert "— ML vs GenAI › What is ML? › Uses" in fallback


def sentences(n: int, tag: str = "") -> str:
    return " ".join(f"Sentence {tag}{i} says something & more about <models>." for i in range(n))


def test_long_passages_are_trimmed_and_the_blocks_stay_under_slacks_total():
    """Before: one answer from a file with long paragraphs sent 29,189 characters (msg_blocks_too_long)."""
    quotes = []
    for n in range(3):
        text = sentences(400, tag=f"q{n}-")  # ~20,000 characters each
        best = text.index(f"Sentence q{n}-200 ")
        quotes.append(quote(text, highlight=(best, text.index(".", best) + 1), n=n))
    blocks, fallback = render_slack_blocks(answer_reply(*quotes))
    assert_within_limits(blocks, fallback)
    joined = "\n".join(all_texts(blocks))
    assert "*Sentence q0-200 says something &amp; more about &lt;models&gt;.*" in joined  # best sentence kept
    assert "Shortened; the full passage is in ML vs GenAI › What is ML? › Uses." in joined
    assert blocks[-1]["type"] == "actions", "the feedback buttons survive the cap"
    assert len(fallback) <= 3000


def test_a_long_closest_sections_list_is_split_over_sections():
    names = tuple(f"Chapter {i} › " + "Long heading words " * 30 for i in range(10))  # ~5,800 characters in all
    answer = Answer("q", "q", AnswerKind.ABSTAIN, None, closest_sections=names, message="Not covered.")
    blocks, text = render_slack_blocks(Reply(ReplyKind.ABSTAIN, "Not covered.", answer=answer))
    assert_within_limits(blocks, text)
    joined = "\n".join(all_texts(blocks))
    assert all(f"• Chapter {i} ›" in joined for i in range(10))


def test_whitespace_only_texts_never_become_empty_text_objects():
    cases = [
        Reply(ReplyKind.HELP, "   \n\t "),
        Reply(ReplyKind.ADMIN, "\n\n", hints=(" ", "\n")),
        Reply(
            ReplyKind.ABSTAIN,
            " ",
            answer=Answer("q", "q", AnswerKind.ABSTAIN, None, closest_sections=(" ", ""), message="  "),
        ),
        answer_reply(quote("\n\n   \n"), message="   "),
    ]
    for reply in cases:
        blocks, text = render_slack_blocks(reply)
        assert text.strip()
        assert_within_limits(blocks, text)


def test_a_notice_says_its_sentence_once():
    sentence = "You're asking faster than I can keep up. Please try again in 42 seconds."
    blocks, text = render_slack_blocks(Reply(ReplyKind.RATE_LIMITED, sentence, private=True))
    payload = json.dumps({"blocks": blocks, "text": text})
    assert payload.count("Please try again in 42 seconds.") == 1
    assert text == sentence and blocks == []


def test_a_malformed_source_url_is_not_linked():
    for url in ("https://ex.am/a b", "https://ex.am/" + "a" * 3000, "javascript:alert(1)", "https://"):
        blocks, _ = render_slack_blocks(answer_reply(quote("Some text.", url=url)))
        assert "|Source>" not in json.dumps(blocks), url
        assert "`ml-vs-genai.md`" in json.dumps(blocks)
