"""Render a conversation Reply as Slack Block Kit blocks plus the fallback `text`.

Slack's rules this module owns (docs: "Formatting text for app surfaces", "Block Kit"):

- `&`, `<` and `>` are mrkdwn control characters and are escaped as `&amp;`, `&lt;`, `&gt;`
  (only those) in every piece of user or knowledge text. With them escaped, no `<!everyone>`,
  `<!here>`, `<@U...>` or link can be formed by a question or a passage.
- Text objects carrying user or knowledge text are sent with `verbatim: true`, so Slack does not
  auto-parse them (no auto-linked channel names or mentions); messages are posted with
  `parse="none"` and without `link_names` (see app.py). Plain "@everyone" then pings no one.
- A section's text is at most 3000 characters; a message holds at most 50 blocks; every text
  object has at least one visible character (Slack refuses an empty one).
- The texts of all blocks together stay under BLOCK_TEXT_BUDGET: Slack refuses a message whose
  blocks total roughly 12,000 characters (`msg_blocks_too_long`, undocumented; reported refused from
  about 11,300). Quotes that do not fit are trimmed further or left out with a note.
- A quote is verbatim: the only change is escaping, the "> " prefix of each line and, when it can
  be done without touching the characters, `*...*` around the best sentence. A passage longer than
  QUOTE_LIMIT is trimmed around its best sentence by bot.core.trim (with a pointer to its section);
  what is left is split over several sections at line or word boundaries.
- One-sentence notices (rate limits, refusals) are sent as plain `text` without blocks: blocks
  would repeat the sentence that `text` already carries.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from typing import Any

from bot.conversation.models import Action, Button, Handoff, Reply, ReplyKind
from bot.core.links import quote_link
from bot.core.split import clip, line_spans, pack_lines, split_text
from bot.core.trim import trim_quote
from bot.core.types import Answer, Quote

SECTION_TEXT_LIMIT = 3000
MAX_BLOCKS = 50
CONTEXT_ELEMENT_LIMIT = 3000
BUTTON_LABEL_LIMIT = 75
BUTTON_VALUE_LIMIT = 2000
FALLBACK_TEXT_LIMIT = 3000  # Slack accepts 40k; the fallback only feeds notifications and old clients
# Slack refuses blocks totalling about 12,000 characters (reports: refused from 11,341 to 13,297);
# 9,000 keeps a 20 % margin below the lowest report, and is still three full-length quotes.
BLOCK_TEXT_BUDGET = 9000
QUOTE_LIMIT = 2400  # characters of one passage before it is trimmed (bot.core.trim)
_MIN_QUOTE = 300  # a quote squeezed below this is left out ("1 more passage not shown") instead
# replies sent as plain text: one sentence, no buttons
_NOTICE_KINDS = (ReplyKind.RATE_LIMITED, ReplyKind.REFUSED)

# Bold markers only render when they sit next to a line edge, whitespace or punctuation.
_BOLD_EDGE_OK = set(" \t\n.,;:!?()[]{}\"'`-–—/")
_QUOTE_PREFIX = "> "

Block = dict[str, Any]


def escape_mrkdwn(text: str) -> str:
    """Escape the three mrkdwn control characters, and nothing else."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _section(text: str) -> Block:
    return {"type": "section", "text": {"type": "mrkdwn", "text": text, "verbatim": True}}


def _sections(chunks: Iterable[str]) -> list[Block]:
    """Section blocks for the chunks that show something (Slack refuses an empty text object)."""
    return [_section(c) for c in chunks if c.strip()]


def _context(*texts: str) -> Block:
    elements = [
        {"type": "mrkdwn", "text": _clip_escaped(t, CONTEXT_ELEMENT_LIMIT), "verbatim": True}
        for t in texts
        if t.strip()
    ]
    return {"type": "context", "elements": elements[:10]}


def block_text_length(blocks: Iterable[Block]) -> int:
    """Characters in every text object of `blocks`: what Slack's undocumented total limit counts."""
    total = 0
    for block in blocks:
        text = block.get("text")
        if isinstance(text, dict):
            total += len(text.get("text", ""))
        for el in block.get("elements", []):
            t = el.get("text")
            total += len(t.get("text", "")) if isinstance(t, dict) else len(t or "")
    return total


def escaped_size(text: str) -> int:
    """Characters of `text` once escaped: what Slack counts against its limits."""
    return len(text) + 4 * text.count("&") + 3 * (text.count("<") + text.count(">"))


