"""Markdown (and plain text) documents -> sections with heading paths -> passages.

Passage boundaries follow the document: a paragraph; a short list together with the lead-in
paragraph that introduces it (a long list: each item with that lead-in); a paragraph that opens
with "For instance," / "Meanwhile," ... stays with the one it elaborates. Short transitional sentences ("Here's an example of one.",
"How do these two fair against each other ...?") are attached to the passage they introduce or,
when nothing follows them in their section, to the one before. Image captions and HTML blocks are
never passages. Passage text is the document's own wording, verbatim.

Nothing is lost silently: a paragraph over the passage limit is skipped and reported, and every
document's words are counted in the source and in what was indexed (passages, plus what is left out
on purpose: headings, captions, link targets, HTML and code blocks, transitions with nothing to
introduce); more than MAX_UNACCOUNTED_WORDS words unaccounted for is reported. Warnings are lines
for a person, each naming the file (see collect_knowledge).
"""

from __future__ import annotations

import hashlib
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from markdown_it import MarkdownIt
from markdown_it.token import Token
from mdit_py_plugins.front_matter import front_matter_plugin

from bot.config import DEFAULT_MAX_PASSAGE_CHARS
from bot.core.links import SOURCE_KINDS, source_kind
from bot.core.urls import url_problem
from index_builder.sources import (
    MAX_FRONT_MATTER_BYTES,
    MAX_FRONT_MATTER_DEPTH,
    PASSAGE_CHARS_SETTING,
    SUPPORTED_SUFFIXES,
    DocumentError,
    RefusedDocument,
    SourceFile,
    SourceLimits,
    discover,
    read_bytes,
)

__all__ = [
    "SUPPORTED_SUFFIXES",
    "Document",
    "DocumentError",
    "Knowledge",
    "Passage",
    "RefusedDocument",
    "collect_knowledge",
    "find_documents",
    "load_document",
    "parse_markdown",
    "parse_plain_text",
    "passages_from_document",
    "split_sentences",
]

# markdown-it's CommonMark preset stops at 20 levels of nesting and drops the rest of the document
# (a list nested 10 deep is 20 levels: list + item). Each level costs about 3 Python frames of
# recursion, so 100 levels (49 nested lists, 99 nested quotes keep their text) stay well inside
# Python's default limit of 1,000 frames; text nested deeper is reported by the word count below.
MAX_NESTING = 100
MAX_LIST_DEPTH = (MAX_NESTING - 1) // 2
MAX_QUOTE_DEPTH = MAX_NESTING - 1
# A passage this long is far over the usual size (paragraphs of a few hundred characters; merged
# passages stop at MERGE_LIMIT): reported at build time, since a front end will have to cut it.
LONG_PASSAGE_CHARS = 3_000
# Words of a document that end in no passage and are not left out on purpose. The count is exact up
# to Markdown's own rewriting (entities, percent-encoded links), so a small allowance is enough.
MAX_UNACCOUNTED_WORDS = 5
_WORD = re.compile(r"[^\W_]+")
_ENTITY = re.compile(r"&(?:#[0-9]{1,7}|#[xX][0-9a-fA-F]{1,6}|[A-Za-z][A-Za-z0-9]{1,31});")
MAX_SOURCE_URL_CHARS = 2_048
# Headings and titles travel with every passage of their section (citations, embeddings, BM25
# tokens): a longer one is cut, with a warning.
MAX_HEADING_CHARS = 300

# A paragraph this short (and a single sentence) cannot stand alone as an answer.
SHORT_PARAGRAPH_CHARS = 110
_TRANSITION_START = re.compile(
    r"^(so,|but let|now,|let[’']s|here[’']s|here are|besides that|that[’']s why|in short)", re.IGNORECASE
)
_BACK_REFERENCE_START = re.compile(r"^(they|it|this|these|those|that)\b", re.IGNORECASE)
# A paragraph that opens with one of these elaborates the one before it: they are quoted together.
_ELABORATION_START = re.compile(
    r"^(for instance|for example|meanwhile|on the other hand|plus|that[’']s because|hence|as a result)\b",
    re.IGNORECASE,
)
# A list this short is one passage (lead-in and all its items); a longer one is split into items,
# each quoted with its lead-in. Elaborations are attached while the passage stays under MERGE_LIMIT.
LIST_PASSAGE_CHARS = 700
MERGE_LIMIT = 700
_SENTENCE_END = re.compile(r"[.!?:](?=\s|$)")


