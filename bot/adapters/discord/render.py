"""Render a platform-neutral Reply as Discord messages that the API always accepts.

Discord rejects (it does not truncate) a message whose content is over 2000 characters, an embed
whose description is over 4096 characters or whose field value is over 1024, and a message whose
embeds add up to more than 6000 characters or number more than 10. This module owns those limits:
long quotes are split across embeds and embeds across messages, so no words are lost and no
request is refused. Feedback buttons ride on the last message.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import discord

from bot.conversation.models import Button, Reply, ReplyKind
from bot.core.types import Answer, Confidence, Quote

# Discord's documented limits (https://discord.com/developers/docs/resources/message#embed-object-embed-limits)
CONTENT_LIMIT = 2000
EMBED_TITLE_LIMIT = 256
EMBED_DESCRIPTION_LIMIT = 4096
EMBED_FIELD_NAME_LIMIT = 256
EMBED_FIELD_VALUE_LIMIT = 1024
EMBED_FOOTER_LIMIT = 2048
EMBED_TOTAL_LIMIT = 6000
EMBEDS_PER_MESSAGE = 10

FEEDBACK_UP = "qabot_feedback_up"
FEEDBACK_DOWN = "qabot_feedback_down"
FEEDBACK_ACTIONS = (FEEDBACK_UP, FEEDBACK_DOWN)
# custom_id of a feedback button; parsed back by the DynamicItem in client.py after any restart
FEEDBACK_CUSTOM_ID_TEMPLATE = r"qabot:fb:(?P<vote>up|down):(?P<answer_id>[A-Za-z0-9_-]+)"
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
    if action_id not in FEEDBACK_ACTIONS or not _ANSWER_ID_RE.fullmatch(answer_id):
        return None
    vote = "up" if action_id == FEEDBACK_UP else "down"
    return f"qabot:fb:{vote}:{answer_id}"


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


def split_text(text: str, limit: int) -> list[str]:
    """Split text into chunks of at most `limit` characters, at line breaks, then spaces, then anywhere."""
    if limit <= 0:
        raise ValueError("limit must be positive")
    chunks: list[str] = []
    current = ""
    for line in text.split("\n"):
        candidate = line if not current else f"{current}\n{line}"
        if len(candidate) <= limit:
            current = candidate
            continue
        if current:
            chunks.append(current)
        current = ""
        while len(line) > limit:
            cut = line.rfind(" ", 0, limit + 1)
            if cut <= 0:
                cut = limit
            chunks.append(line[:cut].rstrip() or line[:cut])
            line = line[cut:].lstrip(" ")
        current = line
    if current.strip():
        chunks.append(current)
    return [c for c in chunks if c.strip()]


def _trim(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def _quoted_chunks(text: str) -> list[str]:
    """The verbatim quote as "> " lines, split into pieces that each fit an embed description."""
    quoted = as_block_quote(escape_quote_text(text))
    # Split before quoting would keep markers intact too; splitting the quoted form at line breaks
    # is equivalent and a piece cut inside a long line gets its "> " marker back.
    pieces = split_text(quoted, EMBED_DESCRIPTION_LIMIT - 2)
    return [p if p.startswith(">") else f"> {p}" for p in pieces]


def _quote_embeds(quote: Quote, colour: discord.Colour | None, footer: str) -> list[discord.Embed]:
    pieces = _quoted_chunks(quote.text)
    embeds = []
    url = quote.source_url if quote.source_url and quote.source_url.startswith(("http://", "https://")) else None
    for n, piece in enumerate(pieces, start=1):
        title = quote.document or quote.doc_path or "Source"
        if len(pieces) > 1:
            title = f"{_trim(title, EMBED_TITLE_LIMIT - 12)} ({n}/{len(pieces)})"
        embed = discord.Embed(
            title=_trim(title, EMBED_TITLE_LIMIT),
            description=piece,
            url=url,
            colour=colour,
        )
        if quote.section:
            embed.add_field(
                name="Section",
                value=_trim(discord.utils.escape_markdown(quote.section), EMBED_FIELD_VALUE_LIMIT),
                inline=False,
            )
        embed.set_footer(text=_trim(footer.format(path=quote.doc_path), EMBED_FOOTER_LIMIT))
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
    text = "\n".join([reply.text.rstrip(), *_hint_lines(reply)]) if reply.text.strip() else ""
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
        b for b in reply.buttons if feedback_custom_id(b.action_id, b.value) is not None
    )  # other buttons (e.g. share) have no Discord rendering yet
    if not payloads:
        if not buttons:
            return []
        payloads = [MessagePayload(content="Was this helpful?")]
    if buttons:
        last = payloads[-1]
        payloads[-1] = MessagePayload(content=last.content, embeds=last.embeds, buttons=buttons)
    return payloads


def payload_within_limits(payload: MessagePayload) -> bool:
    """True when Discord would accept this payload's sizes (used by tests and as a guard)."""
    if payload.content is not None and len(payload.content) > CONTENT_LIMIT:
        return False
    if len(payload.embeds) > EMBEDS_PER_MESSAGE or sum(len(e) for e in payload.embeds) > EMBED_TOTAL_LIMIT:
        return False
    for e in payload.embeds:
        if len(e.title or "") > EMBED_TITLE_LIMIT or len(e.description or "") > EMBED_DESCRIPTION_LIMIT:
            return False
        if len(e.footer.text or "") > EMBED_FOOTER_LIMIT:
            return False
        for f in e.fields:
            if len(f.name or "") > EMBED_FIELD_NAME_LIMIT or len(f.value or "") > EMBED_FIELD_VALUE_LIMIT:
                return False
    return bool(payload.content) or bool(payload.embeds)