def _clip_escaped(text: str, limit: int) -> str:
    """Already-escaped text clipped to `limit`, never ending inside an entity such as `&amp;`."""
    clipped = clip(text, limit)
    return re.sub(r"&[a-z]{0,3}…$", "…", clipped) if clipped != text else text


def split_mrkdwn(text: str, limit: int = SECTION_TEXT_LIMIT) -> list[str]:
    """Escape plain text and split it into section-sized chunks at line / word boundaries."""
    return [escape_mrkdwn(chunk) for chunk in split_text(text, limit, size=escaped_size)] or [""]


def _bold_span(quote: Quote) -> tuple[int, int] | None:
    """The highlight span, if bolding it cannot alter the verbatim text."""
    if quote.highlight is None:
        return None
    s, e = quote.highlight
    text = quote.text
    if not (0 <= s < e <= len(text)):
        return None
    # a `*` elsewhere in the passage could pair with our markers; leave the text alone then
    if "*" in text:
        return None
    while s < e and text[s].isspace():
        s += 1
    while e > s and text[e - 1].isspace():
        e -= 1
    return (s, e) if s < e else None


def _render_quote_line(text: str, s: int, e: int, bold: tuple[int, int] | None) -> str:
    """One rendered line: "> " + escaped text[s:e], with the bold part wrapped in `*` if safe."""
    if bold is not None:
        bs, be = max(bold[0], s), min(bold[1], e)
        # trim whitespace at the edges of this line's part of the sentence
        while bs < be and text[bs].isspace():
            bs += 1
        while be > bs and text[be - 1].isspace():
            be -= 1
        if bs < be:
            before_ok = bs == s or text[bs - 1] in _BOLD_EDGE_OK
            after_ok = be == e or text[be] in _BOLD_EDGE_OK
            if before_ok and after_ok:
                return (
                    _QUOTE_PREFIX
                    + escape_mrkdwn(text[s:bs])
                    + "*"
                    + escape_mrkdwn(text[bs:be])
                    + "*"
                    + escape_mrkdwn(text[be:e])
                )
    if s == e:
        return ">"  # a blank line inside the quote: no trailing space
    return _QUOTE_PREFIX + escape_mrkdwn(text[s:e])


def render_quote_sections(quote: Quote, limit: int = SECTION_TEXT_LIMIT) -> list[str]:
    """The quote as mrkdwn block-quote text, split into chunks of at most `limit` characters."""
    text = quote.text.strip("\n")
    shift = len(quote.text) - len(quote.text.lstrip("\n"))
    bold = _bold_span(quote)
    if bold is not None:
        bold = (bold[0] - shift, bold[1] - shift)
    # room for the "> " prefix and two bold markers on every line
    budget = limit - len(_QUOTE_PREFIX) - 2
    lines: list[str] = []
    offset = 0
    for raw_line in text.split("\n"):
        line_start, line_end = offset, offset + len(raw_line)
        offset = line_end + 1
        for s, e in line_spans(text, budget, size=escaped_size, start=line_start, end=line_end):
            lines.append(_render_quote_line(text, s, e, bold))
    return pack_lines(lines, limit)


# --------------------------------------------------------------------------------------------
# blocks


def _section_label(section: str, path: Sequence[str] = ()) -> str:
    return " › ".join(path) if path else section.replace(" > ", " › ")


def _source_context(quote: Quote, pointer: str | None = None) -> Block:
    document = quote.document.strip() or quote.doc_path or "Source"
    where = f"*{escape_mrkdwn(clip(document, 300))}*"
    section = _section_label(quote.section, quote.section_path)
    if section.strip():
        where += f" › {escape_mrkdwn(clip(section, 1000))}"
    parts = [where]
    if pointer:
        parts.append(f"_{escape_mrkdwn(clip(pointer, 1500))}_")
    url = quote_link(quote)
    if url and "|" not in url:
        parts.append(f"<{escape_mrkdwn(url)}|Source>")
    elif quote.doc_path:
        parts.append(f"`{escape_mrkdwn(clip(quote.doc_path, 500))}`")
    return _context(*parts)


def _actions(buttons: Sequence[Button]) -> Block | None:
    if not buttons:
        return None
    elements = []
    seen: set[str] = set()
    for b in buttons[:25]:
        if b.action_id in seen:  # Slack rejects duplicate action ids in one message
            continue
        seen.add(b.action_id)
        elements.append(
            {
                "type": "button",
                "action_id": b.action_id,
                "text": {"type": "plain_text", "text": clip(b.label, BUTTON_LABEL_LIMIT), "emoji": True},
                "value": b.value[:BUTTON_VALUE_LIMIT],
            }
        )
    return {"type": "actions", "block_id": "qabot_actions", "elements": elements}