@dataclass
class Block:
    """A paragraph or a list item as it stands in a section."""

    kind: str  # "paragraph" | "item"
    text: str
    line: int  # 0-based source line where it starts
    list_id: int | None = None  # items of one list share it
    lead_in: str | None = None  # for items: the paragraph that introduces the list


@dataclass
class Section:
    path: tuple[str, ...]  # heading path below the document title
    blocks: list[Block] = field(default_factory=list)


@dataclass
class Passage:
    passage_id: str
    doc_path: str
    doc_title: str
    section_path: tuple[str, ...]
    text: str  # verbatim; paragraphs joined by a blank line, list lead-in and item by a newline
    position: int  # order of the passage in its document
    line: int
    kind: str  # "paragraph" | "item"
    list_id: str | None = None
    sentences: list[tuple[int, int]] = field(default_factory=list)  # [start, end) spans in text

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.passage_id,
            "doc_path": self.doc_path,
            "doc_title": self.doc_title,
            "section_path": list(self.section_path),
            "text": self.text,
            "position": self.position,
            "line": self.line,
            "kind": self.kind,
            "list_id": self.list_id,
            "sentences": [list(s) for s in self.sentences],
        }


@dataclass
class Document:
    path: str  # relative to the knowledge folder, with forward slashes
    title: str
    meta: dict[str, Any]
    sections: list[Section]
    sha256: str
    warnings: list[str] = field(default_factory=list)  # for a person; each names the file
    body: str = ""  # the source text after the front matter: what the word count checks against
    body_line: int = 0  # 0-based line of the file where `body` starts
    set_aside: list[str] = field(default_factory=list)  # text left out of passages on purpose

    @property
    def source_url(self) -> str | None:
        url = self.meta.get("source_url")
        return str(url) if url else None

    @property
    def source_kind(self) -> str | None:
        """How quotes link to the source: "web" (a text fragment) or "repository" (the heading)."""
        return source_kind(self.source_url, self.meta.get("source_kind"))


# Markdown's inline parser (links, images) is slow on unclosed brackets: a 1 MB line of "![" took
# 291 s and of "[" 117 s. A block whose Markdown source is longer than RAW_BLOCK_FACTOR times the
# passage limit is never inline-parsed (it could not be a passage anyway), and the inline parser's
# nesting limit, whose cost grows with it (39,000 characters of "![": 0.9 s at 10, 5.3 s at 100), is
# 10: links hold images, not deeper, and text nested deeper is kept as text, never dropped.
RAW_BLOCK_FACTOR = 2
INLINE_MAX_NESTING = 10
_TOO_LONG = "qabot_too_long"  # meta key on an inline token left unparsed: its source length


def _markdown(max_passage_chars: int = DEFAULT_MAX_PASSAGE_CHARS) -> MarkdownIt:
    md = MarkdownIt("commonmark", {"maxNesting": MAX_NESTING}).use(front_matter_plugin)

    def inline_limits(state: Any) -> None:  # runs after the block parser, before the inline one
        state.md.options["maxNesting"] = INLINE_MAX_NESTING
        for token in state.tokens:
            if token.type == "inline" and len(token.content) > RAW_BLOCK_FACTOR * max_passage_chars:
                token.meta[_TOO_LONG] = len(token.content)
                token.meta["source"] = token.content
                token.content = ""

    def block_limits(state: Any) -> None:  # the same parser may be used again
        state.md.options["maxNesting"] = MAX_NESTING

    md.core.ruler.before("block", "qabot_block_limits", block_limits)
    md.core.ruler.before("inline", "qabot_inline_limits", inline_limits)
    return md


def _where(rel_path: str, section_path: tuple[str, ...], line: int) -> str:
    section = f", section “{' › '.join(section_path)}”" if section_path else ""
    return f"{rel_path}{section}, line {line + 1}"


def _too_long(where: str, chars: int, limit: int, *, unparsed: bool = False) -> str:
    what = "characters of Markdown" if unparsed else "characters"
    return (
        f"{where}: skipped a paragraph of {chars:,} {what}, over the limit of {limit:,} per passage "
        f"({PASSAGE_CHARS_SETTING} raises it)"
    )


