"""Answer quality on a question set: hit@k, MRR, abstention, confidence calibration, per style, follow-ups.

A line is `{"q": "...", "gold": ["phrase", ...]}` with optional `"style"` and `"context"`:
- `gold` lists phrases of the knowledge; a quote that contains one (case, whitespace and quote marks
  folded) answers the question. An empty `gold` marks a question the knowledge does not answer:
  `"style": "uncovered"` for one about the knowledge's own field, anything else is off-topic.
- `context` holds the earlier questions of a conversation (a thread): they are asked first, in order,
  and the line's question is answered as their follow-up.
"""

from __future__ import annotations

import json
import re
import statistics
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

from bot.core.types import Answer, AnswerKind, Turn

_QUOTE_MARKS = str.maketrans({"’": "'", "‘": "'", "“": '"', "”": '"', "`": "'", "´": "'"})
UNCOVERED = "uncovered"

AnswerFn = Callable[[str, Sequence[Turn]], Answer]


def fold(text: str) -> str:
    """Case, whitespace and quote marks normalised, for matching gold phrases."""
    return re.sub(r"\s+", " ", text.translate(_QUOTE_MARKS).lower()).strip()


@dataclass
class EvalItem:
    q: str
    gold: list[str]
    style: str = ""
    context: list[str] = field(default_factory=list)

    @property
    def answerable(self) -> bool:
        return bool(self.gold)


@dataclass
class Outcome:
    """What happened to one line."""

    item: EvalItem
    kind: str
    confidence: str | None
    rank: int | None  # of the first quote containing a gold phrase (None: none did)
    first_quote: str
    passage_ids: tuple[str, ...]

    @property
    def hit1(self) -> bool:
        return self.rank == 1


@dataclass
class EvalReport:
    answerable: int
    off_topic: int
    uncovered: int
    hit_at_1: float
    hit_at_3: float
    mrr: float
    false_abstention: float
    mentioned_only: float  # answerable questions answered "mentioned only"
    off_topic_abstention: float
    off_topic_confident: float  # off-topic questions answered with confidence high or medium
    uncovered_abstention: float
    uncovered_confident: float  # uncovered questions answered with confidence high or medium
    followup_hit_at_1: float | None
    median_first_quote_chars: float
    by_style: dict[str, dict[str, float]] = field(default_factory=dict)
    calibration: dict[str, dict[str, float]] = field(default_factory=dict)
    misses: list[dict] = field(default_factory=list)

    def to_dict(self) -> dict:
        return asdict(self)

    def format(self) -> str:
        def pct(x: float | None) -> str:
            return "  n/a" if x is None else f"{x:.3f}"

        lines = [
            f"answerable questions      {self.answerable}",
            f"off-topic questions       {self.off_topic}",
            f"uncovered (in-domain)     {self.uncovered}",
            f"hit@1                     {pct(self.hit_at_1)}",
            f"hit@3                     {pct(self.hit_at_3)}",
            f"MRR                       {pct(self.mrr)}",
            f"false abstention          {pct(self.false_abstention)}",
            f"mentioned only            {pct(self.mentioned_only)}",
            f"off-topic abstention      {pct(self.off_topic_abstention)}",
            f"off-topic confident       {pct(self.off_topic_confident)}",
            f"uncovered abstention      {pct(self.uncovered_abstention)}",
            f"uncovered confident       {pct(self.uncovered_confident)}",
            f"follow-up hit@1           {pct(self.followup_hit_at_1)}",
            f"median first quote chars  {self.median_first_quote_chars:.0f}",
        ]
        if self.by_style:
            lines.append("by style                  n     hit@1  hit@3  false-abst")
            for style, m in sorted(self.by_style.items()):
                lines.append(
                    f"  {style:22s} {int(m['n']):4d}  {m['hit_at_1']:.3f}  {m['hit_at_3']:.3f}  {m['false_abstention']:.3f}"
                )
        if self.calibration:
            lines.append("confidence   answers  right")
            for level in ("high", "medium", "low"):
                if level in self.calibration:
                    c = self.calibration[level]
                    lines.append(f"  {level:10s} {int(c['n']):7d}  {c['right']:.3f}")
        return "\n".join(lines)


class EvalFileError(ValueError):
    pass


def load_eval_file(path: Path) -> list[EvalItem]:
    items = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
            context = obj.get("context", [])
            if not isinstance(context, list):
                raise TypeError("context must be a list of earlier questions")
            items.append(
                EvalItem(
                    str(obj["q"]),
                    [str(g) for g in obj.get("gold", [])],
                    str(obj.get("style", "")),
                    [str(c) for c in context],
                )
            )
        except (ValueError, KeyError, TypeError, AttributeError) as err:
            raise EvalFileError(f'{path}:{n}: expected {{"q": ..., "gold": [...]}} ({err})') from err
    return items


def run(items: Iterable[EvalItem], answer: AnswerFn) -> list[Outcome]:
    outcomes = []
    for item in items:
        turns: list[Turn] = []
        for earlier in item.context:
            turns.append(Turn(earlier, answer(earlier, tuple(turns)).passage_ids))
        result = answer(item.q, tuple(turns))
        texts = [fold(q.text) for q in result.quotes]
        gold = [fold(g) for g in item.gold]
        rank = next((i + 1 for i, t in enumerate(texts) if any(g in t for g in gold)), None) if gold else None
        outcomes.append(
            Outcome(
                item,
                result.kind.value,
                result.confidence.value if result.confidence and not result.abstained else None,
                rank,
                result.quotes[0].text if result.quotes else "",
                result.passage_ids,
            )
        )
    return outcomes