def _confidence_line(answer: Answer, index_version: str) -> str:
    parts = []
    if answer.confidence is not None:
        parts.append(f"Confidence: {answer.confidence.value}")
    version = index_version or answer.index_version
    if version:
        parts.append(f"index {escape_mrkdwn(version)}")
    return " · ".join(parts)


def _quote_blocks(quote: Quote, limit: int) -> list[Block]:
    trimmed = trim_quote(quote, limit)
    return _sections(render_quote_sections(trimmed.quote)) + [_source_context(trimmed.quote, trimmed.pointer)]


def _answer_blocks(answer: Answer, budget: int, chars: int) -> list[Block]:
    """Lead sentence, then each quote with its source, within `budget` blocks and `chars` characters.

    A quote that does not fit what is left is trimmed further (bot.core.trim); one that would be
    shorter than _MIN_QUOTE is left out, and a note says how many were.
    """
    blocks: list[Block] = []
    lead = answer.message or ""
    if lead:
        blocks.extend(_sections(split_mrkdwn(lead)))
    note_room = 60  # the "N more passages not shown." note
    shown = 0
    for quote in answer.quotes:
        left = chars - block_text_length(blocks) - note_room
        limit = min(QUOTE_LIMIT, left)
        quote_blocks: list[Block] = []
        while limit >= _MIN_QUOTE:
            quote_blocks = _quote_blocks(quote, limit)
            if block_text_length(quote_blocks) <= left:
                break
            limit = int(limit * 0.8)  # escaping and markup grew it past what is left: squeeze
        else:
            break
        # keep one slot for the "more passages" note
        if len(blocks) + len(quote_blocks) > budget - 1:
            break
        blocks.extend(quote_blocks)
        shown += 1
    hidden = len(answer.quotes) - shown
    if hidden:
        blocks.append(_context(f"{hidden} more passage{'s' if hidden > 1 else ''} not shown."))
    return blocks


def _abstain_blocks(answer: Answer, fallback: str) -> list[Block]:
    blocks = _sections(split_mrkdwn(answer.message or fallback))
    names = [_section_label(s) for s in answer.closest_sections[:10] if s.strip()]
    if names:
        lines = ["The closest sections I have:"] + [f"• {escape_mrkdwn(clip(name, 500))}" for name in names]
        blocks.extend(_sections(pack_lines(lines, SECTION_TEXT_LIMIT)))
    return blocks


def _cap(body: list[Block], budget: int, chars: int) -> list[Block]:
    """`body` cut to at most `budget` blocks and `chars` characters, saying so when it was cut."""
    if len(body) <= budget and block_text_length(body) <= chars:
        return body
    note = _context("(reply shortened to fit Slack's limits)")
    room = chars - block_text_length([note])
    kept: list[Block] = []
    for block in body[: budget - 1]:
        size = block_text_length([block])
        if size > room:
            text = block.get("text")
            if block.get("type") == "section" and isinstance(text, dict) and room > 20:
                kept.append(_section(_clip_escaped(text["text"], room)))
            break
        kept.append(block)
        room -= size
    return kept + [note]


def render_slack_blocks(reply: Reply) -> tuple[list[Block], str]:
    """Blocks for chat.postMessage / chat.postEphemeral / response_url, and the fallback text.

    The fallback `text` is always set (notifications, screen readers, clients without blocks).
    """
    answer = reply.answer
    if reply.kind in _NOTICE_KINDS and not reply.buttons and not reply.hints and reply.text.strip():
        text = fallback_text(reply)
        if len(text) <= SECTION_TEXT_LIMIT:
            return [], text
    footer: list[Block] = []
    if answer is not None and reply.kind in (ReplyKind.ANSWER, ReplyKind.ABSTAIN):
        line = _confidence_line(answer, reply.index_version) if reply.kind is ReplyKind.ANSWER else ""
        if line:
            footer.append(_context(line))
    hints = _context(*(escape_mrkdwn(clip(h, 300)) for h in reply.hints[:5]))
    if hints["elements"]:
        footer.append(hints)
    actions = _actions(reply.buttons)
    if actions is not None:
        footer.append(actions)
    budget = MAX_BLOCKS - len(footer)
    chars = BLOCK_TEXT_BUDGET - block_text_length(footer)

    if answer is not None and reply.kind is ReplyKind.ANSWER and answer.quotes:
        body = _answer_blocks(answer, budget, chars)
    elif answer is not None and reply.kind is ReplyKind.ABSTAIN:
        body = _abstain_blocks(answer, reply.text)
    else:
        body = _sections(split_mrkdwn(reply.text))
    body = _cap(body or [_section("…")], budget, chars)
    blocks = body + footer
    return blocks, fallback_text(reply)