# ---------------------------------------------------------------- front matter


class _FrontMatterLoader(yaml.SafeLoader):
    """PyYAML's safe loader without anchors and aliases, and nested at most MAX_FRONT_MATTER_DEPTH deep.

    A few lines of aliases ("a: &a [x,x,x,x,x,x,x,x,x]", "b: &b [*a,*a,...]", ...) describe billions
    of values: turned into text they take minutes and gigabytes. Front matter never needs them.
    """

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._depth = 0

    def compose_node(self, parent: Any, index: Any) -> Any:
        event = self.peek_event()
        if isinstance(event, yaml.AliasEvent) or getattr(event, "anchor", None):
            raise _FrontMatterRefused(
                f"uses a YAML anchor or alias (line {event.start_mark.line + 2}): qabot refuses them, since a "
                "few lines of aliases can expand to billions of values; write the value out instead"
            )
        self._depth += 1
        if self._depth > MAX_FRONT_MATTER_DEPTH:
            raise _FrontMatterRefused(
                f"is nested more than {MAX_FRONT_MATTER_DEPTH} levels deep (line {event.start_mark.line + 2})"
            )
        try:
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1


class _FrontMatterRefused(Exception):
    pass


def load_front_matter(content: str, rel_path: str) -> dict[str, Any]:
    """The front matter as a dict ({} when it is not a mapping); DocumentError naming the file otherwise."""
    size = len(content.encode("utf-8"))
    if size > MAX_FRONT_MATTER_BYTES:
        raise DocumentError(
            f"{rel_path}: the front matter is {size:,} bytes; qabot reads at most {MAX_FRONT_MATTER_BYTES:,} "
            "(a title, a date and a source URL need far less)"
        )
    loader = _FrontMatterLoader(content)
    try:
        loaded = loader.get_single_data()
    except _FrontMatterRefused as err:
        raise DocumentError(f"{rel_path}: the front matter {err}") from None
    except yaml.YAMLError as err:
        raise DocumentError(f"{rel_path}: front matter is not valid YAML ({err})") from err
    except (ValueError, OverflowError) as err:  # e.g. an integer of more than 4,300 digits
        raise DocumentError(f"{rel_path}: front matter has a value qabot cannot read ({err})") from err
    finally:
        loader.dispose()
    return loaded if isinstance(loaded, dict) else {}


def source_url_problem(value: Any) -> str | None:
    """Why `value` cannot be a document's link (None when it can): http(s), a host, ≤ 2,048 characters,
    no spaces, control characters or characters a link may not hold (what Discord and Slack accept)."""
    return url_problem(value, max_length=MAX_SOURCE_URL_CHARS)


def _checked_meta(meta: dict[str, Any], rel_path: str, warnings: list[str]) -> dict[str, Any]:
    """Drop a source_url or title that cannot be used, with a warning; the document is still indexed."""
    meta = dict(meta)
    url = meta.get("source_url")
    if url not in (None, ""):
        problem = source_url_problem(url)
        if problem:
            shown = repr(url)
            shown = shown if len(shown) <= 80 else shown[:77] + "…"
            warnings.append(f"{rel_path}: source_url dropped ({problem}): {shown}")
            meta.pop("source_url")
    kind = meta.get("source_kind")
    if kind is not None and kind not in SOURCE_KINDS:
        warnings.append(f"{rel_path}: source_kind ignored: {kind!r} is not one of {', '.join(SOURCE_KINDS)}")
        meta.pop("source_kind")
    title = meta.get("title")
    if title is not None and not isinstance(title, (str, int, float)):
        warnings.append(f"{rel_path}: title ignored: it is not text but {type(title).__name__}")
        meta.pop("title")
    return meta


def _inline_text(token: Token) -> str:
    """Plain text of an inline token: the words a reader sees (link text kept, markup dropped)."""
    parts: list[str] = []
    for child in token.children or []:
        if child.type in ("text", "code_inline", "html_inline"):
            parts.append(child.content)
        elif child.type in ("softbreak", "hardbreak"):
            parts.append("\n")
    return "".join(parts).strip()


