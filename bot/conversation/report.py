"""What to improve in the knowledge: the worst-rated answers, and the knowledge gaps: the questions the bot
abstained on or whose answer got a 👎, grouped by meaning.

Grouping: each question's vector (stored with its answer, bot/conversation/similarity.py; questions stored
without one are embedded now when an encoder is at hand) joins the group whose centroid it is closest to,
if that cosine is at least GAP_SIMILARITY, else starts a group; without any encoder, questions group by
their words (case, punctuation and spacing ignored). A group shows how often it was asked (abstained /
👎), examples of its phrasings, when it was first and last asked and the sections that came closest, so
an admin sees which topic to add to `knowledge/`.

Privacy: question texts older than QABOT_QUESTION_RETENTION_DAYS are erased with their vectors; such
questions are counted (`erased`) but cannot be grouped.

Questions are stored as the adapters handed them over, their platform's markup already removed.
`format_report` is the plain rendering (terminal, `qabot feedback report`); a front end whose markup
could change how a person's words show passes its own `escape` (Discord: its Markdown escaping).
`report_json` is `qabot feedback report --json`.
"""

from __future__ import annotations

import calendar
import json
import logging
import time
import unicodedata
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from bot.conversation.similarity import GAP_SIMILARITY, QuestionEmbedder, cluster, unpack_vector
from bot.conversation.stores import FeedbackSource, StoredAnswer
from bot.core.split import clip

if TYPE_CHECKING:
    from bot.config import Settings

log = logging.getLogger(__name__)

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
class GapGroup:
    """Questions about one topic the knowledge did not serve: abstained on, or answered and given a 👎."""

    question: str  # the most frequent phrasing in the group (the earliest of equals)
    count: int
    variants: tuple[str, ...] = ()  # other phrasings, most frequent first (at most 3)
    abstained: int = 0
    thumbs_down: int = 0
    first_asked: float = 0.0  # unix time
    last_asked: float = 0.0
    sections: tuple[str, ...] = ()  # the sections that came closest, most often first (at most 3)


@dataclass(frozen=True)
class FeedbackReport:
    worst: list[RatedAnswer] = field(default_factory=list)
    gaps: list[GapGroup] = field(default_factory=list)
    answers: int = 0
    abstentions: int = 0
    votes_up: int = 0
    votes_down: int = 0
    erased: int = 0  # gap questions whose text (and vector) the retention setting erased: not grouped
    grouped_by: str = "words"  # the encoder whose vectors grouped the gaps, or "words"
    since: float | None = None  # only questions asked at or after this (unix time)


@dataclass
class _Gap:
    answer: StoredAnswer
    phrasing: str
    key: str
    abstained: bool
    sections: tuple[str, ...]
    vector: np.ndarray | None = None


def normalize_question(text: str) -> str:
    """Group key: case-folded, punctuation and symbols dropped, whitespace collapsed."""
    text = unicodedata.normalize("NFKC", text).casefold()
    kept = [" " if unicodedata.category(ch)[0] in "PSZC" else ch for ch in text]
    return " ".join("".join(kept).split())


def _sections(answer: StoredAnswer) -> tuple[str, ...]:
    """The sections shown with the answer: an abstention's closest sections, or the quoted passages' sections."""
    try:
        data = json.loads(answer.answer_json) if answer.answer_json else {}
    except ValueError:
        return ()
    sections = [str(s) for s in data.get("closest_sections") or ()]
    sections += [str(q.get("section") or "") for q in data.get("quotes") or () if isinstance(q, dict)]
    return tuple(dict.fromkeys(s for s in sections if s))


