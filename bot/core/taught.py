"""Taught pairs as the core sees them, and re-attaching a taught passage to an index by its text (pure
Python, no model: the conversation layer and the CLI use it without loading the retrieval stack)."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

_SPACES = re.compile(r"\s+")


def squash(text: str) -> str:
    """Whitespace normalised: what a passage's text is re-attached by when it no longer matches exactly."""
    return _SPACES.sub(" ", text).strip()


@dataclass(frozen=True)
class TaughtExample:
    """What steering needs of a taught pair."""

    pair_id: int
    question: str
    passage_text: str  # '' for "not covered"

    @property
    def not_covered(self) -> bool:
        return not self.passage_text


def reattach(passage_text: str, passages: Sequence[dict], *, by_text: dict[str, int] | None = None) -> int | None:
    """The row of the passage with this text in `passages`: exact, then whitespace-normalised; None when gone."""
    if not passage_text:
        return None
    if by_text is not None:
        row = by_text.get(passage_text)
        if row is None:
            row = by_text.get("\0" + squash(passage_text))
        return row
    for row, p in enumerate(passages):
        if p["text"] == passage_text:
            return row
    wanted = squash(passage_text)
    for row, p in enumerate(passages):
        if squash(p["text"]) == wanted:
            return row
    return None


def passage_lookup(passages: Sequence[dict]) -> dict[str, int]:
    """Text -> row (the first of equal texts), and "\\0" + squashed text -> row, for `reattach`."""
    out: dict[str, int] = {}
    for row, p in enumerate(passages):
        out.setdefault(p["text"], row)
    for row, p in enumerate(passages):
        out.setdefault("\0" + squash(p["text"]), row)
    return out
