"""How chatty is qabot in a watched channel? Ordinary channel messages through the real service.

    .venv/bin/python -m benchmarks.channel_chatter [--index DIR] [--json] [--misses] [FILE ...]

FILE is JSON Lines of channel messages: `{"text": ..., "kind": "chatter" | "question", "gold": [...]}`
(`gold`, for questions: phrases of the knowledge that answer it). Default: tests/eval/channel_dev.jsonl
(the rule was tuned on it) and tests/eval/channel_test.jsonl (reported only, never tuned on).

Every message goes twice through one real ConversationService over the index (an in-memory feedback
store, no rate limits), as a top-level message of a watched channel on a platform with threads:
- unmentioned (`addressed=False`): does the bot speak? (the question rule, then a confident answer);
- mentioned (`addressed=True`): what it replies when asked.

Reported per file:
- chatter spoken on: chatter messages it answers unmentioned (target at most 2 %);
- questions answered: of the questions it answers confidently when mentioned (kind "answer",
  confidence high or medium), the share it also answers unmentioned (target at least 90 %); also
  against every question it replies to with quotes when mentioned ("mentioned only" included);
- how often the quotes it gives unmentioned contain a gold phrase;
- why it stayed silent on questions.
`--misses` lists the chatter it spoke on and the questions it left unanswered.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_FILES = (ROOT / "tests/eval/channel_dev.jsonl", ROOT / "tests/eval/channel_test.jsonl")
PLATFORM = "bench"
CHANNEL = "CWATCHED"
CHATTER_TARGET = 0.02
QUESTION_TARGET = 0.90


@dataclass
class FileResult:
    name: str
    chatter: int = 0
    chatter_spoken: int = 0
    chatter_mentioned_quotes: int = 0  # chatter that gets quotes when someone mentions the bot with it
    questions: int = 0
    confident_when_mentioned: int = 0
    quotes_when_mentioned: int = 0  # answer or "mentioned only"
    answered_unmentioned: int = 0
    answered_of_confident: int = 0
    answered_with_gold: int = 0
    silences: Counter = field(default_factory=Counter)
    spoken_chatter: list[str] = field(default_factory=list)
    missed_questions: list[tuple[str, str]] = field(default_factory=list)

    @property
    def chatter_rate(self) -> float:
        return self.chatter_spoken / self.chatter if self.chatter else 0.0

    @property
    def question_rate(self) -> float:
        return self.answered_of_confident / self.confident_when_mentioned if self.confident_when_mentioned else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "file": self.name,
            "chatter": self.chatter,
            "chatter_spoken": self.chatter_spoken,
            "chatter_spoken_rate": round(self.chatter_rate, 4),
            "chatter_with_quotes_when_mentioned": self.chatter_mentioned_quotes,
            "questions": self.questions,
            "questions_confident_when_mentioned": self.confident_when_mentioned,
            "questions_with_quotes_when_mentioned": self.quotes_when_mentioned,
            "questions_answered_unmentioned": self.answered_unmentioned,
            "answered_of_confident_when_mentioned": round(self.question_rate, 4),
            "answered_unmentioned_with_gold": self.answered_with_gold,
            "question_silences": dict(self.silences),
            "spoken_chatter": self.spoken_chatter,
            "missed_questions": [{"text": t, "why": w} for t, w in self.missed_questions],
        }


def _service(index_dir: Path, scratch: Path):
    from bot.config import Settings
    from bot.conversation.feedback import FeedbackStore
    from bot.conversation.service import ConversationService
    from bot.core.engine import EngineHolder

    settings = Settings(
        index_dir=index_dir,
        knowledge_dir=ROOT / "knowledge",
        feedback_db=scratch / "bench.sqlite3",
        rate_limit_exempt_platforms=(PLATFORM,),
    )
    engine = EngineHolder(index_dir)
    engine.get()
    return ConversationService(engine, settings=settings, feedback=FeedbackStore(":memory:"))


def measure(path: Path, service) -> FileResult:
    from bot.conversation.models import IncomingMessage, ReplyKind
    from bot.core.evaluate import fold
    from bot.core.types import AnswerKind

    result = FileResult(path.name)
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines()):
        if not line.strip():
            continue
        row = json.loads(line)
        text, kind, gold = row["text"], row["kind"], [fold(g) for g in row.get("gold") or []]

        def message(addressed: bool, n: int = n, text: str = text) -> IncomingMessage:
            # ids unique across files: a message id seen before would be a thread the bot answered in
            mid = f"{path.name}:{n}.{'m' if addressed else 'u'}"
            return IncomingMessage(
                platform=PLATFORM,
                user_id=f"U{n}",
                channel_id=CHANNEL,
                text=text,
                message_id=mid,
                thread_id=mid,  # as Slack hands over a top-level message answered in its thread
                supports_threads=True,
                addressed=addressed,
                watched=True,
            )

        unasked = service.handle(message(False))
        asked = service.handle(message(True))
        spoke = unasked.should_send
        quotes = asked.kind is ReplyKind.ANSWER and asked.answer is not None and bool(asked.answer.quotes)
        confident = quotes and asked.answer.kind is AnswerKind.ANSWER
        if kind == "chatter":
            result.chatter += 1
            result.chatter_spoken += spoke
            result.chatter_mentioned_quotes += quotes
            if spoke:
                result.spoken_chatter.append(text)
            continue
        result.questions += 1
        result.quotes_when_mentioned += quotes
        result.confident_when_mentioned += confident
        result.answered_unmentioned += spoke
        result.answered_of_confident += spoke and confident
        if spoke:
            found = [fold(q.text) for q in unasked.answer.quotes]
            result.answered_with_gold += any(g in q for g in gold for q in found)
        else:
            why = unasked.extra.get("why", "?")
            result.silences[why] += 1
            if confident:
                result.missed_questions.append((text, why))
    return result


def _pct(n: int, d: int) -> str:
    return f"{n}/{d} ({100 * n / d:.1f} %)" if d else "0/0"


def report(results: list[FileResult]) -> str:
    rows = [
        ("chatter messages", [str(r.chatter) for r in results], ""),
        ("  spoken on, unmentioned", [_pct(r.chatter_spoken, r.chatter) for r in results], "≤ 2 %"),
        ("  (quotes if mentioned)", [_pct(r.chatter_mentioned_quotes, r.chatter) for r in results], ""),
        ("questions", [str(r.questions) for r in results], ""),
        ("  confident when mentioned", [_pct(r.confident_when_mentioned, r.questions) for r in results], ""),
        (
            "  of those, answered unmentioned",
            [_pct(r.answered_of_confident, r.confident_when_mentioned) for r in results],
            "≥ 90 %",
        ),
        ("  quotes when mentioned (+low)", [_pct(r.quotes_when_mentioned, r.questions) for r in results], ""),
        (
            "  answered unmentioned / quotes",
            [_pct(r.answered_unmentioned, r.quotes_when_mentioned) for r in results],
            "",
        ),
        (
            "  unmentioned answers with gold",
            [_pct(r.answered_with_gold, r.answered_unmentioned) for r in results],
            "",
        ),
    ]
    for why in sorted({w for r in results for w in r.silences}):
        rows.append((f"  silent: {why}", [str(r.silences.get(why, 0)) for r in results], ""))
    width = max(len(label) for label, _, _ in rows) + 2
    col = max(22, *(len(r.name) + 2 for r in results))
    lines = ["".ljust(width) + "".join(r.name.ljust(col) for r in results) + "target"]
    for label, values, target in rows:
        lines.append(label.ljust(width) + "".join(v.ljust(col) for v in values) + target)
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("files", nargs="*", type=Path, default=list(DEFAULT_FILES))
    parser.add_argument("--index", type=Path, default=ROOT / "index", help="index folder (default ./index)")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    parser.add_argument("--misses", action="store_true", help="list chatter spoken on and questions left unanswered")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as scratch:
        service = _service(args.index, Path(scratch))
        try:
            results = [measure(path, service) for path in args.files]
        finally:
            service.feedback.close()
    if args.json:
        print(json.dumps([r.to_dict() for r in results], indent=2, ensure_ascii=False))
        return 0
    print(report(results))
    if args.misses:
        for r in results:
            for text in r.spoken_chatter:
                print(f"{r.name}: spoke on chatter: {text!r}")
            for text, why in r.missed_questions:
                print(f"{r.name}: silent on a question it answers when mentioned ({why}): {text!r}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
