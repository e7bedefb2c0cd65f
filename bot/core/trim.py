"""Cap the length of one quote, the same way on every front end.

A passage can be arbitrarily long (a knowledge file with a 1 MB paragraph is one passage), and
posting it whole floods a chat: Discord would need hundreds of messages, Slack refuses the message.
`trim_quote` keeps the sentence that best answers the question (the quote's highlight), adds the
sentences around it while they fit, marks every cut with "…" and returns a pointer to the section
so the reader knows where the rest is. What is kept is verbatim: one contiguous stretch of the
passage, nothing rewritten inside it.

Platform-neutral: no markup here. Each adapter calls it with its own limit and renders the pointer
its own way (a context line on Slack, the embed footer on Discord, a plain line in the terminal).
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass

from bot.core.types import Quote

ELLIPSIS = "…"
_CUT_BEFORE = ELLIPSIS + " "
_CUT_AFTER = " " + ELLIPSIS
# a sentence ends at . ! ? (or …) followed by whitespace and something that can start a sentence
_SENTENCE_BREAK = re.compile(r"(?:(?<=[.!?…])|(?<=[.!?…][\"'”’)\]]))\s+(?=[A-Z0-9“\"‘'(\[*_•\-–—])")


@dataclass(frozen=True)
class TrimmedQuote:
    """A quote no longer than the limit; `pointer` is set when something was left out."""

    quote: Quote
    pointer: str | None = None

    @property
    def trimmed(self) -> bool:
        return self.pointer is not None


def sentence_spans(text: str) -> list[tuple[int, int]]:
    """[start, end) of every sentence: lines first, then sentence ends inside a line."""
    spans: list[tuple[int, int]] = []
    for line in re.finditer(r"[^\n]+", text):
        base, body = line.start(), line.group()
        cursor = 0
        for m in _SENTENCE_BREAK.finditer(body):
            if body[cursor : m.start()].strip():
                spans.append((base + cursor, base + m.start()))
            cursor = m.end()
        rest = body[cursor:]
        if rest.strip():
            spans.append((base + cursor, base + len(body.rstrip())))
    return spans


def section_pointer(quote: Quote) -> str:
    """Where the whole passage is: the document and its section path."""
    section = " › ".join(quote.section_path) if quote.section_path else quote.section.replace(" > ", " › ")
    where = quote.document or quote.doc_path
    if section and not section.startswith(where):  # heading paths often start with the title
        where = f"{where} › {section}" if where else section
    elif section:
        where = section
    return f"Shortened; the full passage is in {where or 'the source'}."


def trim_text(text: str, highlight: tuple[int, int] | None, limit: int) -> tuple[str, tuple[int, int] | None, bool]:
    """(text, highlight, trimmed): `text` cut to at most `limit` characters around the highlight.

    Keeps whole sentences where it can: the highlighted one, then its neighbours (the next one
    first, then the one before, alternately) while they fit. A single sentence longer than the
    limit is cut at a word boundary. Cuts are marked with "…"; the highlight moves with the text.
    """
    if limit < 1:
        raise ValueError("limit must be at least 1")
    if len(text) <= limit:
        return text, highlight, False
    body_end = len(text.rstrip())
    spans = sentence_spans(text) or [(0, body_end)]
    anchor = 0
    if highlight is not None:
        anchor = next((i for i, (s, e) in enumerate(spans) if s <= highlight[0] < e), 0)
    budget = limit - len(_CUT_BEFORE) - len(_CUT_AFTER)
    if budget < 1:  # a limit too small for markers: a plain cut
        return text[: limit - 1] + ELLIPSIS if limit > 1 else ELLIPSIS, None, True

    first = last = anchor
    start, end = spans[anchor]
    if end - start > budget:
        end = _word_cut(text, start, start + budget)
    else:
        grow_after = True
        while True:
            grew = False
            for after in (grow_after, not grow_after):
                if after and last + 1 < len(spans) and spans[last + 1][1] - start <= budget:
                    last += 1
                    end = spans[last][1]
                    grew = True
                    break
                if not after and first > 0 and end - spans[first - 1][0] <= budget:
                    first -= 1
                    start = spans[first][0]
                    grew = True
                    break
            if not grew:
                break
            grow_after = not grow_after

    prefix = _CUT_BEFORE if text[:start].strip() else ""
    suffix = _CUT_AFTER if text[end:body_end].strip() else ""
    out = prefix + text[start:end] + suffix
    new_highlight = None
    if highlight is not None:
        hs, he = max(highlight[0], start), min(highlight[1], end)
        if hs < he:
            shift = len(prefix) - start
            new_highlight = (hs + shift, he + shift)
    return out, new_highlight, True


def _word_cut(text: str, start: int, hard_end: int) -> int:
    """The end of the longest run of whole words in text[start:hard_end] (or hard_end if one word)."""
    space = max(text.rfind(" ", start, hard_end + 1), text.rfind("\n", start, hard_end + 1))
    end = space if space > start else hard_end
    while end > start and text[end - 1].isspace():
        end -= 1
    return end if end > start else hard_end


def trim_quote(quote: Quote, limit: int) -> TrimmedQuote:
    """The quote cut to at most `limit` characters (see trim_text), with a pointer when it was cut."""
    text, highlight, trimmed = trim_text(quote.text, quote.highlight, limit)
    if not trimmed:
        return TrimmedQuote(quote)
    return TrimmedQuote(dataclasses.replace(quote, text=text, highlight=highlight), section_pointer(quote))
