"""Render a platform-neutral Reply as Discord messages that the API always accepts.

Discord rejects (it does not truncate) a message whose content is over 2000 characters, an embed
whose description is over 4096 characters or whose field value is over 1024, a message whose
embeds add up to more than 6000 characters or number more than 10, and an embed URL with a space,
a non-http(s) scheme or more than 2048 characters (error 50035). This module owns those limits:
a passage longer than QUOTE_LIMIT is trimmed around its best sentence (bot.core.trim, with a pointer
to its section in the footer), each embed's description is sized so that the embed stays within
6000 characters with its title, section and footer, embeds are packed into messages, and only
Quote links (bot.core.links.quote_link: a deep link, else the source_url) that are valid URLs within
Discord's 2,048 characters become links. `plain_payloads` turns a message into
plain text for when Discord refuses an embed anyway. Feedback buttons ride on the last message.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import discord

from bot.conversation.models import Action, Button, Handoff, Reply, ReplyKind
from bot.conversation.report import format_report
from bot.core.links import quote_link
from bot.core.split import clip, split_text
from bot.core.trim import trim_quote
from bot.core.types import Answer, Confidence, Quote

# Discord's documented limits (https://discord.com/developers/docs/resources/message#embed-object-embed-limits)
CONTENT_LIMIT = 2000
EMBED_TITLE_LIMIT = 256
EMBED_DESCRIPTION_LIMIT = 4096
EMBED_FIELD_NAME_LIMIT = 256
EMBED_FIELD_VALUE_LIMIT = 1024
EMBED_FOOTER_LIMIT = 2048
EMBED_TOTAL_LIMIT = 6000
EMBED_URL_LIMIT = 2048  # an embed URL over this (or with a space) fails the whole message: 50035
EMBEDS_PER_MESSAGE = 10
# One passage is at most this long before it is trimmed (bot.core.trim): three such quotes, escaped,
# with their titles and footers still fit one message's 6000 characters of embeds.
QUOTE_LIMIT = 1500

# custom_id of a feedback button; parsed back by the DynamicItem in client.py after any restart
FEEDBACK_CUSTOM_ID_TEMPLATE = r"qabot:fb:(?P<vote>up|down):(?P<answer_id>[A-Za-z0-9_-]+)"
_VOTE_WORDS = {Action.FEEDBACK_UP: "up", Action.FEEDBACK_DOWN: "down"}
_ANSWER_ID_RE = re.compile(r"[A-Za-z0-9_-]{1,80}")  # custom_id is at most 100 characters

_CONFIDENCE_COLOUR = {
    Confidence.HIGH: discord.Colour.green(),
    Confidence.MEDIUM: discord.Colour.gold(),
    Confidence.LOW: discord.Colour.orange(),
}


@dataclass(frozen=True)
class MessagePayload:
    """One Discord message: content and/or embeds, plus the buttons to attach (last message only)."""

    content: str | None = None
    embeds: tuple[discord.Embed, ...] = ()
    buttons: tuple[Button, ...] = ()


def feedback_custom_id(action_id: str, answer_id: str) -> str | None:
    """The persistent custom_id for a feedback button, or None if it cannot carry this answer id."""
    vote = _VOTE_WORDS.get(action_id)
    if vote is None or not _ANSWER_ID_RE.fullmatch(answer_id):
        return None
    return f"qabot:fb:{vote}:{answer_id}"


# custom_id of the "Ask a person" button; parsed back by HandoffButton in client.py after any restart
HANDOFF_CUSTOM_ID_TEMPLATE = r"qabot:ask:(?P<answer_id>[A-Za-z0-9_-]+)"


# custom_id of a "Teach qabot" choice: the offer and the candidate's number, or "none" for "Not covered"
TEACH_CUSTOM_ID_TEMPLATE = r"qabot:teach:(?P<value>[A-Za-z0-9_-]{1,40}:(?:[0-9]{1,2}|none))"
_TEACH_VALUE_RE = re.compile(r"[A-Za-z0-9_-]{1,40}:(?:[0-9]{1,2}|none)")


def button_custom_id(action_id: str, value: str) -> str | None:
    """The persistent custom_id of a button Discord can show (feedback, "Ask a person", teach); None for others."""
    if action_id in (Action.TEACH_PICK, Action.TEACH_NOT_COVERED):
        return f"qabot:teach:{value}" if _TEACH_VALUE_RE.fullmatch(value) else None
    if action_id == Action.HANDOFF:
        return f"qabot:ask:{value}" if _ANSWER_ID_RE.fullmatch(value) else None
    return feedback_custom_id(action_id, value)


def handoff_content(handoff: Handoff) -> str:
    """The hand-off message: the role's mention, what happened, and the question (Markdown escaped)."""
    lines = [f"<@&{handoff.to}> {handoff.text}"]
    question = " ".join(handoff.question.split())
    if question:
        lines.append("> " + discord.utils.escape_mentions(discord.utils.escape_markdown(clip(question, 500))))
    return "\n".join(lines)


