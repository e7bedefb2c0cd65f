"""The terminal as a first-class front end (issue 9, item 7): answers, reports and tables with `rich`.

On a terminal, `qabot chat` and `qabot ask` lay an answer out: the lead sentence with its confidence
coloured (high green, medium yellow, low red), each quote indented behind a bar with the sentence that
best answers it in **bold** (a style, not `**` marks), then its document and section, and its link to
the source (clickable where the terminal supports hyperlinks). `qabot feedback report` and
`qabot index info` are tables.

When the output is not a terminal (a pipe, a file, `NO_COLOR`, `TERM=dumb`), every command prints the
plain text it always printed (bot/core/render.py), byte for byte: scripts and tests that read it do
not change. Whether a stream is a terminal is rich's own decision (`Console.is_terminal`, which also
honours `FORCE_COLOR` and `TTY_COMPATIBLE`), made on the stream each command writes to.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from typing import IO, Any

from rich import box
from rich.console import Console, Group, RenderableType
from rich.padding import Padding
from rich.style import Style
from rich.table import Table
from rich.text import Text

from bot.core.links import quote_link
from bot.core.render import CONFIDENCE_LABEL, PLAIN_QUOTE_LIMIT
from bot.core.trim import trim_quote
from bot.core.types import Answer, AnswerKind, Quote

CONFIDENCE_STYLE = {"high": "bold green", "medium": "bold yellow", "low": "bold red"}
QUOTE_BAR = "▌ "
QUOTE_BAR_STYLE = "cyan"
BEST_SENTENCE_STYLE = "bold"
SOURCE_STYLE = "dim"
SECTION_STYLE = "italic"


def console_for(stream: IO[str]) -> Console:
    """A Console writing to `stream`: styled when it is a terminal, plain text otherwise.

    No rich markup or highlighting is applied to the text it prints: questions and quotes are
    what people wrote, and "[bold]" in a passage is text, not a style.
    """
    return Console(file=stream, markup=False, highlight=False, emoji=False, soft_wrap=False)


def styled(console: Console) -> bool:
    """Render for a person (tables, colours, bold) rather than as the plain text of a pipe."""
    return console.is_terminal and not console.is_dumb_terminal


# ---- answers -------------------------------------------------------------------------------------


def _quote_text(quote: Quote) -> Text:
    text = Text(quote.text)
    if quote.highlight:
        start, end = quote.highlight
        text.stylize(BEST_SENTENCE_STYLE, start, end)
    return text


def _source_line(quote: Quote) -> Text:
    where = quote.document if quote.section == quote.document else f"{quote.document} › {quote.section}"
    line = Text("— ", style=SOURCE_STYLE)
    line.append(where.replace(" > ", " › "), style=SECTION_STYLE)
    link = quote_link(quote)
    if link:
        line.append(" · ", style=SOURCE_STYLE)
        line.append(link, style=Style(color="blue", underline=True, link=link))
    return line


def _quote_renderable(original: Quote, quote_limit: int) -> RenderableType:
    trimmed = trim_quote(original, quote_limit)
    body = Table.grid(padding=0)
    body.add_column(style=QUOTE_BAR_STYLE, no_wrap=True)
    body.add_column()
    body.add_row(Text(QUOTE_BAR, style=QUOTE_BAR_STYLE), _quote_text(trimmed.quote))
    parts: list[RenderableType] = [body, _source_line(trimmed.quote)]
    if trimmed.pointer:
        parts.append(Text(f"  ({trimmed.pointer})", style=SOURCE_STYLE))
    return Group(*parts)


def answer_renderable(answer: Answer, *, quote_limit: int = PLAIN_QUOTE_LIMIT) -> RenderableType:
    """An Answer laid out for a terminal (the same words as bot.core.render.render_plain)."""
    if answer.kind in (AnswerKind.SMALLTALK, AnswerKind.EMPTY):
        return Text(answer.message)
    if answer.kind is AnswerKind.ABSTAIN:
        parts: list[RenderableType] = [Text(answer.message, style="bold")]
        if answer.closest_sections:
            parts.append(Text("The closest sections I have are:"))
            parts.extend(
                Text(f"  • {name.replace(' > ', ' › ')}", style=SECTION_STYLE) for name in answer.closest_sections
            )
        return Group(*parts)
    level = answer.confidence.value if answer.confidence else "low"
    lead = Text(answer.message + " ")
    lead.append(f"(confidence: {CONFIDENCE_LABEL[level]})", style=CONFIDENCE_STYLE[level])
    parts = [lead]
    for quote in answer.quotes:
        parts.append(Text(""))
        parts.append(_quote_renderable(quote, quote_limit))
    return Group(*parts)


def answer_footer(answer: Answer) -> Text:
    return Text(f"({answer.took_ms:.1f} ms · index {answer.index_version})", style=SOURCE_STYLE)


# ---- tables --------------------------------------------------------------------------------------


def _table(title: str, *columns: str, **kw: Any) -> Table:
    table = Table(title=title, title_justify="left", title_style="bold", box=box.SIMPLE_HEAD, **kw)
    for column in columns:
        table.add_column(column)
    return table


def index_info_renderable(manifest: Mapping[str, Any], versions: Iterable[str]) -> RenderableType:
    """`qabot index info` as tables: the version, its encoders, its documents."""
    summary = Table.grid(padding=(0, 2))
    summary.add_column(style="bold")
    summary.add_column()
    summary.add_row("index version", manifest["index_version"])
    summary.add_row("built at", f"{manifest['built_at']} in {manifest['build_seconds']} s")
    summary.add_row("profile", str(manifest.get("profile", "?")))
    summary.add_row("passages", f"{manifest['passage_count']} ({manifest['sentence_count']} sentences)")
    summary.add_row("lexical", str(manifest["lexical"]))
    summary.add_row("versions kept", ", ".join(versions))

    encoders = _table("Encoders", "id", "model", "dims", "runtime", "search", "token vectors")
    for enc in manifest.get("encoders", []):
        search = manifest.get("search", {}).get(enc["id"], {})
        encoders.add_row(
            enc["id"],
            enc["model_name"],
            str(enc["dim"]),
            enc["runtime"],
            str(search.get("faiss_index", "?")),
            "yes" if enc.get("token_vectors") else "no",
        )

    documents = _table("Documents", "path", "title", "passages", "sha256", "source")
    documents.columns[2].justify = "right"
    for doc in manifest["documents"]:
        url = doc.get("source_url")
        source = Text(url, style=Style(link=url)) if url else Text("—", style=SOURCE_STYLE)
        documents.add_row(doc["path"], doc["title"], str(doc["passages"]), doc["sha256"][:12], source)
    parts: list[RenderableType] = [summary, Padding(encoders, (1, 0, 0, 0)), documents]
    warnings = manifest.get("warnings") or []
    if warnings:
        parts.append(Text(f"{len(warnings)} build warning(s): qabot index info --json lists them", style="yellow"))
    return Group(*parts)


def feedback_report_renderable(report: Any) -> RenderableType:
    """`qabot feedback report` as tables (a bot.conversation.report.FeedbackReport)."""
    from bot.conversation.report import ERASED

    totals = Text(
        f"Answers given: {report.answers}   Abstentions: {report.abstentions}   "
        f"Votes: {report.votes_up} up, {report.votes_down} down"
    )
    worst = _table("Worst-rated answers (most net 👎 first)", "#", "question", "👍", "👎", "net", "quoted", "index")
    for column in worst.columns[2:5]:
        column.justify = "right"
    for i, r in enumerate(report.worst, 1):
        worst.add_row(
            str(i),
            r.question or ERASED,
            str(r.up),
            str(r.down),
            Text(f"{r.net:+d}", style="red" if r.net < 0 else ""),
            ", ".join(r.passage_ids) or "no passages",
            r.index_version or "?",
        )
    gaps = _table(
        f"Knowledge gaps: questions not answered or given a 👎, grouped by meaning ({report.grouped_by})",
        "#",
        "question",
        "asked",
        "also asked as",
        "first / last asked (UTC)",
        "closest sections",
    )
    gaps.columns[2].justify = "right"
    for i, g in enumerate(report.gaps, 1):
        asked = f"{g.count}×" + (f" ({g.abstained} unanswered, {g.thumbs_down} 👎)" if g.thumbs_down else "")
        when = "\n".join(time.strftime("%Y-%m-%d %H:%M", time.gmtime(t)) for t in (g.first_asked, g.last_asked))
        gaps.add_row(str(i), g.question, asked, "\n".join(g.variants), when, "\n".join(g.sections))
    parts: list[RenderableType] = [totals, Text("")]
    parts.append(worst if report.worst else Text("Worst-rated answers: none yet (no answer has a 👎)"))
    parts.append(gaps if report.gaps else Text("Knowledge gaps: none yet (every question was answered)"))
    if report.erased:
        parts.append(Text(f"{report.erased} older question(s) erased by the retention setting: counted, not grouped"))
    return Group(*parts)
