"""A real build and the real engine: each quote links to its place in the source (issue 9, item 6).

A web page's quotes carry a text fragment of the sentence that answers (`#:~:text=`), a repository
file's the anchor of the quote's heading; a source_url Slack or Discord would refuse is reported by
the build and never reaches an answer, which is still given.
"""

from __future__ import annotations

import json
from urllib.parse import unquote

from bot.core.engine import EngineHolder
from bot.core.types import AnswerKind

PAGE = "https://www.miquido.com/blog/machine-learning-vs-generative-ai/"
REPO = "https://github.com/acme/handbook/blob/main/knowledge/office.md"
OFFICE = """---
title: Office handbook
source_url: {url}
---

# Office handbook

## Opening hours

The office opens at nine and closes at six on weekdays.

## Parking

Visitors park in the underground garage below the building, level minus two.
"""


def _front_matter_url(path, url: str) -> None:
    text = path.read_text(encoding="utf-8")
    path.write_text(text.replace("source_url: null", f"source_url: {url}", 1), encoding="utf-8")


def _fragment_text(link: str) -> list[str]:
    return [unquote(p) for p in link.partition("#:~:text=")[2].split(",")]


def test_quotes_link_to_their_passage_and_a_bad_url_is_reported_at_build(fast_index_copy, knowledge_copy, fast_build):
    _front_matter_url(knowledge_copy / "ml-vs-genai.md", PAGE)
    (knowledge_copy / "office.md").write_text(OFFICE.format(url=REPO), encoding="utf-8")
    (knowledge_copy / "lab.md").write_text(
        "---\ntitle: Lab rules\nsource_url: https://intranet.example/lab|hours\n---\n\n# Lab rules\n\n"
        "The robotics lab is open to students from eight in the morning until ten at night.\n",
        encoding="utf-8",
    )
    result = fast_build(knowledge_copy, fast_index_copy)
    assert any(w.startswith("lab.md: source_url dropped (it contains '|' (%7C)") for w in result.warnings)
    manifest = json.loads((fast_index_copy / "current" / "manifest.json").read_text(encoding="utf-8"))
    kinds = {d["path"]: (d["source_url"], d["source_kind"]) for d in manifest["documents"]}
    assert kinds["ml-vs-genai.md"] == (PAGE, "web")
    assert kinds["office.md"] == (REPO, "repository")
    assert kinds["lab.md"] == (None, None)

    engine = EngineHolder(fast_index_copy)
    answer = engine.answer("what is a GAN used for?")
    assert answer.kind is AnswerKind.ANSWER
    for quote in answer.quotes:
        assert quote.source_url == PAGE
        assert quote.link.startswith(PAGE + "#:~:text=")
        words = " ".join(_fragment_text(quote.link))
        target = quote.best_sentence or quote.text.split("\n")[0]
        # the fragment is the sentence that answers: its whole text, or its first and last words
        start, *end = _fragment_text(quote.link)
        assert target.startswith(start) and all(target.endswith(e) for e in end), (words, target)

    office = engine.answer("where do visitors park at the office?")
    (first, *_) = office.quotes
    assert first.doc_path == "office.md"
    assert first.link == REPO + "#parking"

    lab = engine.answer("when is the robotics lab open to students?")
    assert lab.quotes and lab.quotes[0].doc_path == "lab.md"
    assert lab.quotes[0].source_url is None and lab.quotes[0].link is None  # answered, never linked
