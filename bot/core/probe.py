"""Is a version servable? Load it with the real query-time engine and ask it a question from its own knowledge.

A build runs this on its new version before switching `current` to it, a rollback on the version it
would go back to, and `qabot index verify` on the current one: a version that cannot load, or loads
and cannot find its own words, is never switched to.
"""

from __future__ import annotations

from pathlib import Path

from bot.core.errors import IndexCorruptError
from bot.core.index_store import BUILD_FIX
from bot.core.lexical import tokenize
from bot.core.types import AnswerKind

PROBE_TRIES = 3  # sentences tried; the first answered with its own passage passes


def probe_questions(passages: list[dict], limit: int = PROBE_TRIES) -> list[str]:
    """Sentences of the knowledge with the most distinct searchable words (first ones first on a tie)."""
    scored = []
    for row, p in enumerate(passages):
        for start, end in p["sentences"]:
            sentence = p["text"][start:end].strip()
            words = len(set(tokenize(sentence)))
            if words:
                scored.append((-min(words, 20), row, start, sentence))
    scored.sort()
    return list(dict.fromkeys(s for *_, s in scored))[:limit]


def probe(engine) -> str | None:
    """None when the engine answers a sentence of its knowledge by quoting that sentence's passage;
    otherwise why not."""
    passages = engine.index.passages
    questions = probe_questions(passages)
    if not questions:
        return "no sentence of the knowledge has a word a question could match (only emoji, stop words or symbols?)"
    first_problem = None
    for question in questions:
        answer = engine.answer(question)
        owners = {p["id"] for p in passages if question in p["text"]}
        if answer.kind in (AnswerKind.ANSWER, AnswerKind.MENTIONED) and any(
            q.passage_id in owners for q in answer.quotes
        ):
            return None
        first_problem = first_problem or (
            f"asked {_clip(question)!r}, it answered {answer.kind.value}"
            + (f" with {answer.quotes[0].passage_id}" if answer.quotes else "")
            + " instead of quoting that passage"
        )
    return first_problem


def load_and_probe(version_dir: Path):
    """The QAEngine of a version that loads and answers its probe; IndexProblem otherwise."""
    from bot.core.engine import QAEngine

    engine = QAEngine(version_dir)
    problem = probe(engine)
    if problem:
        raise IndexCorruptError(f"The index {engine.version} loads but does not answer: {problem}.", BUILD_FIX)
    return engine


def _clip(text: str, limit: int = 80) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"