def _is_caption(token: Token) -> bool:
    """A paragraph made only of images (and whitespace) is a figure caption, not prose."""
    children = [c for c in (token.children or []) if not (c.type == "text" and not c.content.strip())]
    children = [c for c in children if c.type not in ("softbreak", "hardbreak")]
    return bool(children) and all(c.type == "image" for c in children)


def _words(text: str) -> list[str]:
    return _WORD.findall(text.casefold())


def parse_markdown(text: str, rel_path: str, *, max_passage_chars: int | None = None) -> Document:
    limit = max_passage_chars or SourceLimits().max_passage_chars
    env: dict[str, Any] = {}
    tokens = _markdown(limit).parse(text, env)
    meta: dict[str, Any] = {}
    warnings: list[str] = []
    set_aside: list[str] = []
    body_start = 0
    title: str | None = None
    sections: list[Section] = []
    heading_stack: list[tuple[int, str]] = []  # (level, text) below the title
    current = Section(path=())
    sections.append(current)
    list_depth = 0
    list_counter = 0
    list_ids: list[int] = []
    in_item = 0

    i = 0
    while i < len(tokens):
        tok = tokens[i]
        if tok.type == "front_matter":
            meta = _checked_meta(load_front_matter(tok.content, rel_path), rel_path, warnings)
            body_start = tok.map[1] if tok.map else 0
        elif tok.type in ("html_block", "fence", "code_block"):
            set_aside.append(f"{tok.info} {tok.content}")  # not prose: never quoted
        elif tok.type == "heading_open":
            level = int(tok.tag[1])
            inline = tokens[i + 1]
            heading = inline.meta["source"] if _TOO_LONG in inline.meta else _inline_text(inline)
            set_aside.append(inline.meta.get("source", inline.content))  # quoted as the section path
            if len(heading) > MAX_HEADING_CHARS:
                where = _where(rel_path, tuple(h for _, h in heading_stack), tok.map[0] if tok.map else 0)
                warnings.append(
                    f"{where}: a heading of {len(heading):,} characters, cut to its first {MAX_HEADING_CHARS} "
                    "(it is repeated with every passage of its section)"
                )
                heading = heading[: MAX_HEADING_CHARS - 1].rstrip() + "…"
            if level == 1 and title is None and not heading_stack:
                title = heading
            else:
                while heading_stack and heading_stack[-1][0] >= level:
                    heading_stack.pop()
                heading_stack.append((level, heading))
                current = Section(path=tuple(h for _, h in heading_stack))
                sections.append(current)
            i += 3
            continue
        elif tok.type in ("bullet_list_open", "ordered_list_open"):
            list_depth += 1
            list_counter += 1
            list_ids.append(list_counter)
        elif tok.type in ("bullet_list_close", "ordered_list_close"):
            list_depth -= 1
            list_ids.pop()
        elif tok.type == "list_item_open":
            in_item += 1
        elif tok.type == "list_item_close":
            in_item -= 1
        elif tok.type == "paragraph_open":
            inline = tokens[i + 1]
            line = tok.map[0] if tok.map else 0
            if _TOO_LONG in inline.meta:
                where = _where(rel_path, current.path, line)
                warnings.append(_too_long(where, inline.meta[_TOO_LONG], limit, unparsed=True))
                set_aside.append(inline.meta["source"])
            elif _is_caption(inline):
                # kept as a marker only: a caption is never quoted, but a transition before it
                # ("Here's an example of one.") introduces the figure, not the next paragraph
                current.blocks.append(Block("caption", "", line))
                set_aside.append(inline.content)
            else:
                body = _inline_text(inline)
                if len(body) > limit:
                    warnings.append(_too_long(_where(rel_path, current.path, line), len(body), limit))
                    set_aside.append(inline.content)
                elif body and in_item:
                    # The paragraph right before a list, ending with ':' introduces it.
                    lead = None
                    prev = current.blocks[-1] if current.blocks else None
                    if prev is not None and prev.kind == "paragraph" and prev.text.endswith(":"):
                        lead = prev.text
                    elif prev is not None and prev.kind == "item" and prev.list_id == list_ids[-1]:
                        lead = prev.lead_in
                    current.blocks.append(Block("item", body, line, list_id=list_ids[-1], lead_in=lead))
                elif body:
                    current.blocks.append(Block("paragraph", body, line))
            i += 3
            continue
        i += 1

    # link targets, link and image titles, image descriptions and link reference definitions are
    # Markdown's, not the prose's: the word count must not miss them
    for tok in tokens:
        for child in tok.children or []:
            set_aside.extend(str(child.attrs[key]) for key in ("href", "src", "title") if key in child.attrs)
            if child.type == "image":
                set_aside.append(child.content)
    for label, ref in (env.get("references") or {}).items():
        set_aside.append(f"{label} {ref.get('href', '')} {ref.get('title', '')}")

    if title is None:
        title = str(meta.get("title") or Path(rel_path).stem.replace("-", " ").replace("_", " ").strip())
    title = str(meta.get("title") or title)
    if len(title) > MAX_HEADING_CHARS:
        warnings.append(f"{rel_path}: a title of {len(title):,} characters, cut to its first {MAX_HEADING_CHARS}")
        title = title[: MAX_HEADING_CHARS - 1].rstrip() + "…"
    sha = hashlib.sha256(text.encode("utf-8")).hexdigest()
    body = "\n".join(text.split("\n")[body_start:]) if body_start else text
    return Document(
        rel_path,
        title,
        meta,
        sections,
        sha,
        warnings=warnings,
        body=body,
        body_line=body_start,
        set_aside=set_aside,
    )


