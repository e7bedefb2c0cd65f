"""Split a long reply into messages, and clip a label, the same way on every front end.

The shape is errbot's `split_string_after` with a per-backend size limit: the core splits, each
front end gives its limits (Slack: 3,000 characters a section; Discord: 2,000 a message; ...).
Cuts fall at line breaks first, then at spaces, and only inside a word that is longer than the
limit on its own. Where a front end's markup makes text longer than it looks (Slack's `&amp;`,
Discord's backslash escapes), it passes `size`, which measures a piece as it will be sent, and
splits the raw text: a cut then never falls inside an escape sequence.

`size` must be additive (the size of "a\\nb" is size("a") + size("\\n") + size("b")) and never
smaller than `len`; `len` and the escaping functions of the front ends are.

One quote is capped separately, around its best sentence, by bot.core.trim. Platform-neutral: no
markup here.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

Size = Callable[[str], int]
ELLIPSIS = "…"


def clip(text: str, limit: int, *, size: Size = len) -> str:
    """`text` when it fits in `limit`; else its longest prefix that fits with "…" after it."""
    if limit < 1:
        raise ValueError("limit must be at least 1")
    if size(text) <= limit:
        return text
    room = limit - size(ELLIPSIS)
    if room < 1:
        return ELLIPSIS[:limit]
    cut = _longest_fit(text, 0, len(text), room, size)
    return text[:cut].rstrip() + ELLIPSIS


def line_spans(
    text: str, limit: int, *, size: Size = len, start: int = 0, end: int | None = None
) -> list[tuple[int, int]]:
    """[start, end) spans of the line `text[start:end]`, each no larger than `limit`.

    A span ends at a space or tab where it can (the whitespace at a cut is dropped); a word longer
    than the limit is cut between characters. An empty line is one empty span, so blank lines
    inside a quote survive.
    """
    if limit < 1:
        raise ValueError("limit must be at least 1")
    end = len(text) if end is None else end
    spans: list[tuple[int, int]] = []
    pos = start
    while pos < end:
        cut = _longest_fit(text, pos, end, limit, size)
        if cut >= end:
            spans.append((pos, end))
            break
        # back off to the last whitespace at or before the cut, if the piece has one
        space = max(text.rfind(" ", pos, cut + 1), text.rfind("\t", pos, cut + 1))
        if space > pos:
            stop = space
            while stop > pos and text[stop - 1] in " \t":
                stop -= 1
            if stop > pos:
                spans.append((pos, stop))
            pos = space
            while pos < end and text[pos] in " \t":
                pos += 1
        else:
            spans.append((pos, cut))
            pos = cut
    return spans or [(start, start)]


def pack_lines(lines: Iterable[str], limit: int, *, size: Size = len) -> list[str]:
    """Lines (each within `limit`) joined with line breaks into as few chunks within `limit` as they fit."""
    chunks: list[str] = []
    current: list[str] = []
    used = 0
    newline = size("\n")
    for line in lines:
        width = size(line)
        if current and used + newline + width > limit:
            chunks.append("\n".join(current))
            current, used = [], 0
        used += width + (newline if current else 0)
        current.append(line)
    if current:
        chunks.append("\n".join(current))
    return chunks


def split_text(text: str, limit: int, *, size: Size = len) -> list[str]:
    """`text` as chunks no larger than `limit`, cut at line breaks, then spaces, then anywhere.

    Whitespace-only chunks are dropped: an empty text gives an empty list.
    """
    lines: list[str] = []
    offset = 0
    for raw_line in text.split("\n"):
        line_start, line_end = offset, offset + len(raw_line)
        offset = line_end + 1
        lines.extend(text[s:e] for s, e in line_spans(text, limit, size=size, start=line_start, end=line_end))
    return [chunk for chunk in pack_lines(lines, limit, size=size) if chunk.strip()]


def _longest_fit(text: str, start: int, end: int, limit: int, size: Size) -> int:
    """The largest cut in (start, end] with size(text[start:cut]) <= limit; at least start + 1.

    `size` is never smaller than `len`, so no piece that fits is longer than `limit` characters.
    """
    hi = min(end, start + limit)
    if size(text[start:hi]) <= limit:
        return hi
    lo = start + 1  # one character always goes, even if it alone is too large
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if size(text[start:mid]) <= limit:
            lo = mid
        else:
            hi = mid - 1
    return lo