def build_report(
    store: FeedbackSource,
    limit: int = 10,
    *,
    since: float | None = None,
    embed: QuestionEmbedder | None = None,
    similarity: float = GAP_SIMILARITY,
) -> FeedbackReport:
    """The report over everything stored (or what was asked at or after `since`). `embed` (the engine's
    question encoder) embeds the gap questions stored without a vector; without it they group by words."""

    def recent(a: StoredAnswer) -> bool:
        return since is None or a.created_at >= since

    totals = [t for t in store.vote_totals() if recent(t.answer)]
    worst = sorted(
        (t for t in totals if t.down > 0),
        key=lambda t: (t.net, -t.down, -t.answer.created_at),
    )[:limit]
    abstained = [a for a in store.answers(kind="abstain") if recent(a)]
    candidates = [(a, True) for a in abstained] + [(t.answer, False) for t in totals if t.down > 0]
    gaps: list[_Gap] = []
    erased = 0
    for a, was_abstained in candidates:
        phrasing = " ".join(a.question.split()) or a.normalized_question
        key = normalize_question(a.normalized_question or phrasing)
        if not phrasing or not key:
            erased += 1
            continue
        gaps.append(_Gap(a, phrasing, key, was_abstained, _sections(a)))
    grouped_by = _attach_vectors(gaps, embed)
    groups = _group(gaps, similarity)
    summary = [_summarise(group) for group in groups]
    summary.sort(key=lambda g: (-g.count, -g.last_asked, g.question.casefold()))
    return FeedbackReport(
        worst=[
            RatedAnswer(
                t.answer.answer_id, t.answer.question, t.up, t.down, t.answer.passage_ids, t.answer.index_version
            )
            for t in worst
        ],
        gaps=summary[:limit],
        answers=sum(1 for a in store.answers(kind="answer") if recent(a))
        if since
        else store.answer_count(kind="answer"),
        abstentions=len(abstained),
        votes_up=sum(t.up for t in totals),
        votes_down=sum(t.down for t in totals),
        erased=erased,
        grouped_by=grouped_by,
        since=since,
    )


def _attach_vectors(gaps: list[_Gap], embed: QuestionEmbedder | None) -> str:
    """Give each gap a vector of one encoder: its stored one, else one embedded now (only those need the
    encoder); returns the encoder's name, or "words" when there is none (the gaps then group by words)."""
    stored = {id(g): unpack_vector(g.answer.question_vector) for g in gaps}
    encoder: str | None = None

    def embed_into(chosen: list[_Gap]) -> str | None:
        if embed is None or not chosen:
            return None
        try:
            name, vectors = embed([g.phrasing for g in chosen])
        except Exception:
            log.exception("could not embed the report's questions; using the stored vectors")
            return None
        for g, v in zip(chosen, vectors, strict=True):
            g.vector = v
        return name

    encoder = embed_into([g for g in gaps if stored[id(g)] is None])
    if encoder is None:
        counts = Counter(v[0] for v in stored.values() if v is not None)
        if not counts:
            return "words"
        encoder = counts.most_common(1)[0][0]
    other = []
    for g in gaps:
        v = stored[id(g)]
        if v is not None and v[0] == encoder:
            g.vector = v[1]
        elif v is not None:  # stored by another encoder (the profile changed): comparable once re-embedded
            g.vector = None
            other.append(g)
    if embed_into(other) not in (None, encoder):
        for g in other:
            g.vector = None
    return encoder


def _group(gaps: list[_Gap], similarity: float) -> list[list[_Gap]]:
    """Gaps with a vector grouped by meaning (oldest first, so a group keeps its first phrasing), then each
    gap without one joins a group holding its exact words, or groups with others of the same words."""
    gaps = sorted(gaps, key=lambda g: g.answer.created_at)
    with_vector = [g for g in gaps if g.vector is not None]
    groups = [[with_vector[i] for i in idx] for idx in cluster([g.vector for g in with_vector], similarity)]
    by_key: dict[str, list[_Gap]] = {}
    for group in groups:
        for g in group:
            by_key.setdefault(g.key, group)
    for g in gaps:
        if g.vector is None:
            group = by_key.get(g.key)
            if group is None:
                group = by_key[g.key] = []
                groups.append(group)
            group.append(g)
    return groups


def _summarise(group: list[_Gap]) -> GapGroup:
    phrasings: Counter[str] = Counter()
    for g in group:  # in time order: most_common keeps the earliest of equal counts first
        phrasings[g.phrasing] += 1
    sections: Counter[str] = Counter(s for g in group for s in g.sections)
    asked = [g.answer.created_at for g in group]
    ranked = [p for p, _ in phrasings.most_common()]
    variants = tuple(dict.fromkeys(p for p in ranked[1:] if normalize_question(p) != normalize_question(ranked[0])))
    return GapGroup(
        question=ranked[0],
        count=len(group),
        variants=variants[:3],
        abstained=sum(1 for g in group if g.abstained),
        thumbs_down=sum(1 for g in group if not g.abstained),
        first_asked=min(asked),
        last_asked=max(asked),
        sections=tuple(s for s, _ in sections.most_common(3)),
    )


def _day(t: float) -> str:
    return time.strftime("%Y-%m-%d", time.gmtime(t))


