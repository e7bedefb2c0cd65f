"""Links from a quote to where it stands in its source (issue 9, item 6).

A knowledge document may name where it comes from in its front matter:

    source_url: https://example.com/blog/ml-vs-genai          # a web page
    source_url: https://github.com/acme/docs/blob/main/faq.md # a file in a repository
    source_kind: repository                                   # optional: web or repository

Each quote then links to its passage, not just to the document:

- a **web page** gets a text fragment (`#:~:text=`, https://wicg.github.io/scroll-to-text-fragment/),
  which browsers that support it (Chrome, Edge, Safari 16.1+, Firefox 131+) scroll to and highlight;
  others open the page at the top. The fragment is the quote's best sentence, or its first line;
  a long one is given as its first and last words (`text=start,end`).
- a **file in a repository** (the URL's path ends in .md, .markdown, .mdx, .rst or .adoc, or
  `source_kind: repository`) gets the anchor of the quote's heading, as GitHub and GitLab make it
  ("What is ML?" -> `#what-is-ml`; the second heading of the same name gets `-1`).

Platform-neutral: the adapters decide how a link looks and check it against their own limits (the
link falls back to the bare `source_url` when the deep link would be too long). What may be a link
at all is `bot.core.urls.url_problem`, checked at build time (a bad `source_url` is dropped there
with a warning) and again when rendering.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable, Sequence
from urllib.parse import quote as percent_encode
from urllib.parse import urlsplit, urlunsplit

from bot.core.types import Quote
from bot.core.urls import MAX_URL_LENGTH, url_problem

SOURCE_KINDS = ("web", "repository")
REPOSITORY_SUFFIXES = (".md", ".markdown", ".mdx", ".rst", ".adoc")
# a text fragment of more words than this is given as its first and last FRAGMENT_EDGE_WORDS words
FRAGMENT_MAX_WORDS = 10
FRAGMENT_EDGE_WORDS = 4


def source_kind(url: str | None, declared: str | None = None) -> str | None:
    """ "web" or "repository" for a usable `url` (the declared kind wins); None without a url."""
    if not url:
        return None
    if declared in SOURCE_KINDS:
        return declared
    path = urlsplit(url).path.lower()
    return "repository" if path.endswith(REPOSITORY_SUFFIXES) else "web"


def _encode_fragment_text(text: str) -> str:
    # the directive's own syntax uses "-", "," and "&": they must be percent-encoded inside the text
    return percent_encode(text, safe="").replace("-", "%2D")


def text_fragment(text: str, *, max_words: int = FRAGMENT_MAX_WORDS, edge_words: int = FRAGMENT_EDGE_WORDS) -> str:
    """The `text=` directive that finds `text` on a page ("" when it has no words)."""
    words = text.split()
    if not words:
        return ""
    if len(words) <= max_words:
        return "text=" + _encode_fragment_text(" ".join(words))
    start, end = " ".join(words[:edge_words]), " ".join(words[-edge_words:])
    return f"text={_encode_fragment_text(start)},{_encode_fragment_text(end)}"


def with_text_fragment(url: str, text: str, *, max_length: int = MAX_URL_LENGTH) -> str:
    """`url` deep-linked to `text` on its page; the bare `url` when that would exceed `max_length`."""
    for max_words, edge in ((FRAGMENT_MAX_WORDS, FRAGMENT_EDGE_WORDS), (4, 2), (1, 1)):
        directive = text_fragment(text, max_words=max_words, edge_words=edge)
        if not directive:
            return url
        # a page anchor stays: the fragment directive follows it ("#section:~:text=...")
        linked = f"{url}{'' if '#' in url else '#'}:~:{directive}"
        if len(linked) <= max_length:
            return linked
    return url


def heading_anchor(heading: str) -> str:
    """The anchor GitHub (and GitLab) give a Markdown heading: lower case, punctuation dropped,
    spaces to hyphens ("Machine Learning vs Generative AI: What’s the Difference?" ->
    "machine-learning-vs-generative-ai-whats-the-difference")."""
    text = unicodedata.normalize("NFC", heading.strip().lower())
    kept = "".join(ch for ch in text if ch in " -_" or unicodedata.category(ch)[0] in "LNM")
    return kept.replace(" ", "-")


def section_anchors(section_paths: Iterable[Sequence[str]]) -> dict[tuple[str, ...], str]:
    """Anchors for a document's sections in document order, repeats numbered as GitHub does ("-1", "-2")."""
    anchors: dict[tuple[str, ...], str] = {}
    seen: dict[str, int] = {}
    for path in section_paths:
        key = tuple(path)
        if not key or key in anchors:
            continue
        slug = heading_anchor(key[-1])
        count = seen.get(slug, 0)
        seen[slug] = count + 1
        anchors[key] = slug if count == 0 else f"{slug}-{count}"
    return anchors


def with_anchor(url: str, anchor: str, *, max_length: int = MAX_URL_LENGTH) -> str:
    """`url` pointing at `anchor` (any anchor it had replaced); the bare `url` when too long or no anchor."""
    if not anchor:
        return url
    parts = urlsplit(url)
    linked = urlunsplit(parts._replace(fragment=percent_encode(anchor, safe="-_")))
    return linked if len(linked) <= max_length else url


def passage_link(
    url: str | None,
    kind: str | None,
    *,
    text: str,
    anchor: str = "",
    max_length: int = MAX_URL_LENGTH,
) -> str | None:
    """The link of one quote: `url` deep-linked to `text` (a web page) or to `anchor` (a repository
    file); None when `url` cannot be a link."""
    if not url or url_problem(url, max_length=max_length):
        return None
    if kind == "repository":
        return with_anchor(url, anchor, max_length=max_length)
    return with_text_fragment(url, text, max_length=max_length)


def fragment_target(text: str, highlight: tuple[int, int] | None) -> str:
    """What a web page's link should scroll to: the best sentence, else the passage's first line."""
    if highlight:
        sentence = text[highlight[0] : highlight[1]]
        if sentence.strip():
            return sentence
    return next((line for line in text.split("\n") if line.strip()), "")


def quote_link(quote: Quote, *, max_length: int = MAX_URL_LENGTH) -> str | None:
    """The link a front end shows for `quote`: its deep link, else its document's `source_url`,
    each only when it can be a link within `max_length` characters; None otherwise."""
    for candidate in (quote.link, quote.source_url):
        if candidate and not url_problem(candidate, max_length=max_length):
            return candidate
    return None