def parse_plain_text(text: str, rel_path: str, *, max_passage_chars: int | None = None) -> Document:
    """A .txt file: blank-line separated paragraphs in one untitled section."""
    limit = max_passage_chars or SourceLimits().max_passage_chars
    section = Section(path=())
    warnings: list[str] = []
    set_aside: list[str] = []
    line = 0
    for chunk in re.split(r"\n\s*\n", text):
        stripped = chunk.strip()
        if len(stripped) > limit:
            warnings.append(_too_long(_where(rel_path, (), line), len(stripped), limit))
            set_aside.append(stripped)
        elif stripped:
            section.blocks.append(Block("paragraph", stripped, line))
        line += chunk.count("\n") + 2
    title = Path(rel_path).stem.replace("-", " ").replace("_", " ").strip()
    sha = hashlib.sha256(text.encode("utf-8")).hexdigest()
    return Document(rel_path, title, {}, [section], sha, warnings=warnings, body=text, set_aside=set_aside)


def load_source(source: SourceFile, limits: SourceLimits | None = None) -> Document:
    """Read and parse one file found by sources.discover (RefusedDocument: skip it, DocumentError: stop)."""
    limits = limits or SourceLimits()
    raw = read_bytes(source, limits)
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        raise DocumentError(f"{source.rel}: is not UTF-8 text (byte {err.start})") from err
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    if source.rel.lower().endswith(".txt"):
        return parse_plain_text(text, source.rel, max_passage_chars=limits.max_passage_chars)
    return parse_markdown(text, source.rel, max_passage_chars=limits.max_passage_chars)


def load_document(path: Path, root: Path, limits: SourceLimits | None = None) -> Document:
    """One regular file of the knowledge folder `root` (a link is read only through discover)."""
    return load_source(SourceFile(path.relative_to(root).as_posix(), path), limits)


def find_documents(knowledge_dir: Path) -> list[Path]:
    """The documents of the folder (see sources.discover), as paths below `knowledge_dir`, in a stable order."""
    found, _ = discover(knowledge_dir)
    return [Path(knowledge_dir) / source.rel for source in found]


def _single_sentence(text: str) -> bool:
    return len(_SENTENCE_END.findall(text.rstrip())) <= 1


def _is_transitional(block: Block) -> bool:
    if block.kind != "paragraph":
        return False
    text = block.text.strip()
    if not _single_sentence(text):
        return False
    if _TRANSITION_START.match(text) or text.endswith(("?", ":")):
        return len(text) <= 2 * SHORT_PARAGRAPH_CHARS
    return len(text) <= SHORT_PARAGRAPH_CHARS