def escape_quote_text(text: str) -> str:
    """Escape Discord markdown in verbatim text so it shows exactly as written.

    discord.utils.escape_markdown does the work; it is applied line by line after the
    indentation so the backslash lands right before the markup character (a backslash in front
    of spaces would be shown).
    """
    out = []
    for line in text.splitlines():
        body = line.lstrip(" \t")
        indent = line[: len(line) - len(body)]
        out.append(indent + discord.utils.escape_markdown(body))
    return "\n".join(out)


def as_block_quote(text: str) -> str:
    """Prefix every line with "> " so Discord shows it as a quote."""
    return "\n".join(f"> {line}" if line.strip() else ">" for line in text.splitlines() or [""])


def _quoted_chunks(text: str, limit: int = EMBED_DESCRIPTION_LIMIT) -> list[str]:
    """The verbatim quote as "> " lines, split into pieces that each fit `limit` characters."""
    quoted = as_block_quote(escape_quote_text(text))
    # Split before quoting would keep markers intact too; splitting the quoted form at line breaks
    # is equivalent and a piece cut inside a long line gets its "> " marker back.
    pieces = split_text(quoted, limit - 2)
    return [p if p.startswith(">") else f"> {p}" for p in pieces]


def _quote_embeds(quote: Quote, colour: discord.Colour | None, footer: str) -> list[discord.Embed]:
    trimmed = trim_quote(quote, QUOTE_LIMIT)
    quote = trimmed.quote
    footer_text = footer.format(path=quote.doc_path)
    if trimmed.pointer:
        footer_text = f"{trimmed.pointer} · {footer_text}"
    footer_text = clip(footer_text, EMBED_FOOTER_LIMIT)
    section = clip(discord.utils.escape_markdown(quote.section), EMBED_FIELD_VALUE_LIMIT) if quote.section else ""
    base_title = quote.document.strip() or quote.doc_path or "Source"
    longest_title = clip(f"{clip(base_title, EMBED_TITLE_LIMIT - 12)} (99/99)", EMBED_TITLE_LIMIT)
    # what the rest of each embed takes from Discord's 6000-character total
    meta = len(longest_title) + len(footer_text) + (len("Section") + len(section) if section else 0)
    pieces = _quoted_chunks(quote.text, min(EMBED_DESCRIPTION_LIMIT, EMBED_TOTAL_LIMIT - meta))
    url = quote_link(quote, max_length=EMBED_URL_LIMIT)
    embeds = []
    for n, piece in enumerate(pieces, start=1):
        title = base_title
        if len(pieces) > 1:
            title = f"{clip(title, EMBED_TITLE_LIMIT - 12)} ({n}/{len(pieces)})"
        embed = discord.Embed(title=clip(title, EMBED_TITLE_LIMIT), description=piece, url=url, colour=colour)
        if section:
            embed.add_field(name="Section", value=section, inline=False)
        embed.set_footer(text=footer_text)
        embeds.append(embed)
    return embeds


