"""What "Teach qabot" does to answers (issue 9 item 3): teach the misses of one half of a paraphrase set, measure
the other half, and count the answers that moved elsewhere.

tests/eval/intents.jsonl groups paraphrases by intent (40 intents x 4, plus 40 "control" questions of
other topics). Each intent's paraphrases are split into half A (1st and 3rd) and half B (2nd and 4th).
For every question of half A that misses (its first quote holds no gold phrase), an admin teaches it the
way the buttons allow: the first of the engine's top 5 candidates that holds a gold phrase (a miss whose
gold passage is not among them cannot be taught from the buttons and is counted). Then:

- hit@1 on half B before and after (the same intents, other wordings);
- changed answers (kind or first passage) among the questions of intents nothing was taught for, the
  control questions, and the off-topic lines of tests/eval/questions.jsonl.

The intents are split in two by name order: the thresholds (similarity, margin) are chosen on the dev
intents (even positions) with --sweep, and reported on the test intents (odd positions) and on all.
Retrieval is the real engine's, computed once per question and reused across settings (steering only
reorders what retrieval found), so the sweep costs one pass.

    .venv/bin/python -m benchmarks.teach_steering --index /tmp/teach/default-index [--sweep] [--json]
"""

from __future__ import annotations

import argparse
import json
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bot.core.engine import EngineHolder
from bot.core.evaluate import fold
from bot.core.steering import TaughtSteering
from bot.core.taught import TaughtExample
from bot.core.types import Answer

ROOT = Path(__file__).resolve().parents[1]
INTENTS = ROOT / "tests" / "eval" / "intents.jsonl"
QUESTIONS = ROOT / "tests" / "eval" / "questions.jsonl"
CONTROL = "control"


class _CachedRetrieval:
    """The engine's retriever, its retrieve() remembered per question (steering reorders, never re-retrieves)."""

    def __init__(self, retriever: Any):
        self._inner = retriever
        self._cache: dict[tuple, Any] = {}

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    def retrieve(self, question: str, **kw: Any) -> Any:
        key = (question, tuple(kw.get("context", ())), kw.get("context_weight", 0.0))
        if key not in self._cache:
            self._cache[key] = self._inner.retrieve(question, **kw)
        return self._cache[key]


@dataclass
class Item:
    q: str
    gold: list[str]
    intent: str  # '' for an off-topic line
    half: str = ""  # 'A' | 'B' | '' (control, off-topic)


@dataclass
class Result:
    kind: str
    first: str  # first quote's passage id ('' for none)
    hit: bool
    taught: int | None = None


def _hit(answer: Answer, gold: list[str]) -> bool:
    if not gold or not answer.quotes:
        return False
    text = fold(answer.quotes[0].text)
    return any(fold(g) in text for g in gold)


def load_items() -> list[Item]:
    by_intent: dict[str, list[dict]] = defaultdict(list)
    for line in INTENTS.read_text(encoding="utf-8").splitlines():
        if line.strip():
            row = json.loads(line)
            by_intent[row["intent"]].append(row)
    items: list[Item] = []
    for intent, rows in by_intent.items():
        if intent == CONTROL:
            items += [Item(r["q"], r["gold"], CONTROL) for r in rows]
            continue
        for i, r in enumerate(rows):
            items.append(Item(r["q"], r["gold"], intent, "A" if i % 2 == 0 else "B"))
    for line in QUESTIONS.read_text(encoding="utf-8").splitlines():
        if line.strip():
            row = json.loads(line)
            if not row["gold"]:
                items.append(Item(row["q"], [], ""))
    return items


@dataclass
class Run:
    similarity: float
    margin: float
    results: dict[str, Result] = field(default_factory=dict)


def answer_all(holder: EngineHolder, items: list[Item]) -> dict[str, Result]:
    out = {}
    for it in items:
        a = holder.answer(it.q)
        out[it.q] = Result(
            a.kind.value, a.quotes[0].passage_id if a.quotes else "", _hit(a, it.gold), a.extra.get("taught_pair")
        )
    return out


