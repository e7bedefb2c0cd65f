"""Markdown (and plain text) documents -> sections with heading paths -> passages.

Passage boundaries follow the document: a paragraph; a short list together with the lead-in
paragraph that introduces it (a long list: each item with that lead-in); a paragraph that opens
with "For instance," / "Meanwhile," ... stays with the one it elaborates. Short transitional sentences ("Here's an example of one.",
"How do these two fair against each other ...?") are attached to the passage they introduce or,
when nothing follows them in their section, to the one before. Image captions and HTML blocks are
never passages. Passage text is the document's own wording, verbatim.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from markdown_it import MarkdownIt
from markdown_it.token import Token
from mdit_py_plugins.front_matter import front_matter_plugin

SUPPORTED_SUFFIXES = (".md", ".markdown", ".txt")

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

    @property
    def source_url(self) -> str | None:
        url = self.meta.get("source_url")
        return str(url) if url else None


class DocumentError(ValueError):
    """A knowledge file cannot be read or parsed; the message names the file."""


def _markdown() -> MarkdownIt:
    return MarkdownIt("commonmark").use(front_matter_plugin)


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


def parse_markdown(text: str, rel_path: str) -> Document:
    tokens = _markdown().parse(text)
    meta: dict[str, Any] = {}
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
            try:
                loaded = yaml.safe_load(tok.content) or {}
            except yaml.YAMLError as err:
                raise DocumentError(f"{rel_path}: front matter is not valid YAML ({err})") from err
            meta = loaded if isinstance(loaded, dict) else {}
        elif tok.type == "heading_open":
            level = int(tok.tag[1])
            heading = _inline_text(tokens[i + 1])
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
            if _is_caption(inline):
                # kept as a marker only: a caption is never quoted, but a transition before it
                # ("Here's an example of one.") introduces the figure, not the next paragraph
                current.blocks.append(Block("caption", "", line))
            else:
                body = _inline_text(inline)
                if body and in_item:
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

    if title is None:
        title = str(meta.get("title") or Path(rel_path).stem.replace("-", " ").replace("_", " ").strip())
    sha = hashlib.sha256(text.encode("utf-8")).hexdigest()
    return Document(rel_path, str(meta.get("title") or title), meta, sections, sha)


def parse_plain_text(text: str, rel_path: str) -> Document:
    """A .txt file: blank-line separated paragraphs in one untitled section."""
    section = Section(path=())
    line = 0
    for chunk in re.split(r"\n\s*\n", text):
        stripped = chunk.strip()
        if stripped:
            section.blocks.append(Block("paragraph", stripped, line))
        line += chunk.count("\n") + 2
    title = Path(rel_path).stem.replace("-", " ").replace("_", " ").strip()
    sha = hashlib.sha256(text.encode("utf-8")).hexdigest()
    return Document(rel_path, title, {}, [section], sha)


def load_document(path: Path, root: Path) -> Document:
    rel = path.relative_to(root).as_posix()
    try:
        raw = path.read_bytes()
    except OSError as err:
        raise DocumentError(f"{rel}: cannot be read ({err.strerror or err})") from err
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        raise DocumentError(f"{rel}: is not UTF-8 text (byte {err.start})") from err
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    if path.suffix.lower() == ".txt":
        return parse_plain_text(text, rel)
    return parse_markdown(text, rel)


def find_documents(knowledge_dir: Path) -> list[Path]:
    """Every .md/.markdown/.txt file below the folder, hidden files and README-free, in a stable order."""
    found = []
    for path in sorted(knowledge_dir.rglob("*")):
        rel_parts = path.relative_to(knowledge_dir).parts
        if any(part.startswith(".") for part in rel_parts):
            continue
        if path.is_file() and path.suffix.lower() in SUPPORTED_SUFFIXES:
            found.append(path)
    return found


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
            if forward:
                pending.append(block)
            else:
                groups[-1].append(block)
            continue
        if (
            block.kind == "paragraph"
            and not pending
            and groups
            and _ELABORATION_START.match(block.text)
            and sum(len(b.text) for b in groups[-1]) + len(block.text) <= MERGE_LIMIT
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


def passages_from_document(doc: Document) -> list[Passage]:
    """Group each section's blocks into passages (see module docstring)."""
    units: list[tuple[Section, list[Block]]] = []
    for section in doc.sections:
        for group in _group_section(_join_lists(section.blocks)):
            units.append((section, group))

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