def split_sentences(text: str) -> list[tuple[int, int]]:
    """Sentence spans of a passage: list lines and paragraphs are split first, then at . ! ? + space."""
    spans: list[tuple[int, int]] = []
    for line_match in re.finditer(r"[^\n]+", text):
        start = line_match.start()
        line = line_match.group()
        cursor = 0
        for m in re.finditer(r"(?<=[.!?])\s+(?=[A-Z0-9“\"‘'(])", line):
            piece = line[cursor : m.start()]
            if piece.strip():
                spans.append((start + cursor, start + m.start()))
            cursor = m.end()
        if line[cursor:].strip():
            spans.append((start + cursor, start + len(line.rstrip())))
    return spans


def _join_lists(blocks: list[Block]) -> list[Block]:
    """A short list with its lead-in becomes one "list" block; a long one stays as items with their lead-in."""
    out: list[Block] = []
    idx = 0
    while idx < len(blocks):
        block = blocks[idx]
        if block.kind != "item":
            out.append(block)
            idx += 1
            continue
        end = idx
        while end < len(blocks) and blocks[end].kind == "item" and blocks[end].list_id == block.list_id:
            end += 1
        items = blocks[idx:end]
        lead = block.lead_in
        if lead and out and out[-1].kind == "paragraph" and out[-1].text == lead:
            out.pop()  # the lead-in is quoted with its list
        lines = ([lead] if lead else []) + [item.text for item in items]
        if sum(len(line) + 1 for line in lines) <= LIST_PASSAGE_CHARS:
            out.append(Block("list", "\n".join(lines), block.line, list_id=block.list_id))
        else:
            for item in items:
                text = f"{lead}\n{item.text}" if lead else item.text
                out.append(Block("item", text, item.line, list_id=item.list_id, lead_in=lead))
        idx = end
    return out


def _chars(blocks: list[Block]) -> int:
    return sum(len(block.text) for block in blocks)


def _group_section(blocks: list[Block]) -> list[list[Block]]:
    groups: list[list[Block]] = []
    pending: list[Block] = []  # transitional paragraphs waiting for what they introduce
    for idx, block in enumerate(blocks):
        if block.kind == "caption":
            continue
        if _is_transitional(block):
            forward = block.text.endswith((":", "?")) or bool(_TRANSITION_START.match(block.text))
            forward = forward or not groups
            next_block = blocks[idx + 1] if idx + 1 < len(blocks) else None
            if groups and (_BACK_REFERENCE_START.match(block.text) or (next_block and next_block.kind == "caption")):
                forward = False
            # runs of short paragraphs are bounded: a long run is content of its own, not a transition
            if forward:
                if pending and _chars(pending) + len(block.text) > MERGE_LIMIT:
                    groups.append(pending)
                    pending = []
                pending.append(block)
            elif _chars(groups[-1][1:]) + len(block.text) > MERGE_LIMIT:
                groups.append([block])
            else:
                groups[-1].append(block)
            continue
        if (
            block.kind == "paragraph"
            and not pending
            and groups
            and _ELABORATION_START.match(block.text)
            and _chars(groups[-1]) + len(block.text) <= MERGE_LIMIT
        ):
            groups[-1].append(block)
            continue
        groups.append([*pending, block])
        pending = []
    if pending and groups:
        groups[-1].extend(pending)
    elif pending and not all(_TRANSITION_START.match(b.text) or b.text.endswith((":", "?")) for b in pending):
        # short statements with nothing else in their section ("The office dog is called Biscuit.") are content
        groups.append(pending)
    # a section holding only a transition ("Let's explore ...") has nothing to quote
    return groups


def _units(doc: Document) -> tuple[list[tuple[Section, list[Block]]], list[Block]]:
    """(section, blocks of one passage) in document order, and the blocks left out of every passage."""
    units: list[tuple[Section, list[Block]]] = []
    left_out: list[Block] = []
    for section in doc.sections:
        blocks = _join_lists(section.blocks)
        groups = _group_section(blocks)
        kept = {id(block) for group in groups for block in group}
        left_out.extend(b for b in blocks if id(b) not in kept and b.kind != "caption")
        units.extend((section, group) for group in groups)
    return units, left_out


