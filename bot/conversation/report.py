"""What to improve in the knowledge: the worst-rated answers and the questions the bot could not answer.

Questions are stored as the adapters handed them over, their platform's markup already removed.
`format_report` is the plain rendering (terminal, `qabot feedback report`); a front end whose markup
could change how a person's words show passes its own `escape` (Discord: its Markdown escaping).
"""

from __future__ import annotations

import unicodedata
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from bot.conversation.stores import FeedbackSource
from bot.core.split import clip

if TYPE_CHECKING:
    from bot.config import Settings


ERASED = "(question text erased: older than QABOT_QUESTION_RETENTION_DAYS)"


@dataclass(frozen=True)
class RatedAnswer:
    answer_id: str
    question: str
    up: int
    down: int
    passage_ids: tuple[str, ...]
    index_version: str

    @property
    def net(self) -> int:
        return self.up - self.down


@dataclass(frozen=True)
class AbstainedGroup:
    question: str  # the most frequent phrasing in the group
    count: int
    variants: tuple[str, ...] = ()  # other phrasings, most frequent first


@dataclass(frozen=True)
class FeedbackReport:
    worst: list[RatedAnswer] = field(default_factory=list)
    abstained: list[AbstainedGroup] = field(default_factory=list)
    answers: int = 0
    abstentions: int = 0
    votes_up: int = 0
    votes_down: int = 0


def normalize_question(text: str) -> str:
    """Group key: case-folded, punctuation and symbols dropped, whitespace collapsed."""
    text = unicodedata.normalize("NFKC", text).casefold()
    kept = [" " if unicodedata.category(ch)[0] in "PSZC" else ch for ch in text]
    return " ".join("".join(kept).split())


def build_report(store: FeedbackSource, limit: int = 10) -> FeedbackReport:
    totals = store.vote_totals()
    worst = sorted(
        (t for t in totals if t.down > 0),
        key=lambda t: (t.net, -t.down, -t.answer.created_at),
    )[:limit]
    abstained = store.answers(kind="abstain")
    groups: dict[str, Counter[str]] = {}
    for a in abstained:
        phrasing = " ".join(a.question.split()) or a.normalized_question
        key = normalize_question(a.normalized_question or phrasing)
        if key:
            groups.setdefault(key, Counter())[phrasing] += 1
    grouped = [
        AbstainedGroup(
            question=phrasings.most_common(1)[0][0],
            count=sum(phrasings.values()),
            variants=tuple(p for p, _ in phrasings.most_common()[1:4]),
        )
        for phrasings in groups.values()
    ]
    grouped.sort(key=lambda g: (-g.count, g.question.casefold()))
    return FeedbackReport(
        worst=[
            RatedAnswer(
                t.answer.answer_id, t.answer.question, t.up, t.down, t.answer.passage_ids, t.answer.index_version
            )
            for t in worst
        ],
        abstained=grouped[:limit],
        answers=store.answer_count(kind="answer"),
        abstentions=len(abstained),
        votes_up=sum(t.up for t in totals),
        votes_down=sum(t.down for t in totals),
    )


def format_report(report: FeedbackReport, *, escape: Callable[[str], str] = str) -> str:
    """The report as plain text; `escape` is applied to every question (what people typed)."""

    def question(text: str) -> str:
        return escape(_clip(text))

    lines = [
        f"Answers given: {report.answers}   Abstentions: {report.abstentions}   "
        f"Votes: {report.votes_up} up, {report.votes_down} down",
        "",
        "Worst-rated answers (most net 👎 first):",
    ]
    if not report.worst:
        lines.append("  (none yet: no answer has a 👎)")
    for i, r in enumerate(report.worst, 1):
        passages = ", ".join(r.passage_ids) or "no passages"
        lines.append(f"  {i}. {question(r.question) or ERASED}  [👍 {r.up} / 👎 {r.down}, net {r.net:+d}]")
        lines.append(f"     quoted: {passages} (index {r.index_version or '?'})")
    lines += ["", "Questions the bot could not answer (most frequent first):"]
    if not report.abstained:
        lines.append("  (none yet)")
    for i, g in enumerate(report.abstained, 1):
        lines.append(f"  {i}. {question(g.question)}  (asked {g.count}x)")
        for v in g.variants:
            lines.append(f"     also: {question(v)}")
    return "\n".join(lines)


def feedback_report_text(settings: Settings, limit: int = 10) -> str:
    """The text of `qabot feedback report`."""
    from bot.conversation.factory import database_of, open_feedback_store

    where = database_of(settings)
    if isinstance(where, Path) and not where.exists():
        return f"No feedback recorded yet: {where} does not exist (the bot creates it on its first answer)."

    store = open_feedback_store(settings)
    try:
        return format_report(build_report(store, limit=limit))
    finally:
        store.close()


def _clip(text: str, limit: int = 120) -> str:
    return clip(" ".join(text.split()), limit)