def fallback_text(reply: Reply) -> str:
    """Notification / no-blocks text: for an answer, the lead sentence and the quotes without markup."""
    answer = reply.answer
    if answer is not None and reply.kind is ReplyKind.ANSWER and answer.quotes:
        parts = [answer.message] if answer.message else []
        for quote in answer.quotes:
            trimmed = trim_quote(quote, QUOTE_LIMIT)
            lines = trimmed.quote.text.strip("\n").split("\n")
            parts.append("\n".join("> " + line if line.strip() else ">" for line in lines))
            parts.append(f"— {quote.document} › {_section_label(quote.section, quote.section_path)}")
            if trimmed.pointer:
                parts.append(trimmed.pointer)
        text = "\n".join(parts)
    else:
        text = reply.text or (answer.message if answer is not None else "")
    escaped = "\n".join(
        # our "> " quote prefix stays mrkdwn; everything else is escaped
        ("> " + escape_mrkdwn(line[2:])) if line.startswith("> ") else line if line == ">" else escape_mrkdwn(line)
        for line in ((text or "").strip() or "qabot").split("\n")
    )
    return _clip_escaped(escaped, FALLBACK_TEXT_LIMIT)


def without_actions(blocks: list[Block], action_ids: Iterable[str]) -> list[Block]:
    """A copy of `blocks` with the given buttons removed (empty actions blocks dropped)."""
    drop = set(action_ids)
    out: list[Block] = []
    for block in blocks:
        if block.get("type") == "actions":
            elements = [e for e in block.get("elements", []) if e.get("action_id") not in drop]
            if not elements:
                continue
            block = {**block, "elements": elements}
        out.append(block)
    return out


def handoff_text(handoff: Handoff) -> str:
    """The hand-off message: the user group's mention (it notifies the group), what happened, the question."""
    lines = [f"<!subteam^{handoff.to}> {escape_mrkdwn(handoff.text)}"]
    question = " ".join(handoff.question.split())
    if question:
        lines.append("> " + escape_mrkdwn(clip(question, 500)))
    return "\n".join(lines)


def with_link(blocks: list[Block], text: str, url: str, label: str) -> list[Block]:
    """`blocks` with a context line "text: <url|label>" before the buttons (a URL Slack would misread is left out)."""
    if not url.startswith("https://") or any(c in url for c in "<>| \n") or len(blocks) >= MAX_BLOCKS:
        return blocks
    line = _context(f"{escape_mrkdwn(text)}: <{url}|{escape_mrkdwn(label)}>")
    at = next((i for i, b in enumerate(blocks) if b.get("type") == "actions"), len(blocks))
    return [*blocks[:at], line, *blocks[at:]]


def render_teach_blocks(reply: Reply) -> tuple[list[Block], str]:
    """ "Teach qabot": the question, then each candidate passage (shortened, with its section) with its own
    button beside it, then "Not covered". Each button sits in a block of its own (Slack wants an action_id
    unique within its block)."""
    view = reply.teach
    if view is None:
        return render_slack_blocks(reply)
    lines = reply.text.splitlines()
    intro = lines[0] if lines else ""
    blocks: list[Block] = [
        _section(f"{escape_mrkdwn(intro)}\n>{escape_mrkdwn(clip(' '.join(view.question.split()), 500))}")
    ]
    picks = {b.value: b for b in reply.buttons if b.action_id == Action.TEACH_PICK}
    for c in view.candidates:
        button = next((b for b in picks.values() if b.value.endswith(f":{c.number}")), None)
        block = _section(f"*{c.number}.* _{escape_mrkdwn(clip(c.section, 200))}_\n{escape_mrkdwn(c.short)}")
        block["block_id"] = f"qabot_teach_{c.number}"
        if button is not None:
            block["accessory"] = {
                "type": "button",
                "action_id": button.action_id,
                "text": {"type": "plain_text", "text": f"Pick {c.number}", "emoji": True},
                "value": button.value[:BUTTON_VALUE_LIMIT],
            }
        blocks.append(block)
    rest = [b for b in reply.buttons if b.action_id != Action.TEACH_PICK]
    if rest:
        actions = _actions(rest)
        if actions is not None:
            actions["block_id"] = "qabot_teach_none"
            blocks.append(actions)
    return blocks, fallback_text(reply)