def _pack_embeds(embeds: list[discord.Embed]) -> list[list[discord.Embed]]:
    """Group embeds into messages of at most 10 embeds and 6000 characters."""
    groups: list[list[discord.Embed]] = []
    current: list[discord.Embed] = []
    size = 0
    for embed in embeds:
        n = len(embed)
        if current and (len(current) >= EMBEDS_PER_MESSAGE or size + n > EMBED_TOTAL_LIMIT):
            groups.append(current)
            current, size = [], 0
        current.append(embed)
        size += n
    if current:
        groups.append(current)
    return groups


def _render_answer(reply: Reply, answer: Answer) -> list[MessagePayload]:
    confidence = answer.confidence.value if answer.confidence else "unknown"
    lead_lines = [answer.message.strip() or "Here is what the knowledge base says:"]
    lead_lines.append(f"Confidence: **{confidence}**")
    lead_lines.extend(_hint_lines(reply))
    lead_chunks = split_text("\n".join(lead_lines), CONTENT_LIMIT)

    colour = _CONFIDENCE_COLOUR.get(answer.confidence) if answer.confidence else None
    footer = "Source: {path}" + f" · confidence {confidence}"
    embeds: list[discord.Embed] = []
    for quote in answer.quotes:
        embeds.extend(_quote_embeds(quote, colour, footer))

    payloads = [MessagePayload(content=c) for c in lead_chunks[:-1]]
    groups = _pack_embeds(embeds)
    payloads.append(MessagePayload(content=lead_chunks[-1] if lead_chunks else None, embeds=tuple(groups[0])))
    payloads.extend(MessagePayload(embeds=tuple(g)) for g in groups[1:])
    return payloads


def _hint_lines(reply: Reply) -> list[str]:
    # "-# " is Discord's small grey subtext: suggestions stay out of the way of the answer
    return [f"-# {' '.join(h.split())}" for h in reply.hints if h.strip()]


def _render_text(reply: Reply) -> list[MessagePayload]:
    body = reply.text
    if reply.report is not None:  # people's questions, shown as typed: Discord Markdown escaped
        body = format_report(reply.report, escape=discord.utils.escape_markdown)
    text = "\n".join([body.rstrip(), *_hint_lines(reply)]) if body.strip() else ""
    return [MessagePayload(content=chunk) for chunk in split_text(text, CONTENT_LIMIT)]


def render_discord(reply: Reply) -> list[MessagePayload]:
    """The Discord messages for `reply`, in order; empty when there is nothing to send."""
    if not reply.should_send:
        return []
    answer = reply.answer
    if reply.kind is ReplyKind.ANSWER and answer is not None and answer.quotes:
        payloads = _render_answer(reply, answer)
    else:
        payloads = _render_text(reply)
    buttons = tuple(
        b for b in reply.buttons if button_custom_id(b.action_id, b.value) is not None
    )  # other buttons (e.g. share) have no Discord rendering yet
    if not payloads:
        if not buttons:
            return []
        payloads = [MessagePayload(content="Was this helpful?")]
    if buttons:
        last = payloads[-1]
        payloads[-1] = MessagePayload(content=last.content, embeds=last.embeds, buttons=buttons)
    return payloads


def _embed_as_text(embed: discord.Embed) -> str:
    lines = [f"**{embed.title}**"] if embed.title else []
    if embed.description:
        lines.append(embed.description)
    lines.extend(f"{f.name}: {f.value}" for f in embed.fields if f.value)
    if embed.footer.text:
        lines.append(f"-# {' '.join(embed.footer.text.split())}")
    return "\n".join(lines)


def plain_payloads(payload: MessagePayload) -> list[MessagePayload]:
    """The same message as plain content (no embeds, no links), split into 2000-character messages;
    sent when Discord refuses an embed. Buttons stay on the last one."""
    parts = [payload.content or ""] + [_embed_as_text(e) for e in payload.embeds]
    chunks = split_text("\n\n".join(p for p in parts if p.strip()), CONTENT_LIMIT) or ["…"]
    out = [MessagePayload(content=c) for c in chunks]
    out[-1] = MessagePayload(content=out[-1].content, buttons=payload.buttons)
    return out