def passages_from_document(doc: Document) -> list[Passage]:
    """Group each section's blocks into passages (see module docstring)."""
    units, _ = _units(doc)

    passages: list[Passage] = []
    for position, (section, group) in enumerate(units):
        text = "\n\n".join(block.text for block in group)
        listed = next((b for b in group if b.kind in ("item", "list")), None)
        digest = hashlib.sha1(f"{doc.path}\n{position}\n{text}".encode()).hexdigest()[:12]
        passages.append(
            Passage(
                passage_id=f"p{position:04d}-{digest}",
                doc_path=doc.path,
                doc_title=doc.title,
                section_path=section.path,
                text=text,
                position=position,
                line=group[0].line,
                kind=listed.kind if listed else "paragraph",
                list_id=f"{doc.path}#{listed.list_id}" if listed else None,
                sentences=split_sentences(text),
            )
        )
    return passages


# ---------------------------------------------------------------- checks over a whole document


def unaccounted_words(doc: Document, passages: list[Passage]) -> tuple[int, int, list[str], int | None]:
    """(words of the source in no passage and not left out on purpose, words of the source, examples,
    0-based line of the file where the first line with only such words is, or None).

    Words are compared as multisets (case-folded letters and digits), so the check does not depend
    on how the Markdown was parsed: text a parser drops shows up here whatever dropped it.
    """
    source_words = _words(_ENTITY.sub(" ", doc.body))
    accounted: Counter[str] = Counter()
    for passage in passages:
        accounted.update(_words(passage.text))
    for text in doc.set_aside:
        accounted.update(_words(text))
    _, left_out = _units(doc)
    for block in left_out:
        if _is_transitional(block):  # a transition with nothing to introduce: left out on purpose
            accounted.update(_words(block.text))
    counts = Counter(source_words)
    missing = counts - accounted
    if not missing:
        return 0, len(source_words), [], None
    # examples: words missing everywhere first (they say what was lost), then the others
    ordered = list(dict.fromkeys(w for w in source_words if missing[w]))
    examples = sorted(ordered, key=lambda w: missing[w] < counts[w])[:8]
    first_line = None
    for number, line in enumerate(doc.body.split("\n")):
        words = _words(_ENTITY.sub(" ", line))
        if words and all(missing[w] for w in words):
            first_line = doc.body_line + number
            break
    return sum(missing.values()), len(source_words), examples, first_line


def document_warnings(doc: Document, passages: list[Passage]) -> list[str]:
    """Passages far over the usual size, and words that ended in no passage."""
    warnings: list[str] = []
    for passage in passages:
        if len(passage.text) > LONG_PASSAGE_CHARS:
            warnings.append(
                f"{_where(doc.path, passage.section_path, passage.line)}: a passage of {len(passage.text):,} "
                f"characters, far over the usual size (under {MERGE_LIMIT:,}); answers will show only its start. "
                "Splitting it into paragraphs makes it quotable"
            )
    missing, total, examples, first_line = unaccounted_words(doc, passages)
    if missing > MAX_UNACCOUNTED_WORDS:
        where = f", from line {first_line + 1} on" if first_line is not None else ""
        warnings.append(
            f"{doc.path}: {missing:,} of its {total:,} words ({missing / max(total, 1):.0%}) are in no passage"
            f"{where} (e.g. {', '.join(examples)}); lists nested more than {MAX_LIST_DEPTH} deep or quotes "
            f"more than {MAX_QUOTE_DEPTH} deep lose their text"
        )
    return warnings


@dataclass
class Knowledge:
    """What a knowledge folder gives the index: documents, their passages, and what a person should know."""

    documents: list[Document]
    passages: list[Passage]
    warnings: list[str]  # files refused (links out of the folder, devices, too big, ...), text skipped or lost


def collect_knowledge(knowledge_dir: Path, limits: SourceLimits | None = None) -> Knowledge:
    """Discover, read and parse every document; refused files and suspicious content become warnings.

    Raises DocumentError for a document that cannot be read or parsed at all (not UTF-8, bad front
    matter): the build stops and names it.
    """
    limits = limits or SourceLimits()
    sources, warnings = discover(Path(knowledge_dir), limits)
    documents: list[Document] = []
    passages: list[Passage] = []
    for source in sources:
        try:
            doc = load_source(source, limits)
        except RefusedDocument as err:
            warnings.append(str(err))
            continue
        doc_passages = passages_from_document(doc)
        warnings.extend(doc.warnings)
        warnings.extend(document_warnings(doc, doc_passages))
        documents.append(doc)
        passages.extend(doc_passages)
    return Knowledge(documents, passages, warnings)
