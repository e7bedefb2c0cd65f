"""Answer quality on a question set: hit@1, hit@3, MRR, abstention rates, first-quote length."""

from __future__ import annotations

import json
import re
import statistics
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path

from bot.core.types import Answer

_QUOTE_MARKS = str.maketrans({"’": "'", "‘": "'", "“": '"', "”": '"', "`": "'", "´": "'"})


def fold(text: str) -> str:
    """Case, whitespace and quote marks normalised, for matching gold phrases."""
    return re.sub(r"\s+", " ", text.translate(_QUOTE_MARKS).lower()).strip()


@dataclass
class EvalItem:
    q: str
    gold: list[str]


@dataclass
class EvalReport:
    answerable: int
    off_topic: int
    hit_at_1: float
    hit_at_3: float
    mrr: float
    off_topic_abstention: float
    false_abstention: float
    median_first_quote_chars: float
    misses: list[dict] = field(default_factory=list)

    def to_dict(self) -> dict:
        return asdict(self)

    def format(self) -> str:
        return "\n".join(
            [
                f"answerable questions      {self.answerable}",
                f"off-topic questions       {self.off_topic}",
                f"hit@1                     {self.hit_at_1:.3f}",
                f"hit@3                     {self.hit_at_3:.3f}",
                f"MRR                       {self.mrr:.3f}",
                f"off-topic abstention      {self.off_topic_abstention:.3f}",
                f"false abstention          {self.false_abstention:.3f}",
                f"median first quote chars  {self.median_first_quote_chars:.0f}",
            ]
        )


class EvalFileError(ValueError):
    pass


def load_eval_file(path: Path) -> list[EvalItem]:
    items = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
            items.append(EvalItem(str(obj["q"]), [str(g) for g in obj.get("gold", [])]))
        except (ValueError, KeyError, TypeError) as err:
            raise EvalFileError(f'{path}:{n}: expected {{"q": ..., "gold": [...]}} ({err})') from err
    return items


def evaluate(items: Iterable[EvalItem], answer: Callable[[str], Answer]) -> EvalReport:
    hits1 = hits3 = 0
    rr = 0.0
    answerable = off_topic = abstained_off = false_abstain = 0
    first_lengths: list[int] = []
    misses: list[dict] = []
    for item in items:
        result = answer(item.q)
        texts = [fold(q.text) for q in result.quotes]
        if result.quotes:
            first_lengths.append(len(result.quotes[0].text))
        if not item.gold:
            off_topic += 1
            if result.abstained:
                abstained_off += 1
            else:
                misses.append(
                    {"q": item.q, "why": "answered an off-topic question", "first": result.quotes[0].text[:120]}
                )
            continue
        answerable += 1
        gold = [fold(g) for g in item.gold]
        rank = next((i + 1 for i, t in enumerate(texts) if any(g in t for g in gold)), None)
        if result.abstained:
            false_abstain += 1
        if rank == 1:
            hits1 += 1
        if rank is not None and rank <= 3:
            hits3 += 1
        if rank is not None:
            rr += 1.0 / rank
        if rank != 1:
            misses.append(
                {
                    "q": item.q,
                    "why": "abstained" if result.abstained else f"gold at rank {rank}",
                    "first": result.quotes[0].text[:120] if result.quotes else "",
                }
            )
    return EvalReport(
        answerable=answerable,
        off_topic=off_topic,
        hit_at_1=hits1 / answerable if answerable else 0.0,
        hit_at_3=hits3 / answerable if answerable else 0.0,
        mrr=rr / answerable if answerable else 0.0,
        off_topic_abstention=abstained_off / off_topic if off_topic else 0.0,
        false_abstention=false_abstain / answerable if answerable else 0.0,
        median_first_quote_chars=statistics.median(first_lengths) if first_lengths else 0.0,
        misses=misses,
    )
