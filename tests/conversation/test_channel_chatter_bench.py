"""benchmarks/channel_chatter.py counts what the real service says unasked (with the fake engine here)."""

from __future__ import annotations

import json

from benchmarks.channel_chatter import PLATFORM, measure, report


def _write(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


ROWS = [
    {"text": "machine learning is neat", "kind": "chatter"},
    {"text": "anyone up for machine learning drinks later?", "kind": "chatter"},  # a question, confidently answered
    {"text": "what is machine learning?", "kind": "question", "gold": ["learn from data"]},
    {"text": "what is quantum generative AI?", "kind": "question", "gold": ["new kinds of hardware"]},
    {"text": "best pizza in Naples?", "kind": "question", "gold": ["pizza"]},
]


def test_the_figures_of_one_file(make_service, tmp_path):
    service = make_service(rate_limit_exempt_platforms=(PLATFORM,))
    result = measure(_write(tmp_path / "dev.jsonl", ROWS), service)
    assert (result.chatter, result.chatter_spoken) == (2, 1)
    assert result.spoken_chatter == ["anyone up for machine learning drinks later?"]
    assert (result.questions, result.confident_when_mentioned, result.answered_of_confident) == (3, 1, 1)
    assert result.quotes_when_mentioned == 2  # "mentioned only" gives quotes when asked
    assert result.answered_with_gold == 1
    assert result.silences == {"no confident answer": 2}
    assert "dev.jsonl" in report([result])


def test_two_files_through_one_service_do_not_share_threads(make_service, tmp_path):
    # a message id seen in the first file would make the second file's message a follow-up in a
    # thread the bot answered in (there: the third line's), answered whatever it says
    service = make_service(rate_limit_exempt_platforms=(PLATFORM,))
    first = measure(_write(tmp_path / "a.jsonl", ROWS), service)
    assert first.answered_unmentioned == 1
    chatter = [{"text": t, "kind": "chatter"} for t in ("nice", "hmm ok", "machine learning is neat")]
    second = measure(_write(tmp_path / "b.jsonl", chatter), service)
    assert second.chatter_spoken == 0, second.spoken_chatter
