"""Plain-text rendering of an Answer (terminal, and the fallback text every adapter can send)."""

from __future__ import annotations

from bot.core.links import quote_link
from bot.core.trim import trim_quote
from bot.core.types import Answer, AnswerKind

# One quote in a plain-text answer (terminal, the fallback text of every front end) is at most this
# long; a longer passage is trimmed around its best sentence with a pointer to its section. The
# knowledge's usual passages are under 600 characters, so only pathological ones are trimmed.
PLAIN_QUOTE_LIMIT = 2000

CONFIDENCE_LABEL = {"high": "high", "medium": "medium", "low": "low: check the quote"}


def quote_lines(text: str, highlight: tuple[int, int] | None, *, mark: tuple[str, str] = ("**", "**")) -> list[str]:
    """The passage as '> ' lines; the best-answering sentence wrapped in `mark` (words unchanged)."""
    if highlight:
        start, end = highlight
        text = f"{text[:start]}{mark[0]}{text[start:end]}{mark[1]}{text[end:]}"
    return [f"> {line}" if line else ">" for line in text.split("\n")]


def render_plain(answer: Answer, *, mark: tuple[str, str] = ("**", "**"), quote_limit: int = PLAIN_QUOTE_LIMIT) -> str:
    if answer.kind in (AnswerKind.SMALLTALK, AnswerKind.EMPTY):
        return answer.message
    if answer.kind is AnswerKind.ABSTAIN:
        lines = [answer.message]
        if answer.closest_sections:
            lines.append("The closest sections I have are:")
            lines.extend(f"  • {name}" for name in answer.closest_sections)
        return "\n".join(lines)
    lines = [f"{answer.message} (confidence: {CONFIDENCE_LABEL[answer.confidence.value]})"]
    for original in answer.quotes:
        trimmed = trim_quote(original, quote_limit)
        quote = trimmed.quote
        lines.append("")
        lines.extend(quote_lines(quote.text, quote.highlight, mark=mark))
        where = quote.document if quote.section == quote.document else f"{quote.document} › {quote.section}"
        link = quote_link(quote)
        lines.append(f"— {where}" + (f" · {link}" if link else ""))
        if trimmed.pointer:
            lines.append(f"  ({trimmed.pointer})")
    return "\n".join(lines)