def _rate(values: list[bool]) -> float:
    return sum(values) / len(values) if values else 0.0


def report(outcomes: list[Outcome]) -> EvalReport:
    answerable = [o for o in outcomes if o.item.answerable]
    unanswerable = [o for o in outcomes if not o.item.answerable]
    uncovered = [o for o in unanswerable if o.item.style == UNCOVERED]
    off_topic = [o for o in unanswerable if o.item.style != UNCOVERED]
    abstained = {AnswerKind.ABSTAIN.value, AnswerKind.SMALLTALK.value, AnswerKind.EMPTY.value}
    followups = [o for o in answerable if o.item.context and o.item.style != "followup_switch"]

    by_style: dict[str, dict[str, float]] = {}
    groups: dict[str, list[Outcome]] = defaultdict(list)
    for o in answerable:
        groups[o.item.style or "-"].append(o)
    if len(groups) > 1 or "-" not in groups:
        for style, group in groups.items():
            by_style[style] = {
                "n": len(group),
                "hit_at_1": _rate([o.hit1 for o in group]),
                "hit_at_3": _rate([o.rank is not None and o.rank <= 3 for o in group]),
                "false_abstention": _rate([o.kind in abstained for o in group]),
            }

    calibration: dict[str, dict[str, float]] = {}
    counted = Counter()
    right = Counter()
    for o in outcomes:
        if o.confidence is None:
            continue
        counted[o.confidence] += 1
        right[o.confidence] += int(o.hit1)
    for level, n in counted.items():
        calibration[level] = {"n": n, "right": right[level] / n}

    misses = []
    for o in outcomes:
        if o.item.answerable and o.rank != 1:
            why = "abstained" if o.kind in abstained else (f"gold at rank {o.rank}" if o.rank else "gold not quoted")
            misses.append(
                {"q": o.item.q, "style": o.item.style, "why": why, "kind": o.kind, "first": o.first_quote[:120]}
            )
        elif not o.item.answerable and o.kind not in abstained:
            misses.append(
                {
                    "q": o.item.q,
                    "style": o.item.style,
                    "why": f"quoted ({o.kind}, {o.confidence})",
                    "kind": o.kind,
                    "first": o.first_quote[:120],
                }
            )
    firsts = [len(o.first_quote) for o in outcomes if o.first_quote]
    return EvalReport(
        answerable=len(answerable),
        off_topic=len(off_topic),
        uncovered=len(uncovered),
        hit_at_1=_rate([o.hit1 for o in answerable]),
        hit_at_3=_rate([o.rank is not None and o.rank <= 3 for o in answerable]),
        mrr=sum(1.0 / o.rank for o in answerable if o.rank) / len(answerable) if answerable else 0.0,
        false_abstention=_rate([o.kind in abstained for o in answerable]),
        mentioned_only=_rate([o.kind == AnswerKind.MENTIONED.value for o in answerable]),
        off_topic_abstention=_rate([o.kind in abstained for o in off_topic]),
        off_topic_confident=_rate([o.confidence in ("high", "medium") for o in off_topic]),
        uncovered_abstention=_rate([o.kind in abstained for o in uncovered]),
        uncovered_confident=_rate([o.confidence in ("high", "medium") for o in uncovered]),
        followup_hit_at_1=_rate([o.hit1 for o in followups]) if followups else None,
        median_first_quote_chars=statistics.median(firsts) if firsts else 0.0,
        by_style=by_style,
        calibration=calibration,
        misses=misses,
    )


def evaluate(items: Iterable[EvalItem], answer: AnswerFn) -> EvalReport:
    return report(run(items, answer))


@dataclass
class Comparison:
    a: EvalReport
    b: EvalReport
    won: int  # questions B gets right at rank 1 that A does not
    lost: int  # questions A gets right that B does not
    both: int
    neither: int

    def format(self, name_a: str, name_b: str) -> str:
        rows = [f"{'':26s}{name_a[:18]:>18s}  {name_b[:18]:>18s}"]
        da, db = self.a.to_dict(), self.b.to_dict()
        for key in (
            "hit_at_1",
            "hit_at_3",
            "mrr",
            "false_abstention",
            "mentioned_only",
            "off_topic_abstention",
            "off_topic_confident",
            "uncovered_confident",
            "followup_hit_at_1",
        ):
            va, vb = da[key], db[key]
            fa = "n/a" if va is None else f"{va:.3f}"
            fb = "n/a" if vb is None else f"{vb:.3f}"
            rows.append(f"{key:26s}{fa:>18s}  {fb:>18s}")
        rows.append(
            f"paired hit@1: {name_b} right where {name_a} is not: {self.won}; the reverse: {self.lost}; "
            f"both right: {self.both}; neither: {self.neither}"
        )
        return "\n".join(rows)


def compare(items: list[EvalItem], answer_a: AnswerFn, answer_b: AnswerFn) -> Comparison:
    out_a, out_b = run(items, answer_a), run(items, answer_b)
    pairs = [(x.hit1, y.hit1) for x, y in zip(out_a, out_b, strict=True) if x.item.answerable]
    return Comparison(
        report(out_a),
        report(out_b),
        won=sum(1 for x, y in pairs if y and not x),
        lost=sum(1 for x, y in pairs if x and not y),
        both=sum(1 for x, y in pairs if x and y),
        neither=sum(1 for x, y in pairs if not x and not y),
    )
