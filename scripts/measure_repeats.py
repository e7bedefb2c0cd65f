"""How well the question encoder's cosine tells a repeat from a different question (item 4 of issue 9).

    .venv/bin/python scripts/measure_repeats.py --index ./index [--json]

Data (tests/eval):
- intents.jsonl: 160 paraphrases of 40 intents (4 each) and 40 "control" questions on other topics.
  Same intent = a repeat; different intents (every control a topic of its own) = distinct questions.
- questions.jsonl + test.jsonl + holdout.jsonl + dev_extra.jsonl: questions whose gold phrases do not
  overlap are distinct (off-topic ones, gold [], are left out: two of them may well be the same question;
  so are elliptical follow-ups such as "and ML models?", which the bot never links: their meaning is their
  thread's).

For each threshold it prints:
- false repeats, per question: of the questions whose history holds only distinct questions (every
  other question of the set of another intent), how many would get a link (best cosine >= threshold);
- false repeat pairs: the share of distinct pairs at or above the threshold;
- repeats found: of the paraphrases, how many find one of their own intent's other paraphrases.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bot.core.answerer import looks_elliptical  # noqa: E402
from bot.core.engine import EngineHolder  # noqa: E402
from bot.core.normalize import normalize_question  # noqa: E402

EVAL = REPO / "tests" / "eval"
from bot.config import DEFAULT_REPEAT_SIMILARITY  # noqa: E402

THRESHOLDS = (0.70, 0.75, 0.80, 0.82, 0.85, 0.88, 0.90, 0.92, 0.95)


def _lines(name: str) -> list[dict]:
    return [json.loads(line) for line in (EVAL / name).read_text(encoding="utf-8").splitlines() if line.strip()]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--index", type=Path, default=REPO / "index")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    engine = EngineHolder(args.index)

    rows = _lines("intents.jsonl")
    labels = [r["intent"] if r["intent"] != "control" else f"control-{i}" for i, r in enumerate(rows)]
    # the service stores the vector of the normalised question (the one the engine encodes)
    encoder, vectors = engine.embed_questions([normalize_question(r["q"]) for r in rows])
    sims = vectors @ vectors.T
    n = len(rows)
    same = np.array([[labels[i] == labels[j] for j in range(n)] for i in range(n)])
    off_diag = ~np.eye(n, dtype=bool)
    distinct = ~same & off_diag
    repeats = same & off_diag
    paraphrased = repeats.any(axis=1)

    mixed = [r for name in ("questions.jsonl", "test.jsonl", "holdout.jsonl", "dev_extra.jsonl") for r in _lines(name)]
    # elliptical follow-ups ("and ML models?") mean what their thread says: the bot never links them
    mixed = [r for r in mixed if r["gold"] and not looks_elliptical(r["q"])]
    golds = [{" ".join(g.lower().replace("’", "'").split()) for g in r["gold"]} for r in mixed]
    _, mv = engine.embed_questions([normalize_question(r["q"]) for r in mixed])
    msims = mv @ mv.T
    m = len(mixed)

    def overlap(a: set[str], b: set[str]) -> bool:
        return any(x in y or y in x for x in a for y in b)

    mdistinct = np.array([[i != j and not overlap(golds[i], golds[j]) for j in range(m)] for i in range(m)])

    results = []
    for t in THRESHOLDS:
        false_q = float(np.mean([(sims[i][distinct[i]] >= t).any() for i in range(n)]))
        false_pairs = float((sims[distinct] >= t).mean())
        found = float(np.mean([(sims[i][repeats[i]] >= t).any() for i in range(n) if paraphrased[i]]))
        m_false_q = float(np.mean([(msims[i][mdistinct[i]] >= t).any() for i in range(m)]))
        m_false_pairs = float((msims[mdistinct] >= t).mean())
        results.append(
            {
                "threshold": t,
                "intents_false_repeat_questions": round(false_q, 4),
                "intents_false_repeat_pairs": round(false_pairs, 5),
                "intents_repeats_found": round(found, 4),
                "eval_false_repeat_questions": round(m_false_q, 4),
                "eval_false_repeat_pairs": round(m_false_pairs, 5),
            }
        )
    summary = {
        "encoder": encoder,
        "intents_questions": n,
        "intents_distinct_pairs": int(distinct.sum()) // 2,
        "eval_questions": m,
        "eval_distinct_pairs": int(mdistinct.sum()) // 2,
        "max_distinct_cosine_intents": round(float(sims[distinct].max()), 4),
        "max_distinct_cosine_eval": round(float(msims[mdistinct].max()), 4),
        "eval_distinct_pairs_at_or_above_default": [
            [round(float(msims[i, j]), 3), mixed[i]["q"], mixed[j]["q"]]
            for i in range(m)
            for j in range(i + 1, m)
            if mdistinct[i, j] and msims[i, j] >= DEFAULT_REPEAT_SIMILARITY
        ],
        "results": results,
    }
    if args.json:
        print(json.dumps(summary, indent=2))
        return
    print(
        f"encoder {encoder}: intents.jsonl {n} questions ({summary['intents_distinct_pairs']} distinct pairs); "
        f"other eval sets {m} answerable questions ({summary['eval_distinct_pairs']} distinct pairs)"
    )
    print("threshold  false-repeat q (intents)  pairs     repeats found   false-repeat q (eval)  pairs")
    pairs = summary["eval_distinct_pairs_at_or_above_default"]
    for r in results:
        print(
            f"  {r['threshold']:.2f}     {r['intents_false_repeat_questions']:7.1%}               "
            f"{r['intents_false_repeat_pairs']:8.3%}  {r['intents_repeats_found']:7.1%}         "
            f"{r['eval_false_repeat_questions']:7.1%}               {r['eval_false_repeat_pairs']:8.3%}"
        )
    print(f"distinct pairs (by gold) of the eval sets at or above {DEFAULT_REPEAT_SIMILARITY}:")
    for score, a, b in pairs:
        print(f"  {score:.3f}  {a!r}  ~  {b!r}")


if __name__ == "__main__":
    main()