def summarise(
    items: list[Item], before: dict[str, Result], after: dict[str, Result], taught_intents: set[str], intents: set[str]
) -> dict[str, Any]:
    def rate(sel: list[Item], res: dict[str, Result]) -> float:
        return sum(res[i.q].hit for i in sel) / len(sel) if sel else 0.0

    half_b = [i for i in items if i.half == "B" and i.intent in intents]
    half_b_taught = [i for i in half_b if i.intent in taught_intents]
    half_a = [i for i in items if i.half == "A" and i.intent in intents]
    others = [i for i in items if i.half and i.intent in intents and i.intent not in taught_intents]
    control = [i for i in items if i.intent == CONTROL]
    off_topic = [i for i in items if not i.intent]

    def changed(sel: list[Item]) -> int:
        return sum((before[i.q].kind, before[i.q].first) != (after[i.q].kind, after[i.q].first) for i in sel)

    return {
        "half_b_questions": len(half_b),
        "half_b_hit_at_1_before": round(rate(half_b, before), 4),
        "half_b_hit_at_1_after": round(rate(half_b, after), 4),
        "half_b_of_taught_intents": len(half_b_taught),
        "half_b_taught_intents_hit_before": round(rate(half_b_taught, before), 4),
        "half_b_taught_intents_hit_after": round(rate(half_b_taught, after), 4),
        "half_b_won": sum(after[i.q].hit and not before[i.q].hit for i in half_b),
        "half_b_lost": sum(before[i.q].hit and not after[i.q].hit for i in half_b),
        "half_a_hit_at_1_before": round(rate(half_a, before), 4),
        "half_a_hit_at_1_after": round(rate(half_a, after), 4),
        "other_intent_questions": len(others),
        "other_intent_changed": changed(others),
        "control_questions": len(control),
        "control_changed": changed(control),
        "control_hit_before": round(rate(control, before), 4),
        "control_hit_after": round(rate(control, after), 4),
        "off_topic_questions": len(off_topic),
        "off_topic_changed": changed(off_topic),
        "off_topic_answered_after": sum(after[i.q].kind != "abstain" for i in off_topic),
        "off_topic_answered_before": sum(before[i.q].kind != "abstain" for i in off_topic),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--index", type=Path, default=Path("index"))
    parser.add_argument("--similarity", type=float, default=None)
    parser.add_argument("--margin", type=float, default=None)
    parser.add_argument("--sweep", action="store_true", help="choose similarity and margin on the dev intents")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    from bot.config import DEFAULT_TEACH_MARGIN, DEFAULT_TEACH_SIMILARITY

    started = time.perf_counter()
    examples: list[TaughtExample] = []
    steering = TaughtSteering(lambda: examples, refresh_s=0.0)
    holder = EngineHolder(args.index, steering=steering)
    engine = holder.get()
    engine.answerer.retriever = _CachedRetrieval(engine.retriever)  # benchmark only: retrieve once per question

    items = load_items()
    names = sorted({i.intent for i in items if i.half})
    dev, test = set(names[0::2]), set(names[1::2])
    before = answer_all(holder, items)

    # teach the misses of half A, as an admin would from the buttons
    untaught = 0
    taught_intents: set[str] = set()
    for it in items:
        if it.half != "A" or before[it.q].hit:
            continue
        gold = [fold(g) for g in it.gold]
        pick = next((c for c in holder.candidates(it.q, 5) if any(g in fold(c.text) for g in gold)), None)
        if pick is None:
            untaught += 1
            continue
        examples.append(TaughtExample(len(examples) + 1, it.q, pick.text))
        taught_intents.add(it.intent)
    misses_a = sum(1 for it in items if it.half == "A" and not before[it.q].hit)

    def run_with(similarity: float, margin: float) -> dict[str, Result]:
        steering.similarity, steering.margin = similarity, margin
        steering.invalidate()
        return answer_all(holder, items)

    out: dict[str, Any] = {
        "index": engine.version,
        "profile": engine.manifest.get("profile"),
        "question_encoder": engine.question_encoder,
        "half_a_misses": misses_a,
        "taught_pairs": len(examples),
        "misses_not_teachable_from_top5": untaught,
        "taught_intents": len(taught_intents),
    }
    if args.sweep:
        grid = []
        for similarity in (0.40, 0.45, 0.50, 0.55, 0.60, 0.70, 0.80):
            for margin in (0.5, 1.0, 2.0, 3.0, 4.0, 6.0):
                after = run_with(similarity, margin)
                s = summarise(items, before, after, taught_intents, dev)
                grid.append(
                    {
                        "similarity": similarity,
                        "margin": margin,
                        **{
                            k: s[k]
                            for k in (
                                "half_b_hit_at_1_before",
                                "half_b_hit_at_1_after",
                                "half_b_won",
                                "half_b_lost",
                                "other_intent_changed",
                                "control_changed",
                                "off_topic_changed",
                            )
                        },
                    }
                )
        out["dev_sweep"] = grid
    similarity = args.similarity if args.similarity is not None else DEFAULT_TEACH_SIMILARITY
    margin = args.margin if args.margin is not None else DEFAULT_TEACH_MARGIN
    after = run_with(similarity, margin)
    out["similarity"], out["margin"] = similarity, margin
    out["dev"] = summarise(items, before, after, taught_intents, dev)
    out["test"] = summarise(items, before, after, taught_intents, test)
    out["all"] = summarise(items, before, after, taught_intents, dev | test)
    # the query path's extra cost: one steer() on a retrieval already made (vectors of the taught questions cached)
    from bot.core.normalize import normalize_question

    costs = []
    for it in items:
        found = engine.answerer.retriever.retrieve(normalize_question(it.q))
        t0 = time.perf_counter()
        steering.steer(engine.answerer.retriever, found)
        costs.append((time.perf_counter() - t0) * 1000)
    costs.sort()
    out["steer_ms_median"] = round(costs[len(costs) // 2], 4)
    out["steer_ms_max"] = round(costs[-1], 4)
    out["torch_imported"] = "torch" in __import__("sys").modules
    out["seconds"] = round(time.perf_counter() - started, 1)
    if args.json:
        print(json.dumps(out, indent=2))
        return
    print(json.dumps({k: v for k, v in out.items() if k != "dev_sweep"}, indent=2))
    if args.sweep:
        print(
            "dev sweep: similarity margin | B hit@1 before -> after (+won -lost) | changed: other intents, control, off-topic"
        )
        for g in out["dev_sweep"]:
            print(
                f"  {g['similarity']:.2f} {g['margin']:>4} | {g['half_b_hit_at_1_before']:.3f} -> "
                f"{g['half_b_hit_at_1_after']:.3f} (+{g['half_b_won']} -{g['half_b_lost']}) | "
                f"{g['other_intent_changed']}, {g['control_changed']}, {g['off_topic_changed']}"
            )


if __name__ == "__main__":
    main()