def format_report(report: FeedbackReport, *, escape: Callable[[str], str] = str) -> str:
    """The report as plain text; `escape` is applied to every question (what people typed)."""

    def question(text: str) -> str:
        return escape(_clip(text))

    since = f" since {_day(report.since)}" if report.since is not None else ""
    lines = [
        f"Answers given{since}: {report.answers}   Abstentions: {report.abstentions}   "
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
    how = "by meaning" if report.grouped_by != "words" else "by their words (no encoder at hand)"
    lines += ["", f"Knowledge gaps: questions not answered or given a 👎, grouped {how} (most asked first):"]
    if not report.gaps:
        lines.append("  (none yet)")
    for i, g in enumerate(report.gaps, 1):
        why = ", ".join(
            part
            for part in (
                f"{g.abstained} not answered" if g.abstained else "",
                f"{g.thumbs_down} 👎" if g.thumbs_down else "",
            )
            if part
        )
        when = (
            _day(g.first_asked)
            if _day(g.first_asked) == _day(g.last_asked)
            else f"{_day(g.first_asked)} to {_day(g.last_asked)}"
        )
        lines.append(f"  {i}. {question(g.question)}  (asked {g.count}x: {why}; {when})")
        for v in g.variants:
            lines.append(f"     also: {question(v)}")
        if g.sections:
            lines.append(f"     closest sections: {'; '.join(escape(clip(s, 80)) for s in g.sections)}")
    if report.erased:
        lines.append(f"  … and {report.erased} question(s) not grouped: {ERASED}")
    return "\n".join(lines)


def report_json(report: FeedbackReport) -> dict[str, Any]:
    """`qabot feedback report --json`: the same figures, times as ISO 8601 UTC."""

    def iso(t: float | None) -> str | None:
        return None if t is None else time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))

    return {
        "since": iso(report.since),
        "answers": report.answers,
        "abstentions": report.abstentions,
        "votes_up": report.votes_up,
        "votes_down": report.votes_down,
        "worst": [
            {
                "answer_id": r.answer_id,
                "question": r.question or None,
                "up": r.up,
                "down": r.down,
                "net": r.net,
                "passage_ids": list(r.passage_ids),
                "index_version": r.index_version,
            }
            for r in report.worst
        ],
        "gaps": [
            {
                "question": g.question,
                "count": g.count,
                "abstained": g.abstained,
                "thumbs_down": g.thumbs_down,
                "examples": list(g.variants),
                "first_asked": iso(g.first_asked),
                "last_asked": iso(g.last_asked),
                "closest_sections": list(g.sections),
            }
            for g in report.gaps
        ],
        "gaps_grouped_by": report.grouped_by,
        "erased_questions": report.erased,
    }


def feedback_report_data(
    settings: Settings, limit: int = 10, *, since: float | None = None, embed: QuestionEmbedder | None = None
) -> FeedbackReport | None:
    """The report behind `qabot feedback report`; None when the SQLite file does not exist yet."""
    from bot.conversation.factory import database_of, open_feedback_store

    where = database_of(settings)
    if isinstance(where, Path) and not where.exists():
        return None
    store = open_feedback_store(settings)
    try:
        return build_report(store, limit=limit, since=since, embed=embed)
    finally:
        store.close()


_UNITS = {"d": 86400.0, "h": 3600.0, "m": 60.0, "w": 7 * 86400.0}


def parse_since(value: str, *, now: float | None = None) -> float:
    """`--since`: "7d", "24h", "30m", "2w" before now, or a date "2026-11-01" (UTC); ValueError with what to write."""
    text = value.strip().lower()
    now = time.time() if now is None else now
    if text[:-1].isdigit() and text[-1:] in _UNITS:
        return now - int(text[:-1]) * _UNITS[text[-1]]
    try:
        return calendar.timegm(time.strptime(text, "%Y-%m-%d"))
    except ValueError:
        raise ValueError(
            f"--since must be a duration such as 7d, 24h, 30m or 2w, or a date such as 2026-11-01 (got {value[:40]!r})"
        ) from None


def feedback_report_text(
    settings: Settings,
    limit: int = 10,
    *,
    since: float | None = None,
    as_json: bool = False,
    embed: QuestionEmbedder | None = None,
) -> str:
    """The text of `qabot feedback report` (`as_json`: its --json)."""
    from bot.conversation.factory import database_of

    report = feedback_report_data(settings, limit, since=since, embed=embed)
    if report is None:
        if as_json:
            return json.dumps(report_json(FeedbackReport(since=since)), ensure_ascii=False, indent=2)
        where = database_of(settings)
        return f"No feedback recorded yet: {where} does not exist (the bot creates it on its first answer)."
    if as_json:
        return json.dumps(report_json(report), ensure_ascii=False, indent=2)
    return format_report(report)


def _clip(text: str, limit: int = 120) -> str:
    return clip(" ".join(text.split()), limit)
