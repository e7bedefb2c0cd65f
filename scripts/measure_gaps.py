"""How the knowledge-gap report's grouping (bot/conversation/similarity.cluster) splits questions by meaning.

    .venv/bin/python scripts/measure_gaps.py --index ./index

On tests/eval/intents.jsonl (40 intents x 4 paraphrases + 40 controls, each a topic of its own), for each
threshold: how many groups (ideal 80), purity (share of questions whose group's majority intent is theirs:
1.0 = no group mixes topics), and over pairs of questions: precision (of the pairs put in one group, the
share of one topic) and recall (of the pairs of one topic, the share put in one group).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bot.conversation.similarity import cluster  # noqa: E402
from bot.core.engine import EngineHolder  # noqa: E402
from bot.core.normalize import normalize_question  # noqa: E402

THRESHOLDS = (0.4, 0.45, 0.5, 0.55, 0.6, 0.65, 0.7, 0.75, 0.8)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--index", type=Path, default=REPO / "index")
    args = parser.parse_args()
    rows = [json.loads(x) for x in (REPO / "tests/eval/intents.jsonl").read_text().splitlines() if x.strip()]
    labels = [r["intent"] if r["intent"] != "control" else f"control-{i}" for i, r in enumerate(rows)]
    encoder, vectors = EngineHolder(args.index).embed_questions([normalize_question(r["q"]) for r in rows])
    intents = {lab for lab in labels if not lab.startswith("control-")}
    print(f"encoder {encoder}: {len(rows)} questions, {len(set(labels))} topics ({len(intents)} with 4 paraphrases)")
    print("threshold  groups  purity  pair precision  pair recall")
    for t in THRESHOLDS:
        groups = cluster(list(vectors), t)
        pure = sum(Counter(labels[i] for i in g).most_common(1)[0][1] for g in groups) / len(rows)
        together = {(i, j) for g in groups for i in g for j in g if i < j}
        same = {(i, j) for i in range(len(rows)) for j in range(i + 1, len(rows)) if labels[i] == labels[j]}
        precision = len(together & same) / len(together) if together else 1.0
        recall = len(together & same) / len(same)
        print(f"  {t:.2f}     {len(groups):4d}   {pure:.3f}   {precision:.3f}           {recall:.3f}")


if __name__ == "__main__":
    main()
